using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Tests.Threading;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>
/// A client that never reads its replies blocks the pool threads sending them; the server claims
/// that many extra pool threads while it does (so other clients are not starved) and gives them
/// back when the client goes.
/// </summary>
[Collection(ThreadPoolMinimumCollection.Name)]
public class NbdPoolStallWatchTests
{
    private const ushort Read = 0, Flush = 3;

    [Fact]
    public void Pool_threads_held_by_a_client_that_does_not_read_are_claimed_while_it_stays_and_given_back()
    {
        ThreadPool.GetMinThreads(out int before, out _);
        using var srv = new NbdTestServer(new MemoryDevice(64L << 20), replyWriteTimeout: TimeSpan.FromSeconds(60), connectionAllowance: 0);
        var watch = srv.Server.StallWatch!;
        // Simple replies: every read answers with all its bytes. Reads above 1 MiB run on the pool.
        var hog = srv.Client().Connect(structured: false, meta: false);
        for (int i = 0; i < 8; i++) hog.SendRequest(Read, 0, 16u << 20, cookie: (ulong)i);
        Poll.Until(() => watch.Claimed >= 1, "the stalled reply's pool threads to be claimed");
        ThreadPool.GetMinThreads(out int during, out _);
        Assert.True(during >= before + 1, $"pool minimum {during} while {watch.Claimed} threads are claimed (before: {before})");

        // Another client is served meanwhile.
        using var other = srv.Client().Connect(structured: false, meta: false);
        other.SendRequest(Flush, 0, 0, cookie: 42);
        var reply = other.ReadReply();
        Assert.Equal((0u, 42ul), (reply.Error, reply.Cookie));

        hog.Dispose();
        Poll.Until(() => watch.Claimed == 0, "the claim to end once the client left");
        Poll.Until(() => { ThreadPool.GetMinThreads(out int now, out _); return now == before; }, "the pool minimum to return");
    }
}
