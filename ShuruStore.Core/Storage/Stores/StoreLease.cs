using System.Text.Json;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>Who is using a chunk store, as its registration says.</summary>
/// <param name="Kind">What uses it: <c>server</c>, <c>import</c>, <c>writer</c>.</param>
/// <param name="Name">The server's name, or another label.</param>
/// <param name="SocketPath">The server's Unix socket, if any.</param>
/// <param name="StatePath">The live-state file whose chunks must survive, if any.</param>
/// <param name="BootIndexPath">The index the disk booted from, if any.</param>
/// <param name="BaseImagePath">The base image, if any.</param>
public sealed record StoreHolder(string Kind, string? Name = null, string? SocketPath = null, string? StatePath = null,
    string? BootIndexPath = null, string? BaseImagePath = null);

/// <summary>
/// A process's registration in a chunk store, held while it writes there: a lease file under
/// <c>&lt;cas&gt;/leases/</c> (shuru only looks in <c>chunks/</c>) with an exclusive advisory lock
/// (flock) for the process's lifetime, naming the process and what it serves, and beside it a
/// log of every chunk name the holder has stored or relied on. Any collector, in any process,
/// treats a live registration's booted chain, state file and logged names as roots.
/// <para>The rule that makes collection safe: a name is logged <em>before</em> its chunk is
/// published or an existing file is relied on (<see cref="Intend"/>). A collector sets a doomed
/// chunk aside (rename) and only then reads the logs again: a name logged before that read is
/// restored; a holder that logs a name after it finds the name gone (renamed aside) and writes
/// the chunk afresh. The log is a superset of what the holder references; it is dropped with
/// the registration at a clean close.</para>
/// <para>A holder that rewrites its disk for days would log without end, and keep every chunk it
/// ever stored from every collector. So it starts the log afresh now and then
/// (<see cref="Restart"/>) with the names it relies on at that moment, which the holder takes
/// while no store of its is between logging names and recording them. The new log replaces the
/// old one in one rename: a collector reads either the old log (a superset) or the new one,
/// whose names were all in the old one or logged since; collectors that read logs in steps
/// notice the new file by its inode and read it from the start.</para>
/// <para>The lease dies with the process: a killed holder's lock is released, so collectors see
/// the registration as no longer alive. Its state file then stays a root (a crashed VM's disk is
/// resumable) until someone removes the registration. A holder with a state file that closes
/// cleanly leaves its registration the same way (unlocked, log removed): its disk is resumable
/// too. A new holder of the same state file takes over: older registrations naming it go.</para>
/// </summary>
public sealed class StoreLease : IDisposable
{
    /// <summary>The reserved folder of registrations, inside the store root.</summary>
    public const string FolderName = "leases";
    internal const string LeaseExtension = ".lease";
    internal const string RefsExtension = ".refs";

    private readonly int _lockFd; // the lease file, flock'ed exclusively while this registration lives
    private FileStream _refs;
    private long _logged; // names in the log now
    private readonly object _refsLock = new();
    private readonly bool _hasState;
    private bool _disposed;

    private StoreLease(string leasePath, string refsPath, int lockFd, FileStream refs, bool hasState)
    {
        LeasePath = leasePath; RefsPath = refsPath; _lockFd = lockFd; _refs = refs; _hasState = hasState;
    }

    /// <summary>The lease file (JSON, locked while this registration lives).</summary>
    public string LeasePath { get; }
    /// <summary>The log of chunk names this holder stores or relies on.</summary>
    public string RefsPath { get; }

