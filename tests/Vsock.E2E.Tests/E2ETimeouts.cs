namespace Vsock.E2E.Tests;

/// <summary>Generous limits: a boot takes 3-4 s under TCG, transfers are a few MB/s to a few hundred.</summary>
internal static class E2ETimeouts
{
    public static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan Step = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan Transfer = TimeSpan.FromSeconds(120);
}
