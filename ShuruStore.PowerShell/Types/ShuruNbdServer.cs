using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using ShuruStore.Core.Hosting;
using ShuruStore.Core.Nbd;

namespace ShuruStore.Commands;

/// <summary>
/// The handle to a running NBD server, returned by Start-ShuruNbdServer and tracked in the
/// session that started it. It keeps the server's threads alive after the pipeline that created
/// it ends; stopping it, disposing it, removing the module or closing the runspace shuts the
/// server down cleanly (flush, close clients, remove the socket).
/// Live properties (State, Connections, bytes) are read from the engine on every access.
/// </summary>
public sealed class ShuruNbdServer : IDisposable
{
    private const int MaxPendingEvents = 1000;
    private readonly DiskServer _engine;
    private readonly ConcurrentQueue<string> _pendingEvents = new();
    private readonly List<string> _checkpoints = [];
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal ShuruNbdServer(string name, DiskServer engine, Runspace? owner)
    {
        Name = name;
        _engine = engine;
        RunspaceId = owner?.InstanceId ?? Guid.Empty;
        _engine.Server.Event += OnServerEvent;
    }

    /// <summary>The server's name in this session.</summary>
    public string Name { get; }

    /// <summary>The URI a VM, qemu or any NBD client connects to.</summary>
    public string Uri => _engine.Server.Uri;

    /// <summary>The Unix socket the server listens on.</summary>
    public string SocketPath => _engine.Server.SocketPath;

    /// <summary>Chunk store or flat image.</summary>
    public ShuruDiskMode Mode => _engine.Disk is null ? ShuruDiskMode.Flat : ShuruDiskMode.ChunkStore;

    /// <summary>Size of the served disk in bytes.</summary>
    public long DiskSize => _engine.Device.Size;

    /// <summary>The index the disk booted from (null in lazy mode or for a flat image).</summary>
    public string? BootIndexPath => _engine.Disk?.BootIndexPath;

    /// <summary>The published checkpoint (s3://…) the disk's chain reaches, if any: booted from
    /// its URI, or from a local checkpoint saved over it.</summary>
    public string? RemoteIndexUri => _engine.Remote?.IndexUri;

    /// <summary>The base image at the bottom of the chain, read-only (shuru's rootfs; alias
    /// property RootfsPath).</summary>
    public string? BaseImagePath => _engine.Disk?.BaseImagePath;

    /// <summary>The chunk-store directory.</summary>
    public string? CasPath => _engine.Disk?.CasPath;

    /// <summary>The live-state file kept durable at every flush, if any.</summary>
    public string? StatePath => _engine.Options.StatePath;

    /// <summary>The flat image served, for a flat server.</summary>
    public string? ImagePath => _engine.Options.ImagePath;

    /// <summary>True when the export refuses writes.</summary>
    public bool ReadOnly => _engine.Options.ReadOnly;

    /// <summary>Running, Stopping or Stopped.</summary>
    public NbdServerState State => _engine.Server.State;

    /// <summary>Clients connected now.</summary>
    public int Connections => _engine.Server.GetStatistics().ActiveConnections;

    /// <summary>Clients that connected since the start.</summary>
    public long TotalConnections => _engine.Server.GetStatistics().TotalConnections;

    /// <summary>Bytes clients read.</summary>
    public long BytesRead => _engine.Server.GetStatistics().BytesRead;

    /// <summary>Bytes clients wrote.</summary>
    public long BytesWritten => _engine.Server.GetStatistics().BytesWritten;

    /// <summary>When the server started.</summary>
    public DateTimeOffset StartTime => _engine.StartTime;

    /// <summary>Checkpoints saved from this server, oldest first.</summary>
    public string[] Checkpoints
    {
        get { lock (_checkpoints) return [.. _checkpoints]; }
    }

    /// <summary>The runspace that owns the server.</summary>
    public Guid RunspaceId { get; }

    /// <summary>A snapshot of the protocol counters (requests by type, errors).</summary>
    public NbdServerStatistics GetStatistics() => _engine.Server.GetStatistics();

    /// <summary>Stops the server: flush, close clients, remove the socket. Idempotent.</summary>
    public void Stop()
    {
        ServerRegistry.Forget(this);
        try
        {
            _engine.Stop();
        }
        finally
        {
            // Unsubscribe only now, so the last events (clients closed, stopped) reach -Verbose.
            _engine.Server.Event -= OnServerEvent;
            // Every stop of a served disk goes through its handle (cmdlets, session end, signals),
            // so this is where waiters learn that the disk is flushed and closed.
            _stopped.TrySetResult();
        }
    }

    /// <summary>Completes once <see cref="Stop"/> has flushed and closed the disk
    /// (Wait-ShuruNbdServer waits on it).</summary>
    internal Task Stopped => _stopped.Task;

    /// <inheritdoc />
    public void Dispose() => Stop();

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Uri})";

    internal DiskServer Engine => _engine;

    internal void RecordCheckpoint(string path)
    {
        lock (_checkpoints) _checkpoints.Add(path);
    }

    /// <summary>Server events happen on server threads, where nothing can be written to a
    /// pipeline; they wait here until a cmdlet run with -Verbose drains them.</summary>
    internal IEnumerable<string> DrainEvents()
    {
        while (_pendingEvents.TryDequeue(out var message)) yield return message;
    }

    private void OnServerEvent(object? sender, NbdServerEventArgs e)
    {
        _pendingEvents.Enqueue($"[{DateTime.Now:HH:mm:ss}] {Name}: {e.Message}");
        while (_pendingEvents.Count > MaxPendingEvents) _pendingEvents.TryDequeue(out _);
    }
}
