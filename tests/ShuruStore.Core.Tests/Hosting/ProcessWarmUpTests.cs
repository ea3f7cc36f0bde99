using ShuruStore.Core.Hosting;
using ShuruStore.Core.Tests.Storage;
using Xunit;

namespace ShuruStore.Core.Tests.Hosting;

public class ProcessWarmUpTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_rehearsal_sends_every_kind_of_request_to_its_scratch_disk_and_removes_its_scratch(bool chunkStore)
    {
        using var t = new TempDir();
        var result = ProcessWarmUp.Run(t.Path, chunkStore, rounds: 16, clientsConnected: () => 0);
        Assert.True(result.Completed, result.Problem);
        Assert.Null(result.Problem);
        Assert.Equal(16, result.Rounds);
        // 16 rounds: 4 + 16 + 4 reads, 1 + 8 writes each; every 8th round block status,
        // write-zeroes and a flush; then one burst of short connections, a read each.
        Assert.Equal(16 * 24 + ProcessWarmUp.ConnectsPerPhase, result.Requests["Read"]);
        Assert.Equal(16 * 9, result.Requests["Write"]);
        Assert.Equal(2, result.Requests["BlockStatus"]);
        Assert.Equal(2, result.Requests["WriteZeroes"]);
        Assert.Equal(2, result.Requests["Flush"]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path)); // scratch disk, chunks and socket gone
    }

    [Fact]
    public void A_long_rehearsal_runs_in_bursts_on_fresh_disks_and_counts_every_request()
    {
        using var t = new TempDir();
        int rounds = 2 * ProcessWarmUp.PhaseRounds + 3; // three bursts, the last one short
        var result = ProcessWarmUp.Run(t.Path, chunkStore: true, rounds, clientsConnected: () => 0);
        Assert.True(result.Completed, result.Problem);
        Assert.Equal(rounds, result.Rounds);
        Assert.Equal(rounds * 24 + 3 * ProcessWarmUp.ConnectsPerPhase, result.Requests["Read"]);
        Assert.Equal(rounds * 9, result.Requests["Write"]);
        Assert.Equal(rounds / 8, result.Requests["Flush"]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path));
    }

    [Fact]
    public void A_client_that_comes_and_goes_pauses_the_rehearsal_and_one_that_stays_stops_it()
    {
        using var t = new TempDir();
        int calls = 0;
        // One look before each round. Looks 3-5: a probe is connected (a pause); from look 10 on
        // a client stays (for longer than the rehearsal waits).
        var result = ProcessWarmUp.Run(t.Path, chunkStore: true, rounds: 1000, clientsConnected: () => ++calls is >= 3 and <= 5 || calls >= 10 ? 1 : 0);
        Assert.False(result.Completed);
        Assert.Equal(6, result.Rounds); // rounds 0-1, the pause (looks 3-6), rounds 2-5, then the client that stays
        Assert.Equal("clients stayed connected: stopped after 6 rounds", result.Problem);
        Assert.Equal(6 * 24, result.Requests["Read"]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path));
    }

    [Fact]
    public void Without_a_scratch_place_nothing_runs_and_nothing_throws()
    {
        var result = ProcessWarmUp.Run(null, chunkStore: true);
        Assert.False(result.Completed);
        Assert.Equal(0, result.Rounds);
        Assert.Contains("/dev/shm", result.Problem);
        Assert.Empty(result.Requests);
    }

    [Fact]
    public void A_rehearsal_that_fails_reports_why_instead_of_throwing()
    {
        using var t = new TempDir();
        string notADirectory = t["file"];
        File.WriteAllText(notADirectory, "x");
        var result = ProcessWarmUp.Run(notADirectory, chunkStore: false, rounds: 4);
        Assert.False(result.Completed);
        Assert.False(string.IsNullOrEmpty(result.Problem));
        Assert.Equal("x", File.ReadAllText(notADirectory));
    }

    [Fact]
    public void A_rehearsal_stopped_because_the_process_exits_still_deletes_its_scratch()
    {
        using var t = new TempDir();
        using var abandon = new CancellationTokenSource();
        int looks = 0;
        // The process starts exiting during the fourth round's look.
        var result = ProcessWarmUp.Run(t.Path, chunkStore: true, rounds: 1000, clientsConnected: () =>
        {
            if (++looks == 4) abandon.Cancel();
            return 0;
        }, abandon: abandon.Token);
        Assert.False(result.Completed);
        Assert.Equal("the process is exiting: stopped after 3 rounds", result.Problem);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path));
    }

    [Fact]
    public void The_scratch_of_a_killed_process_is_swept_and_a_live_ones_is_not()
    {
        using var t = new TempDir();
        string Scratch(string name)
        {
            string dir = Path.Combine(t.Path, name);
            Directory.CreateDirectory(Path.Combine(dir, "cas"));
            File.WriteAllText(Path.Combine(dir, "image.raw"), "x");
            return dir;
        }
        string dead = Scratch("shuru-warmup-2147483600-aa");           // beyond any pid_max: no such process
        string reused = Scratch("shuru-warmup-1-bb");                    // pid 1 started after this changed
        Directory.SetLastWriteTimeUtc(reused, new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        string live = Scratch("shuru-warmup-1-cc");                      // pid 1 started before this changed
        string mine = Scratch($"shuru-warmup-{Environment.ProcessId}-dd"); // this process's own
        string other = Scratch("shuru-warmup-notapid-ee");               // not a name we write
        string unrelated = Scratch("someone-else");

        Assert.Equal(2, ProcessWarmUp.SweepAbandoned(t.Path));

        Assert.False(Directory.Exists(dead));
        Assert.False(Directory.Exists(reused));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(mine));
        Assert.True(Directory.Exists(other));
        Assert.True(Directory.Exists(unrelated));
    }

    [Fact]
    public void A_rehearsal_sweeps_the_scratch_killed_processes_left_before_it_starts()
    {
        using var t = new TempDir();
        string dead = Path.Combine(t.Path, "shuru-warmup-2147483600-aa");
        Directory.CreateDirectory(dead);
        var result = ProcessWarmUp.Run(t.Path, chunkStore: false, rounds: 2, clientsConnected: () => 0);
        Assert.True(result.Completed, result.Problem);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t.Path));
    }
}
