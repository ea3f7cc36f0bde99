using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Maintenance;

namespace ShuruStore.Commands;

/// <summary>Materialises an index (with its whole chain) into a sparse raw image file. A chain
/// that stops at a missing parent is refused (ParentIndexMissing) unless -AllowMissingParent.</summary>
[Cmdlet(VerbsData.Export, "ShuruDisk", SupportsShouldProcess = true)]
[OutputType(typeof(ShuruExportResult))]
public sealed class ExportShuruDiskCommand : MaintenanceCmdlet
{
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);

    /// <summary>Index files to export; FullName from the pipeline.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] IndexPath { get; set; } = null!;

    /// <summary>The chunk store the indexes name chunks in.</summary>
    [Parameter(Position = 1, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>The raw image to write, or an existing directory to write &lt;index name&gt;.raw into.
    /// Default: &lt;index name&gt;.raw next to the index.</summary>
    [Parameter(Position = 2)]
    [ValidateNotNullOrEmpty]
    public string? Destination { get; set; }

    /// <summary>Replace an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Export an index whose chain stops at a parent index that does not exist, as the
    /// rest of the chain reads (as shuru would serve it): chunks set only in the missing parent
    /// come from the base image or are zeros.</summary>
    [Parameter]
    public SwitchParameter AllowMissingParent { get; set; }

    /// <summary>For a published index (s3://…): bytes of fetched chunks the chunk store keeps at
    /// most while the image is written; past it they are evicted again (0: no limit, every chunk
    /// of the chain is fetched into the store first).</summary>
    [Parameter]
    [ValidateRange(0L, long.MaxValue)]
    public long CacheLimit { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        string cas = Resolve(CasPath);
        foreach (string input in IndexPath)
        {
            // A published index (s3://…) is exported through the chunk store as its local cache.
            bool published = Core.Remote.S3Location.IsS3Uri(input);
            string index = published ? input : Resolve(input);
            if (CacheLimit > 0 && !published)
            {
                WriteError(ShuruErrors.Create(ShuruErrors.NotForLocalIndex, ErrorCategory.InvalidArgument, input,
                    $"-CacheLimit bounds the cache a published index (s3://…) is fetched through; '{input}' is a local index, whose chunks are all in '{cas}' already."));
                continue;
            }
            string dest;
            if (Destination is null && published)
            {
                WriteError(ShuruErrors.Create(ShuruErrors.DestinationRequired, ErrorCategory.InvalidArgument, input,
                    $"A published index ({input}) has no folder to write next to: give -Destination."));
                continue;
            }
            if (Destination is null) dest = System.IO.Path.ChangeExtension(index, ".raw");
            else
            {
                dest = Resolve(Destination);
                if (Directory.Exists(dest)) dest = System.IO.Path.Combine(dest, System.IO.Path.GetFileNameWithoutExtension(published ? index[(index.LastIndexOf('/') + 1)..] : index) + ".raw");
            }
            if (!_written.Add(dest))
            {
                WriteError(ShuruErrors.Create("DestinationForSeveralIndexes", ErrorCategory.InvalidArgument, index,
                    $"'{dest}' was already written for another index; '{index}' was skipped. Give -Destination a directory to export several indexes."));
                continue;
            }
            if (File.Exists(dest) && !Force)
            {
                WriteError(ShuruErrors.Create("DestinationExists", ErrorCategory.ResourceExists, dest,
                    $"The file '{dest}' already exists. Use -Force to replace it, or choose another -Destination."));
                continue;
            }
            if (!ShouldProcess(dest, $"Export index '{index}' from chunk store '{cas}' to a raw image"))
                continue;
            DiskExportResult? r = null;
            var options = new DiskExportOptions
            {
                IndexPath = index, CasPath = cas, Destination = dest, Overwrite = Force,
                AllowMissingParent = AllowMissingParent, WorkingDirectory = PathResolver.WorkingDirectory(this),
            };
            if (!Run(index, () => r = published
                    ? Core.Remote.PublishedIndexes.Export(index, cas, dest, Force, null, Progress(2), Cancel, CacheLimit)
                    : DiskExporter.Export(options, Progress(2), Cancel))) continue;
            ChainWarnings.WritePathWarnings(this, r!.Warnings);
            if (r.MissingParent is { } missing)
            {
                ChainWarnings.WriteMissingParent(this, missing,
                    $"'{dest}' holds what the rest of the chain reads (-AllowMissingParent): chunks set only in the missing parent are the base image's or zeros.");
            }
            WriteVerbose($"Exported '{index}' to '{dest}' ({ByteSize.Format(r.DiskSize)}, {ByteSize.Format(r.BytesWritten)} of data) in {r.Elapsed.TotalSeconds:0.##} s.");
            WriteObject(new ShuruExportResult
            {
                Destination = r.Destination, IndexPath = r.IndexPath, DiskSize = r.DiskSize, ChunkCount = r.ChunkCount,
                ChunksFromStore = r.ChunksFromStore, ChunksFromBase = r.ChunksFromBase, ChunksZero = r.ChunksZero,
                BytesWritten = r.BytesWritten, Duration = r.Elapsed,
            });
        }
    }
}
