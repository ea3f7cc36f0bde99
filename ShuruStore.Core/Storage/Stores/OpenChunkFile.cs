using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// A verified chunk file held open by a <see cref="ChunkHandleCache"/>, with the identity it had
/// when verified. Reference-counted so eviction never closes a descriptor under a reader: the
/// cache holds one reference, each read takes one with <see cref="TryAcquire"/>, and the
/// descriptor is closed by whichever <see cref="Release"/> drops the count to zero. Closing it
/// while a pread is in flight would be worse than an error: the number could be reused by an
/// unrelated open and the read would return that file's bytes.
/// </summary>
internal sealed class OpenChunkFile : IFileRangeLease
{
    private int _refs = 1; // the cache's reference; 0 = closed for good, never acquired again
    private int _retired;
    private volatile bool _used;

    public OpenChunkFile(ChunkHash hash, int fd, FileIdentity identity, int slot)
    {
        Hash = hash; Descriptor = fd; Identity = identity; Slot = slot;
    }

    public ChunkHash Hash { get; }
    /// <summary>Valid only between a successful <see cref="TryAcquire"/> and its <see cref="Release"/>.</summary>
    public int Descriptor { get; }
    /// <summary>What the file looked like when its content was verified.</summary>
    public FileIdentity Identity { get; }
    /// <summary>Its slot in the cache's clock.</summary>
    public int Slot { get; }

    /// <summary>Takes a reference for a read; false once the file is closed (evicted meanwhile:
    /// the caller reads it by name instead).</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            int refs = Volatile.Read(ref _refs);
            if (refs == 0) return false;
            if (Interlocked.CompareExchange(ref _refs, refs + 1, refs) == refs) return true;
        }
    }

    /// <summary>Drops a reference; the last one closes the descriptor.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0) FileDescriptors.Close(Descriptor);
    }

    /// <summary>Drops the cache's reference (once, however many times it is called): closed now
    /// if no read holds it, else when the last read releases it.</summary>
    public void Retire()
    {
        if (Interlocked.Exchange(ref _retired, 1) == 0) Release();
    }

    // ---- as the lease of a range sent with sendfile (FileChunkStore.TryLeaseRange) ----

    /// <summary>A chunk file's bytes must match its name; someone may alter it under the server.</summary>
    public bool MayChange => true;

    /// <summary>The same check as after a cached pread: the file still has a name and the
    /// identity it was verified with, so the bytes just sent were the verified ones.</summary>
    public bool StillValid(in FileRange range) => IsUnchanged();

    void IFileRangeLease.Release(in FileRange range) => Release();

    /// <summary>One statx: still linked, and the identity it was verified with.</summary>
    public bool IsUnchanged() =>
        FileStatusCalls.TryStat(Descriptor, out var now, out _) && now.Links > 0 && now.Identity == Identity;

    /// <summary>The clock's reference bit. Set on every hit, but written only when clear, so
    /// 64 readers of one hot chunk do not keep bouncing its cache line between cores.</summary>
    public void MarkUsed() { if (!_used) _used = true; }

    /// <summary>Clears the reference bit; true if it was set (the file gets a second chance).</summary>
    public bool TakeSecondChance()
    {
        if (!_used) return false;
        _used = false;
        return true;
    }
}
