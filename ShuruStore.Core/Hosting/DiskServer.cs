using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Hosting;

/// <summary>
/// One served disk: a block device (chunk-store disk or flat image) and the NBD server that
/// exports it, started and stopped as a unit. This is the engine object the cmdlets hold; it owns
/// both halves so that stopping always flushes the device after the last client request.
/// </summary>
public sealed class DiskServer : IDisposable
{
    private readonly object _stopLock = new();
    private bool _stopped;

    private DiskServer(DiskServerOptions options, IBlockDevice device, CowDisk? disk, RemoteCheckpoint? remote, NbdServer server)
    {
        Options = options;
        Device = device;
        Disk = disk;
        Remote = remote;
        Server = server;
        StartTime = DateTimeOffset.Now;
    }

    /// <summary>The options the disk was started with.</summary>
    public DiskServerOptions Options { get; }

    /// <summary>The exported device.</summary>
    public IBlockDevice Device { get; }

    /// <summary>The chunk-store disk, or null when a flat image is served.</summary>
    public CowDisk? Disk { get; }

    /// <summary>The remote tier when the disk's chain reaches a published checkpoint (booted from
    /// an <c>s3://</c> URI, or from a local checkpoint saved over one), else null.</summary>
    public RemoteCheckpoint? Remote { get; }

    /// <summary>The NBD server.</summary>
    public NbdServer Server { get; }

    /// <summary>When the server started listening.</summary>
    public DateTimeOffset StartTime { get; }

    /// <summary>Opens the device and starts listening. On any failure nothing is left open.</summary>
    public static DiskServer Start(DiskServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IBlockDevice device;
        CowDisk? disk = null;
        RemoteCheckpoint? remote = null;
        if (options.IsFlat)
        {
            device = new FlatFileDevice(options.ImagePath!, options.ReadOnly, options.DirectWrites);
        }
        else
        {
            if (string.IsNullOrEmpty(options.CasPath))
                throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                    "A chunk-store disk needs a chunk-store directory (CasPath), or serve a flat image instead (ImagePath).");
            var holder = new StoreHolder("server", options.Name, Path.GetFullPath(options.SocketPath));
            string? indexPath = options.IndexPath;
            try
            {
                if (S3Location.IsS3Uri(indexPath))
                {
                    // A published chain carries its base image's pieces: a local base would shadow nothing
                    // and mean something else on every host.
                    if (options.RootfsPath is not null)
                        throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                            $"A published checkpoint ({indexPath}) needs no base image; leave RootfsPath out.");
                    remote = RemoteCheckpoint.Open(indexPath!, options.CasPath, options.Remote, holder with { StatePath = FullOrNull(options.StatePath) });
                    indexPath = remote.LocalIndexPath;
                }
                else if (indexPath is not null && File.Exists(indexPath))
                {
                    remote = RemoteCheckpoint.OpenForLocalIndex(indexPath, options.CasPath, options.Remote, holder with { StatePath = FullOrNull(options.StatePath) });
                }
                disk = CowDisk.Open(new CowDiskOptions
                {
                    BaseImagePath = options.RootfsPath,
                    CasPath = options.CasPath,
                    IndexPath = indexPath,
                    DiskSize = options.DiskSize,
                    StatePath = options.StatePath,
                    ReadOnly = options.ReadOnly,
                    DirtyBudgetBytes = options.DirtyBudgetBytes,
                    Durability = options.Durability,
                    Holder = holder,
                    ChunkStore = remote?.Store,
                    WorkingDirectory = options.WorkingDirectory,
                    AllowMissingParent = options.AllowMissingParent,
                });
            }
            catch
            {
                remote?.Dispose();
                throw;
            }
            device = disk;
        }

        try
        {
            var server = new NbdServer(device, new NbdServerOptions
            {
                SocketPath = options.SocketPath,
                Description = options.Description,
                MaxPayloadMemory = options.MaxPayloadMemory,
            });
            server.Start();
            var hosted = new DiskServer(options, device, disk, remote, server);
            HostedServers.Add(hosted);
            ProcessWarmUp.StartOnce(chunkStore: disk is not null, options.WarmUpRounds); // the first client of this process gets compiled code
            return hosted;
        }
        catch
        {
            device.Dispose();
            remote?.Dispose();
            throw;
        }
    }

    private static string? FullOrNull(string? path) => path is null ? null : Path.GetFullPath(path);

    /// <summary>Saves a checkpoint of the live disk to <paramref name="path"/>.</summary>
    public CheckpointInfo SaveCheckpoint(string path)
    {
        if (Disk is null)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                $"The server on {Options.SocketPath} serves a flat image ({Options.ImagePath}); only chunk-store disks have checkpoints.");
        return Disk.SaveCheckpoint(path);
    }

    /// <summary>
    /// Stops accepting, lets in-flight requests finish, closes clients, removes the socket, then
    /// flushes and closes the device. Idempotent and safe from any thread.
    /// </summary>
    public void Stop()
    {
        // The whole stop runs under the lock so a second caller (a runspace closing while the
        // process exits, say) returns only once the disk is flushed and closed, never mid-flush.
        lock (_stopLock)
        {
            if (_stopped) return;
            HostedServers.Remove(this);
            try
            {
                Server.Stop();
            }
            finally
            {
                _stopped = true;
                try
                {
                    if ((Device.Capabilities & BlockDeviceCapabilities.ReadOnly) == 0) Device.Flush();
                }
                finally
                {
                    Device.Dispose();
                    Remote?.Dispose(); // after the disk: its last flush may still read chunks
                }
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => Stop();
}
