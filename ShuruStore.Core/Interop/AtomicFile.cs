namespace ShuruStore.Core.Interop;

/// <summary>
/// Publishing a whole file atomically: a recognisable temp file next to it, written and fsynced,
/// renamed over the target, then the directory fsynced. Readers see the old file or the complete
/// new one, never a half-written one, and once this returns the new one survives a crash.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/> as described above.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        string tmp = Path.Combine(dir, "." + Path.GetFileName(full) + ".tmp-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                FileSync.FlushToDisk(fs);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch { /* best effort: the temp name is ignored by readers */ }
            throw;
        }
        FileSync.FsyncDirectory(dir);
    }
}
