using Vsock.Device.Interop;

namespace Vsock.Device.Backend;

/// <summary>
/// A small dedicated thread that blocks in epoll_wait and only reports readiness: it never reads or
/// writes the fds it watches (their owners do) and never touches device state. Each registration
/// carries a caller-chosen token; <see cref="_onEvent"/> runs on the waiter thread and must only
/// hand the event off (the actor layer turns it into a message).
///
/// Registrations may be added, re-armed and removed from any thread (epoll_ctl is thread-safe).
/// A wake eventfd stops the thread promptly. An exception in the callback ends this waiter only
/// (reported through <paramref name="onFailure"/>), never the process.
/// </summary>
public sealed class EpollWaiter : IDisposable
{
    private const ulong WakeToken = ulong.MaxValue;

    private readonly Epoll _epoll;
    private readonly EventFd _wake;
    private readonly Action<ulong, uint> _onEvent;
    private readonly Action<Exception>? _onFailure;
    private readonly Thread _thread;
    private volatile bool _stopping;

    public EpollWaiter(string name, Action<ulong, uint> onEvent, Action<Exception>? onFailure = null)
    {
        _onEvent = onEvent;
        _onFailure = onFailure;
        _epoll = Epoll.Create();
        _wake = EventFd.Create(nonBlocking: true);
        _epoll.Add(_wake.Fd, EpollEvents.In, WakeToken);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Watches <paramref name="fd"/>; the caller keeps it open until after <see cref="Remove"/>.</summary>
    public void Add(int fd, uint events, ulong token) => _epoll.Add(fd, events, token);

    /// <summary>Re-arms a one-shot registration.</summary>
    public void Modify(int fd, uint events, ulong token) => _epoll.Modify(fd, events, token);

    public void Remove(int fd) => _epoll.Remove(fd);

    private void Run()
    {
        Span<EpollEvent> events = stackalloc EpollEvent[64];
        try
        {
            while (!_stopping)
            {
                var n = _epoll.Wait(events, -1);
                for (var i = 0; i < n; i++)
                {
                    var token = events[i].Data;
                    if (token == WakeToken)
                        continue;
                    _onEvent(token, events[i].Events);
                }
            }
        }
        catch (Exception e) when (!_stopping)
        {
            _onFailure?.Invoke(e);
        }
        catch (Exception)
        {
            // Disposal raced with epoll_wait: nothing to report.
        }
    }

    public void Dispose()
    {
        if (_stopping)
            return;
        _stopping = true;
        _wake.Signal();
        if (Thread.CurrentThread != _thread)
            _thread.Join(TimeSpan.FromSeconds(5));
        _epoll.Dispose();
        _wake.Dispose();
    }
}
