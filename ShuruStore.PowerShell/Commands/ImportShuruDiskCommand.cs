using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Maintenance;

namespace ShuruStore.Commands;

/// <summary>Ingests a raw image (or a byte range of one) into a chunk store and writes an index
/// for it: standalone, or on top of a parent index or a fallback image.</summary>
[Cmdlet(VerbsData.Import, "ShuruDisk", SupportsShouldProcess = true)]
[OutputType(typeof(ShuruImportResult))]
public sealed class ImportShuruDiskCommand : MaintenanceCmdlet
{
    private int _images;

    /// <summary>The raw image to read.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = null!;

    /// <summary>The chunk store to write to; created if missing.</summary>
    [Parameter(Position = 1, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>The index to write. Default: the image's name with the extension .idx, next to it.</summary>
    [Parameter(Position = 2)]
    [ValidateNotNullOrEmpty]
    public string? IndexPath { get; set; }

    /// <summary>First byte of the image to import.</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long Offset { get; set; }

    /// <summary>Bytes to import (default: to the end of the image).</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long Length { get; set; }

    /// <summary>Import on top of this index.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ParentIndexPath { get; set; }

    /// <summary>Import on top of this base image (the index names it as its fallback).</summary>
    [Parameter]
    [Alias("FallbackPath")]
    [ValidateNotNullOrEmpty]
    public string? BaseImagePath { get; set; }

    /// <summary>Replace an existing index file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        string image = Resolve(Path);
        if (IndexPath is not null && ++_images > 1)
        {
            WriteError(ShuruErrors.Create("IndexPathForSeveralImages", ErrorCategory.InvalidArgument, image,
                $"-IndexPath names one index, but several images came down the pipeline; '{image}' was skipped. Omit -IndexPath to write <image>.idx next to each image."));
            return;
        }
        string index = IndexPath is not null ? Resolve(IndexPath) : System.IO.Path.ChangeExtension(image, ".idx");
        string cas = Resolve(CasPath);
        if (ImagePaths.Problem(image) is { } problem)
        {
            WriteError(problem);
            return;
        }
        if (File.Exists(index) && !Force)
        {
            WriteError(ShuruErrors.Create(ShuruErrors.CheckpointExists, ErrorCategory.ResourceExists, index,
                $"The index '{index}' already exists. Use -Force to replace it, or choose another -IndexPath."));
            return;
        }
        string range = MyInvocation.BoundParameters.ContainsKey(nameof(Offset)) || MyInvocation.BoundParameters.ContainsKey(nameof(Length))
            ? $" (bytes {Offset} to {(MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? (Offset + Length).ToString() : "end")})" : "";
        if (!ShouldProcess(index, $"Import '{image}'{range} into chunk store '{cas}' and write the index"))
            return;
        var options = new DiskImportOptions
        {
            ImagePath = image,
            CasPath = cas,
            IndexPath = index,
            Offset = Offset,
            Length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null,
            ParentIndexPath = ParentIndexPath is null ? null : Resolve(ParentIndexPath),
            FallbackPath = BaseImagePath is null ? null : Resolve(BaseImagePath),
            Overwrite = Force,
            WorkingDirectory = PathResolver.WorkingDirectory(this),
        };
        DiskImportResult? r = null;
        if (!Run(image, () => r = DiskImporter.Import(options, Progress(1), Cancel))) return;
        ChainWarnings.WritePathWarnings(this, r!.Warnings);
        WriteVerbose($"Imported {ByteSize.Format(r!.DiskSize)} from '{image}' in {r.Elapsed.TotalSeconds:0.##} s: {r.ChunksNew} new chunks " +
                     $"({ByteSize.Format(r.BytesStored)}), {r.ChunksPresent} already present, {r.ChunksZero} zero, {r.ChunksInherited} inherited.");
        WriteObject(new ShuruImportResult
        {
            IndexPath = r.IndexPath, ImagePath = r.ImagePath, CasPath = cas, ParentPath = r.ParentPath, BaseImagePath = r.FallbackPath,
            Offset = Offset, DiskSize = r.DiskSize, ChunkCount = r.ChunkCount, ChunksNew = r.ChunksNew, ChunksPresent = r.ChunksPresent,
            ChunksZero = r.ChunksZero, ChunksInherited = r.ChunksInherited, BytesStored = r.BytesStored, Duration = r.Elapsed,
        });
    }
}
