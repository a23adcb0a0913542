using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>Raised when a guest does not show what a test waits for; the message carries the console.</summary>
public sealed class GuestConsoleException(string problem, string message) : Exception(message)
{
    /// <summary>What went wrong, without the console text.</summary>
    public string Problem { get; } = problem;
}

/// <summary>
/// The serial console of one guest as a growing list of lines, with waiters that are completed as
/// matching lines arrive. Waiters see every line from the start, so a test cannot miss a marker that
/// arrived before it began waiting.
/// </summary>
internal sealed class GuestConsole(string name, bool failFast, Func<string>? extraDiagnostics)
{
    private readonly object gate = new();
    private readonly List<string> lines = [];
    private readonly List<Waiter> waiters = [];
    private string? closedReason;

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (gate)
            {
                return [.. lines];
            }
        }
    }

    public string Text
    {
        get
        {
            lock (gate)
            {
                return string.Join('\n', lines);
            }
        }
    }

    public void Append(string line)
    {
        List<Waiter> done = [];
        lock (gate)
        {
            lines.Add(line);
            foreach (var waiter in waiters)
            {
                if (waiter.Offer(line))
                {
                    done.Add(waiter);
                }
                else if (failFast && waiter.FailFast && line.StartsWith("VSOCKTEST FAIL", StringComparison.Ordinal))
                {
                    waiter.Fault($"the guest reported a failure while waiting for {waiter.Description}: {line}");
                    done.Add(waiter);
                }
            }
            waiters.RemoveAll(done.Contains);
        }
        foreach (var waiter in done)
        {
            waiter.Publish(this);
        }
    }

    /// <summary>No more lines will come (QEMU exited); pending waiters fail.</summary>
    public void Close(string reason)
    {
        List<Waiter> pending;
        lock (gate)
        {
            closedReason = reason;
            pending = [.. waiters];
            waiters.Clear();
        }
        foreach (var waiter in pending)
        {
            waiter.Fault($"{reason} while waiting for {waiter.Description}");
            waiter.Publish(this);
        }
    }

    public async Task<IReadOnlyList<string>> WaitAsync(
        Func<string, bool> predicate, int count, TimeSpan timeout, string description, bool failFastOnFail = true)
    {
        var waiter = new Waiter(predicate, count, description, failFastOnFail);
        lock (gate)
        {
            // Earlier lines can satisfy the wait; only failures reported while waiting end it early, so one
            // failed step does not poison later waits on a shared guest.
            foreach (var line in lines)
            {
                if (waiter.Offer(line))
                {
                    break;
                }
            }
            if (!waiter.IsDone)
            {
                if (closedReason is not null)
                {
                    waiter.Fault($"{closedReason} before {description} appeared");
                }
                else
                {
                    waiters.Add(waiter);
                }
            }
        }
        if (waiter.IsDone)
        {
            waiter.Publish(this);
        }
        try
        {
            return await waiter.Completion.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            lock (gate)
            {
                waiters.Remove(waiter);
            }
            throw Failure($"timed out after {timeout.TotalSeconds:0.#} s waiting for {description}");
        }
    }

    public GuestConsoleException Failure(string problem) => new(problem, Describe(problem));

    public string Describe(string problem)
    {
        var text = new StringBuilder();
        text.Append("guest ").Append(name).Append(": ").AppendLine(problem);
        text.AppendLine($"---- console of guest {name} ----").AppendLine(Text).AppendLine("---- end of console ----");
        var extra = extraDiagnostics?.Invoke();
        if (!string.IsNullOrEmpty(extra))
        {
            text.AppendLine(extra);
        }
        return text.ToString();
    }

    private sealed class Waiter(Func<string, bool> predicate, int count, string description, bool failFast)
    {
        private readonly List<string> matches = [];
        private readonly TaskCompletionSource<IReadOnlyList<string>> completion =
            new(TaskCreationOptions.RunContinuationsAsynchronously);
        private string? fault;

        public string Description { get; } = description;

        public bool FailFast { get; } = failFast;

        public bool IsDone { get; private set; }

        public Task<IReadOnlyList<string>> Completion => completion.Task;

        public bool Offer(string line)
        {
            if (IsDone || !predicate(line))
            {
                return false;
            }
            matches.Add(line);
            IsDone = matches.Count >= count;
            return IsDone;
        }

        public void Fault(string reason)
        {
            fault = reason;
            IsDone = true;
        }

        // Completed outside the lock; the console text is rendered only for failures.
        public void Publish(GuestConsole console)
        {
            if (fault is null)
            {
                completion.TrySetResult(matches);
            }
            else
            {
                completion.TrySetException(console.Failure(fault));
            }
        }
    }
}
