using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Where WRITE payloads are received. A large payload (128 KiB to 4 MiB: nbdcopy sends 256 KiB,
/// qemu up to 2 MiB) lands at a 4 KiB-aligned address of a pinned array kept by this pool, so a
/// device can hand it to the disk with O_DIRECT as it is (<see cref="BlockDevices.FlatFileDevice"/>);
/// smaller ones use the shared array pool. Each power-of-two size class keeps up to 16 MiB of
/// returned arrays (64 of nbdcopy's 256 KiB, its requests in flight per connection; at least 4),
/// so at most about 100 MiB stays pinned after a burst.
/// </summary>
internal static class NbdPayloadBuffers
{
    public const int AlignedMinimum = 128 * 1024;
    private const int AlignedMaximum = 4 * 1024 * 1024;
    private const int Alignment = 4096;
    private const int KeptBytesPerClass = 16 * 1024 * 1024;

    private static readonly ConcurrentStack<byte[]>[] s_classes =
        Enumerable.Range(0, 6).Select(_ => new ConcurrentStack<byte[]>()).ToArray();
    private static readonly int[] s_kept = new int[6]; // arrays in each stack (ConcurrentStack.Count walks the list)

    /// <summary>A buffer holding at least <paramref name="length"/> bytes from <paramref name="start"/>.</summary>
    public static byte[] Rent(int length, out int start)
    {
        int cls = ClassOf(length);
        if (cls < 0)
        {
            start = 0;
            return ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        }
        if (s_classes[cls].TryPop(out var array)) Interlocked.Decrement(ref s_kept[cls]);
        else array = GC.AllocateUninitializedArray<byte>((AlignedMinimum << cls) + Alignment, pinned: true);
        start = AlignedStart(array); // pinned: the address, and so the start, never changes
        return array;
    }

    /// <summary>Gives back a buffer from <see cref="Rent"/>.</summary>
    public static void Return(byte[] array)
    {
        // Ours are a size class plus the alignment slack; the shared pool's are powers of two.
        int cls = ClassOf(array.Length - Alignment);
        if (cls >= 0 && array.Length - Alignment == AlignedMinimum << cls)
        {
            // A race may keep one or two more than the bound: harmless.
            if (Volatile.Read(ref s_kept[cls]) < Math.Max(4, KeptBytesPerClass / (AlignedMinimum << cls)))
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
        if (length < AlignedMinimum || length > AlignedMaximum) return -1;
        int cls = 0;
        while ((AlignedMinimum << cls) < length) cls++;
        return cls;
    }

    private static unsafe int AlignedStart(byte[] array)
    {
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)((Alignment - address % Alignment) % Alignment);
    }
}
