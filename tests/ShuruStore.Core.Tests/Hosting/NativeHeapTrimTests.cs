using System.Runtime.InteropServices;
using ShuruStore.Core.Hosting;
using ShuruStore.Core.Tests.Nbd;

namespace ShuruStore.Core.Tests.Hosting;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeHeapCollection
{
    /// <summary>Alone: servers started by tests running beside it would own the trim schedule,
    /// and their allocations would blur the resident size measured.</summary>
    public const string Name = "native heap";
}

/// <summary>The C heap's free pages go back to the system while disks are served.</summary>
[Collection(NativeHeapCollection.Name)]
public sealed class NativeHeapTrimTests
{
    private static long AnonymousResidentKiB() =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("RssAnon:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    [Fact]
    public void Free_pages_the_C_heap_keeps_are_returned_by_a_trim()
    {
        if (!OperatingSystem.IsLinux()) return;
        // 64 MiB in 64 KiB blocks from malloc (below its mmap threshold, so from an arena), all
        // touched; then every block but the last is freed: the last one pins the arena's top, so
        // freeing returns nothing and the 63 MiB below it stay resident, as an arena left by a
        // busy thread does.
        const int Blocks = 1024, Size = 64 * 1024;
        var blocks = new nint[Blocks];
        for (int i = 0; i < Blocks; i++)
        {
            blocks[i] = Marshal.AllocHGlobal(Size);
            unsafe { new Span<byte>((void*)blocks[i], Size).Fill((byte)(i | 1)); }
        }
        for (int i = 0; i < Blocks - 1; i++) Marshal.FreeHGlobal(blocks[i]);
        try
        {
            long kept = AnonymousResidentKiB();
            Assert.True(NativeHeapTrim.TrimNow());
            long trimmed = AnonymousResidentKiB();
            Assert.True(kept - trimmed >= 32 * 1024, $"a trim returned {(kept - trimmed) / 1024} MiB of 63 MiB free in the C heap (resident {kept / 1024} → {trimmed / 1024} MiB)");
        }
        finally { Marshal.FreeHGlobal(blocks[^1]); }
    }

    [Fact]
    public void Trims_run_while_a_disk_is_served_and_stop_with_the_last_one()
    {
        long calls = 0;
        var schedule = new NativeHeapTrim(TimeSpan.FromMilliseconds(20), () => { Interlocked.Increment(ref calls); return true; });
        Thread.Sleep(100);
        Assert.Equal(0, Interlocked.Read(ref calls));    // nothing served: no trims
        schedule.Start();
        schedule.Start();                                // a second disk: one schedule
        Poll.Until(() => schedule.Trims >= 3, "trims while two disks are served");
        schedule.Stop();                                 // one disk left: still trimming
        long one = schedule.Trims;
        Poll.Until(() => schedule.Trims >= one + 2, "trims while one disk is left");
        schedule.Stop();                                 // returns after a tick already queued or running
        long stopped = Interlocked.Read(ref calls);
        Thread.Sleep(300);
        Assert.Equal(stopped, Interlocked.Read(ref calls));
        Assert.Equal(stopped, schedule.Trims);
    }

    [Fact]
    public void The_process_schedule_runs_while_a_disk_server_is_hosted()
    {
        if (!OperatingSystem.IsLinux()) return;
        // The schedule is observed, not its 30 s ticks. Alone in its collection: no other server runs.
        using var dir = new TempDir();
        File.WriteAllBytes(dir["flat.raw"], new byte[1 << 20]);
        bool before = NativeHeapTrim.Process.IsRunning;
        using (var server = DiskServer.Start(new DiskServerOptions { ImagePath = dir["flat.raw"], SocketPath = dir["s.sock"], WarmUpRounds = 0 }))
        {
            Assert.True(NativeHeapTrim.Process.IsRunning);
        }
        Assert.Equal(before, NativeHeapTrim.Process.IsRunning);
        Assert.False(before, "a server of another test is still hosted");
    }
}
