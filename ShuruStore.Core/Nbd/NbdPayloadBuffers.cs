using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Where WRITE payloads are received. A large payload (128 KiB to 4 MiB: the sizes streams send)
/// goes into a pinned array kept by this pool, at an address with the alignment the device asks
/// for (<see cref="BlockDevices.IBlockDevice.WriteBufferAlignment"/>), so a device writing with
/// O_DIRECT can hand it to the disk as it is; smaller ones use the shared array pool. Each
/// power-of-two size class keeps at most <see cref="KeptBytesPerClass"/> of returned arrays (at
/// least four), which bounds what stays pinned after a burst.
/// </summary>
internal static class NbdPayloadBuffers
{
    public const int PooledMinimum = 128 * 1024;
    private const int PooledMaximum = 4 * 1024 * 1024;
    /// <summary>The largest alignment a device may ask for: every pooled array has this much slack.</summary>
    public const int MaxAlignment = 4096;
    private const int KeptBytesPerClass = 16 * 1024 * 1024;

    private static readonly ConcurrentStack<byte[]>[] s_classes =
        Enumerable.Range(0, 6).Select(_ => new ConcurrentStack<byte[]>()).ToArray();
    private static readonly int[] s_kept = new int[6]; // arrays in each stack (ConcurrentStack.Count walks the list)

    /// <summary>A buffer holding at least <paramref name="length"/> bytes from
    /// <paramref name="start"/>, where the address is a multiple of <paramref name="alignment"/>
    /// for a pooled size (a power of two up to <see cref="MaxAlignment"/>; 1 for none).</summary>
    public static byte[] Rent(int length, int alignment, out int start)
    {
        int cls = ClassOf(length);
        if (cls < 0)
        {
            start = 0;
            return ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        }
        if (s_classes[cls].TryPop(out var array)) Interlocked.Decrement(ref s_kept[cls]);
        else array = GC.AllocateUninitializedArray<byte>((PooledMinimum << cls) + MaxAlignment, pinned: true);
        start = AlignedStart(array, Math.Clamp(alignment, 1, MaxAlignment)); // pinned: the address never changes
        return array;
    }

    /// <summary>Gives back a buffer from <see cref="Rent"/>.</summary>
    public static void Return(byte[] array)
    {
        // Ours are a size class plus the alignment slack; the shared pool's are powers of two.
        int cls = ClassOf(array.Length - MaxAlignment);
        if (cls >= 0 && array.Length - MaxAlignment == PooledMinimum << cls)
        {
            // A race may keep one or two more than the bound: harmless.
            if (Volatile.Read(ref s_kept[cls]) < Math.Max(4, KeptBytesPerClass / (PooledMinimum << cls)))
            {
                Interlocked.Increment(ref s_kept[cls]);
                s_classes[cls].Push(array);
            }
            return;
        }
        ArrayPool<byte>.Shared.Return(array);
    }

    private static int ClassOf(int length)
    {
        if (length < PooledMinimum || length > PooledMaximum) return -1;
        int cls = 0;
        while ((PooledMinimum << cls) < length) cls++;
        return cls;
    }

    private static unsafe int AlignedStart(byte[] array, int alignment)
    {
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)(((nuint)alignment - address % (nuint)alignment) % (nuint)alignment);
    }
}
