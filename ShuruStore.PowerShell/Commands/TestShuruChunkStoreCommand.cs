using System.Management.Automation;
using ShuruStore.Core.Maintenance;

namespace ShuruStore.Commands;

/// <summary>Verifies a chunk store: missing and corrupt chunks, leftover files; -Repair removes
/// what is corrupt.</summary>
[Cmdlet(VerbsDiagnostic.Test, "ShuruChunkStore", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(ShuruStoreProblem))]
[OutputType(typeof(ShuruStoreTestResult))]
public sealed class TestShuruChunkStoreCommand : MaintenanceCmdlet
{
    private readonly List<string> _indexes = [];

    /// <summary>The chunk store to verify.</summary>
    [Parameter(Position = 0, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>Verify only the chunks these indexes (and their chains) reach; FullName from the pipeline.</summary>
    [Parameter(Position = 1, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[]? IndexPath { get; set; }

    /// <summary>Remove corrupt chunks and stale temporary files; put set-aside chunks back.</summary>
    [Parameter]
    public SwitchParameter Repair { get; set; }

    /// <summary>Temporary files younger than this are never removed.</summary>
    [Parameter]
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Return one object with the totals instead of one per problem.</summary>
    [Parameter]
    public SwitchParameter Summary { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        if (IndexPath is not null) foreach (string p in IndexPath) _indexes.Add(Resolve(p));
    }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        string cas = Resolve(CasPath);
        var problems = new List<ShuruStoreProblem>();
        var options = new StoreVerifyOptions
        {
            CasPath = cas,
            IndexPaths = _indexes.Distinct(StringComparer.Ordinal).ToList(),
            Repair = Repair,
            GracePeriod = GracePeriod,
            ConfirmRepair = p => ShouldProcess(p.Path, p.Kind == StoreProblemKind.QuarantinedChunk
                ? $"Restore chunk {p.Hash} set aside by an interrupted collection"
                : $"Remove {(p.Kind == StoreProblemKind.Corrupt ? "corrupt chunk" : "temporary file")} ({p.Detail})"),
        };
        StoreVerifyResult? r = null;
        bool ok = Run(cas, () => r = StoreVerifier.Verify(options, p =>
        {
            var o = Convert(p);
            if (Summary) problems.Add(o);
            else WriteObject(o);
        }, Progress(3), Cancel));
        if (!ok) return;
        WriteVerbose($"Checked {r!.ChunksChecked} chunks ({ByteSize.Format(r.BytesChecked)}) in {r.Elapsed.TotalSeconds:0.##} s: " +
                     $"{r.Missing} missing, {r.Corrupt} corrupt, {r.TempFiles} temporary files, {r.Repaired} repaired.");
        if (Summary)
        {
            WriteObject(new ShuruStoreTestResult
            {
                CasPath = cas, IsHealthy = r.IsHealthy, ChunksChecked = r.ChunksChecked, BytesChecked = r.BytesChecked,
                Missing = r.Missing, Corrupt = r.Corrupt, TempFiles = r.TempFiles, QuarantinedChunks = r.QuarantinedChunks,
                UnknownFiles = r.UnknownFiles, Repaired = r.Repaired, Problems = [.. problems], Duration = r.Elapsed,
            });
        }
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
