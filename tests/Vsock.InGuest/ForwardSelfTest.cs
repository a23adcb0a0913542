using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Vsock.Actors.Settings;
using Vsock.Device.Interop;
using Vsock.Testing;
using Vsock.Testing.Daemon;
using Vsock.Testing.HostSide;
using VsockSocket = Vsock.Device.Interop.Vsock;

namespace Vsock.InGuest;

/// <summary>
/// <c>forward-selftest</c>: the daemon's AF_VSOCK backend for real. The daemon runs in this process
/// (<see cref="InProcessDaemon"/>) with <c>forward-cid=1</c> and <c>forward-listen=&lt;listen-port&gt;</c>; a
/// <see cref="SyntheticGuest"/> plays the VM on its vhost-user socket; the peers are AF_VSOCK sockets on
/// this guest kernel's vsock_loopback (CID 1), made with <see cref="VsockSocket"/>.
/// <list type="bullet">
/// <item>guest to host: the synthetic guest connects to CID 2 port <c>--port</c>; the daemon connects to
/// 1:port, where a peer listener accepts; pattern both ways at once, each side half-closing, to EOF;</item>
/// <item>host to guest: a peer connects to 1:<c>--listen-port</c>, the daemon's forward listener accepts and
/// the synthetic guest's listener gets the stream from CID 2; the same exchange;</item>
/// <item>refusal: the synthetic guest connects to <c>--refused-port</c>, where nobody listens, and gets RST;</item>
/// <item>SEQPACKET (issue 12), both ways: the synthetic guest connects SOCK_SEQPACKET to CID 2 port <c>--seq-port</c>
/// and a peer on CID 1 echoes every message; a peer connects SOCK_SEQPACKET to the daemon's
/// <c>forward-listen-seqpacket</c> port <c>--seq-listen-port</c> and the synthetic guest echoes. The issue's
/// lengths and <c>--seq-messages</c> seeded random ones, each checked length, bytes and MSG_EOR;</item>
/// <item>the synthetic guest saw no protocol violation and its driver did not fault.</item>
/// </list>
/// Prints <c>VSOCKTEST RESULT forward-selftest ok=1 ...</c>, or a FAIL line naming the stage and ok=0.
/// </summary>
internal static class ForwardSelfTest
{
    private const string Mode = "forward-selftest";
    private const long RefusalLimitMs = 3000;

    public static async Task<int> RunAsync(CommandArguments args)
    {
        var settings = new Settings(
            GuestCid: args.UInt32("guest-cid", 3),
            Port: args.UInt32("port", 7100),
            ListenPort: args.UInt32("listen-port", 7200),
            RefusedPort: args.UInt32("refused-port", 7300),
            Bytes: args.Int64("bytes", 1 << 20),
            SeqPort: args.UInt32("seq-port", 7110),
            SeqListenPort: args.UInt32("seq-listen-port", 7210),
            SeqMessages: (int)Math.Min(args.Int64("seq-messages", 24), 10_000),
            TimeoutMs: (int)Math.Min(args.Int64("timeout-ms", 30_000, minimum: 1), int.MaxValue));
        args.EnsureAllUsed();
        if (settings.GuestCid < 3)
            throw new UsageException("--guest-cid must be 3 or more");
        if (new[] { settings.Port, settings.ListenPort, settings.RefusedPort, settings.SeqPort, settings.SeqListenPort }.Distinct().Count() != 5)
            throw new UsageException("--port, --listen-port, --refused-port, --seq-port and --seq-listen-port must differ");

        var fields = new MarkerFields().Add("guest_cid", settings.GuestCid).Add("bytes", settings.Bytes);
        var run = new Run(settings, fields);
        try
        {
            await run.ExecuteAsync();
        }
        catch (Exception e) when (e is CheckFailed or IOException or SocketException or ObjectDisposedException or TimeoutException
                                      or OperationCanceledException or InvalidOperationException)
        {
            // IOException covers LinuxException, the synthetic guest's refusals and its protocol errors.
            Markers.Fail(Mode, $"{run.Stage}: {(e is CheckFailed ? e.Message : e.GetType().Name + ": " + e.Message)}");
            Markers.Result(Mode, ok: false, fields.Add("stage", run.Stage));
            return InGuestProgram.Failed;
        }
        finally
        {
            await run.DisposeAsync();
        }
        Markers.Result(Mode, ok: true, fields);
        return InGuestProgram.Passed;
    }

