using Microsoft.Win32.SafeHandles;
using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Scratch space for unsaved chunks that no longer fit in the dirty-memory budget: an unlinked
/// file, chunk <c>n</c> at offset <c>n × 64 KiB</c>. Moving a chunk here costs one positional
/// write; storing it as a content-addressed chunk (hash, create a file, rename, sync) is left to
/// the next flush or checkpoint. A random writer with a working set larger than the budget thus
/// rewrites its chunks here in place instead of creating a chunk file for every eviction — files
/// nobody would ever reference again.
/// <para>It holds nothing durable: it is unlinked from the start (O_TMPFILE), so a crash leaves no
/// trace and loses exactly what losing the memory would have lost (unflushed writes). Its space
/// is given back chunk by chunk once stored.</para>
/// </summary>
internal sealed class SpillFile : IDisposable
{
    private const int CS = ChunkHasher.ChunkSize;
    private readonly SafeFileHandle _handle;
    private readonly bool _canPunch;

    private SpillFile(SafeFileHandle handle, string where)
    {
        _handle = handle;
        Location = where;
        _canPunch = OperatingSystem.IsLinux();
    }

    /// <summary>The directory holding the (nameless) file, for error messages.</summary>
    public string Location { get; }

    /// <summary>Creates the file in <paramref name="directory"/> (the chunk store, so it shares the
    /// store's filesystem and its free-space accounting). Nameless where the filesystem supports
    /// O_TMPFILE; elsewhere created under a temporary name and unlinked at once.</summary>
    public static SpillFile Create(string directory)
    {
        Directory.CreateDirectory(directory);
        if (OperatingSystem.IsLinux())
        {
            int fd = FileDescriptors.OpenNamelessFile(directory);
            if (fd >= 0) return new SpillFile(new SafeFileHandle((nint)fd, ownsHandle: true), directory);
        }
        string path = Path.Combine(directory, $".spill-{Random.Shared.NextInt64():x16}");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        try { File.Delete(path); }
        catch { handle.Dispose(); throw; }
        return new SpillFile(handle, directory);
    }

    /// <summary>Writes <paramref name="data"/> into chunk <paramref name="chunk"/> at <paramref name="inChunk"/>.</summary>
    public void Write(long chunk, int inChunk, ReadOnlySpan<byte> data) =>
        RandomAccess.Write(_handle, data, chunk * CS + inChunk);

    /// <summary>Reads <paramref name="dest"/> from chunk <paramref name="chunk"/> at
    /// <paramref name="inChunk"/>. Every chunk here was written whole first, so a short read is
    /// a damaged scratch file (I/O error), never a hole to fill with zeros.</summary>
    public void Read(long chunk, int inChunk, Span<byte> dest)
    {
        long at = chunk * CS + inChunk;
        int total = 0;
        while (total < dest.Length)
        {
            int n = RandomAccess.Read(_handle, dest[total..], at + total);
            if (n == 0) throw new IOException($"spill file in '{Location}' is shorter than chunk {chunk}");
            total += n;
        }
    }

    /// <summary>Gives a stored chunk's space back (best effort: only space, never correctness,
    /// depends on it).</summary>
    public void Release(long chunk)
    {
        if (!_canPunch) return;
        // Referenced for the call: after Dispose the number could name another file.
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            SparseFiles.fallocate((int)_handle.DangerousGetHandle(),
                SparseFiles.FALLOC_FL_PUNCH_HOLE | SparseFiles.FALLOC_FL_KEEP_SIZE, chunk * CS, CS);
        }
        catch (ObjectDisposedException) { /* closed: its space is gone anyway */ }
        finally { if (added) _handle.DangerousRelease(); }
    }

    public void Dispose() => _handle.Dispose();
}
