using System.Management.Automation;
using System.Management.Automation.Runspaces;
using ShuruStore.Core;
using ShuruStore.Core.Hosting;

namespace ShuruStore.Commands;

/// <summary>
/// Serves a disk over NBD on a Unix socket: a copy-on-write chunk-store disk over a base image
/// (shuru's model), or a plain flat image. Returns a handle tracked in this session; one server
/// per checkpoint that comes down the pipeline.
/// </summary>
/// <remarks>
/// Position 0 is the image in both parameter sets, so the binder can tell them apart by what
/// follows: <c>Start-ShuruNbdServer disk.raw flat.sock</c> serves a flat image, and
/// <c>Start-ShuruNbdServer base.raw ./cas -SocketPath s.sock</c> a chunk-store disk (the socket
/// is named, so the second argument is the store). Two different position-0 parameters would
/// make the binder pick a set from the first argument alone.
/// <para>Every input is checked in ProcessRecord and the servers start together in
/// EndProcessing: an input that fails to bind or to validate stops the command before anything
/// listens, and a server that fails to start stops the ones started before it, so a pipeline
/// either starts one server per checkpoint or none.</para>
/// </remarks>
[Cmdlet(VerbsLifecycle.Start, "ShuruNbdServer", SupportsShouldProcess = true, DefaultParameterSetName = FlatSet)]
[OutputType(typeof(ShuruNbdServer))]
public sealed class StartShuruNbdServerCommand : PSCmdlet
{
    private const string ChunkStoreSet = "ChunkStore";
    private const string FlatSet = "Flat";

    private readonly List<StartRequest> _requests = [];

    /// <summary>The raw image: served as it is, or with -CasPath the base image under the chunk store.</summary>
    [Parameter(Position = 0, Mandatory = true, ParameterSetName = FlatSet)]
    [Parameter(Position = 0, ParameterSetName = ChunkStoreSet)]
    [ValidateNotNullOrEmpty]
    public string? ImagePath { get; set; }

    /// <summary>The base image (raw rootfs) at the bottom of the chain, ingested lazily; the
    /// same as -ImagePath in this set, by the name the rest of the module uses.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [Alias("RootfsPath")]
    [ValidateNotNullOrEmpty]
    public string? BaseImagePath { get; set; }

