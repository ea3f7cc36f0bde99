using ShuruStore.Core.Hosting;
using ShuruStore.Core.Tests.Storage;
using Xunit;

namespace ShuruStore.Core.Tests.Nbd;

public class ProcessWarmUpTests
{
    [Fact]
    public void The_rehearsal_sends_every_kind_of_request_to_both_scratch_disks_and_removes_its_scratch()
    {
        using var t = new TempDir();
        var result = ProcessWarmUp.Run(t.Path, rounds: 16);
        Assert.True(result.Completed, result.Problem);
        Assert.Null(result.Problem);
        Assert.Equal(16, result.Rounds);
        foreach (var requests in new[] { result.CowDiskRequests, result.FlatImageRequests })
        {
            // 16 rounds: 4 + 16 + 4 reads, 1 + 8 writes each; every 8th round block status,
            // write-zeroes and a flush; one disconnect.
            Assert.Equal(16 * 24, requests["Read"]);
            Assert.Equal(16 * 9, requests["Write"]);
            Assert.Equal(2, requests["BlockStatus"]);
            Assert.Equal(2, requests["WriteZeroes"]);
            Assert.Equal(2, requests["Flush"]);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path)); // scratch disks, chunks and sockets gone
    }

    [Fact]
    public void Without_a_scratch_place_nothing_runs_and_nothing_throws()
    {
        var result = ProcessWarmUp.Run(null);
        Assert.False(result.Completed);
        Assert.Equal(0, result.Rounds);
        Assert.Contains("/dev/shm", result.Problem);
        Assert.Empty(result.CowDiskRequests);
    }

    [Fact]
    public void A_rehearsal_that_fails_reports_why_instead_of_throwing()
    {
        using var t = new TempDir();
        string notADirectory = t["file"];
        File.WriteAllText(notADirectory, "x");
        var result = ProcessWarmUp.Run(notADirectory, rounds: 4);
        Assert.False(result.Completed);
        Assert.False(string.IsNullOrEmpty(result.Problem));
        Assert.Equal("x", File.ReadAllText(notADirectory));
    }
}