    private sealed record Settings(uint GuestCid, uint Port, uint ListenPort, uint RefusedPort, long Bytes, uint SeqPort, uint SeqListenPort,
        int SeqMessages, int TimeoutMs)
    {
        public TimeSpan Timeout => TimeSpan.FromMilliseconds(TimeoutMs);
    }

    private sealed class CheckFailed(string message) : Exception(message);

    private sealed class Run(Settings settings, MarkerFields fields) : IAsyncDisposable
    {
        private readonly string directory = Directory.CreateTempSubdirectory("vsfwd-").FullName;
        private readonly List<IDisposable> owned = [];
        private InProcessDaemon? daemon;
        private SyntheticGuest? guest;

        public string Stage { get; private set; } = "start";

        public async Task ExecuteAsync()
        {
            var clock = Stopwatch.StartNew();
            Stage = "daemon";
            var vm = new VmSettings
            {
                GuestCid = settings.GuestCid,
                Socket = Path.Combine(directory, "vhost.sock"),
                ForwardCid = VsockSocket.CidLocal,
                ForwardListen = [settings.ListenPort],
                ForwardListenSeqpacket = [settings.SeqListenPort],
                TxBufferSize = SeqMaxMessage,
            };
            daemon = await InProcessDaemon.StartAsync([vm], settings.Timeout);
            fields.Add("daemon_ms", clock.Elapsed.TotalMilliseconds, "0");

            Stage = "frontend";
            clock.Restart();
            guest = SyntheticGuest.Connect(vm.Socket);
            Check(guest.GuestCid == settings.GuestCid, $"the device reports guest CID {guest.GuestCid}, configured {settings.GuestCid}");
            fields.Add("frontend_ms", clock.Elapsed.TotalMilliseconds, "0");

            Stage = "guest-to-host";
            await GuestToHostAsync(guest);

            Stage = "host-to-guest";
            await HostToGuestAsync(guest);

            Stage = "refused";
            await RefusedAsync(guest);

            Stage = "seq-guest-to-host";
            await SeqGuestToHostAsync(guest);

            Stage = "seq-host-to-guest";
            await SeqHostToGuestAsync(guest);

            Stage = "clean";
            Check(guest.DriverFault is null, $"the synthetic guest's driver faulted: {guest.DriverFault?.Message}");
            Check(guest.Violations.Count == 0, $"device behaviour a Linux guest would reject: {string.Join("; ", guest.Violations)}");
            var statistics = guest.Statistics;
            fields.Add("violations", guest.Violations.Count)
                .Add("packets_sent", statistics.PacketsSent).Add("packets_received", statistics.PacketsReceived)
                .Add("credit_updates_sent", statistics.CreditUpdatesSent);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var item in owned)
                item.Dispose();
            if (guest is not null)
                await guest.DisposeAsync();
            if (daemon is not null)
                await daemon.DisposeAsync();
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // The guest's tmpfs goes with the guest.
            }
        }

        private async Task GuestToHostAsync(SyntheticGuest frontend)
        {
            var listener = Own(VsockSocket.Listen(VsockSocket.CidAny, settings.Port));
            var clock = Stopwatch.StartNew();
            // The daemon forwards a guest REQUEST for any CID to forward-cid (the reference does the same).
            var stream = await frontend.ConnectAsync(VsockSocket.CidHost, settings.Port, settings.Timeout);
            Check(Poll.WaitReadable(listener, settings.TimeoutMs) > 0, $"no connection from the daemon on 1:{settings.Port}");
            var accepted = VsockSocket.Accept(listener, out var peerCid, out _);
            Check(accepted is not null, "accept returned no connection although the listener was readable");
            Check(peerCid == VsockSocket.CidLocal, $"the daemon's connection comes from CID {peerCid}, expected {VsockSocket.CidLocal}");
            fields.Add("g2h_connect_ms", clock.Elapsed.TotalMilliseconds, "0");
            Own(accepted!);
            var peer = Own(VsockSocket.ToSocket(accepted!));
            await ExchangeAsync("g2h", stream, peer, guestSeed: 1, peerSeed: 2);
        }

        private async Task HostToGuestAsync(SyntheticGuest frontend)
        {
            using var listener = frontend.Listen(settings.ListenPort);
            var clock = Stopwatch.StartNew();
            var client = Own(VsockSocket.ConnectNonBlocking(VsockSocket.CidLocal, settings.ListenPort, out var inProgress));
            if (inProgress)
                Check(Poll.WaitWritable(client, settings.TimeoutMs) > 0, $"connect to the daemon's forward listener 1:{settings.ListenPort} still in progress");
            var error = VsockSocket.GetSocketError(client);
            Check(error == 0, $"connect to the daemon's forward listener 1:{settings.ListenPort}: errno {error}");
            using var acceptTimeout = new CancellationTokenSource(settings.Timeout);
            var stream = await listener.AcceptAsync(acceptTimeout.Token);
            Check(stream.PeerCid == VsockSocket.CidHost, $"the forwarded stream comes from CID {stream.PeerCid}, expected {VsockSocket.CidHost}");
            fields.Add("h2g_connect_ms", clock.Elapsed.TotalMilliseconds, "0").Add("h2g_peer_port", stream.PeerPort);
            var peer = Own(VsockSocket.ToSocket(client));
            await ExchangeAsync("h2g", stream, peer, guestSeed: 3, peerSeed: 4);
        }

        private async Task RefusedAsync(SyntheticGuest frontend)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                await using var stream = await frontend.ConnectAsync(VsockSocket.CidHost, settings.RefusedPort, settings.Timeout);
                throw new CheckFailed($"the guest's connect to port {settings.RefusedPort}, where nothing listens on CID 1, succeeded");
            }
            catch (GuestConnectionRefusedException)
            {
                var ms = clock.Elapsed.TotalMilliseconds;
                fields.Add("refused_ms", ms, "0.0");
                Check(ms < RefusalLimitMs, $"the refusal took {ms:0} ms");
            }
        }

        /// <summary>The guest's messages may be 200,000 bytes: the daemon's buffer (tx-buffer-size) must take them whole.</summary>
        private const uint SeqMaxMessage = 262144;

        private int SeqCount => TestPattern.SeqNamedLengths.Length + settings.SeqMessages;

        /// <summary>SEQPACKET guest → CID 2 → forward-cid 1: a peer listener echoes each message (MSG_EOR kept).</summary>
        private async Task SeqGuestToHostAsync(SyntheticGuest frontend)
        {
            var listener = Own(VsockSocket.Listen(VsockSocket.CidAny, settings.SeqPort, kind: SocketKind.Seqpacket));
            var clock = Stopwatch.StartNew();
            var stream = await frontend.ConnectAsync(VsockSocket.CidHost, settings.SeqPort, settings.Timeout, kind: SocketKind.Seqpacket);
            Check(Poll.WaitReadable(listener, settings.TimeoutMs) > 0, $"no SEQPACKET connection from the daemon on 1:{settings.SeqPort}");
            var peer = VsockSocket.Accept(listener, out _, out _);
            Check(peer is not null, "accept returned no connection although the listener was readable");
            Own(peer!);
            fields.Add("seq_g2h_connect_ms", clock.Elapsed.TotalMilliseconds, "0");
            clock.Restart();
            var echo = Task.Run(() => PeerEcho(peer!));
            var buffer = new byte[SeqMaxMessage + 1];
            var sha = TestPattern.FnvOffset;
            for (var i = 0; i < SeqCount; i++)
            {
                var message = TestPattern.SeqMessage(i, 21);
                sha = TestPattern.Fnv1a(sha, message);
                await stream.SendMessageAsync(message, endOfRecord: i % 2 == 1).AsTask().WaitAsync(settings.Timeout);
                var back = await stream.ReceiveMessageAsync(buffer).AsTask().WaitAsync(settings.Timeout);
                Check(!back.EndOfStream && back.MessageLength == message.Length && buffer.AsSpan(0, back.Length).SequenceEqual(message),
                    $"seq-g2h: message {i} of {message.Length} bytes came back as {back}");
                Check(back.EndOfRecord == (i % 2 == 1), $"seq-g2h: message {i} came back with MSG_EOR {back.EndOfRecord}");
            }
            stream.ShutdownWrite();
            var (messages, peerSha, eors) = await echo.WaitAsync(settings.Timeout);
            Check(messages == SeqCount && peerSha == sha, $"seq-g2h: the peer echoed {messages} messages, checksum {peerSha:x16}, sent {sha:x16}");
            await stream.CloseAsync();
            fields.Add("seq_g2h_messages", messages).AddHex("seq_g2h_sha", peerSha).Add("seq_g2h_eors", eors)
                .Add("seq_g2h_ms", clock.Elapsed.TotalMilliseconds, "0");
        }

        /// <summary>SEQPACKET peer → forward-listen-seqpacket → the guest's listener, which echoes each message.</summary>
        private async Task SeqHostToGuestAsync(SyntheticGuest frontend)
        {
            using var listener = frontend.Listen(settings.SeqListenPort, SocketKind.Seqpacket);
            var clock = Stopwatch.StartNew();
            var client = Own(VsockSocket.ConnectNonBlocking(VsockSocket.CidLocal, settings.SeqListenPort, out var inProgress, SocketKind.Seqpacket));
            if (inProgress)
                Check(Poll.WaitWritable(client, settings.TimeoutMs) > 0, $"SEQPACKET connect to 1:{settings.SeqListenPort} still in progress");
            var error = VsockSocket.GetSocketError(client);
            Check(error == 0, $"SEQPACKET connect to the daemon's forward listener 1:{settings.SeqListenPort}: errno {error}");
            using var acceptTimeout = new CancellationTokenSource(settings.Timeout);
            var stream = await listener.AcceptAsync(acceptTimeout.Token);
            Check(stream.IsSeqpacket && stream.PeerCid == VsockSocket.CidHost, $"the forwarded SEQPACKET stream: {stream}");
            fields.Add("seq_h2g_connect_ms", clock.Elapsed.TotalMilliseconds, "0");
            clock.Restart();
            var guestEcho = Task.Run(async () =>
            {
                var buffer = new byte[SeqMaxMessage];
                while (true)
                {
                    var m = await stream.ReceiveMessageAsync(buffer);
                    if (m.EndOfStream)
                        break;
                    await stream.SendMessageAsync(buffer.AsMemory(0, m.Length), m.EndOfRecord);
                }
                await stream.CloseAsync(); // an echo server closes at EOF: the peer then reads EOF too
            });
            var sha = await Task.Run(() => PeerExchange(client, 22)).WaitAsync(settings.Timeout);
            await guestEcho.WaitAsync(settings.Timeout);
            fields.Add("seq_h2g_messages", SeqCount).AddHex("seq_h2g_sha", sha).Add("seq_h2g_ms", clock.Elapsed.TotalMilliseconds, "0");
        }

        /// <summary>The peer side of seq-g2h: echoes every message whole, MSG_EOR kept, until EOF.</summary>
        private (int Messages, ulong Sha, int Eors) PeerEcho(SafeFileHandle socket)
        {
            var buffer = new byte[SeqMaxMessage + 1];
            var messages = 0;
            var eors = 0;
            var sha = TestPattern.FnvOffset;
            while (true)
            {
                var (n, flags) = PeerReceive(socket, buffer, "seq-g2h peer");
                if (n == 0)
                    return (messages, sha, eors);
                sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
                messages++;
                var eor = (flags & MessageIo.EndOfRecord) != 0;
                if (eor)
                    eors++;
                PeerSend(socket, buffer.AsSpan(0, n), eor, "seq-g2h peer");
            }
        }

        /// <summary>The peer side of seq-h2g: sends each message (odd ones with MSG_EOR) and checks its echo.</summary>
        private ulong PeerExchange(SafeFileHandle socket, ulong seed)
        {
            var buffer = new byte[SeqMaxMessage + 1];
            var sha = TestPattern.FnvOffset;
            for (var i = 0; i < SeqCount; i++)
            {
                var message = TestPattern.SeqMessage(i, seed);
                sha = TestPattern.Fnv1a(sha, message);
                PeerSend(socket, message, i % 2 == 1, "seq-h2g peer");
                var (n, flags) = PeerReceive(socket, buffer, "seq-h2g peer");
                Check(n == message.Length && buffer.AsSpan(0, n).SequenceEqual(message),
                    $"seq-h2g: message {i} of {message.Length} bytes came back as {n} bytes");
                Check(((flags & MessageIo.EndOfRecord) != 0) == (i % 2 == 1), $"seq-h2g: message {i} came back with flags 0x{flags:x}");
            }
            Check(VsockSocketShutdownWrite(socket) == 0, "seq-h2g: shutdown(SHUT_WR) failed");
            var (eof, _) = PeerReceive(socket, buffer, "seq-h2g peer");
            Check(eof == 0, $"seq-h2g: a message of {eof} bytes after the guest's echo ended");
            return sha;
        }

        private static int VsockSocketShutdownWrite(SafeFileHandle socket) => StreamIo.ShutdownWrite(socket);

        private (int Bytes, int Flags) PeerReceive(SafeFileHandle socket, byte[] buffer, string who)
        {
            while (true)
            {
                Check(Poll.WaitReadable(socket, settings.TimeoutMs) > 0, $"{who}: nothing to read within {settings.TimeoutMs} ms");
                var n = MessageIo.Receive(socket, buffer, out var flags);
                if (n == MessageIo.WouldBlock)
                    continue;
                if (n == -Errno.ECONNRESET)
                    return (0, 0);
                Check(n >= 0, $"{who}: recvmsg failed: {StreamIo.Describe(n)}");
                Check((flags & MessageIo.Truncated) == 0, $"{who}: a message longer than {buffer.Length - 1} bytes");
                return (n, flags);
            }
        }

        /// <summary>
        /// A whole message, once the peer has credit for at least one byte (Linux's non-blocking AF_VSOCK SEQPACKET
        /// send would otherwise send part of it and answer EAGAIN; one message in flight at a time keeps it whole).
        /// </summary>
        private void PeerSend(SafeFileHandle socket, ReadOnlySpan<byte> message, bool eor, string who)
        {
            while (true)
            {
                Check(Poll.WaitWritable(socket, settings.TimeoutMs) > 0, $"{who}: no room to send within {settings.TimeoutMs} ms");
                var n = MessageIo.Send(socket, message, eor);
                if (n == MessageIo.WouldBlock)
                    continue;
                Check(n == message.Length, $"{who}: send of {message.Length} bytes: {StreamIo.Describe(n)}");
                return;
            }
        }

        /// <summary>Pattern both ways at once between a synthetic-guest stream and its AF_VSOCK peer, each side half-closing.</summary>
        private async Task ExchangeAsync(string name, GuestStream stream, Socket peer, ulong guestSeed, ulong peerSeed)
        {
            var clock = Stopwatch.StartNew();
            using var cancellation = new CancellationTokenSource();
            var guestSend = PatternTransfer.SendAsync(stream, settings.Bytes, guestSeed, cancellation.Token);
            var guestReceive = PatternTransfer.ReceiveAsync(stream, cancellation.Token);
            var peerSend = PatternTransfer.SendAsync(peer, settings.Bytes, peerSeed, cancellation.Token);
            var peerReceive = PatternTransfer.ReceiveAsync(peer, cancellation.Token);
            var all = Task.WhenAll(guestSend, guestReceive, peerSend, peerReceive);
            try
            {
                await all.WaitAsync(settings.Timeout);
            }
            catch (TimeoutException)
            {
                await cancellation.CancelAsync();
                await Task.WhenAny(all, Task.Delay(1000));
                throw new CheckFailed($"{name}: exchange not finished after {settings.TimeoutMs} ms: guest sent {stream.BytesSent}, "
                    + $"{Describe(guestSend, "guest send")}, {Describe(guestReceive, "guest receive")}, {Describe(peerSend, "peer send")}, {Describe(peerReceive, "peer receive")}");
            }
            var elapsed = clock.Elapsed;
            var toHost = await peerReceive;
            var toGuest = await guestReceive;
            var sentToHost = await guestSend;
            var sentToGuest = await peerSend;
            Check(toHost.IsIntact(settings.Bytes, sentToHost),
                $"{name}: guest to host {toHost.Bytes} of {settings.Bytes} bytes, checksum {toHost.Checksum:x16}, sent {sentToHost:x16}");
            Check(toGuest.IsIntact(settings.Bytes, sentToGuest),
                $"{name}: host to guest {toGuest.Bytes} of {settings.Bytes} bytes, checksum {toGuest.Checksum:x16}, sent {sentToGuest:x16}");
            await stream.CloseAsync();
            fields.AddHex($"{name}_to_host_sha", toHost.Checksum).AddHex($"{name}_to_guest_sha", toGuest.Checksum)
                .Add($"{name}_ms", elapsed.TotalMilliseconds, "0").Add($"{name}_close", stream.CloseOutcome.ToString());
        }

        private T Own<T>(T item)
            where T : IDisposable
        {
            owned.Add(item);
            return item;
        }

        private static string Describe(Task task, string name) =>
            $"{name} {(task.IsCompletedSuccessfully ? "done" : task.IsFaulted ? "failed: " + task.Exception!.InnerException!.Message : "pending")}";

        private static void Check(bool condition, string failure)
        {
            if (!condition)
                throw new CheckFailed(failure);
        }
    }
}
