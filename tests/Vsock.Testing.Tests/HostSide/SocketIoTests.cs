using System.Net.Sockets;
using System.Text;
using Vsock.Device.Interop;
using Vsock.Testing.HostSide;

namespace Vsock.Testing.Tests.HostSide;

/// <summary>
/// The rest of the host side against stand-ins (no daemon): exact reads that say how far they got, the raw reply
/// line, a wrong answer told apart from a refusal, and the SEQPACKET CONNECT/OK messages on uds-path_seqpacket.
/// </summary>
public sealed class SocketIoTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string _directory = Directory.CreateTempSubdirectory("vshost-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task An_exact_read_cut_short_by_EOF_says_how_many_bytes_came()
    {
        var (client, server) = await PairAsync();
        using var _ = client;
        using var __ = server;
        using var cts = new CancellationTokenSource(Timeout);
        await server.SendAllAsync("abc"u8.ToArray(), cts.Token);
        server.Shutdown(SocketShutdown.Send);

        var e = await Assert.ThrowsAsync<EndOfStreamException>(() => client.ReadExactlyAsync(10, cts.Token));
        Assert.Equal("EOF after 3 of 10 bytes", e.Message);
    }

    [Fact]
    public async Task An_exact_read_cut_short_by_its_deadline_says_how_many_bytes_came()
    {
        var (client, server) = await PairAsync();
        using var _ = client;
        using var __ = server;
        await server.SendAllAsync("abc"u8.ToArray(), CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadExactlyAsync(10, cts.Token));
        Assert.Equal("cancelled after 3 of 10 bytes", e.Message);
    }

    [Fact]
    public async Task The_raw_connect_returns_the_reply_line_as_it_came_and_an_empty_one_when_closed()
    {
        var uds = Path.Combine(_directory, "vm.vsock");
        using var listener = HostVsock.ListenAt(uds);
        using var cts = new CancellationTokenSource(Timeout);
        var daemon = AnswerOnceAsync(listener, "OK 7\n", cts.Token);
        var (socket, reply) = await HostVsock.SendConnectAsync(uds, 7, cts.Token);
        using (socket)
            Assert.Equal("OK 7\n", reply);
        Assert.Equal("CONNECT 7", await daemon);

        daemon = AnswerOnceAsync(listener, "", cts.Token);
        (socket, reply) = await HostVsock.SendConnectAsync(uds, 8, cts.Token);
        using (socket)
            Assert.Equal("", reply);
        await daemon;
    }

    [Fact]
    public async Task Another_answer_than_OK_is_an_error_but_no_refusal()
    {
        var uds = Path.Combine(_directory, "vm.vsock");
        using var listener = HostVsock.ListenAt(uds);
        using var cts = new CancellationTokenSource(Timeout);
        var daemon = AnswerOnceAsync(listener, "OK 70\n", cts.Token);

        var e = await Assert.ThrowsAsync<IOException>(() => HostVsock.ConnectAsync(uds, 7, cts.Token));
        Assert.IsNotType<GuestRefusedException>(e);
        Assert.Contains("expected 'OK 7\\n', got 'OK 70\\n'", e.Message);
        await daemon;
    }

    [Fact]
    public async Task A_seqpacket_connect_is_one_CONNECT_message_answered_by_one_OK_message()
    {
        var uds = Path.Combine(_directory, "vm.vsock");
        using var listener = HostVsock.ListenAt(HostVsock.SeqpacketPath(uds), SocketKind.Seqpacket);
        using var cts = new CancellationTokenSource(Timeout);
        var daemon = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptAsync(cts.Token);
            var buffer = new byte[64];
            var line = Encoding.ASCII.GetString(buffer, 0, await accepted.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
            await accepted.SendAsync("OK 9\n"u8.ToArray(), SocketFlags.None, cts.Token);
            var message = await accepted.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return (line, message);
        });

        using var socket = await HostVsock.ConnectSeqpacketAsync(uds, 9, cts.Token);
        Assert.Equal(SocketType.Seqpacket, socket.SocketType);
        await socket.SendAsync("one message"u8.ToArray(), SocketFlags.None, cts.Token);
        Assert.Equal(("CONNECT 9\n", "one message".Length), await daemon);

        daemon = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptAsync(cts.Token);
            return ("", 0);
        });
        await Assert.ThrowsAsync<GuestRefusedException>(() => HostVsock.ConnectSeqpacketAsync(uds, 10, cts.Token));
    }

    [Fact]
    public async Task A_listener_for_port_P_is_at_uds_path_underscore_P_and_replaces_a_stale_file()
    {
        var uds = Path.Combine(_directory, "vm.vsock");
        File.WriteAllText(uds + "_5000", "stale");
        using var listener = HostVsock.Listen(uds, 5000, SocketKind.Seqpacket);
        Assert.Equal(uds + "_5000", ((UnixDomainSocketEndPoint)listener.LocalEndPoint!).ToString());
        Assert.Equal(SocketType.Seqpacket, listener.SocketType);
    }

    /// <summary>Accepts one client, reads its line and answers <paramref name="answer"/> ("" closes at once).</summary>
    private static async Task<string?> AnswerOnceAsync(Socket listener, string answer, CancellationToken cancellationToken)
    {
        using var accepted = await listener.AcceptAsync(cancellationToken);
        var line = await accepted.ReadLineAsync(64, cancellationToken);
        if (answer.Length > 0)
            await accepted.SendAllAsync(Encoding.ASCII.GetBytes(answer), cancellationToken);
        return line;
    }

    private async Task<(Socket Client, Socket Server)> PairAsync()
    {
        var path = Path.Combine(_directory, $"pair-{Guid.NewGuid():N}");
        using var listener = HostVsock.ListenAt(path);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return (client, await listener.AcceptAsync());
    }
}
