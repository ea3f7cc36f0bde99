namespace ShuruStore.Core.Nbd;

/// <summary>What an <see cref="NbdServer"/> event reports.</summary>
public enum NbdServerEventKind
{
    Started,
    ConnectionOpened,
    ConnectionClosed,
    NegotiationFailed,
    Negotiated,
    ProtocolError,
    DeviceError,
    Stopping,
    Stopped,
}

/// <summary>One server event: a kind to branch on and a message fit for -Verbose output.</summary>
public sealed class NbdServerEventArgs : EventArgs
{
    public NbdServerEventArgs(NbdServerEventKind kind, string message, long connectionId = 0, Exception? exception = null)
    {
        Kind = kind;
        Message = message;
        ConnectionId = connectionId;
        Exception = exception;
    }

    public NbdServerEventKind Kind { get; }
    public string Message { get; }
    /// <summary>The connection concerned, or 0 for server-wide events.</summary>
    public long ConnectionId { get; }
    public Exception? Exception { get; }
    public DateTimeOffset Time { get; } = DateTimeOffset.UtcNow;

    public override string ToString() => $"{Kind}: {Message}";
}
