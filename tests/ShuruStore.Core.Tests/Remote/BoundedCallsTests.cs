using System.Diagnostics;
using ShuruStore.Core.Remote;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>The deadline, retry and concurrency rules on their own, with attempts that fail or
/// hang on purpose (the S3 tests cover the same rules against the real cluster).</summary>
public sealed class BoundedCallsTests
{
    private static (ShuruErrorKind, string) Transient(Exception e) => (ShuruErrorKind.RemoteUnavailable, e.Message);

    [Fact]
    public async Task TransientFailuresAreRetriedWithBackoffUntilTheDeadline()
    {
        using var calls = new BoundedCalls(new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(1.5), InitialBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromMilliseconds(400) });
        int attempts = 0;
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ShuruStoreException>(() => calls.RunAsync<int>(_ =>
        {
            Interlocked.Increment(ref attempts);
            throw new HttpRequestException("Connection refused (127.0.0.1:1)");
        }, Transient, "GET s3://b/k", "s3://b/k", CancellationToken.None));
        Assert.Equal(ShuruErrorKind.RemoteUnavailable, e.Kind);
        Assert.InRange(sw.Elapsed, TimeSpan.FromSeconds(0.7), TimeSpan.FromSeconds(1.5) + Bound.Slack);
        Assert.InRange(attempts, 3, 20); // backoff grows: not hundreds of attempts
        Assert.Contains($"({attempts} attempts; last: Connection refused", e.Message);
        Assert.Equal("s3://b/k", e.Path);
        Assert.IsType<HttpRequestException>(e.InnerException);
    }

    [Fact]
    public async Task AHangingAttemptIsAbandonedAndRetriedWithinTheDeadline()
    {
        using var calls = new BoundedCalls(new ObjectStoreOptions { Deadline = TimeSpan.FromSeconds(2), AttemptTimeout = TimeSpan.FromMilliseconds(500) });
        int attempts = 0;
        var (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(TimeSpan.FromSeconds(2), () => calls.RunAsync(async ct =>
        {
            Interlocked.Increment(ref attempts);
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        }, Transient, "GET x", null, CancellationToken.None));
        Assert.Contains("last: no answer within", e.Message); // the last attempt may get less than 500 ms: what is left
        Assert.InRange(attempts, 2, 4);
    }

    [Fact]
    public async Task ASuccessAfterFailuresIsReturned()
    {
        using var calls = new BoundedCalls(new ObjectStoreOptions { InitialBackoff = TimeSpan.FromMilliseconds(1) });
        int attempts = 0;
        var r = await calls.RunAsync(_ => ++attempts < 3 ? throw new IOException("reset") : Task.FromResult(42), Transient, "x", null, CancellationToken.None);
        Assert.Equal(42, r);
        Assert.Equal(3, attempts);
    }

    [Fact]
    public async Task APermanentFailureEndsAtOnce()
    {
        using var calls = new BoundedCalls(ObjectStoreOptions.Default);
        int attempts = 0;
        var e = await Assert.ThrowsAsync<ShuruStoreException>(() => calls.RunAsync<int>(_ =>
        {
            attempts++;
            throw new InvalidOperationException("denied");
        }, _ => (ShuruErrorKind.RemoteAccessDenied, "AccessDenied (HTTP 403)"), "GET s3://b/k", "s3://b/k", CancellationToken.None));
        Assert.Equal(ShuruErrorKind.RemoteAccessDenied, e.Kind);
        Assert.Equal("GET s3://b/k: AccessDenied (HTTP 403)", e.Message);
        Assert.Equal(1, attempts);
        Assert.Null(e.InnerException); // only network errors are attached
    }

    [Fact]
    public async Task CallerCancellationIsNotAFailureOfTheStore()
    {
        using var calls = new BoundedCalls(ObjectStoreOptions.Default);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var sw = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => calls.RunAsync(async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        }, Transient, "x", null, cts.Token));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task AnAttemptFailingOtherwiseAfterTheCallerCancelledIsACancellation()
    {
        using var calls = new BoundedCalls(ObjectStoreOptions.Default);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => calls.RunAsync<int>(async ct =>
        {
            try { await Task.Delay(Timeout.Infinite, ct); }
            catch (OperationCanceledException) { }
            throw new HttpRequestException("connection reset while being cancelled");
        }, Transient, "x", null, cts.Token));
    }

    [Fact]
    public async Task WaitingForASlotCountsAgainstTheDeadline()
    {
        using var calls = new BoundedCalls(new ObjectStoreOptions { MaxConcurrency = 1, Deadline = TimeSpan.FromSeconds(1), AttemptTimeout = TimeSpan.FromSeconds(1) });
        var release = new TaskCompletionSource();
        var holder = calls.RunAsync(async _ => { await release.Task; return 1; }, Transient, "hold", null, CancellationToken.None);
        var (e, _) = await Bound.ThrowsWithin<ShuruStoreException>(TimeSpan.FromSeconds(1), () => calls.RunAsync(_ => Task.FromResult(2), Transient, "wait", null, CancellationToken.None));
        Assert.Contains("request slots stayed busy", e.Message);
        release.SetResult();
        Assert.Equal(1, await holder);
        Assert.Equal(1, calls.PeakInFlight);
    }
}
