using System.Text.Json;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>One registration found in a store: a live user (its process holds the lease's lock),
/// or an ended one: its process died without ending it, or it closed and left its state file
/// resumable.</summary>
public sealed record StoreRegistration(
    string LeasePath, bool IsAlive, int ProcessId, string HostName, DateTimeOffset Since, string Kind, string? Name,
    string? SocketPath, string? StatePath, string? BootIndexPath, string? BaseImagePath)
{
    /// <summary>The log of chunk names the holder stored or relied on.</summary>
    public string RefsPath => Path.ChangeExtension(LeasePath, StoreLease.RefsExtension);

    /// <summary>Its chunks must survive: it is alive, or its state file still exists.</summary>
    public bool IsRoot => IsAlive || (StatePath is not null && File.Exists(StatePath));
}

/// <summary>
/// The registrations of a store as a collector sees them (<see cref="StoreLease"/>), and the
/// chunk names their logs hold. Liveness is the lease's lock: a registration whose lock can be
/// taken has no live holder. A lease file that cannot be parsed is stale (a holder writes and
/// locks it before giving it its name, so a live one is always complete).
/// </summary>
public static class StoreRegistrations
{
    /// <summary>Every registration under <paramref name="casPath"/>.</summary>
    public static IReadOnlyList<StoreRegistration> Read(string casPath)
    {
        string folder = Path.Combine(casPath, StoreLease.FolderName);
        var found = new List<StoreRegistration>();
        if (!Directory.Exists(folder)) return found;
        foreach (string path in Directory.EnumerateFiles(folder, "*" + StoreLease.LeaseExtension))
            if (ReadOne(path) is { } r) found.Add(r);
        return found;
    }

    private static StoreRegistration? ReadOne(string path)
    {
        // A raw descriptor: .NET's FileStream would take a flock of its own.
        int fd = FileDescriptors.Open(path, FileDescriptors.O_RDONLY | FileDescriptors.O_CLOEXEC);
        if (fd < 0) return null; // ended meanwhile
        bool alive;
        LeaseRecord? record = null;
        try
        {
            // The holder keeps an exclusive lock while it lives: a shared one is refused then.
            alive = !FileLocks.TryLockShared(fd);
            if (!alive) FileLocks.Unlock(fd);
            var bytes = new byte[64 * 1024];
            int n = FileDescriptors.ReadAt(fd, bytes, 0, out _);
            if (n > 0)
            {
                try { record = JsonSerializer.Deserialize(bytes.AsSpan(0, n), LeaseJson.Default.LeaseRecord); }
                catch (JsonException) { }
            }
        }
        finally { FileDescriptors.Close(fd); }
        if (record is null)
            return new StoreRegistration(path, alive, 0, "", File.GetLastWriteTimeUtc(path), "unknown", null, null, null, null, null);
        return new StoreRegistration(path, alive, record.ProcessId, record.HostName, record.Since, record.Kind, record.Name,
            record.SocketPath, record.StatePath, record.BootIndexPath, record.BaseImagePath);
    }

    /// <summary>Removes an ended registration (its lease and its log). Refuses a live one.</summary>
    public static bool RemoveEnded(StoreRegistration registration)
    {
        int fd = FileDescriptors.Open(registration.LeasePath, FileDescriptors.O_RDONLY | FileDescriptors.O_CLOEXEC);
        if (fd < 0) return false;
        try
        {
            // Held exclusively while deleting, so a registration that is alive (or being read) stays.
            if (!FileLocks.TryLockExclusive(fd)) return false;
            try { File.Delete(registration.RefsPath); } catch (IOException) { }
            File.Delete(registration.LeasePath);
            return true;
        }
        finally { FileDescriptors.Close(fd); }
    }
}

/// <summary>
/// The chunks a store's registrations keep, read incrementally so a collector can ask again and
/// again during its sweep: the first time a registration is seen, its booted index chain, its
/// state file and its log; after that, only what its log gained (a log only ever grows while its
/// holder lives). Registrations that are not roots (<see cref="StoreRegistration.IsRoot"/>) keep
/// nothing.
/// </summary>
public sealed class RegistrationRoots(string casPath)
{
    // How far each log was read, and which file (inode) that was: a holder that restarts its
    // log replaces the file, and the new one is read from its start.
    private readonly Dictionary<string, (ulong Inode, long Offset)> _offsets = new(StringComparer.Ordinal);
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    /// <summary>Registrations found by the last <see cref="AddNew"/>.</summary>
    public IReadOnlyList<StoreRegistration> Registrations { get; private set; } = [];

    /// <summary>Adds to <paramref name="into"/> every chunk the registrations keep that the
    /// previous calls did not add. <paramref name="markChain"/> and <paramref name="markState"/>
    /// add the chunks of an index chain and of a state file.</summary>
    public void AddNew(ISet<ChunkHash> into, Action<string> markChain, Action<string> markState)
    {
        Registrations = StoreRegistrations.Read(casPath);
        foreach (var r in Registrations)
        {
            if (!r.IsRoot) continue;
            if (_seen.Add(r.LeasePath))
            {
                if (r.BootIndexPath is { } boot && File.Exists(boot)) markChain(boot);
                if (r.StatePath is { } state && File.Exists(state)) markState(state);
            }
            ReadLog(r.RefsPath, into);
        }
    }

    private void ReadLog(string path, ISet<ChunkHash> into)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
            ulong inode = FileStatusCalls.TryStat((int)fs.SafeFileHandle.DangerousGetHandle(), out var st, out _) ? st.Identity.Inode : 0;
            long offset = _offsets.TryGetValue(path, out var read) && read.Inode == inode && inode != 0 ? read.Offset : 0;
            fs.Position = offset;
            var buf = new byte[ChunkHash.Size * 2048];
            while (true)
            {
                int n = fs.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
                int whole = n / ChunkHash.Size * ChunkHash.Size;
                for (int i = 0; i < whole; i += ChunkHash.Size) into.Add(ChunkHash.FromBytes(buf.AsSpan(i, ChunkHash.Size)));
                offset += whole;
                if (n < buf.Length) break; // a torn last name is read whole next time
            }
            _offsets[path] = (inode, offset);
        }
        catch (FileNotFoundException) { _offsets.Remove(path); } // the holder ended cleanly meanwhile
    }
}
