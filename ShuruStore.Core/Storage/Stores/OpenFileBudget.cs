using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// How many chunk files the whole process may keep open in <see cref="ChunkHandleCache"/>s.
/// Shared by every chunk store of the process (a PowerShell session can serve several disks,
/// each with its own store), so together they never take the descriptors that sockets, base
/// images, state files and the chunk writes' temp files need: running out of descriptors
/// would turn into EIO for unrelated requests.
/// </summary>
internal static class OpenFileBudget
{
    /// <summary>Never more than this many, whatever the limit (a sanity bound for RLIM_INFINITY).</summary>
    private const int MaxHandles = 1 << 20;
    /// <summary>Descriptors always left to everything else, and at least an eighth of the limit.</summary>
    private const int Reserve = 2048;

    private static int s_used;

    /// <summary>Budget for the current limit: with the 20000 of a typical container 17500 (room for
    /// a 1 GiB working set of 64 KiB chunks), with a systemd default hard limit of 524288 the full
    /// per-store capacity, with an unraised 1024 none (the stores then read uncached, as before).</summary>
    public static int Limit { get; } = ForLimit(FileDescriptors.OpenFileLimit());

    internal static int ForLimit(long softLimit) =>
        softLimit <= 0 ? 0 : (int)Math.Clamp(softLimit - Math.Max(softLimit / 8, Reserve), 0, MaxHandles);

    /// <summary>Descriptors currently counted against the budget.</summary>
    public static int Used => Volatile.Read(ref s_used);

    /// <summary>Takes one descriptor from the budget; false when it is spent.</summary>
    public static bool TryTake()
    {
        if (Interlocked.Increment(ref s_used) <= Limit) return true;
        Interlocked.Decrement(ref s_used);
        return false;
    }

    /// <summary>Gives back one descriptor taken by <see cref="TryTake"/>.</summary>
    public static void Return() => Interlocked.Decrement(ref s_used);
}
