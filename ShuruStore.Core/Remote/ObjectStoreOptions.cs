namespace ShuruStore.Core.Remote;

/// <summary>
/// How long an object-store request may take and how many may be in flight. Holds no endpoint
/// or credentials (<see cref="S3ClientSettings"/> does), so it is safe to print.
/// </summary>
/// <remarks>
/// Rules, and why:
/// <list type="bullet">
/// <item><see cref="Deadline"/> bounds a whole request from the moment it is made: waiting for a
/// free slot, every attempt and every backoff sleep. A reader of uncached data must get an error
/// (EIO) within a known time whatever the store does: refuse, reset, throttle, or accept and
/// stay silent.</item>
/// <item><see cref="AttemptTimeout"/> bounds one try, so a silent connection is abandoned and
/// retried on a fresh one well before the deadline.</item>
/// <item>Backoff doubles from <see cref="InitialBackoff"/> up to <see cref="MaxBackoff"/>, each
/// sleep drawn at random between half and all of it so that many waiting requests do not come
/// back all at once; the last sleep is shortened so that a final attempt fits before the deadline.</item>
/// <item><see cref="MaxConcurrency"/> requests are in flight at most; the connection pool is
/// sized to match so no request waits for a connection it cannot get. Others wait in line, and
/// that wait counts against their deadline: there is no unbounded queue of work.</item>
/// </list>
/// </remarks>
public sealed record ObjectStoreOptions
{
    /// <summary>The longest a request may take, retries included. Default 30 s.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest one attempt may take (connect, send, and read the whole answer). Default 10 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest to wait for a TCP (and TLS) connection. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The first backoff between attempts. Default 100 ms.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest backoff between attempts. Default 2 s.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Requests in flight at most (and connections in the pool). Default 64.</summary>
    public int MaxConcurrency { get; init; } = 64;

    /// <summary>The defaults.</summary>
    public static ObjectStoreOptions Default { get; } = new();

    /// <summary>These options with another deadline; the attempt and connect timeouts are
    /// shortened to it when longer, so that one attempt can never outlast the deadline.</summary>
    public ObjectStoreOptions WithDeadline(TimeSpan deadline) => this with
    {
        Deadline = deadline,
        AttemptTimeout = AttemptTimeout < deadline ? AttemptTimeout : deadline,
        ConnectTimeout = ConnectTimeout < deadline ? ConnectTimeout : deadline,
    };

    /// <summary>Throws <see cref="ShuruStoreException"/> (<see cref="ShuruErrorKind.InvalidArgument"/>)
    /// when a value is out of range.</summary>
    public void Validate()
    {
        static void Positive(TimeSpan t, string name)
        {
            if (t <= TimeSpan.Zero || t > TimeSpan.FromHours(1))
                throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{name} must be more than 0 and at most 1 hour (it is {t})");
        }
        Positive(Deadline, nameof(Deadline));
        Positive(AttemptTimeout, nameof(AttemptTimeout));
        Positive(ConnectTimeout, nameof(ConnectTimeout));
        Positive(MaxBackoff, nameof(MaxBackoff));
        if (InitialBackoff < TimeSpan.Zero || InitialBackoff > MaxBackoff)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(InitialBackoff)} must be between 0 and {nameof(MaxBackoff)} (it is {InitialBackoff})");
        if (MaxConcurrency is < 1 or > 1024)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(MaxConcurrency)} must be 1 to 1024 (it is {MaxConcurrency})");
    }
}
