namespace Vsock.Fuzz;

/// <summary>
/// A target saw the code under test break one of its promises (an exception type it must not throw, a buffer
/// outside guest memory, a leaked fd, ...). Escaping the target, it is a crash to AFL++ and a failure to xunit.
/// </summary>
internal sealed class InvariantViolationException(string message, Exception? inner = null) : Exception(message, inner)
{
}

internal static class Invariant
{
    /// <summary>Throws <see cref="InvariantViolationException"/> with <paramref name="message"/> unless <paramref name="condition"/> holds.</summary>
    public static void Holds(bool condition, string message)
    {
        if (!condition)
            throw new InvariantViolationException(message);
    }

    public static InvariantViolationException Broken(string message, Exception? inner = null) => new(message, inner);
}
