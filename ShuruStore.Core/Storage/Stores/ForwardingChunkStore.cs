using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// A store in front of another: every member forwards to <see cref="Inner"/>, fast paths
/// included, so a layer (a cache in front of a remote store, a counter, a fault injector)
/// overrides only what it changes and keeps everything else the inner store offers. A layer
/// that cannot offer a fast path says so by overriding <see cref="Capabilities"/>.
/// </summary>
public abstract class ForwardingChunkStore : IChunkStore
{
    private readonly bool _ownsInner;

    /// <param name="inner">The store this one forwards to.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with this store.</param>
    protected ForwardingChunkStore(IChunkStore inner, bool ownsInner = true)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _ownsInner = ownsInner;
    }

    /// <summary>The store this one forwards to.</summary>
    protected IChunkStore Inner { get; }

    public virtual ChunkStoreCapabilities Capabilities => Inner.Capabilities;
    public virtual bool Contains(ChunkHash hash) => Inner.Contains(hash);
    public virtual bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength) => Inner.TryRead(hash, destination, out storedLength);
    public virtual bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination) => Inner.TryReadRange(hash, offset, destination);
    public virtual bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination) => Inner.TryReadRangeNoWait(hash, offset, destination);
    public virtual bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range) => Inner.TryLeaseRange(hash, offset, length, out range);
    public virtual int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false) =>
        Inner.WriteMany(chunks, stored, syncSoon);
    public virtual void Sync() => Inner.Sync();
    public virtual long LoggedNames => Inner.LoggedNames;
    public virtual void RestartLog(IReadOnlyCollection<ChunkHash> reliedOn) => Inner.RestartLog(reliedOn);
    public virtual IEnumerable<ChunkHash> Enumerate() => Inner.Enumerate();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases this layer; the inner store too when it owns it.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing && _ownsInner) Inner.Dispose();
    }
}
