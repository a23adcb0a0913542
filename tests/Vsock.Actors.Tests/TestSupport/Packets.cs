using Vsock.Device.Packets;

namespace Vsock.Actors.Tests.TestSupport;

/// <summary>Headers as a Linux guest with CID 3 would send them.</summary>
public static class Packets
{
    public const ulong GuestCid = 3;

    public static VsockHeader FromGuest(ushort op, uint localPort, uint guestPort, uint len = 0, uint flags = 0,
        uint bufAlloc = 262144, uint fwdCnt = 0, ulong dstCid = VsockConstants.HostCid) => new()
        {
            SrcCid = GuestCid,
            DstCid = dstCid,
            SrcPort = guestPort,
            DstPort = localPort,
            Len = len,
            Type = VsockType.Stream,
            Op = op,
            Flags = flags,
            BufAlloc = bufAlloc,
            FwdCnt = fwdCnt,
        };
}
