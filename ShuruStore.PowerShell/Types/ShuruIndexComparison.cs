namespace ShuruStore.Commands;

/// <summary>Totals of a comparison of two indexes (Compare-ShuruChunkIndex -Summary).</summary>
public sealed class ShuruIndexComparison
{
    public required string ReferencePath { get; init; }
    public required string DifferencePath { get; init; }
    /// <summary>The larger of the two disk sizes.</summary>
    public required long DiskSize { get; init; }
    public required long DifferentChunks { get; init; }
    public required long DifferentBytes { get; init; }
    public required int RangeCount { get; init; }
    public required ShuruIndexDifference[] Ranges { get; init; }
}
