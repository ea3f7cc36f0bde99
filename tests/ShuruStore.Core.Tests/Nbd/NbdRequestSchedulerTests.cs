using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Tests.Storage;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>
/// The connection's scheduling seam: a request served on the reader thread that turns out slow
/// is rescued (the socket is read by another thread meanwhile), and one connection keeps one
/// rescuer thread across its rescues instead of starting one per rescue; a request that is quick
/// costs the thread pool nothing, and the rescue watch sleeps when nothing runs. Counts the
/// process's threads and pool work, so it runs alone.
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public class NbdRequestSchedulerTests
{
    private const ushort Read = 0;

    /// <summary>The thread ids of the process's rescuer threads alive now.</summary>
    private static HashSet<string> RescuerThreads() =>
        Directory.EnumerateDirectories("/proc/self/task")
            .Where(t => { try { return File.ReadAllText(Path.Combine(t, "comm")).Trim() == "nbd-rescue"; } catch (IOException) { return false; } })
            .Select(Path.GetFileName).ToHashSet()!;

    [Fact]
    public void A_connection_rescued_again_and_again_keeps_one_rescuer_thread()
    {
        if (!OperatingSystem.IsLinux()) return;
        var before = RescuerThreads();
        var seen = new HashSet<string>();
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev);
        using var c = t.Client().Connect(structured: false);
        for (int round = 0; round < 5; round++)
        {
            dev.Gate.Reset();
            dev.Entered.Reset();
            c.SendRequest(Read, 0, 4096, cookie: 100 + (ulong)round);  // served inline, held at the gate
            Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
            c.SendRequest(Read, 8192, 4096, cookie: 200 + (ulong)round); // only a rescuer can read this one
            Assert.Equal(200 + (ulong)round, c.ReadReply(4096).Cookie);
            seen.UnionWith(RescuerThreads().Except(before)); // the rescuer is still reading: the inline request is held
            dev.Gate.Set();
            Assert.Equal(100 + (ulong)round, c.ReadReply(4096).Cookie);
        }
        Assert.Single(seen);
    }
    [Fact]
    public void Quick_inline_requests_wake_no_pool_thread_and_the_watch_parks_when_idle()
    {
        using var t = new NbdTestServer(new MemoryDevice(1 << 20));
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(Read, 0, 4096, cookie: 1);
        Assert.Equal(1ul, c.ReadReply(4096).Cookie);
        Thread.Sleep(50);
        // Each request served inline, then a pause past its rescue deadline: a deadline kept by a
        // runtime timer wakes a pool thread at every one of them, even though nothing is rescued.
        long before = ThreadPool.CompletedWorkItemCount;
        for (int i = 0; i < 100; i++)
        {
            c.SendRequest(Read, (ulong)(i % 16) * 4096, 4096, cookie: 10 + (ulong)i);
            Assert.Equal(10 + (ulong)i, c.ReadReply(4096).Cookie);
            Thread.Sleep(3);
        }
        long poolItems = ThreadPool.CompletedWorkItemCount - before;
        Assert.True(poolItems < 15, $"{poolItems} pool work items for 100 inline requests");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!t.Server.RescueWatch.Parked && DateTime.UtcNow < deadline) Thread.Sleep(10);
        Assert.True(t.Server.RescueWatch.Parked, "the rescue watch still polls with no request running");
    }
}