    /// <summary>The chunk-store directory; created if missing.</summary>
    [Parameter(Position = 1, Mandatory = true, ParameterSetName = ChunkStoreSet)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>Boot from this index if it exists; otherwise start in lazy mode on the base image.
    /// From the pipeline (strings, Get-ChildItem, Get-ShuruChunkIndex) the index must exist.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string? IndexPath { get; set; }

    /// <summary>The Unix socket to listen on, or a directory, written with a trailing '/', to put
    /// &lt;name&gt;.sock in.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ChunkStoreSet)]
    [Parameter(Position = 1, Mandatory = true, ParameterSetName = FlatSet)]
    [ValidateNotNullOrEmpty]
    public string SocketPath { get; set; } = null!;

    /// <summary>Grow the disk to this size in bytes (accepts 4GB); never shrinks.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [ValidateRange(0, long.MaxValue)]
    public long DiskSize { get; set; }

    /// <summary>Keep the live disk map durable in this file at every FLUSH; start again with the
    /// same file to resume where the last server stopped or crashed.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [ValidateNotNullOrEmpty]
    public string? StatePath { get; set; }

    /// <summary>Memory allowed for unsaved writes before chunks go to the store early.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [ValidateRange(1L * 1024 * 1024, long.MaxValue)]
    public long DirtyMemoryLimit { get; set; } = 256L * 1024 * 1024;

    /// <summary>Serve an index whose chain stops at a parent index that does not exist (shuru's
    /// checkpoint delete leaves such children), as shuru does: chunks set only in the missing
    /// parent read from the base image or as zeros. Without it such an index is refused.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    public SwitchParameter AllowMissingParent { get; set; }

    /// <summary>Refuse writes (clients get EPERM).</summary>
    [Parameter]
    public SwitchParameter ReadOnly { get; set; }

    /// <summary>Payload memory the server may hold for requests in flight across all its
    /// clients; a client that would pass it waits (0 or omitted: an eighth of the machine's memory,
    /// between 64 MiB and 256 MiB).</summary>
    [Parameter]
    [ValidateRange(0L, long.MaxValue)]
    public long MaxRequestMemory { get; set; }

    /// <summary>For a published checkpoint (-IndexPath s3://…): seconds a read of data not cached
    /// locally may take, retries included, before the client gets EIO.</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [ValidateRange(1, 3600)]
    public int RemoteTimeoutSec { get; set; } = 30;

    /// <summary>For a published checkpoint: the most bytes of fetched chunks kept in the local
    /// store; past it, fetched chunks the remote still has are evicted (0: no limit).</summary>
    [Parameter(ParameterSetName = ChunkStoreSet)]
    [ValidateRange(0L, long.MaxValue)]
    public long CacheLimit { get; set; }

    /// <summary>A name for the server in this session (default: shuru1, shuru2, ...).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidatePattern(@"^[^*?\[\]]+$")]
    public string? Name { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        var running = ServerRegistry.List(Runspace.DefaultRunspace);
        string name = Name ?? NextDefaultName(running);
        if (running.Any(s => SameName(s.Name, name)) || _requests.Any(r => SameName(r.Name, name)))
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.ServerNameInUse, ErrorCategory.ResourceExists, name,
                $"A server named '{name}' is already running in this session or starts in this command. Choose another -Name " +
                $"(or none, for shuru1, shuru2, ...), or stop the running one with Stop-ShuruNbdServer -Name {name}."));
        }

        string socket = PathResolver.ResolveUnresolved(this, SocketPath);
        // A directory holds one socket per server, so that a pipeline of checkpoints can start one
        // each. Only a path that says so (a trailing '/') is one: a directory found where a socket
        // was named is refused by the engine, never used, as for any other thing in the way.
        if (SocketPath.EndsWith('/') || SocketPath.EndsWith(Path.DirectorySeparatorChar)) socket = Path.Combine(socket, name + ".sock");
        if (_requests.Any(r => r.Options.SocketPath == socket))
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.SocketPathForSeveralServers, ErrorCategory.InvalidArgument, socket,
                $"-SocketPath names one socket, '{socket}', but several checkpoints came down the pipeline. Give -SocketPath " +
                "a directory ending in '/' to start one server per checkpoint, each on <directory>/<name>.sock. Nothing was started."));
        }

        _requests.Add(ParameterSetName == FlatSet ? FlatRequest(name, socket) : ChunkStoreRequest(name, socket));
    }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        var runspace = Runspace.DefaultRunspace;
        var started = new List<(ShuruNbdServer Handle, StartRequest Request)>();
        foreach (var request in _requests)
        {
            if (!ShouldProcess($"{request.What} on {request.Options.SocketPath}", "Start NBD server"))
                continue;
            try
            {
                var handle = new ShuruNbdServer(request.Name, DiskServer.Start(request.Options), runspace);
                // Tracked at once, so that a session ending or a signal arriving now stops it too.
                ServerRegistry.Add(runspace, handle);
                started.Add((handle, request));
            }
            catch (Exception e) when (e is ShuruStoreException or IOException or UnauthorizedAccessException)
            {
                StopQuietly(started.Select(s => s.Handle));
                ThrowTerminatingError(e is ShuruStoreException s
                    ? ShuruErrors.From(s)
                    : ShuruErrors.FromUnexpected(e, request.Options.SocketPath));
            }
        }

        if (started.Count > 0) SessionLifetime.WarnIfRunspaceIsShortLived(this);
        foreach (var (handle, request) in started)
        {
            if (handle.Mode == ShuruDiskMode.ChunkStore && !handle.ReadOnly && handle.StatePath is null)
            {
                // As in shuru, the live map of an un-checkpointed disk lives in memory only.
                WriteWarning($"Server '{handle.Name}' keeps its live disk map in memory only: writes not saved with Save-ShuruCheckpoint " +
                             "are lost when it stops or crashes, even after the guest's FLUSH. Use -StatePath to keep them durable.");
            }
            if (handle.Engine.Disk is { } disk)
            {
                ChainWarnings.WritePathWarnings(this, disk.ChainWarnings);
                if (disk.MissingParent is { } missing)
                {
                    ChainWarnings.WriteMissingParent(this, missing,
                        $"Server '{handle.Name}' serves the rest of the chain (-AllowMissingParent): chunks set only in the missing parent read from the base image or as zeros.");
                }
            }
            WriteVerbose($"Server '{handle.Name}' serves {request.What} ({ByteSize.Format(handle.DiskSize)}) at {handle.Uri}");
            WriteObject(handle);
        }
    }

    /// <summary>Undoes the starts of this command after a later one failed. Their own stop errors
    /// are dropped: the failure to report is the one that made the command give up.</summary>
    private static void StopQuietly(IEnumerable<ShuruNbdServer> servers)
    {
        foreach (var server in servers)
        {
            try { server.Stop(); }
            catch (Exception) { /* see summary */ }
        }
    }

    private StartRequest FlatRequest(string name, string socket)
    {
        string image = PathResolver.ResolveUnresolved(this, ImagePath!);
        if (ImagePaths.DirectoryProblem(image, ShuruErrorKind.ImageNotFound) is { } problem) ThrowTerminatingError(problem);
        return new StartRequest(name, $"flat image {image}", new DiskServerOptions
        {
            SocketPath = socket,
            ImagePath = image,
            ReadOnly = ReadOnly,
            Name = name,
            MaxPayloadMemory = MaxRequestMemory,
            Description = $"ShuruStore flat image {Path.GetFileName(image)}",
        });
    }

    private StartRequest ChunkStoreRequest(string name, string socket)
    {
        if (ImagePath is not null && BaseImagePath is not null)
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.BaseImageGivenTwice, ErrorCategory.InvalidArgument, BaseImagePath,
                "-ImagePath and -BaseImagePath both name the base image under the chunk store; give only one of them."));
        }
        string cas = PathResolver.ResolveUnresolved(this, CasPath);
        string? baseImage = (BaseImagePath ?? ImagePath) is { } b ? PathResolver.ResolveUnresolved(this, b) : null;
        if (baseImage is not null && ImagePaths.DirectoryProblem(baseImage, ShuruErrorKind.BaseImageMissing) is { } problem) ThrowTerminatingError(problem);
        // A published checkpoint is named by its URI: never a path to resolve.
        bool published = Core.Remote.S3Location.IsS3Uri(IndexPath);
        string? index = IndexPath is null ? null : published ? IndexPath : PathResolver.ResolveUnresolved(this, IndexPath);
        // Named on the command line, an index that does not exist yet means "start lazily" (shuru's
        // start). A checkpoint from the pipeline names a file that must be there: serving the base
        // image instead would hand out the wrong disk.
        if (index is not null && !published && MyInvocation.ExpectingInput && !File.Exists(index))
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.IndexPathNotFound, ErrorCategory.ObjectNotFound, index,
                $"The index '{index}' from the pipeline does not exist. Nothing was started."));
        }
        string? state = StatePath is null ? null : PathResolver.ResolveUnresolved(this, StatePath);
        string what = published ? $"published checkpoint {index} (local cache {cas})"
            : index is not null && File.Exists(index)
            ? $"index {index} (chunk store {cas})"
            : $"base image {baseImage ?? "(none: blank disk)"} in lazy mode (chunk store {cas})";
        return new StartRequest(name, what, new DiskServerOptions
        {
            SocketPath = socket,
            RootfsPath = baseImage,
            CasPath = cas,
            IndexPath = index,
            DiskSize = DiskSize,
            StatePath = state,
            ReadOnly = ReadOnly,
            DirtyBudgetBytes = DirtyMemoryLimit,
            Name = name,
            MaxPayloadMemory = MaxRequestMemory,
            Description = "ShuruStore chunk-store disk",
            WorkingDirectory = PathResolver.WorkingDirectory(this),
            AllowMissingParent = AllowMissingParent,
            Remote = new Core.Remote.RemoteCheckpointOptions
            {
                ObjectStore = Core.Remote.ObjectStoreOptions.Default.WithDeadline(TimeSpan.FromSeconds(RemoteTimeoutSec)),
                Cache = Core.Remote.RemoteChunkStoreOptions.Default with { CacheLimitBytes = CacheLimit },
            },
        });
    }

    private string NextDefaultName(IReadOnlyList<ShuruNbdServer> running)
    {
        for (int i = 1; ; i++)
        {
            string candidate = "shuru" + i;
            if (!running.Any(s => SameName(s.Name, candidate)) && !_requests.Any(r => SameName(r.Name, candidate))) return candidate;
        }
    }

    private static bool SameName(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>One server to start: its name, what it serves (for messages) and the engine's options.</summary>
    private sealed record StartRequest(string Name, string What, DiskServerOptions Options);
}
