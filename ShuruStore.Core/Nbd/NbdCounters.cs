namespace ShuruStore.Core.Nbd;

/// <summary>
/// Live counters, updated with Interlocked so the hot path pays a few atomic adds and no lock.
/// One instance per server and one per connection; each request updates both.
/// </summary>
internal sealed class NbdCounters
{
    private readonly long[] _requests = new long[NbdProtocol.CommandTypeCount + 1];
    private long _bytesRead;
    private long _bytesWritten;
    private long _errors;

    public void CountRequest(int type) =>
        Interlocked.Increment(ref _requests[type is >= 0 and < NbdProtocol.CommandTypeCount ? type : NbdProtocol.CommandTypeCount]);

    public void AddRead(long bytes) => Interlocked.Add(ref _bytesRead, bytes);
    public void AddWritten(long bytes) => Interlocked.Add(ref _bytesWritten, bytes);
    public void CountError() => Interlocked.Increment(ref _errors);

    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);
    public long Errors => Interlocked.Read(ref _errors);

    public IReadOnlyDictionary<string, long> SnapshotRequests()
    {
        var d = new Dictionary<string, long>();
        for (int i = 0; i <= NbdProtocol.CommandTypeCount; i++)
            d[NbdProtocol.CommandName(i)] = Interlocked.Read(ref _requests[i]);
        return d;
    }
}
