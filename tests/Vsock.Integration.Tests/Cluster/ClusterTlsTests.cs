using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Vsock.Testing;
using Xunit.Abstractions;

namespace Vsock.Integration.Tests.Cluster;

/// <summary>
/// Akka.Remote's TLS as hocon/vsock-cluster.local.hocon.example tells an operator to set it up, with validation on:
/// nodes whose certificates come from a CA in the machine's trust store form a cluster over <c>akka.ssl.tcp</c> and
/// their guests stream; a node whose certificate no trusted CA signed is kept out, however it is configured.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterTlsTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Formation = TimeSpan.FromSeconds(90);
    private const string Password = "test-only";

    private readonly string _directory = Directory.CreateTempSubdirectory("vscltls-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: under the temp directory
        }
    }

    [Fact]
    public async Task Nodes_with_certificates_from_a_trusted_ca_form_a_cluster_and_a_node_with_an_untrusted_one_is_kept_out()
    {
        using var ca = CreateCa("vsock-cluster test CA");
        using var rogueCa = CreateCa("someone else's CA");
        var trusted = WritePem("trusted.pem", ca); // the only CA the nodes' trust store holds
        var member = new NodeTls(WritePfx("member.pfx", Issue(ca, "vsock-cluster")), Password, trusted);
        var rogue = new NodeTls(WritePfx("rogue.pfx", Issue(rogueCa, "vsock-cluster")), Password, trusted);

        var ports = FreePorts.Take(3);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports[..2], member, new NodeVm(3));
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports[..2], member, new NodeVm(4));
        await using var c = await ClusterNode.StartAsync("c", ports[2], ports[..2], rogue, new NodeVm(5));
        ClusterNode[] nodes = [a, b, c];
        try
        {
            // The members see each other's VMs, over TLS (the address in the registry's line says akka.ssl.tcp).
            Assert.StartsWith("akka.ssl.tcp://", a.Address, StringComparison.Ordinal);
            await a.WaitForLogAsync(ClusterNode.Reachable(4, b), Formation);
            await b.WaitForLogAsync(ClusterNode.Reachable(3, a), Formation);
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            using (var listener = g4.Listen(5000))
            {
                var accept = listener.AcceptAsync(cts.Token);
                var client = await ConnectEventuallyAsync(g3, 4, 5000, cts.Token);
                var server = await accept;
                var data = TestPattern.RandomBytes(1 << 20, 61);
                var write = Task.Run(async () => { await client.WriteAsync(data, cts.Token); client.ShutdownWrite(); });
                Assert.Equal(Scenario.Hash(data), Scenario.Hash(await server.ReadToEndAsync(cts.Token)));
                await write;
            }

            // The rogue node has been trying to join all along (its seeds are the members): its handshakes fail, and
            // no VM crosses either way. Give it as long again as the members needed, at least 10 s.
            await Task.Delay(TimeSpan.FromSeconds(10));
            Assert.Equal(0, a.Count(ClusterNode.Reachable(5, c)) + b.Count(ClusterNode.Reachable(5, c)));
            Assert.Equal(0, c.Count("is reachable"));
            // Refused for its certificate, by the members' validation (Akka.Remote's own log lines), not never tried.
            Assert.True(a.Count("Certificate chain validation failed") + b.Count("Certificate chain validation failed") > 0,
                "no member rejected the rogue node's certificate: was it refused, or never tried?");
            Assert.True(a.Count("due to TLS handshake failure") + b.Count("due to TLS handshake failure") > 0);
            Scenario.AssertClean(g3);
            Scenario.AssertClean(g4);
        }
        catch (Exception e)
        {
            var logs = string.Concat(nodes.Select(n => n.Describe()));
            output.WriteLine(logs);
            throw new Xunit.Sdk.XunitException($"{e}\n{logs}");
        }
    }

    private static async Task<GuestStream> ConnectEventuallyAsync(SyntheticGuest guest, ulong cid, uint port, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await guest.ConnectAsync(cid, port, TimeSpan.FromSeconds(5), cancellationToken);
            }
            catch (GuestConnectionRefusedException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    private static X509Certificate2 CreateCa(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>A node's certificate (server and client authentication: TLS here is mutual) signed by <paramref name="ca"/>.</summary>
    private static X509Certificate2 Issue(X509Certificate2 ca, string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(7), serial);
        return issued.CopyWithPrivateKey(key);
    }

    private string WritePfx(string name, X509Certificate2 certificate)
    {
        using (certificate)
        {
            var path = Path.Combine(_directory, name);
            File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, Password));
            return path;
        }
    }

    private string WritePem(string name, X509Certificate2 certificate)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, certificate.ExportCertificatePem() + "\n");
        return path;
    }
}
