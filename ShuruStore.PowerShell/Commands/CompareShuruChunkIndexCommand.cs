using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Shows where two checkpoints differ, as contiguous byte ranges (resolving both chains;
/// a chain that stops at a missing parent is compared as far as it goes, with a warning).</summary>
[Cmdlet(VerbsData.Compare, "ShuruChunkIndex")]
[OutputType(typeof(ShuruIndexDifference))]
[OutputType(typeof(ShuruIndexComparison))]
public sealed class CompareShuruChunkIndexCommand : PSCmdlet
{
    /// <summary>The first index.</summary>
    [Parameter(Position = 0, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string ReferencePath { get; set; } = null!;

    /// <summary>The second index.</summary>
    [Parameter(Position = 1, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string DifferencePath { get; set; } = null!;

    /// <summary>Return one object with the totals and the ranges.</summary>
    [Parameter]
    public SwitchParameter Summary { get; set; }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        var (a, shownA) = ResolveIndex(ReferencePath);
        var (b, shownB) = ResolveIndex(DifferencePath);
        IndexComparison result;
        try
        {
            result = IndexComparer.Compare(a, b, new IndexPathResolver(PathResolver.WorkingDirectory(this)));
        }
        catch (ShuruStoreException e)
        {
            ThrowTerminatingError(ShuruErrors.From(e));
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(ShuruErrors.FromUnexpected(e, a));
            return;
        }

        ChainWarnings.WritePathWarnings(this, result.Warnings);
        foreach (var missing in result.MissingParents)
        {
            ChainWarnings.WriteMissingParent(this, missing,
                "That side is compared as the rest of its chain reads: chunks set only in the missing parent count as the base image or zeros there.");
        }

        const int chunk = ChunkHasher.ChunkSize;
        var ranges = result.Differences.Select(r => new ShuruIndexDifference
        {
            Offset = r.Offset,
            Length = r.Length,
            FirstChunk = r.Offset / chunk,
            ChunkCount = (r.End + chunk - 1) / chunk - r.Offset / chunk,
            ReferencePath = shownA,
            DifferencePath = shownB,
        }).ToArray();
        WriteVerbose($"{shownA} and {shownB}: {result.DifferingChunks} of {result.ComparedChunks} chunks differ " +
                     $"({ByteSize.Format(result.DifferingBytes)} in {ranges.Length} ranges).");
        if (Summary)
        {
            WriteObject(new ShuruIndexComparison
            {
                ReferencePath = shownA,
                DifferencePath = shownB,
                DiskSize = Math.Max(result.DiskSizeA, result.DiskSizeB),
                DifferentChunks = result.DifferingChunks,
                DifferentBytes = result.DifferingBytes,
                RangeCount = ranges.Length,
                Ranges = ranges,
            });
        }
        else
        {
            foreach (var r in ranges) WriteObject(r);
        }
    }

    /// <summary>The index file to compare, and how results name it.</summary>
    private (string File, string Shown) ResolveIndex(string path)
    {
        // A published index (s3://…) is compared through its local mirror and shown by its URI.
        if (Core.Remote.S3Location.IsS3Uri(path))
        {
            try { return (Core.Remote.PublishedIndexes.Mirror(path), path); }
            catch (ShuruStoreException e) { ThrowTerminatingError(ShuruErrors.From(e, path)); }
        }
        string resolved = PathResolver.ResolveUnresolved(this, path);
        if (!File.Exists(resolved))
        {
            ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.IndexPathNotFound, ErrorCategory.ObjectNotFound, resolved,
                $"The index '{resolved}' does not exist."));
        }
        return (resolved, resolved);
    }
}
