using System.Collections.Concurrent;

namespace Vsock.Actors.Protocol;

/// <summary>
/// A bounded free list of reusable message objects, so the per-packet messages between a device and
/// its connections (<see cref="DeviceProtocol.FromGuest"/>, <see cref="DeviceProtocol.ToGuest"/>) cost
/// no allocation in steady state. The receiver of a message hands it back once done; a message that
/// is never handed back (dead letters, a stopped actor) is simply collected, so losing one is harmless.
/// Thread-safe: messages are rented on one actor's thread and returned on another's.
/// </summary>
internal sealed class MessagePool<T>(Func<T> create, int capacity)
    where T : class
{
    private readonly ConcurrentQueue<T> _free = new();
    private int _count;

    public T Rent()
    {
        if (_free.TryDequeue(out var item))
        {
            Interlocked.Decrement(ref _count);
            return item;
        }
        return create();
    }

    public void Return(T item)
    {
        if (Interlocked.Increment(ref _count) > capacity)
        {
            Interlocked.Decrement(ref _count);
            return;
        }
        _free.Enqueue(item);
    }
}
