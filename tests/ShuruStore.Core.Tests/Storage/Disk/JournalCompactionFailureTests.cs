using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Storage;

/// <summary>A compaction that fails must not leave the journal answering appends it may lose
/// (writing on to a file a failed replace left unlinked).</summary>
public class JournalCompactionFailureTests
{
    [Fact]
    public void AppendsAreRefusedAfterAFailedCompaction()
    {
        using var dir = new TempDir();
        string path = dir["live.state"];
        var header = new StateJournal.Header(1 << 20, "", "", new byte[32]);
        var journal = StateJournal.Create(path, header, []);
        journal.Append([(0, ChunkHash.ZeroChunk)]);

        Assert.ThrowsAny<InvalidOperationException>(() => journal.Compact(header, FailingSnapshot()));
        var e = Assert.Throws<IOException>(() => journal.Append([(1, ChunkHash.ZeroChunk)]));
        Assert.Contains("restart", e.Message);
        // What was appended before the failure is still there.
        journal.Dispose();
        var (_, records, reopened) = StateJournal.Open(path, readOnly: true, maxChunkCount: 16);
        reopened?.Dispose();
        Assert.Contains(records, r => r.Chunk == 0);
    }

    private static IEnumerable<(long, ChunkHash?)> FailingSnapshot()
    {
        yield return (0, ChunkHash.ZeroChunk);
        throw new InvalidOperationException("simulated failure while writing the compacted file");
    }
}
