using System.Diagnostics;
using Vsock.E2E.Tests.Rig;

namespace Vsock.Integration.Tests.Cluster;

/// <summary>One VM of a cluster node: its CID and groups (<c>g1+g2</c>).</summary>
public sealed record NodeVm(ulong Cid, string Groups = "g1");

/// <summary>
/// A daemon process that is a cluster node on 127.0.0.1, started exactly as a user would
/// (<c>vhost-device-vsock --vm ... --cluster-bind 127.0.0.1:P --cluster-seeds ...</c>), with its VMs' sockets in a
/// fresh temporary directory. It can be killed (SIGKILL), frozen (SIGSTOP) and thawed, and restarted on the same
/// address with the same VMs. Its log is the daemon's stderr, which the tests read for the registry's lines.
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    private readonly string _directory;
    private readonly IReadOnlyList<string> _arguments;
    private DaemonProcess _process;

    private ClusterNode(string name, int port, IReadOnlyList<NodeVm> vms, string directory, IReadOnlyList<string> arguments, DaemonProcess process)
    {
        Name = name;
        Port = port;
        Vms = vms;
        _directory = directory;
        _arguments = arguments;
        _process = process;
    }

    public string Name { get; }

    public int Port { get; }

    public IReadOnlyList<NodeVm> Vms { get; }

    /// <summary>The node's Akka address, as the registry's log lines print it.</summary>
    public string Address => $"akka.tcp://vhost-device-vsock@127.0.0.1:{Port}";

    public int Pid => _process.Pid;

    public bool HasExited => _process.HasExited;

    public string Log => _process.Log;

    public string Describe() => $"==== node {Name} ====\n{_process.Describe()}";

    public string SocketOf(ulong cid) => Path.Combine(_directory, $"vm{cid}.sock");

    /// <summary>A daemon that is no cluster node (no remoting): the baseline for local siblings.</summary>
    public static Task<ClusterNode> StartLocalAsync(string name, params NodeVm[] vms) => StartAsync(name, 0, [], vms);

    /// <summary>Starts a node; <paramref name="seeds"/> are the seed ports on 127.0.0.1, in order.</summary>
    public static async Task<ClusterNode> StartAsync(string name, int port, IReadOnlyList<int> seeds, params NodeVm[] vms)
    {
        var directory = Directory.CreateTempSubdirectory($"vscl{name}-").FullName;
        var arguments = new List<string>();
        foreach (var vm in vms)
        {
            arguments.Add("--vm");
            arguments.Add($"guest-cid={vm.Cid},socket={Path.Combine(directory, $"vm{vm.Cid}.sock")},uds-path={Path.Combine(directory, $"vm{vm.Cid}.vsock")},groups={vm.Groups}");
        }
        if (seeds.Count > 0)
            arguments.AddRange(["--cluster-bind", $"127.0.0.1:{port}", "--cluster-seeds", string.Join('+', seeds.Select(s => $"127.0.0.1:{s}"))]);
        var process = await StartProcessAsync(directory, arguments, vms);
        return new ClusterNode(name, port, vms, directory, arguments, process);
    }

    /// <summary>The same daemon again (same address, same VMs) after it was killed.</summary>
    public async Task RestartAsync()
    {
        if (!_process.HasExited)
            throw new InvalidOperationException($"node {Name} is still running");
        await _process.DisposeAsync();
        _process = await StartProcessAsync(_directory, _arguments, Vms);
    }

    private static Task<DaemonProcess> StartProcessAsync(string directory, IReadOnlyList<string> arguments, IReadOnlyList<NodeVm> vms)
    {
        var sockets = vms.Select(vm => Path.Combine(directory, $"vm{vm.Cid}.sock")).ToList();
        foreach (var stale in sockets)
            File.Delete(stale); // a killed daemon leaves its sockets; "ready" must mean the new one made them
        return DaemonProcess.StartAsync(DaemonLocator.Resolve(), arguments, sockets, vms.Select(vm => Path.Combine(directory, $"vm{vm.Cid}.vsock")).ToList(),
            TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILL; returns when the process is gone.</summary>
    public async Task KillAsync()
    {
        ProcessSignals.KillNow(Pid);
        var clock = Stopwatch.StartNew();
        while (!HasExited && clock.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(10);
    }

    public void Freeze() => ProcessSignals.Freeze(Pid);

    public void Thaw() => ProcessSignals.Thaw(Pid);

    /// <summary>How many times <paramref name="text"/> occurs in the log so far.</summary>
    public int Count(string text)
    {
        var log = Log;
        var count = 0;
        for (var at = log.IndexOf(text, StringComparison.Ordinal); at >= 0; at = log.IndexOf(text, at + text.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    /// <summary>Waits until <paramref name="text"/> has occurred more than <paramref name="before"/> times.</summary>
    public async Task WaitForLogAsync(string text, TimeSpan timeout, int before = 0)
    {
        var clock = Stopwatch.StartNew();
        while (Count(text) <= before)
        {
            if (HasExited)
                throw new InvalidOperationException($"node {Name} exited while waiting for '{text}'\n{Describe()}");
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"node {Name}: no '{text}' in the log after {timeout.TotalSeconds:0} s\n{Describe()}");
            await Task.Delay(25);
        }
    }

    /// <summary>The line the router logs when a sibling CID on <paramref name="node"/> enters its view.</summary>
    public static string Reachable(ulong cid, ClusterNode node) => $"sibling CID {cid} on {node.Address} is reachable";

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
            _process.Thaw();
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: under the temp directory
        }
    }
}

internal static class DaemonProcessExtensions
{
    /// <summary>A frozen process cannot act on SIGTERM: thaw it before the rig asks it to stop.</summary>
    public static void Thaw(this DaemonProcess process) => ProcessSignals.Thaw(process.Pid);
}
