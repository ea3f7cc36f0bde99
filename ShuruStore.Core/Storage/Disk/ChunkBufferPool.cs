using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>64 KiB dirty-chunk buffers, reused rather than left to the garbage collector. New ones
/// live on the pinned object heap: dirty buffers survive several collections, and on the normal
/// heap every young-generation collection copied them while promoting. Never more are kept than
/// the dirty budget allows at once, so the pool adds nothing to the peak. Contents are not zeroed
/// (writers fill or clear every byte they use).</summary>
internal sealed class ChunkBufferPool(int maxRetained)
{
    private readonly ConcurrentStack<byte[]> _free = new();
    private int _count;

    public byte[] Rent()
    {
        if (_free.TryPop(out var b)) { Interlocked.Decrement(ref _count); return b; }
        return GC.AllocateUninitializedArray<byte>(ChunkHasher.ChunkSize, pinned: true);
    }

    public void Return(byte[] buffer)
    {
        if (Interlocked.Increment(ref _count) > maxRetained) { Interlocked.Decrement(ref _count); return; }
        _free.Push(buffer);
    }
}
