using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// A Linux system call failed. <see cref="Errno"/> is the raw errno so callers can react to
/// specific failures (ECONNREFUSED, EPIPE, ...) without parsing the message; the message reads
/// "&lt;operation&gt; failed: &lt;strerror&gt; (errno N)" so logs carry both the text and the number.
/// </summary>
public class LinuxException : IOException
{
    public LinuxException(int errno, string operation)
        : base($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        Errno = errno;
        Operation = operation;
    }

    public int Errno { get; }

    /// <summary>The call that failed, with whatever context helps (a path, a size).</summary>
    public string Operation { get; }

    /// <summary>Builds the exception from the errno the last <c>SetLastError = true</c> import saved.</summary>
    internal static LinuxException FromLastError(string operation) => new(Marshal.GetLastPInvokeError(), operation);
}
