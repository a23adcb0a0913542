using Vsock.Testing.Packets;
using Vsock.Testing.VhostUser;

namespace Vsock.Testing.Tests;

/// <summary>The knobs integration tests use to play a guest that falls behind, and extra protocol features.</summary>
public sealed class RxRefillTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task A_paused_guest_does_not_repost_used_rx_buffers_until_resumed()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, new SyntheticGuestOptions { QueueSize = 16 });
        Assert.Equal(16, guest.RxBuffersPosted);

        guest.PauseRxRefill();
        for (var i = 0; i < 5; i++)
            backend.Inject(new VsockHeader(2, 7, 9, 700, 0, VsockWire.TypeStream, (ushort)VsockOp.Rst, 0, 0, 0), []);
        await WaitUntil(() => guest.Statistics.UsedRxBuffers == 5);
        await Task.Delay(50);
        Assert.Equal(11, guest.RxBuffersPosted);

        guest.ResumeRxRefill();
        Assert.Equal(16, guest.RxBuffersPosted);
        Assert.Empty(guest.Violations);
    }

    [Fact]
    public async Task Extra_protocol_features_are_negotiated_only_if_offered()
    {
        const ulong offeredExtra = 1ul << 5;
        using var backend = new FakeBackend();
        var options = new SyntheticGuestOptions { ExtraProtocolFeatures = offeredExtra | VhostUserProtocolFeatures.ConfigureMemSlots };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, options);
        Assert.Equal(VhostUserProtocolFeatures.Wanted | offeredExtra, backend.AckedProtocolFeatures);
        Assert.Equal(backend.AckedProtocolFeatures, guest.ProtocolFeatures);
    }
}
