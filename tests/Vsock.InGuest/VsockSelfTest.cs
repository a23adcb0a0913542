using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using Vsock.Testing.HostSide;
using VsockSocket = Vsock.Device.Interop.Vsock;

namespace Vsock.InGuest;

/// <summary>
/// <c>vsock-selftest</c>: <see cref="VsockSocket"/> for real, against the guest's vsock_loopback (CID 1).
/// Listen, a second listen on the same port (EADDRINUSE), accept with nothing pending (null), a non-blocking
/// connect completed by poll + SO_ERROR, accept with the peer's address, <see cref="VsockSocket.ToSocket"/>
/// on both ends, <c>--bytes</c> of pattern each way at once (the client side async, the server side
/// synchronous, each ending with shutdown and checked to EOF), and a connect to a port nobody listens on,
/// which must be refused (ECONNRESET from the loopback transport, or ECONNREFUSED) within a second.
/// Prints <c>VSOCKTEST RESULT vsock-selftest ok=1 ...</c>, or a FAIL line naming the stage and ok=0.
/// </summary>
internal static class VsockSelfTest
{
    private const string Mode = "vsock-selftest";
    private const long RefusalLimitMs = 1000;

    public static async Task<int> RunAsync(CommandArguments args)
    {
        var settings = new Settings(
            ListenCid: args.UInt32("listen-cid", VsockSocket.CidAny),
            Port: args.UInt32("port", 7000),
            Bytes: args.Int64("bytes", 1 << 20),
            RefusedPort: args.UInt32("refused-port", 7001),
            TimeoutMs: (int)args.Int64("timeout-ms", 30_000, minimum: 1));
        args.EnsureAllUsed();
        if (settings.RefusedPort == settings.Port)
            throw new UsageException("--refused-port must differ from --port");

        var fields = new MarkerFields().Add("port", settings.Port).Add("bytes", settings.Bytes);
        var run = new Run(settings, fields);
        try
        {
            await run.ExecuteAsync();
        }
        catch (Exception e) when (e is CheckFailed or IOException or SocketException or ObjectDisposedException or TimeoutException)
        {
            // IOException covers LinuxException: a syscall failing where the test expected success.
            Markers.Fail(Mode, $"{run.Stage}: {(e is CheckFailed ? e.Message : e.GetType().Name + ": " + e.Message)}");
            Markers.Result(Mode, ok: false, fields.Add("stage", run.Stage));
            return InGuestProgram.Failed;
        }
        finally
        {
            run.Dispose();
        }
        Markers.Result(Mode, ok: true, fields);
        return InGuestProgram.Passed;
    }

    private sealed record Settings(uint ListenCid, uint Port, long Bytes, uint RefusedPort, int TimeoutMs);

    private sealed class CheckFailed(string message) : Exception(message);

    private sealed class Run(Settings settings, MarkerFields fields) : IDisposable
    {
        private SafeFileHandle? listener;
        private SafeFileHandle? client;
        private SafeFileHandle? server;
        private Socket? clientSocket;
        private Socket? serverSocket;

        public string Stage { get; private set; } = "start";

        public async Task ExecuteAsync()
        {
            var port = settings.Port;
            Stage = "listen";
            listener = VsockSocket.Listen(settings.ListenCid, port);

            Stage = "listen-again";
            var again = Expect<LinuxException>(() => VsockSocket.Listen(settings.ListenCid, port).Dispose(), "a second listener on the same port");
            Check(again.Errno == Errno.EADDRINUSE, $"second listen on port {port} failed with errno {again.Errno}, expected EADDRINUSE");

            Stage = "accept-empty";
            using (var none = VsockSocket.Accept(listener, out _, out _))
                Check(none is null, "accept with no pending connection returned one");

            Stage = "connect";
            var clock = Stopwatch.StartNew();
            client = VsockSocket.ConnectNonBlocking(VsockSocket.CidLocal, port, out var inProgress);
            if (inProgress)
                Check(Poll.WaitWritable(client, settings.TimeoutMs) > 0, $"connect still in progress after {settings.TimeoutMs} ms");
            var error = VsockSocket.GetSocketError(client);
            Check(error == 0, $"SO_ERROR after connect is {error}");
            fields.Add("in_progress", inProgress).Add("connect_ms", clock.Elapsed.TotalMilliseconds, "0.0");

            Stage = "accept";
            Check(Poll.WaitReadable(listener, settings.TimeoutMs) > 0, $"listener not readable {settings.TimeoutMs} ms after the connect");
            server = VsockSocket.Accept(listener, out var peerCid, out var peerPort);
            Check(server is not null, "accept returned no connection although the listener was readable");
            Check(peerCid == VsockSocket.CidLocal, $"peer cid {peerCid}, expected {VsockSocket.CidLocal}");
            Check(peerPort != port && peerPort != VsockSocket.PortAny, $"peer port {peerPort} is not an ephemeral port");
            fields.Add("peer_cid", peerCid).Add("peer_port", peerPort);

            Stage = "wrap";
            clientSocket = VsockSocket.ToSocket(client);
            serverSocket = VsockSocket.ToSocket(server!);
            Check(client.IsClosed && server!.IsClosed, "ToSocket left the SafeFileHandle usable");
            var closedClient = client;
            Expect<ObjectDisposedException>(() => VsockSocket.ToSocket(closedClient), "ToSocket on a handed-over handle");
            fields.Add("family", (long)clientSocket.AddressFamily).Add("blocking", clientSocket.Blocking);

            Stage = "transfer";
            await TransferAsync(clientSocket, serverSocket);

            Stage = "close";
            clientSocket.Dispose();
            serverSocket.Dispose();

            Stage = "refused";
            Refused();
        }

