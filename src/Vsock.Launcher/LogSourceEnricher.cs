using Serilog.Core;
using Serilog.Events;

namespace Vsock.Launcher;

/// <summary>
/// Names where a log line comes from in a property <c>Source</c>: the Akka log source (an actor path, so
/// lines of one VM's device, <c>vsock/vm-3/device</c>, can be told from another's) where the event came
/// through Akka's logger-factory bridge (which logs everything under the category
/// <c>Akka.Actor.ActorSystem</c>), else the logger category.
/// </summary>
internal sealed class LogSourceEnricher(string systemName) : ILogEventEnricher
{
    private readonly string _userPrefix = $"akka://{systemName}/user/";
    private readonly string _systemPrefix = $"akka://{systemName}/";

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        string? source = null;
        if (logEvent.Properties.TryGetValue("LogSource", out var value) && value is ScalarValue { Value: string akkaSource })
        {
            source = akkaSource.StartsWith(_userPrefix, StringComparison.Ordinal) ? akkaSource[_userPrefix.Length..]
                : akkaSource.StartsWith(_systemPrefix, StringComparison.Ordinal) ? akkaSource[_systemPrefix.Length..]
                : akkaSource;
        }
        else if (logEvent.Properties.TryGetValue("SourceContext", out var context) && context is ScalarValue { Value: string category })
        {
            source = category;
        }
        if (source is not null)
            logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty("Source", source));
    }
}
