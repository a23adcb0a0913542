using Akka.Event;

namespace Vsock.Launcher;

/// <summary>
/// Akka's "very basic logger", used before the logger-factory bridge starts and after it stops
/// (<c>akka.stdout-logger-class</c>). The default writes to stdout; the launcher keeps stdout for
/// <c>--help</c> and <c>--version</c> and sends every log line to stderr, as the Rust binary does.
/// </summary>
public sealed class StandardErrorLogger : MinimalLogger
{
    /// <summary>The value for <c>akka.stdout-logger-class</c>.</summary>
    public static readonly string ClassName = $"{typeof(StandardErrorLogger).FullName}, {typeof(StandardErrorLogger).Assembly.GetName().Name}";

    protected override void Log(object message)
    {
        if (message is LogEvent logEvent)
        {
            Console.Error.WriteLine(logEvent.ToString());
        }
    }
}
