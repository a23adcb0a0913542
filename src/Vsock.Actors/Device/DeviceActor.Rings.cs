using System.Buffers;
using Akka.Actor;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Backend;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Device;

/// <summary>The virtqueue loop: bounded TX and RX drains on the device's event-loop thread.</summary>
public sealed partial class DeviceActor
{
    private bool _rxScheduled;
    private readonly SafeFileHandle?[] _watchedKicks = new SafeFileHandle?[2];
    private readonly LoopRegistration[] _kickRegistrations = new LoopRegistration[2];

    private void RunTx()
    {
        if (_backend is not { IsRunning: true } backend)
            return;
        if (backend.DrainTx(DrainBudget, _txHandler ??= new TxHandler(this)))
            Self.Tell(DrainTx.Instance);
        if (backend.OutboundCount > 0)
            ScheduleRx();
        EndVmmSessionIfGuestMemoryLost();
    }

    private void RunRx()
    {
        if (_backend is not { IsRunning: true } backend)
            return;
        if (backend.DrainRx(DrainBudget) == VsockBackend.RxResult.BudgetExhausted)
            ScheduleRx();
        EndVmmSessionIfGuestMemoryLost();
    }

    /// <summary>
    /// Coalesces RX work: packets from many connections that arrive together go out in one batch with
    /// one guest notification, instead of one interrupt per packet.
    /// </summary>
    private void ScheduleRx()
    {
        if (_rxScheduled)
            return;
        _rxScheduled = true;
        Self.Tell(DrainRx.Instance);
    }

    private void OnToGuest(ToGuest message)
    {
        var header = message.Header;
        var data = message.Data;
        var length = message.Length;
        message.Recycle(); // everything needed is copied out: the message object is free for reuse
        if (header.Op == VsockOp.Rst)
            ForgetConnection(Sender, out _);
        if (_backend is not { IsRunning: true } backend)
        {
            if (data is not null)
                ArrayPool<byte>.Shared.Return(data);
            return;
        }
        backend.Enqueue(new OutboundPacket
        {
            Header = header,
            Data = data,
            Length = length,
            Owner = data is null ? null : Sender,
        });
        ScheduleRx();
    }

    private void EnqueueControl(in VsockHeader header)
    {
        if (_backend is not { IsRunning: true } backend)
            return;
        backend.Enqueue(OutboundPacket.Control(header));
        ScheduleRx();
    }

    private void WatchKick(int index, SafeFileHandle? kickFd)
    {
        UnwatchKick(index);
        if (kickFd is null || index > 1)
            return;
        _watchedKicks[index] = kickFd;
        // Edge-triggered: nobody reads the eventfd; every write by the VMM is a new edge.
        _kickRegistrations[index] = _loop.Add((int)kickFd.DangerousGetHandle(), EpollEvents.In | EpollEvents.EdgeTriggered, _kickSignals[index]);
    }

    private void UnwatchKick(int index)
    {
        if (index > 1 || _watchedKicks[index] is not { } fd)
            return;
        _watchedKicks[index] = null;
        var registration = _kickRegistrations[index];
        _kickRegistrations[index] = default;
        if (!fd.IsClosed)
            _loop.Remove(registration);
    }

    private TxHandler? _txHandler;

    /// <summary>Receives TX packets from the backend while their chains are checked out (see <see cref="ITxPacketHandler"/>).</summary>
    private sealed class TxHandler(DeviceActor device) : ITxPacketHandler
    {
        public void OnTxPacket(ref VsockPacket packet) => device.OnGuestPacket(ref packet);
    }

    /// <summary>The backend's events, delivered synchronously on the device thread.</summary>
    private sealed class BackendEvents(DeviceActor device) : IVsockDeviceEvents
    {
        public void RingReady(int index, SafeFileHandle? kickFd) => device.WatchKick(index, kickFd);

        public void RingStopped(int index) => device.UnwatchKick(index);

        public void DeviceReset() => device.DropAllConnections("the VMM reset the device");

        public void PacketDelivered(in OutboundPacket packet)
        {
            if (packet.Data is not null)
                ArrayPool<byte>.Shared.Return(packet.Data);
            (packet.Owner as IActorRef)?.Tell(RxDelivered.Instance);
        }

        public void PacketDropped(in OutboundPacket packet)
        {
            if (packet.Data is not null)
                ArrayPool<byte>.Shared.Return(packet.Data);
        }
    }
}
