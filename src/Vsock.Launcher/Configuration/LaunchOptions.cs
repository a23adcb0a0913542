using System.Net;
using Microsoft.Extensions.Logging;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>What <see cref="LauncherConfiguration.Parse(string[])"/> decided the launcher should do.</summary>
public sealed record LaunchOptions
{
    /// <summary>The devices to run, validated, in command-line or file order. Empty when <see cref="InformationText"/> is set.</summary>
    public IReadOnlyList<VmSettings> Vms { get; init; } = [];

    /// <summary>Where the Prometheus endpoint listens (<c>--metrics-listen</c> or YAML <c>metrics_listen</c>); null: no endpoint.</summary>
    public IPEndPoint? MetricsListen { get; init; }

    /// <summary>This daemon as a cluster node (<c>--cluster-bind</c>/<c>--cluster-seeds</c>, or YAML <c>cluster:</c>); null: no remoting.</summary>
    public ClusterSettings? Cluster { get; init; }

    /// <summary>From <c>--log-level</c>, else <c>VHOST_DEVICE_VSOCK_LOG</c>, else <c>RUST_LOG</c>, else Information.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Things that were ignored but are not fatal (an unusable <c>RUST_LOG</c>); logged once logging is up.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>
    /// Help (<c>-h</c>) or version (<c>-V</c>) text. When set the launcher prints it on stdout and exits 0
    /// without starting anything.
    /// </summary>
    public string? InformationText { get; init; }
}
