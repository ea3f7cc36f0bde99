using System.Management.Automation;
using System.Management.Automation.Runspaces;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Garbage-collects a chunk store: removes every chunk no given index, state file or
/// running server of this session references, unless it is younger than the grace period.</summary>
/// <remarks>ConfirmImpact is High, as for Remove-VM: a collection deletes data for good, and
/// -Force (collect with nothing to keep) must not be a way to do it without being asked. The
/// default parameter set is the literal one for the reason given on Test-ShuruChunkStore.</remarks>
[Cmdlet(VerbsCommon.Remove, "ShuruUnusedChunk", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = LiteralSet)]
[OutputType(typeof(ShuruCollectionResult), typeof(ShuruRemoteCollectionResult))]
public sealed class RemoveShuruUnusedChunkCommand : MaintenanceCmdlet
{
    private const string PathSet = "Path";
    private const string LiteralSet = "LiteralPath";
    private readonly IndexesByStore _work = new();
    private readonly List<string> _remotes = [];

    /// <summary>The chunk store to collect, or a remote store s3://BUCKET/PREFIX; CasPath from the pipeline (Get-ShuruChunkStore).</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>Indexes whose chunks (and their chains' chunks) are kept; wildcards allowed.</summary>
    [Parameter(Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? IndexPath { get; set; }

    /// <summary>The same, taken literally (FullName or PSPath from Get-ChildItem).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralSet)]
    [Alias("LiteralPath", "PSPath", "LP", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[]? LiteralIndexPath { get; set; }

    /// <summary>Live-state files whose chunks are kept (servers started with -StatePath that are not running).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? StatePath { get; set; }

    /// <summary>Chunks written more recently than this are kept.</summary>
    [Parameter]
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>For a remote store: seconds an object-store request may take, retries included.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int RemoteTimeoutSec { get; set; } = 30;

    /// <summary>Collect even though nothing is kept: no index, no state file, no running server.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        if (GracePeriod < TimeSpan.Zero)
            ThrowTerminatingError(ShuruErrors.Create("InvalidArgument", ErrorCategory.InvalidArgument, GracePeriod, "-GracePeriod cannot be negative."));
        if (S3Location.IsS3Uri(CasPath))
        {
            // The roots of a remote store are its published indexes, all of them, always.
            if (IndexPath is not null || LiteralIndexPath is not null || StatePath is not null)
            {
                ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.NotForRemoteStore, ErrorCategory.InvalidArgument, CasPath,
                    "-IndexPath and -StatePath apply to local chunk stores. In a remote store every published index is kept, with all it needs."));
            }
            if (!_remotes.Contains(CasPath, StringComparer.Ordinal)) _remotes.Add(CasPath);
            return;
        }
        _work.Add(Resolve(CasPath), ResolveIndexes(IndexPath, LiteralIndexPath).ToList());
    }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        var states = (StatePath ?? []).Select(Resolve).ToList();
        foreach (var (cas, indexes) in _work.Stores) Collect(cas, indexes, states);
        foreach (var uri in _remotes) CollectRemote(uri);
    }

