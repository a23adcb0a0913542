namespace Vsock.Testing;

/// <summary>
/// "Something changed, look again": waiters take <see cref="Wait"/> under the guest lock, check
/// their condition, release the lock and await; <see cref="Pulse"/> (also under the lock) wakes them.
/// A new completion source is made only when someone actually waited, so pulses are cheap.
/// </summary>
internal sealed class AsyncPulse
{
    private TaskCompletionSource _source = New();
    private bool _armed;

    /// <summary>Someone waits for the next pulse.</summary>
    public bool IsArmed => _armed;

    public Task Wait()
    {
        _armed = true;
        return _source.Task;
    }

    public void Pulse()
    {
        if (!_armed)
            return;
        _armed = false;
        var old = _source;
        _source = New();
        old.TrySetResult(); // continuations run asynchronously: never inside the guest lock
    }

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
