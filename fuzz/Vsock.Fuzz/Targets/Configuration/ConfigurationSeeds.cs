using System.Text;

namespace Vsock.Fuzz.Targets.Configuration;

/// <summary>Seeds: the README's YAML example and command lines (single VM, both backends, several <c>--vm</c>,
/// <c>--config</c>, log levels), plus a few of the documented errors.</summary>
internal static class ConfigurationSeeds
{
    public const string ReadmeYaml = """
        vms:
          - guest_cid: 3
            socket: /tmp/vhost3.socket
            uds_path: /tmp/vm3.sock
            tx_buffer_size: 65536
            queue_size: 1024
            groups: group1+groupA
          - guest_cid: 5
            socket: /tmp/vhost5.socket
            forward_cid: 1
            forward_listen: 9001+9002

        """;

    public static IEnumerable<(string, byte[])> All()
    {
        yield return ("yaml-readme", Yaml(ReadmeYaml));
        yield return ("yaml-hyphen-keys-quoted", Yaml("""
            vms:
              - guest-cid: 4
                socket: "/tmp/vhost4.socket"
                uds-path: '/tmp/vm4.vsock'
                groups: "default"
            """));
        yield return ("yaml-flow-style", Yaml("{vms: [{guest_cid: 7, socket: /tmp/a.sock, forward_cid: 2, forward_listen: '80'}]}\n"));
        yield return ("yaml-errors", Yaml("vms:\n  - guest_cid: 2\n    socket: &s /tmp/x\n    uds_path: *s\n"));
        yield return ("argv-flags", Args("--guest-cid=4", "--uds-path=/tmp/vm4.vsock", "--socket=/tmp/vhost4.socket"));
        yield return ("argv-vsock-backend", Args("--guest-cid", "4", "--socket", "/tmp/vhost4.socket", "--forward-cid", "1",
            "--forward-listen", "9001+9002", "--tx-buffer-size", "32768", "--queue-size", "256"));
        yield return ("argv-several-vms", Args(
            "--vm", "guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock,groups=group1+groupA",
            "--vm", "guest-cid=4,socket=/tmp/vhost4.socket,uds-path=/tmp/vm4.vsock,tx-buffer-size=32768,queue-size=256",
            "--vm", "guest_cid=5,socket=/tmp/vhost5.socket,forward_cid=1,forward_listen=9001+9002", "--log-level", "debug"));
        yield return ("argv-config-file", Args("--config", "vms.yaml"));
        yield return ("argv-rust-log", Args(2, "--socket=/tmp/s", "--uds-path=/tmp/u", "warn,vhost_device_vsock=trace"));
        yield return ("argv-own-log-variable", Args(4, "--socket=/tmp/s", "--forward-cid=1", "off"));
        yield return ("argv-mixed-sources", Args("--config=vms.yaml", "--vm", "socket=/tmp/s,uds-path=/tmp/u"));
        yield return ("argv-help", Args("--help"));
        yield return ("argv-version", Args("-V"));
    }

    private static byte[] Yaml(string text) => [0, .. Encoding.UTF8.GetBytes(text)];

    private static byte[] Args(params string[] args) => Args(0, args);

    private static byte[] Args(int envBits, params string[] args) => [(byte)(1 | envBits), .. Encoding.UTF8.GetBytes(string.Join('\0', args))];
}
