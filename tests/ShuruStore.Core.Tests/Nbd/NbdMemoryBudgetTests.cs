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
            Poll.Until(() => srv.Server.PayloadMemory.Used >= Budget - (4L << 20), "the stalled writers to fill the budget");
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
        Poll.Until(() => srv.Server.PayloadMemory.Used > 0, "the reads to be admitted");
        Poll.Until(() => srv.Server.ConnectionCount == 0, "the connection to be cut off after the reply-write timeout");
        Poll.Until(() => srv.Server.PayloadMemory.Used == 0, "its memory to be freed");
        Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed);
    }

    [Fact]
    public void A_writer_that_stops_in_a_payload_held_in_the_budget_is_cut_off_and_its_memory_returns()
    {
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: 16L << 20, connectionAllowance: 0,
            payloadStallTimeout: TimeSpan.FromSeconds(1));
        using var hog = StalledWriter(srv, 4u << 20);
        Poll.Until(() => srv.Server.PayloadMemory.Used > 0, "the write to be admitted");
        Poll.Until(() => srv.Server.ConnectionCount == 0, "the stalled writer to be cut off after the payload-stall timeout");
        Assert.Equal(0, srv.Server.PayloadMemory.Used);
        lock (srv.Events)
            Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed && e.Message.Contains("sent nothing of a write payload"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_client_that_leaves_while_its_request_waits_for_memory_gives_its_connection_back(bool sentMoreFirst)
    {
        const long Budget = 8L << 20;
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: Budget, connectionAllowance: 0,
            payloadStallTimeout: TimeSpan.FromSeconds(120), grace: TimeSpan.FromSeconds(2));
        using var hog = StalledWriter(srv, (uint)Budget); // holds the whole budget and stays
        Poll.Until(() => srv.Server.PayloadMemory.Used == Budget, "the stalled writer to hold the budget");
        var leaver = srv.Client().Connect(structured: false, meta: false);
        leaver.SendRequest(Read, 0, 4u << 20, cookie: 9); // waits for memory the hog holds
        if (sentMoreFirst)
        {
            // Bytes the server has not read (it reads no more while the READ waits) stay in the socket when it goes.
            leaver.Send(NbdTestClient.Request(Write, 0, 1u << 20, cookie: 10));
            leaver.Send(new byte[100 * 1024]); // fits the socket buffer: the send returns
        }
        Poll.Until(() => srv.Server.ConnectionCount == 2, "the second client to connect");
        Thread.Sleep(300);
        leaver.Dispose();
        Poll.Until(() => srv.Server.ConnectionCount == 1, "the connection of the client that left to end", seconds: 5);
        Assert.Equal(Budget, srv.Server.PayloadMemory.Used);
        lock (srv.Events)
            Assert.Contains(srv.Events, e => e.Kind == NbdServerEventKind.ConnectionClosed && e.Message.Contains("went away while its request waited"));
    }

    [Theory]
    [InlineData(Write, 1ul << 40, 0)]   // past the end: ENOSPC, its payload read and dropped
    [InlineData(Read, 1ul << 40, 0)]    // past the end: EINVAL
    [InlineData(Write, 0ul, 0x8000)]    // an unknown flag: EINVAL
    public void A_request_that_will_be_refused_is_answered_at_once_while_stalled_writers_hold_the_budget(ushort type, ulong offset, ushort flags)
    {
        const long Budget = 8L << 20;
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), maxPayloadMemory: Budget, connectionAllowance: 0,
            payloadStallTimeout: TimeSpan.FromSeconds(120), grace: TimeSpan.FromSeconds(2));
        using var hog = StalledWriter(srv, (uint)Budget); // holds the whole budget and stays
        Poll.Until(() => srv.Server.PayloadMemory.Used == Budget, "the stalled writer to hold the budget");

        // Before the refusal was decided at the header, such a request waited in line for memory
        // behind the stalled writer (here for its 120 s payload-stall timeout).
        using var c = srv.Client().Connect(structured: false, meta: false);
        c.SendRequest(type, offset, 4u << 20, cookie: 5, flags: flags, payload: type == Write ? new byte[4 << 20] : null);
        var reply = Task.Run(() => c.ReadReply());
        Assert.True(reply.Wait(TimeSpan.FromSeconds(10)), "the refused request was not answered while the budget was held");
        Assert.NotEqual(0u, reply.Result.Error);
        Assert.Equal(5ul, reply.Result.Cookie);

        // The stream stayed in sync (the payload was dropped, not taken for requests) and the
        // connection serves the next request from its own allowance.
        c.SendRequest(Read, 0, 0, cookie: 6);
        var next = c.ReadReply();
        Assert.Equal((0u, 6ul), (next.Error, next.Cookie));
        Assert.Equal(Budget, srv.Server.PayloadMemory.Used);
    }

    [Fact]
    public void Waiters_are_served_in_the_order_they_came_and_one_that_gives_up_leaves_the_line()
    {
        var budget = new NbdMemoryBudget(10);
        Assert.True(budget.Acquire(8, () => false));
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        bool giveUp = false;
        var quitter = Task.Run(() => { if (!budget.Acquire(9, () => Volatile.Read(ref giveUp))) order.Enqueue("quitter gave up"); });
        Poll.Until(() => budget.Waiting == 1, "the first waiter to queue");
        var large = Task.Run(() => { budget.Acquire(6, () => false); order.Enqueue("large"); });
        Poll.Until(() => budget.Waiting == 2, "the second waiter to queue");
        // 2 bytes would fit beside the 8 held, but two came first: it waits its turn.
        var small = Task.Run(() => { budget.Acquire(2, () => false); order.Enqueue("small"); });
        Poll.Until(() => budget.Waiting == 3, "the third waiter to queue");
        Thread.Sleep(200);
        Assert.Empty(order);
        Volatile.Write(ref giveUp, true);               // the first in line leaves it
        Assert.True(quitter.Wait(TimeSpan.FromSeconds(5)));
        Thread.Sleep(200);
        Assert.Equal(["quitter gave up"], order);        // 6 does not fit beside 8, and 2 stays behind it
        budget.Release(8);
        Assert.True(Task.WaitAll([large, small], TimeSpan.FromSeconds(5)));
        Assert.Equal(["quitter gave up", "large", "small"], order);
        Assert.Equal(8, budget.Used);
    }
}
