using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// Where WRITE payloads are received. A large payload (128 KiB to 4 MiB: nbdcopy sends 256 KiB,
/// qemu up to 2 MiB) lands at a 4 KiB-aligned address of a pinned array kept by this pool, so a
/// device can hand it to the disk with O_DIRECT as it is (<see cref="BlockDevices.FlatFileDevice"/>);
/// smaller ones use the shared array pool. Up to 64 arrays per power-of-two size class are kept
/// (nbdcopy keeps 64 requests in flight per connection).
/// </summary>
internal static class NbdPayloadBuffers
{
    public const int AlignedMinimum = 128 * 1024;
    private const int AlignedMaximum = 4 * 1024 * 1024;
    private const int Alignment = 4096;
    private const int KeptPerClass = 64;

    private static readonly ConcurrentStack<byte[]>[] s_classes =
        Enumerable.Range(0, 6).Select(_ => new ConcurrentStack<byte[]>()).ToArray();
    private static readonly ConditionalWeakTable<byte[], StrongBox<int>> s_starts = new();

    /// <summary>A buffer holding at least <paramref name="length"/> bytes from <paramref name="start"/>.</summary>
    public static byte[] Rent(int length, out int start)
    {
        int cls = ClassOf(length);
        if (cls < 0)
        {
            start = 0;
            return ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        }
        if (!s_classes[cls].TryPop(out var array))
        {
            array = GC.AllocateUninitializedArray<byte>((AlignedMinimum << cls) + Alignment, pinned: true);
            s_starts.Add(array, new StrongBox<int>(AlignedStart(array)));
        }
        start = s_starts.TryGetValue(array, out var box) ? box.Value : 0;
        return array;
    }

    /// <summary>Gives back a buffer from <see cref="Rent"/>.</summary>
    public static void Return(byte[] array)
    {
        if (s_starts.TryGetValue(array, out _))
        {
            int cls = ClassOf(array.Length - Alignment);
            if (cls >= 0 && s_classes[cls].Count < KeptPerClass) s_classes[cls].Push(array);
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
