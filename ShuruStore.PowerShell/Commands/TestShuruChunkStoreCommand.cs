using System.Management.Automation;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Remote;

namespace ShuruStore.Commands;

/// <summary>Verifies chunk stores: missing and corrupt chunks, leftover files; -Repair removes
/// what is corrupt. One result per store, whose IsHealthy says whether it is sound, or with
/// -Quiet just that [bool], as Test-Path and Test-Connection -Quiet answer.</summary>
/// <remarks>The default parameter set is the literal one: a store object from the pipeline binds
/// its CasPath by property name, and in the wildcard set the binder would also turn the whole
/// object into a string for -IndexPath.</remarks>
[Cmdlet(VerbsDiagnostic.Test, "ShuruChunkStore", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium,
    DefaultParameterSetName = LiteralSet)]
[OutputType(typeof(ShuruStoreTestResult), typeof(ShuruRemoteStoreTestResult), typeof(bool))]
public sealed class TestShuruChunkStoreCommand : MaintenanceCmdlet
{
    private const string PathSet = "Path";
    private const string LiteralSet = "LiteralPath";
    private readonly IndexesByStore _work = new();
    private readonly List<string> _remotes = [];

    /// <summary>The chunk store to verify, or a remote store s3://BUCKET/PREFIX; CasPath from the pipeline (Get-ShuruChunkStore).</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>Verify only the chunks these indexes (and their chains) reach; wildcards allowed.</summary>
    [Parameter(Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? IndexPath { get; set; }

    /// <summary>The same, taken literally (FullName or PSPath from Get-ChildItem).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralSet)]
    [Alias("LiteralPath", "PSPath", "LP", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[]? LiteralIndexPath { get; set; }

    /// <summary>Remove corrupt chunks and stale temporary files; put set-aside chunks back.</summary>
    [Parameter]
    public SwitchParameter Repair { get; set; }

    /// <summary>Temporary files younger than this are never removed.</summary>
    [Parameter]
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>For a remote store: check only the structure (indexes, maps, packs present and
    /// long enough), without downloading and hashing every chunk.</summary>
    [Parameter]
    public SwitchParameter Structure { get; set; }

    /// <summary>For a remote store: seconds an object-store request may take, retries included.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int RemoteTimeoutSec { get; set; } = 30;

    /// <summary>Return only whether each store is healthy.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        if (S3Location.IsS3Uri(CasPath))
        {
            // A remote store's roots are its published indexes, and it is repaired by publishing again.
            if (IndexPath is not null || LiteralIndexPath is not null || Repair)
            {
                ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.NotForRemoteStore, ErrorCategory.InvalidArgument, CasPath,
                    "-IndexPath and -Repair apply to local chunk stores. A remote store is checked whole (every published index), " +
                    "and repaired by publishing the damaged checkpoints again from a host that has their chunks."));
            }
            if (!_remotes.Contains(CasPath, StringComparer.Ordinal)) _remotes.Add(CasPath);
            return;
        }
        _work.Add(Resolve(CasPath), ResolveIndexes(IndexPath, LiteralIndexPath).ToList());
    }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        foreach (var (cas, indexes) in _work.Stores) Verify(cas, indexes);
        foreach (var uri in _remotes) VerifyRemote(uri);
    }

    private void VerifyRemote(string uri)
    {
        var problems = new List<ShuruRemoteProblem>();
        RemoteVerifyResult? r = null;
        bool ok = Run(uri, () =>
        {
            var root = S3Location.Parse(uri);
            using var remote = S3ObjectStore.FromEnvironment(root, ObjectStoreOptions.Default.WithDeadline(TimeSpan.FromSeconds(RemoteTimeoutSec)));
            r = RemoteVerifier.Verify(remote, root, new RemoteVerifyOptions { ReadChunks = !Structure }, p =>
            {
                problems.Add(new ShuruRemoteProblem { Kind = p.Kind.ToString(), Uri = p.Uri, Hash = p.Hash?.ToString(), Detail = p.Detail, IsFault = p.IsFault });
                if (p.IsFault) WriteWarning($"{p.Kind}: {p.Uri}: {p.Detail}");
                else WriteVerbose($"{p.Kind}: {p.Uri}: {p.Detail}");
            }, Progress(3), Cancel);
        });
        if (!ok) return;
        WriteVerbose($"Checked {r!.IndexesChecked} published indexes, {r.PacksChecked} packs, {r.ChunksChecked} chunks ({ByteSize.Format(r.BytesChecked)}) " +
                     $"in {r.Elapsed.TotalSeconds:0.##} s: {r.Faults} faults, {r.Notes} notes.");
        if (Quiet)
        {
            WriteObject(r.IsHealthy);
            return;
        }
        WriteObject(new ShuruRemoteStoreTestResult
        {
            CasPath = r.Root, IsHealthy = r.IsHealthy, IndexesChecked = r.IndexesChecked, PacksChecked = r.PacksChecked,
            ChunksChecked = r.ChunksChecked, BytesChecked = r.BytesChecked, Faults = r.Faults, Notes = r.Notes,
            Problems = [.. problems], Duration = r.Elapsed,
        });
    }

    private void Verify(string cas, IReadOnlyList<string> indexes)
    {
        var problems = new List<ShuruStoreProblem>();
        var options = new StoreVerifyOptions
        {
            CasPath = cas,
            IndexPaths = [.. indexes],
            Repair = Repair,
            GracePeriod = GracePeriod,
            WorkingDirectory = PathResolver.WorkingDirectory(this),
            ConfirmRepair = p => ShouldProcess(p.Path, p.Kind switch
            {
                StoreProblemKind.QuarantinedChunk => $"Restore chunk {p.Hash} set aside by an interrupted collection",
                StoreProblemKind.EndedRegistration => $"Remove the registration of an ended user that keeps nothing ({p.Detail})",
                StoreProblemKind.Corrupt => $"Remove corrupt chunk ({p.Detail})",
                _ => $"Remove temporary file ({p.Detail})",
            }),
        };
        StoreVerifyResult? r = null;
        bool ok = Run(cas, () => r = StoreVerifier.Verify(options, p =>
        {
            var problem = Convert(p);
            problems.Add(problem);
            WriteVerbose($"{problem.Kind}: {problem.Path} ({problem.Detail}){(problem.Repaired ? ", repaired" : "")}");
        }, Progress(3), Cancel));
        if (!ok) return;
        ChainWarnings.WritePathWarnings(this, r!.Warnings);
        WriteVerbose($"Checked {r.ChunksChecked} chunks ({ByteSize.Format(r.BytesChecked)}) in {r.Elapsed.TotalSeconds:0.##} s: " +
                     $"{r.Missing} missing, {r.Corrupt} corrupt, {r.MissingParents} missing parent indexes, {r.TempFiles} temporary files, {r.Repaired} repaired.");
        if (Quiet)
        {
            WriteObject(r.IsHealthy);
            return;
        }
        WriteObject(new ShuruStoreTestResult
        {
            CasPath = cas, IsHealthy = r.IsHealthy, ChunksChecked = r.ChunksChecked, BytesChecked = r.BytesChecked,
            Missing = r.Missing, Corrupt = r.Corrupt, TempFiles = r.TempFiles, QuarantinedChunks = r.QuarantinedChunks,
            UnknownFiles = r.UnknownFiles, EndedRegistrations = r.EndedRegistrations, MissingParents = r.MissingParents, Repaired = r.Repaired, Problems = [.. problems], Duration = r.Elapsed,
        });
    }

    private static ShuruStoreProblem Convert(StoreProblem p) => new()
    {
        Kind = (ShuruStoreProblemKind)(int)p.Kind,
        Hash = p.Hash?.ToString(),
        Path = p.Path,
        Length = p.Length,
        ReferencedBy = p.ReferencedBy,
        Detail = p.Detail,
        Repaired = p.Repaired,
    };
}
