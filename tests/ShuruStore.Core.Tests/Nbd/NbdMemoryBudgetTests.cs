using System.Diagnostics;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>
/// The server-wide payload budget: clients that stall in the middle of large requests hold at
/// most the budget between them, whatever their number; a client with small requests is served
/// throughout from its own allowance; a client that never reads its replies is cut off after the
/// reply-write timeout and what it held is freed; one that stops sending a payload held in the
/// budget is cut off after the payload-stall timeout; one that leaves while its request waits for
/// memory gives its connection back at once.
/// </summary>
public class NbdMemoryBudgetTests
{
    private const ushort Read = 0, Write = 1;

    /// <summary>Sends a WRITE header of <paramref name="length"/> bytes and only half its payload
    /// (in the background: a server holding back reads this connection no more).</summary>
    private static NbdTestClient StalledWriter(NbdTestServer srv, uint length)
    {
        var c = srv.Client().Connect();
        c.Send(NbdTestClient.Request(Write, 0, length, cookie: 7));
        _ = Task.Run(() => { try { c.Send(new byte[length / 2]); } catch (Exception) { /* closed by the test */ } });
        return c;
    }

    private static void WaitFor(Func<bool> condition, string what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException(what);
            Thread.Sleep(20);
        }
    }

    [Fact]
    public void Stalled_writers_hold_at_most_the_budget_and_a_small_client_is_served_throughout()
    {
        const long Budget = 16L << 20;
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: Budget, connectionAllowance: 1L << 20,
            grace: TimeSpan.FromSeconds(2));
        var hogs = new List<NbdTestClient>();
        try
        {
            // Ten clients each start a 4 MiB write and stop half-way: without a server-wide budget
            // they would hold 40 MiB; the fourth already waits before its payload is received.
            for (int i = 0; i < 10; i++) hogs.Add(StalledWriter(srv, 4u << 20));
            WaitFor(() => srv.Server.PayloadMemory.Used >= Budget - (4L << 20), "the stalled writers to fill the budget");
            Thread.Sleep(300);
            Assert.InRange(srv.Server.PayloadMemory.Used, 0, Budget);

            // A client with small requests is served from its own allowance, promptly.
            using var canary = srv.Client().Connect(structured: false, meta: false);
            var data = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
            var worst = TimeSpan.Zero;
            for (int i = 0; i < 50; i++)
            {
                var clock = Stopwatch.StartNew();
                canary.SendRequest(Write, (ulong)(8 << 20) + (ulong)i * 4096, 4096, cookie: (ulong)i, payload: data);
                Assert.Equal(0u, canary.ReadReply().Error);
                canary.SendRequest(Read, (ulong)(8 << 20) + (ulong)i * 4096, 4096, cookie: (ulong)i);
                var r = canary.ReadReply(4096);
                Assert.Equal(0u, r.Error);
                Assert.Equal(data, r.Payload);
                if (clock.Elapsed > worst) worst = clock.Elapsed;
            }
            Assert.True(worst < TimeSpan.FromSeconds(2), $"the canary waited {worst.TotalMilliseconds} ms");
            Assert.InRange(srv.Server.PayloadMemory.Used, 0, Budget);
        }
        finally
        {
            var clock = Stopwatch.StartNew();
            srv.Server.Stop(); // the stalled clients are still connected
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"stop took {clock.Elapsed}");
            foreach (var h in hogs) h.Dispose();
        }
        Assert.Equal(0, srv.Server.PayloadMemory.Used);
    }

    [Fact]
    public void A_client_that_never_reads_its_replies_is_cut_off_and_frees_what_it_held()
    {
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), replyWriteTimeout: TimeSpan.FromSeconds(1), connectionAllowance: 0);
        // Simple replies: every read answers with all its bytes (structured ones would send holes).
        using var hog = srv.Client().Connect(structured: false, meta: false);
        // Large reads, pipelined, replies never read: the socket buffer fills and the send waits.
        for (int i = 0; i < 8; i++) hog.SendRequest(Read, 0, 16u << 20, cookie: (ulong)i);
        WaitFor(() => srv.Server.PayloadMemory.Used > 0, "the reads to be admitted");
        WaitFor(() => srv.Server.ConnectionCount == 0, "the connection to be cut off after the reply-write timeout");
        WaitFor(() => srv.Server.PayloadMemory.Used == 0, "its memory to be freed");
        Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed);
    }

    [Fact]
    public void A_writer_that_stops_in_a_payload_held_in_the_budget_is_cut_off_and_its_memory_returns()
    {
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: 16L << 20, connectionAllowance: 0,
            payloadStallTimeout: TimeSpan.FromSeconds(1));
        using var hog = StalledWriter(srv, 4u << 20);
        WaitFor(() => srv.Server.PayloadMemory.Used > 0, "the write to be admitted");
        WaitFor(() => srv.Server.ConnectionCount == 0, "the stalled writer to be cut off after the payload-stall timeout");
        Assert.Equal(0, srv.Server.PayloadMemory.Used);
        lock (srv.Events)
            Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed && e.Message.Contains("sent nothing of a write payload"));
    }

    [Fact]
    public void A_client_that_leaves_while_its_request_waits_for_memory_gives_its_connection_back()
    {
        const long Budget = 8L << 20;
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: Budget, connectionAllowance: 0,
            payloadStallTimeout: TimeSpan.FromSeconds(120), grace: TimeSpan.FromSeconds(2));
        using var hog = StalledWriter(srv, (uint)Budget); // holds the whole budget and stays
        WaitFor(() => srv.Server.PayloadMemory.Used == Budget, "the stalled writer to hold the budget");
        var leaver = srv.Client().Connect(structured: false, meta: false);
        leaver.SendRequest(Read, 0, 4u << 20, cookie: 9); // waits for memory the hog holds
        WaitFor(() => srv.Server.ConnectionCount == 2, "the second client to connect");
        Thread.Sleep(300);
        leaver.Dispose();
        WaitFor(() => srv.Server.ConnectionCount == 1, "the connection of the client that left to end", seconds: 5);
        Assert.Equal(Budget, srv.Server.PayloadMemory.Used);
        lock (srv.Events)
            Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed && e.Message.Contains("went away while its request waited"));
    }
}
