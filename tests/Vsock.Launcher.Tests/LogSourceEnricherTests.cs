using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace Vsock.Launcher.Tests;

public class LogSourceEnricherTests
{
    private sealed class Factory : ILogEventPropertyFactory
    {
        public LogEventProperty CreateProperty(string name, object? value, bool destructureObjects = false) =>
            new(name, new ScalarValue(value));
    }

    private static string? SourceOf(params (string Name, string Value)[] properties)
    {
        var e = new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, new MessageTemplateParser().Parse("x"),
            properties.Select(p => new LogEventProperty(p.Name, new ScalarValue(p.Value))));
        new LogSourceEnricher("vhost-device-vsock").Enrich(e, new Factory());
        return e.Properties.TryGetValue("Source", out var v) ? (string?)((ScalarValue)v).Value : null;
    }

    [Fact]
    public void An_actor_log_names_the_actor_path_below_user()
    {
        Assert.Equal("vsock/vm-3/device", SourceOf(("LogSource", "akka://vhost-device-vsock/user/vsock/vm-3/device"), ("SourceContext", "Akka.Actor.ActorSystem")));
        Assert.Equal("system/x", SourceOf(("LogSource", "akka://vhost-device-vsock/system/x")));
        Assert.Equal("CoordinatedShutdown (akka://vhost-device-vsock)", SourceOf(("LogSource", "CoordinatedShutdown (akka://vhost-device-vsock)")));
    }

    [Fact]
    public void Other_logs_name_their_category()
    {
        Assert.Equal("vhost-device-vsock", SourceOf(("SourceContext", "vhost-device-vsock")));
        Assert.Null(SourceOf());
    }
}
