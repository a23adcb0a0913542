namespace Vsock.Testing.VhostUser;

/// <summary>One message read from the back end, unvalidated (the raw API hands it to hostile-VMM tests as it came).</summary>
public sealed record VhostUserReply(uint Request, uint Flags, byte[] Payload)
{
    /// <summary>The flags QEMU insists on (vhost_user_read_header): version 1 and REPLY, nothing else.</summary>
    public bool HasValidReplyFlags => Flags == (VhostUserFlags.Reply | VhostUserFlags.Version);
}
