using System.Management.Automation;
using System.Management.Automation.Runspaces;
using ShuruStore.Core;
using ShuruStore.Core.Hosting;

namespace ShuruStore.Commands;

/// <summary>
/// Serves a disk over NBD on a Unix socket: a copy-on-write chunk-store disk over a base image
/// (shuru's model), or a plain flat image. Returns a handle tracked in this session.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "ShuruNbdServer", SupportsShouldProcess = true, DefaultParameterSetName = ChunkStoreSet)]
[OutputType(typeof(ShuruNbdServer))]
public sealed class StartShuruNbdServerCommand : PSCmdlet
{
    private const string ChunkStoreSet = "ChunkStore";
    private const string FlatSet = "Flat";

    /// <summary>The base image (raw rootfs) at the bottom of the chain, ingested lazily.</summary>
    [Parameter(Position = 0, ParameterSetName = ChunkStoreSet)]
    [Alias("BaseImagePath")]
    [ValidateNotNullOrEmpty]
    public string? RootfsPath { get; set; }

    /// <summary>The chunk-store directory; created if missing.</summary>
    [Parameter(Position = 1, Mandatory = true, ParameterSetName = ChunkStoreSet)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>Boot from this index if it exists; otherwise start in lazy mode on the base image.</summary>
    [Parameter(Position = 2, ParameterSetName = ChunkStoreSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? IndexPath { get; set; }

    /// <summary>The Unix socket to listen on.</summary>
    [Parameter(Position = 3, Mandatory = true, ParameterSetName = ChunkStoreSet)]
    [Parameter(Position = 1, Mandatory = true, ParameterSetName = FlatSet)]
    [ValidateNotNullOrEmpty]
    public string SocketPath { get; set; } = null!;

    /// <summary>Grow the disk to this size in bytes (accepts 4GB); never shrinks.</summary>
    [Parameter(Position = 4, ParameterSetName = ChunkStoreSet)]
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

    /// <summary>Serve this raw image as a flat file, with no chunk store.</summary>
    [Parameter(Position = 0, Mandatory = true, ParameterSetName = FlatSet)]
    [ValidateNotNullOrEmpty]
    public string ImagePath { get; set; } = null!;

    /// <summary>Refuse writes (clients get EPERM).</summary>
    [Parameter]
    public SwitchParameter ReadOnly { get; set; }

    /// <summary>A name for the server in this session (default: shuru1, shuru2, ...).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidatePattern(@"^[^*?\[\]]+$")]
    public string? Name { get; set; }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        var runspace = Runspace.DefaultRunspace;
        var existing = ServerRegistry.List(runspace);
        string name = Name ?? NextDefaultName(existing);
        if (existing.Any(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.ServerNameInUse, ErrorCategory.ResourceExists, name,
                $"A server named '{name}' is already running in this session. Choose another -Name or stop it with Stop-ShuruNbdServer -Name {name}."));
        }

        string socket = PathResolver.ResolveUnresolved(this, SocketPath);
        DiskServerOptions options;
        string what;
        if (ParameterSetName == FlatSet)
        {
            string image = PathResolver.ResolveUnresolved(this, ImagePath);
            options = new DiskServerOptions { SocketPath = socket, ImagePath = image, ReadOnly = ReadOnly, Description = $"ShuruStore flat image {Path.GetFileName(image)}" };
            what = $"flat image {image}";
        }
        else
        {
            string cas = PathResolver.ResolveUnresolved(this, CasPath);
            string? rootfs = RootfsPath is null ? null : PathResolver.ResolveUnresolved(this, RootfsPath);
            string? index = IndexPath is null ? null : PathResolver.ResolveUnresolved(this, IndexPath);
            string? state = StatePath is null ? null : PathResolver.ResolveUnresolved(this, StatePath);
            options = new DiskServerOptions
            {
                SocketPath = socket,
                RootfsPath = rootfs,
                CasPath = cas,
                IndexPath = index,
                DiskSize = DiskSize,
                StatePath = state,
                ReadOnly = ReadOnly,
                DirtyBudgetBytes = DirtyMemoryLimit,
                Description = "ShuruStore chunk-store disk",
            };
            what = index is not null && File.Exists(index)
                ? $"index {index} (chunk store {cas})"
                : $"base image {rootfs ?? "(none: blank disk)"} in lazy mode (chunk store {cas})";
        }

        if (!ShouldProcess($"{what} on {socket}", "Start NBD server"))
            return;

        DiskServer engine;
        try
        {
            engine = DiskServer.Start(options);
        }
        catch (ShuruStoreException e)
        {
            ThrowTerminatingError(ShuruErrors.From(e));
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(ShuruErrors.FromUnexpected(e, socket));
            return;
        }

        if (ParameterSetName == ChunkStoreSet && !ReadOnly && StatePath is null)
        {
            // As in shuru, the live map of an un-checkpointed disk lives in memory only.
            WriteWarning($"Server '{name}' keeps its live disk map in memory only: writes not saved with Save-ShuruCheckpoint " +
                         "are lost when it stops or crashes, even after the guest's FLUSH. Use -StatePath to keep them durable.");
        }
        var handle = new ShuruNbdServer(name, engine, runspace);
        ServerRegistry.Add(runspace, handle);
        WriteVerbose($"Server '{name}' serves {what} ({ByteSize.Format(handle.DiskSize)}) at {handle.Uri}");
        WriteObject(handle);
    }

    private static string NextDefaultName(IReadOnlyList<ShuruNbdServer> existing)
    {
        for (int i = 1; ; i++)
        {
            string candidate = "shuru" + i;
            if (!existing.Any(s => string.Equals(s.Name, candidate, StringComparison.OrdinalIgnoreCase))) return candidate;
        }
    }
}