    /// <summary>Registers the calling process in the store at <paramref name="casPath"/>. The
    /// lease is written and locked under a temporary name and then renamed into place, so a
    /// collector never sees a registration that is not yet locked.</summary>
    public static StoreLease Take(string casPath, StoreHolder holder)
    {
        string folder = Path.Combine(casPath, FolderName);
        Directory.CreateDirectory(folder);
        string id = $"{Environment.MachineName}-{Environment.ProcessId}-{Random.Shared.NextInt64():x16}";
        string leasePath = Path.Combine(folder, id + LeaseExtension);
        string refsPath = Path.Combine(folder, id + RefsExtension);
        string tmp = Path.Combine(folder, ".tmp-" + id);
        // A raw descriptor and an explicit flock: .NET's FileStream takes flock locks of its own
        // (by FileShare), which would conflict with the test a reader makes.
        int fd = FileDescriptors.Open(tmp, FileDescriptors.O_RDWR | FileDescriptors.O_CREAT | FileDescriptors.O_EXCL | FileDescriptors.O_CLOEXEC, 0x1a4);
        if (fd < 0) throw Errno.Last("creating registration", tmp);
        FileStream? refs = null;
        try
        {
            if (!FileLocks.TryLockExclusive(fd)) throw new IOException($"cannot lock new registration '{tmp}'");
            var record = new LeaseRecord(Environment.ProcessId, Environment.MachineName, DateTimeOffset.UtcNow, holder.Kind, holder.Name,
                holder.SocketPath, Full(holder.StatePath), Full(holder.BootIndexPath), Full(holder.BaseImagePath));
            FileDescriptors.WriteAll(fd, JsonSerializer.SerializeToUtf8Bytes(record, LeaseJson.Default.LeaseRecord), 0, tmp);
            refs = new FileStream(refsPath, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            File.Move(tmp, leasePath);
            var lease = new StoreLease(leasePath, refsPath, fd, refs, record.StatePath is not null);
            if (record.StatePath is { } state) RemoveEndedFor(casPath, state, leasePath);
            return lease;
        }
        catch
        {
            refs?.Dispose();
            FileDescriptors.Close(fd);
            try { File.Delete(tmp); } catch (IOException) { }
            try { File.Delete(refsPath); } catch (IOException) { }
            throw;
        }

        static string? Full(string? p) => string.IsNullOrEmpty(p) ? null : Path.GetFullPath(p);
    }

    /// <summary>Logs names this holder is about to store or rely on. Called before the chunks are
    /// published or an existing file is trusted (see the class remarks); one write per call.</summary>
    public void Intend(IReadOnlyList<ChunkHash> hashes)
    {
        if (hashes.Count == 0) return;
        var bytes = new byte[hashes.Count * ChunkHash.Size];
        for (int i = 0; i < hashes.Count; i++) hashes[i].CopyTo(bytes.AsSpan(i * ChunkHash.Size));
        lock (_refsLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _refs.Write(bytes); // unbuffered: in the file (page cache) before this returns
            Interlocked.Add(ref _logged, hashes.Count);
        }
    }

    /// <summary>Names in the log now (each logging counts, repeated names too).</summary>
    public long LoggedNames => Interlocked.Read(ref _logged);

    /// <summary>Replaces the log with <paramref name="reliedOn"/>: every name the holder references
    /// now and that no other root of its registration (booted chain, state file) covers. The
    /// caller makes sure no store of its is between logging names and recording them meanwhile
    /// (see the class remarks); names logged while this runs go to the new log.</summary>
    public void Restart(IReadOnlyCollection<ChunkHash> reliedOn)
    {
        var bytes = new byte[reliedOn.Count * ChunkHash.Size];
        int i = 0;
        foreach (var h in reliedOn) h.CopyTo(bytes.AsSpan(i++ * ChunkHash.Size));
        string tmp = Path.Combine(Path.GetDirectoryName(RefsPath)!, ".tmp-" + Path.GetFileName(RefsPath));
        lock (_refsLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var fresh = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            try
            {
                fresh.Write(bytes);
                File.Move(tmp, RefsPath, overwrite: true); // rename(2): collectors see the old log or the new one, whole
            }
            catch
            {
                fresh.Dispose();
                try { File.Delete(tmp); } catch (IOException) { }
                throw;
            }
            _refs.Dispose();
            _refs = fresh;
            Interlocked.Exchange(ref _logged, reliedOn.Count);
        }
    }

    /// <summary>Ends the registration: removes the log and releases the lock; the lease file goes
    /// too unless it names a state file (then it marks a resumable disk, see the class remarks).</summary>
    public void Dispose()
    {
        lock (_refsLock)
        {
            if (_disposed) return;
            _disposed = true;
            _refs.Dispose();
        }
        try { File.Delete(RefsPath); } catch (IOException) { }
        if (!_hasState) try { File.Delete(LeasePath); } catch (IOException) { }
        FileDescriptors.Close(_lockFd);
    }

    /// <summary>Removes ended registrations naming <paramref name="statePath"/>: the new holder's
    /// registration keeps its chunks from now on.</summary>
    private static void RemoveEndedFor(string casPath, string statePath, string except)
    {
        foreach (var r in StoreRegistrations.Read(casPath))
            if (!r.IsAlive && r.LeasePath != except && string.Equals(r.StatePath, statePath, StringComparison.Ordinal))
                StoreRegistrations.RemoveEnded(r);
    }
}

/// <summary>The lease file's content.</summary>
internal sealed record LeaseRecord(int ProcessId, string HostName, DateTimeOffset Since, string Kind, string? Name,
    string? SocketPath, string? StatePath, string? BootIndexPath, string? BaseImagePath);

[System.Text.Json.Serialization.JsonSerializable(typeof(LeaseRecord))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class LeaseJson : System.Text.Json.Serialization.JsonSerializerContext;
