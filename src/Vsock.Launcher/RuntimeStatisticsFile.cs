using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Vsock.Device.Diagnostics;

namespace Vsock.Launcher;

/// <summary>
/// A benchmark hook, off unless <c>VSOCK_STATS_FILE</c> names a file: the daemon then writes its
/// garbage-collector counters there when it receives SIGUSR1 (a snapshot the benchmark takes before
/// and after a run) and once more when it exits. GC counts and allocated bytes cannot be read from
/// outside the process, and a snapshot on demand lets a benchmark subtract start-up and warm-up.
/// Without the variable SIGUSR1 keeps its default action and nothing is written.
/// </summary>
internal sealed class RuntimeStatisticsFile : IDisposable
{
    public const string EnvironmentVariable = "VSOCK_STATS_FILE";

    /// <summary>Linux's SIGUSR1; .NET accepts raw signal numbers cast to <see cref="PosixSignal"/>.</summary>
    private const PosixSignal SigUsr1 = (PosixSignal)10;

    /// <summary>Every <c>long</c> a VM's <see cref="DeviceCounters"/> exposes: its counter fields, then the figures it derives.</summary>
    private static readonly (string Name, Func<DeviceCounters, object?> Read)[] Counters =
    [
        .. typeof(DeviceCounters).GetFields(BindingFlags.Public | BindingFlags.Instance)
            .Where(f => f.FieldType == typeof(long))
            .Select(f => (f.Name, (Func<DeviceCounters, object?>)f.GetValue)),
        .. typeof(DeviceCounters).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.PropertyType == typeof(long))
            .Select(p => (p.Name, (Func<DeviceCounters, object?>)p.GetValue)),
    ];

    private readonly object _sync = new();
    private readonly string _path;
    private PosixSignalRegistration? _registration;
    private long _sequence;

    public RuntimeStatisticsFile(string path) => _path = path;

    /// <summary>The hook the environment asks for, listening for SIGUSR1; null when the variable is unset.</summary>
    public static RuntimeStatisticsFile? FromEnvironment(Func<string, string?> getEnvironmentVariable)
    {
        var path = getEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(path))
            return null;
        var file = new RuntimeStatisticsFile(path);
        file._registration = PosixSignalRegistration.Create(SigUsr1, context =>
        {
            context.Cancel = true;
            file.Write();
        });
        return file;
    }

    /// <summary>
    /// Replaces the file with one <c>key value</c> line per counter. Written to a temporary name and
    /// renamed, so a reader never sees half a file; <c>sequence</c> tells snapshots apart.
    /// </summary>
    public void Write()
    {
        lock (_sync)
        {
            _sequence++;
            var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
                $"sequence {_sequence}\n" +
                $"gen0 {GC.CollectionCount(0)}\n" +
                $"gen1 {GC.CollectionCount(1)}\n" +
                $"gen2 {GC.CollectionCount(2)}\n" +
                $"allocated_bytes {GC.GetTotalAllocatedBytes(precise: true)}\n" +
                $"heap_bytes {GC.GetTotalMemory(forceFullCollection: false)}\n"));
            // Every VM's data-path counters, as counter.<cid>.<name>: what the benchmark prints per cell.
            foreach (var (cid, counters) in VsockMeter.Registered)
            {
                foreach (var (name, read) in Counters)
                    text.Append(CultureInfo.InvariantCulture, $"counter.{cid}.{name} {read(counters)}\n");
            }
            var temporary = _path + ".tmp";
            File.WriteAllText(temporary, text.ToString());
            File.Move(temporary, _path, overwrite: true);
        }
    }

    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }
}
