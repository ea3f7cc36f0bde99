using System.Management.Automation;
using System.Management.Automation.Runspaces;
using ShuruStore.Core;

namespace ShuruStore.Commands;

/// <summary>Saves a checkpoint of a running chunk-store disk: an index file naming every chunk,
/// with the booted index as its parent and the base image as its fallback.</summary>
[Cmdlet(VerbsData.Save, "ShuruCheckpoint", SupportsShouldProcess = true, DefaultParameterSetName = ServerSet)]
[OutputType(typeof(ShuruChunkIndex))]
public sealed class SaveShuruCheckpointCommand : PSCmdlet
{
    private const string ServerSet = "Server";
    private const string NameSet = "Name";

    /// <summary>The server whose disk to checkpoint, typically from the pipeline.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ServerSet)]
    [ValidateNotNull]
    public ShuruNbdServer Server { get; set; } = null!;

    /// <summary>The name of the server whose disk to checkpoint.</summary>
    [Parameter(Mandatory = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = null!;

    /// <summary>The index file to write.</summary>
    [Parameter(Position = 0, Mandatory = true)]
    [Alias("IndexPath")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>Overwrite an existing file (never the booted index or its chain).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        var server = Server;
        if (ParameterSetName == NameSet)
        {
            // -Name names exactly one server: no wildcards, so a pattern can never pick one at random.
            server = ServerRegistry.List(Runspace.DefaultRunspace)
                .FirstOrDefault(s => string.Equals(s.Name, Name, StringComparison.OrdinalIgnoreCase))!;
            if (server is null)
            {
                WriteError(ShuruErrors.Create(ShuruErrors.ServerNotFound, ErrorCategory.ObjectNotFound, Name,
                    $"No ShuruStore server named '{Name}' runs in this session. Get-ShuruNbdServer lists the running ones."));
                return;
            }
        }
        if (server.State != Core.Nbd.NbdServerState.Running)
        {
            WriteError(ShuruErrors.Create(ShuruErrors.ServerStopped, ErrorCategory.InvalidOperation, server,
                $"Server '{server.Name}' is {server.State}; a checkpoint needs a running server. Start it again with Start-ShuruNbdServer."));
            return;
        }
        string target = PathResolver.ResolveUnresolved(this, Path);
        if (File.Exists(target) && !Force)
        {
            WriteError(ShuruErrors.Create(ShuruErrors.CheckpointExists, ErrorCategory.ResourceExists, target,
                $"The file '{target}' already exists. Use -Force to replace it, or choose another path."));
            return;
        }
        if (!ShouldProcess(target, $"Save checkpoint of server '{server.Name}'"))
            return;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var info = server.Engine.SaveCheckpoint(target);
            server.RecordCheckpoint(target);
            WriteVerbose($"Checkpoint of '{server.Name}' saved to {target} in {clock.Elapsed.TotalMilliseconds:0.#} ms " +
                         $"({info.ChunksSet} of {info.ChunkCount} entries set, parent {info.ParentPath ?? "none"}).");
            var view = info.Chain is { } chain ? Core.Storage.IndexChainView.FromChain(chain) : Core.Storage.IndexChainView.Open(target);
            WriteObject(ShuruChunkIndexFactory.FromView(view));
        }
        catch (ShuruStoreException e)
        {
            WriteError(ShuruErrors.From(e, target));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(ShuruErrors.FromUnexpected(e, target));
        }
        ServerVerbose.Drain(this, server);
    }
}