    private void CollectRemote(string uri)
    {
        var options = new RemoteCollectionOptions { GracePeriod = GracePeriod };
        Run(uri, () =>
        {
            var root = S3Location.Parse(uri);
            using var remote = S3ObjectStore.FromEnvironment(root, ObjectStoreOptions.Default.WithDeadline(TimeSpan.FromSeconds(RemoteTimeoutSec)));
            // The collector reports progress on this thread; the objects it removes (from its own
            // threads) are listed once it returns.
            var plan = RemoteCollector.Plan(remote, root, options, Progress(4), Cancel);
            WriteVerbose($"{plan.PacksScanned} packs in {root}: {plan.PacksReferenced} referenced by {plan.Indexes} published indexes, " +
                         $"{plan.PacksProtectedByUploads} kept for uploads in progress, {plan.PacksSpared} unreferenced but younger than {GracePeriod}; " +
                         $"{plan.Unused.Count} objects unused ({ByteSize.Format(plan.BytesUnused)}).");
            if (plan.Indexes == 0 && plan.Unused.Count > 0 && !Force)
            {
                ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.NoChunksToKeep, ErrorCategory.InvalidOperation, uri,
                    $"No index is published in {root}, so every pack would be removed. Use -Force to empty it."));
            }
            var result = RemoteCollector.ToResult(plan);
            if (ShouldProcess(root.ToString(), $"Remove {plan.Unused.Count} unused objects ({ByteSize.Format(plan.BytesUnused)}); keep {plan.PacksReferenced} " +
                                               $"packs of {plan.Indexes} published indexes and {plan.PacksSpared + plan.PacksProtectedByUploads} recent or in use"))
            {
                var removed = new System.Collections.Concurrent.ConcurrentQueue<RemoteGarbage>();
                result = RemoteCollector.Sweep(plan, remote, options, removed.Enqueue, Progress(4), Cancel);
                foreach (var g in removed) WriteVerbose($"Removed {root.Child(g.Key)} ({g.Reason}, {ByteSize.Format(g.Length)}).");
            }
            WriteObject(new ShuruRemoteCollectionResult
            {
                CasPath = result.Root, WhatIf = result.Planned, Indexes = result.Indexes, PacksScanned = result.PacksScanned,
                PacksReferenced = result.PacksReferenced, PacksSpared = result.PacksSpared, PacksProtectedByUploads = result.PacksProtectedByUploads,
                ObjectsUnused = result.ObjectsUnused, BytesUnused = result.BytesUnused, ObjectsRemoved = result.ObjectsRemoved,
                BytesRemoved = result.BytesRemoved, ObjectsRescued = result.ObjectsRescued, Duration = result.Elapsed,
            });
        });
    }

    private void Collect(string cas, IReadOnlyList<string> indexes, List<string> states)
    {
        // Every running chunk-store server of this session on this store is a root, asked again before each deletion.
        var servers = ServerRegistry.List(Runspace.DefaultRunspace)
            .Where(s => s.Engine.Disk is { } d && string.Equals(d.CasPath, cas, StringComparison.Ordinal) && s.State == Core.Nbd.NbdServerState.Running)
            .ToList();
        var live = servers.Select(s => s.Engine.Disk!).Select(d => (Func<IReadOnlyCollection<ChunkHash>>)d.GetReferencedChunks).ToList();
        if (indexes.Count == 0 && states.Count == 0 && live.Count == 0 && !Force)
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.NoChunksToKeep, ErrorCategory.InvalidOperation, cas,
                $"Nothing references chunks in '{cas}': no -IndexPath, no -StatePath and no running server of this session uses it, so every chunk would be removed. " +
                "Give the indexes to keep (Get-ChildItem *.idx | Remove-ShuruUnusedChunk -CasPath ...), or use -Force to empty the store."));
        }
        var options = new GarbageCollectionOptions
        {
            CasPath = cas,
            IndexPaths = [.. indexes],
            StatePaths = states,
            LiveReferences = live,
            GracePeriod = GracePeriod,
            WorkingDirectory = PathResolver.WorkingDirectory(this),
        };
        GarbageCollectionPlan? plan = null;
        if (!Run(cas, () => plan = GarbageCollector.Plan(options, Progress(4), Cancel))) return;
        ChainWarnings.WritePathWarnings(this, plan!.Warnings);
        foreach (var missing in plan.MissingParents)
        {
            ChainWarnings.WriteMissingParent(this, missing,
                "Every chunk the rest of that chain names is kept; chunks only the missing parent named are kept only if something else names them.");
        }
        string[] names = [.. servers.Select(s => s.Name)];
        WriteVerbose($"{plan.ChunksScanned} chunks in '{cas}': {plan.ChunksReferenced} referenced by {options.IndexPaths.Count} indexes, " +
                     $"{states.Count} state files and {servers.Count} running servers; {plan.ChunksSpared} unreferenced but younger than {GracePeriod}; " +
                     $"{plan.Unused.Count} unused ({ByteSize.Format(plan.BytesUnused)}).");
        GarbageCollectionResult? result = plan.ToResult();
        // Asked even with nothing to remove: the sweep also puts back chunks an interrupted collection set aside.
        if (ShouldProcess(cas, $"Remove {plan.Unused.Count} unused chunks ({ByteSize.Format(plan.BytesUnused)}); keep {plan.ChunksReferenced} referenced and {plan.ChunksSpared} younger than {GracePeriod}"))
        {
            if (!Run(cas, () => result = GarbageCollector.Sweep(plan, options, u => WriteVerbose($"Removed chunk {u.Hash} ({ByteSize.Format(u.Length)})."), Progress(4), Cancel)))
                return;
        }
        WriteObject(new ShuruCollectionResult
        {
            CasPath = cas, WhatIf = result!.Planned, ChunksScanned = result.ChunksScanned, ChunksReferenced = result.ChunksReferenced,
            ChunksSpared = result.ChunksSpared, ChunksUnused = result.ChunksUnused, BytesUnused = result.BytesUnused,
            ChunksRemoved = result.ChunksRemoved, BytesRemoved = result.BytesRemoved, ChunksRescued = result.ChunksRescued,
            LiveServers = names, Users = [.. result.Registrations.Where(r => r.IsRoot).Select(ShuruStoreUser.From)], Duration = result.Elapsed,
            MissingParents = [.. result.MissingParents.Select(m => m.MissingPath).Distinct()],
        });
    }
}
