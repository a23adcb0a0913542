namespace Vsock.Device.Tests.VhostUser;

/// <summary>Tests that count the process's open fds run alone, so no other test opens or closes fds meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FdCountingCollection
{
    public const string Name = "fd counting";
}
