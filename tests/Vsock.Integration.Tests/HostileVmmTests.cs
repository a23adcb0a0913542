using System.Buffers.Binary;
using Vsock.Device.Interop;
using Vsock.Testing;
using Vsock.Testing.VhostUser;

namespace Vsock.Integration.Tests;

/// <summary>
/// A VMM that sends broken vhost-user messages. Each time: that VMM's connection is dropped, the
/// daemon stays up, another VM keeps working, and a fresh VMM can connect to the same socket.
/// </summary>
public sealed class HostileVmmTests
{
    public enum Attack
    {
        UnknownRequest,
        OversizedSizeField,
        TruncatedThenHangup,
        BadVersionFlags,
        MemTableWithoutFd,
        MemTableWithTooManyFds,
        KickWithTwoFds,
        GarbageBeforeHandshake,
    }

    [Theory]
    [InlineData(Attack.UnknownRequest)]
    [InlineData(Attack.OversizedSizeField)]
    [InlineData(Attack.TruncatedThenHangup)]
    [InlineData(Attack.BadVersionFlags)]
    [InlineData(Attack.MemTableWithoutFd)]
    [InlineData(Attack.MemTableWithTooManyFds)]
    [InlineData(Attack.KickWithTwoFds)]
    [InlineData(Attack.GarbageBeforeHandshake)]
    public async Task Broken_messages_disconnect_only_that_vmm(Attack attack)
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);

        if (attack == Attack.GarbageBeforeHandshake)
        {
            using var raw = VhostUserClient.Connect(daemon[0].Socket, Scenario.Timeout);
            raw.SendRaw(TestPattern.RandomBytes(200, 42));
            Assert.True(raw.WaitForHangup(Scenario.Timeout), "the daemon kept a VMM that sent garbage");
        }
        else
        {
            await using var victim = SyntheticGuest.Connect(daemon[0].Socket);
            if (attack == Attack.TruncatedThenHangup)
            {
                // Half a header, then the VMM dies: the daemon must notice the hang-up mid-message.
                victim.SendRawVhostUserBytes(new byte[] { 1, 0, 0, 0, 1, 0 });
                victim.Disconnect();
            }
            else
            {
                Send(victim, attack);
                Assert.True(victim.WaitForVhostUserHangup(Scenario.Timeout), $"the daemon kept a VMM after {attack}");
            }
        }

        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket);
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
        Scenario.AssertClean(fresh);
        Scenario.AssertClean(bystander);
    }

    private static void Send(SyntheticGuest victim, Attack attack)
    {
        var header = new byte[12];
        switch (attack)
        {
            case Attack.UnknownRequest:
                VhostUserClient.WriteHeader(header, 0xdead, VhostUserFlags.Version, 0);
                victim.SendRawVhostUserBytes(header);
                break;
            case Attack.OversizedSizeField:
                VhostUserClient.WriteHeader(header, VhostUserRequest.SetMemTable, VhostUserFlags.Version, 0x7fff_ffff);
                victim.SendRawVhostUserBytes([.. header, .. new byte[100]]);
                break;
            case Attack.BadVersionFlags:
                VhostUserClient.WriteHeader(header, VhostUserRequest.GetFeatures, 2, 0);
                victim.SendRawVhostUserBytes(header);
                break;
            case Attack.MemTableWithoutFd:
                victim.SendRequest(VhostUserRequest.SetMemTable, MemTable(victim.RamSize), [], needReply: false);
                break;
            case Attack.MemTableWithTooManyFds:
                victim.SendRequest(VhostUserRequest.SetMemTable, MemTable(victim.RamSize), [victim.MemoryFd, victim.MemoryFd, victim.MemoryFd], needReply: false);
                break;
            case Attack.KickWithTwoFds:
                using (var a = EventFd.Create())
                using (var b = EventFd.Create())
                {
                    var index = new byte[8];
                    victim.SendRequest(VhostUserRequest.SetVringKick, index, [a.Fd, b.Fd], needReply: false);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(attack));
        }
    }

    private static byte[] MemTable(ulong size)
    {
        var table = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(16), size);
        BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(24), 0x7f00_0000_0000);
        return table;
    }
}