        public void Dispose()
        {
            clientSocket?.Dispose();
            serverSocket?.Dispose();
            client?.Dispose();
            server?.Dispose();
            listener?.Dispose();
        }

        private async Task TransferAsync(Socket clientEnd, Socket serverEnd)
        {
            var bytes = settings.Bytes;
            var clock = Stopwatch.StartNew();
            using var cancellation = new CancellationTokenSource();
            // Both directions at once (one direction's buffer cannot hold the whole stream), the client end
            // with the async API and the server end with the synchronous one: a wrapped fd must serve both.
            var clientSend = PatternTransfer.SendAsync(clientEnd, bytes, 1, cancellation.Token);
            var clientReceive = PatternTransfer.ReceiveAsync(clientEnd, cancellation.Token);
            // Dedicated threads: blocked pool threads on the guest's one vCPU would starve the async side
            // until the pool injects more (about one a second).
            var serverSend = Task.Factory.StartNew(() => PatternTransfer.Send(serverEnd, bytes, 2), TaskCreationOptions.LongRunning);
            var serverReceive = Task.Factory.StartNew(() => PatternTransfer.Receive(serverEnd), TaskCreationOptions.LongRunning);
            var all = Task.WhenAll(clientSend, clientReceive, serverSend, serverReceive);
            try
            {
                await all.WaitAsync(TimeSpan.FromMilliseconds(settings.TimeoutMs));
            }
            catch (TimeoutException)
            {
                // Closing the sockets ends the synchronous calls; their errors are not the story.
                await cancellation.CancelAsync();
                clientEnd.Dispose();
                serverEnd.Dispose();
                await Task.WhenAny(all, Task.Delay(1000));
                throw new CheckFailed($"transfer not finished after {settings.TimeoutMs} ms: {Describe(clientSend, "client send")}, "
                    + $"{Describe(clientReceive, "client receive")}, {Describe(serverSend, "server send")}, {Describe(serverReceive, "server receive")}");
            }
            var elapsed = clock.Elapsed;
            var toServer = await serverReceive;
            var toClient = await clientReceive;
            var sentToServer = await clientSend;
            var sentToClient = await serverSend;
            Check(toServer.IsIntact(bytes, sentToServer),
                $"client to server: {toServer.Bytes} of {bytes} bytes, checksum {toServer.Checksum:x16}, sent {sentToServer:x16}");
            Check(toClient.IsIntact(bytes, sentToClient),
                $"server to client: {toClient.Bytes} of {bytes} bytes, checksum {toClient.Checksum:x16}, sent {sentToClient:x16}");
            fields.AddHex("c2s_sha", toServer.Checksum).AddHex("s2c_sha", toClient.Checksum)
                .Add("transfer_ms", elapsed.TotalMilliseconds, "0")
                .Add("mbps", 2.0 * bytes / elapsed.TotalSeconds / 1e6, "0.0");
        }

        private void Refused()
        {
            var clock = Stopwatch.StartNew();
            int errno;
            var immediate = false;
            try
            {
                using var socket = VsockSocket.ConnectNonBlocking(VsockSocket.CidLocal, settings.RefusedPort, out var inProgress);
                Check(inProgress, $"connect to port {settings.RefusedPort}, where nobody listens, succeeded");
                Check(Poll.WaitWritable(socket, settings.TimeoutMs) > 0, $"no answer to a connect to port {settings.RefusedPort} after {settings.TimeoutMs} ms");
                errno = VsockSocket.GetSocketError(socket);
            }
            catch (LinuxException e)
            {
                errno = e.Errno;
                immediate = true;
            }
            var ms = clock.Elapsed.TotalMilliseconds;
            fields.Add("refused_errno", errno).Add("refused_immediate", immediate).Add("refused_ms", ms, "0.0");
            Check(errno is Errno.ECONNRESET or Errno.ECONNREFUSED, $"connect to port {settings.RefusedPort} ended with errno {errno}, expected ECONNRESET or ECONNREFUSED");
            Check(ms < RefusalLimitMs, $"the refusal took {ms:0} ms");
        }

        private static string Describe(Task task, string name) =>
            $"{name} {(task.IsCompletedSuccessfully ? "done" : task.IsFaulted ? "failed: " + task.Exception!.InnerException!.Message : "pending")}";

        private static void Check(bool condition, string failure)
        {
            if (!condition)
                throw new CheckFailed(failure);
        }

        private static T Expect<T>(Action action, string what)
            where T : Exception
        {
            try
            {
                action();
            }
            catch (T expected)
            {
                return expected;
            }
            throw new CheckFailed($"{what} did not throw {typeof(T).Name}");
        }
    }
}
