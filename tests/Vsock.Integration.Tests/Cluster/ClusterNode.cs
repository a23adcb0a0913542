using System.Diagnostics;
using Vsock.E2E.Tests.Rig;

namespace Vsock.Integration.Tests.Cluster;

/// <summary>One VM of a cluster node: its CID and groups (<c>g1+g2</c>).</summary>
public sealed record NodeVm(ulong Cid, string Groups = "g1");

/// <summary>
/// Akka.Remote's TLS for a node, as an operator turns it on: <c>hocon/vsock-cluster.local.hocon</c> next to the
/// daemon's binary (so the node runs from a copy of the binary's directory), with the node's certificate and key in
/// <paramref name="PfxPath"/>, validation of the peer's certificate on, and <paramref name="TrustedCertificates"/>
/// (PEM) as the machine's trust store (OpenSSL's <c>SSL_CERT_FILE</c>, which .NET reads on Linux).
/// </summary>
public sealed record NodeTls(string PfxPath, string Password, string TrustedCertificates);

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
    private readonly NodeLaunch _launch;
    private DaemonProcess _process;

    private ClusterNode(string name, int port, IReadOnlyList<NodeVm> vms, string directory, IReadOnlyList<string> arguments, NodeLaunch launch,
        DaemonProcess process)
    {
        Name = name;
        Port = port;
        Vms = vms;
        _directory = directory;
        _arguments = arguments;
        _launch = launch;
        _process = process;
    }

    /// <summary>How the node's daemon is started: which binary, with which extra environment.</summary>
    private sealed record NodeLaunch(DaemonCommand Command, IReadOnlyDictionary<string, string>? Environment, string Protocol);

    public string Name { get; }

    public int Port { get; }

    public IReadOnlyList<NodeVm> Vms { get; }

    /// <summary>The node's Akka address, as the registry's log lines print it.</summary>
    public string Address => $"{_launch.Protocol}://vhost-device-vsock@127.0.0.1:{Port}";

    public int Pid => _process.Pid;

    public bool HasExited => _process.HasExited;

    public string Log => _process.Log;

    public string Describe() => $"==== node {Name} ====\n{_process.Describe()}";

    public string SocketOf(ulong cid) => Path.Combine(_directory, $"vm{cid}.sock");

    /// <summary>A daemon that is no cluster node (no remoting): the baseline for local siblings.</summary>
    public static Task<ClusterNode> StartLocalAsync(string name, params NodeVm[] vms) => StartAsync(name, 0, [], vms);

    /// <summary>Starts a node; <paramref name="seeds"/> are the seed ports on 127.0.0.1, in order.</summary>
    public static Task<ClusterNode> StartAsync(string name, int port, IReadOnlyList<int> seeds, params NodeVm[] vms) =>
        StartAsync(name, port, seeds, tls: null, vms);

    /// <summary>Starts a node, with Akka.Remote's TLS when <paramref name="tls"/> is given.</summary>
    public static async Task<ClusterNode> StartAsync(string name, int port, IReadOnlyList<int> seeds, NodeTls? tls, params NodeVm[] vms)
    {
        var directory = Directory.CreateTempSubdirectory($"vscl{name}-").FullName;
        var launch = tls is null
            ? new NodeLaunch(DaemonLocator.Resolve(), null, "akka.tcp")
            : new NodeLaunch(CopyWithTls(DaemonLocator.Resolve(), Path.Combine(directory, "daemon"), tls),
                new Dictionary<string, string> { ["SSL_CERT_FILE"] = tls.TrustedCertificates, ["SSL_CERT_DIR"] = Path.Combine(directory, "no-certs") },
                "akka.ssl.tcp");
        var arguments = new List<string>();
        foreach (var vm in vms)
        {
            arguments.Add("--vm");
            arguments.Add($"guest-cid={vm.Cid},socket={Path.Combine(directory, $"vm{vm.Cid}.sock")},uds-path={Path.Combine(directory, $"vm{vm.Cid}.vsock")},groups={vm.Groups}");
        }
        if (seeds.Count > 0)
            arguments.AddRange(["--cluster-bind", $"127.0.0.1:{port}", "--cluster-seeds", string.Join('+', seeds.Select(s => $"127.0.0.1:{s}"))]);
        var process = await StartProcessAsync(launch, directory, arguments, vms);
        return new ClusterNode(name, port, vms, directory, arguments, launch, process);
    }

    /// <summary>
    /// A copy of the daemon's directory (the local HOCON file is read next to the binary) with
    /// <c>hocon/vsock-cluster.local.hocon</c> turning TLS on, validation included: the command that runs the copy.
    /// </summary>
    private static DaemonCommand CopyWithTls(DaemonCommand daemon, string target, NodeTls tls)
    {
        var binary = daemon.PrefixArguments.Count > 0 ? daemon.PrefixArguments[^1] : daemon.FileName;
        var source = Path.GetDirectoryName(binary)!;
        Copy(source, target);
        File.WriteAllText(Path.Combine(target, "hocon", "vsock-cluster.local.hocon"), $$"""
            akka.remote.dot-netty.tcp {
              enable-ssl = true
              ssl {
                suppress-validation = false
                require-mutual-authentication = true
                validate-certificate-hostname = false
                certificate {
                  path = "{{tls.PfxPath}}"
                  password = "{{tls.Password}}"
                  flags = [ "default-key-set" ]
                }
              }
            }
            """);
        return DaemonCommand.For(Path.Combine(target, Path.GetFileName(binary)));

        static void Copy(string from, string to)
        {
            Directory.CreateDirectory(to);
            foreach (var file in Directory.EnumerateFiles(from))
                File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
            foreach (var dir in Directory.EnumerateDirectories(from))
            {
                // Only what the daemon loads: its HOCON and native libraries, not a publish output nested in a build's.
                var name = Path.GetFileName(dir);
                if (name is "hocon" or "runtimes")
                    Copy(dir, Path.Combine(to, name));
            }
        }
    }

    /// <summary>The same daemon again (same address, same VMs) after it was killed.</summary>
    public async Task RestartAsync()
    {
        if (!_process.HasExited)
            throw new InvalidOperationException($"node {Name} is still running");
        await _process.DisposeAsync();
        _process = await StartProcessAsync(_launch, _directory, _arguments, Vms);
    }

    private static Task<DaemonProcess> StartProcessAsync(NodeLaunch launch, string directory, IReadOnlyList<string> arguments, IReadOnlyList<NodeVm> vms)
    {
        var sockets = vms.Select(vm => Path.Combine(directory, $"vm{vm.Cid}.sock")).ToList();
        foreach (var stale in sockets)
            File.Delete(stale); // a killed daemon leaves its sockets; "ready" must mean the new one made them
        return DaemonProcess.StartAsync(launch.Command, arguments, sockets, vms.Select(vm => Path.Combine(directory, $"vm{vm.Cid}.vsock")).ToList(),
            TimeSpan.FromSeconds(60), launch.Environment);
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
