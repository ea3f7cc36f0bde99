using System.Diagnostics;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Runs requests to a remote store within <see cref="ObjectStoreOptions"/>: at most
/// MaxConcurrency in flight, each attempt bounded by AttemptTimeout, transient failures retried
/// with jittered exponential backoff, the whole request bounded by Deadline. Knows nothing of S3:
/// the caller says which failures are transient and how to describe them.
/// </summary>
internal sealed class BoundedCalls : IDisposable
{
    private readonly ObjectStoreOptions _options;
    private readonly SemaphoreSlim _slots;
    private int _inFlight;
    private int _peakInFlight;

    public BoundedCalls(ObjectStoreOptions options)
    {
        options.Validate();
        _options = options;
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
    }

    public ObjectStoreOptions Options => _options;

    /// <summary>Attempts running now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most attempts that ever ran at once.</summary>
    public int PeakInFlight => Volatile.Read(ref _peakInFlight);

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, fails for good, or the deadline passes.
    /// </summary>
    /// <param name="attempt">One try; it must honour the token it is given (that is how a
    /// silent connection is abandoned).</param>
    /// <param name="classify">The kind of a failure: <see cref="ShuruErrorKind.RemoteUnavailable"/>
    /// is retried, any other kind ends the request at once; and a short description of it for
    /// the message (never credentials).</param>
    /// <param name="describe">What the request was, for messages: "GET s3://bucket/key".</param>
    /// <param name="path">The object the request was about, for the exception's Path.</param>
    /// <param name="cancellationToken">Ends the request at once with OperationCanceledException.</param>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> attempt,
        Func<Exception, (ShuruErrorKind Kind, string Detail)> classify,
        string describe, string? path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.Deadline);
        int attempts = 0;
        string lastDetail = "no attempt started";
        Exception? lastNetworkError = null;
        while (true)
        {
            var remaining = _options.Deadline - Stopwatch.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero) break;
            try
            {
                await _slots.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (attempts == 0) lastDetail = $"all {_options.MaxConcurrency} request slots stayed busy";
                break;
            }
            attempts++;
            var timeout = Min(_options.AttemptTimeout, _options.Deadline - Stopwatch.GetElapsedTime(started));
            using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            attemptCts.CancelAfter(timeout > TimeSpan.Zero ? timeout : TimeSpan.FromMilliseconds(1));
            int now = Interlocked.Increment(ref _inFlight);
            UpdatePeak(now);
            try
            {
                return await attempt(attemptCts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
            {
                // The caller gave up: whatever the attempt failed with on the way out, the
                // answer is a cancellation, as the contract says.
                throw new OperationCanceledException(cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                if (e is ShuruStoreException own && own.Kind != ShuruErrorKind.RemoteUnavailable) throw;
                ShuruErrorKind kind;
                string detail;
                if (attemptCts.IsCancellationRequested && e is OperationCanceledException or TimeoutException
                    || attemptCts.IsCancellationRequested && e.InnerException is OperationCanceledException or TimeoutException)
                {
                    (kind, detail) = (ShuruErrorKind.RemoteUnavailable, $"no answer within {Seconds(timeout)}");
                }
                else
                {
                    (kind, detail) = classify(e);
                }
                if (kind != ShuruErrorKind.RemoteUnavailable)
                    throw new ShuruStoreException(kind, $"{describe}: {detail}", path, SafeInner(e));
                lastDetail = detail;
                lastNetworkError = SafeInner(e) ?? lastNetworkError;
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
                _slots.Release();
            }
            cancellationToken.ThrowIfCancellationRequested();
            // The last sleep is cut short so that one more attempt fits before the deadline:
            // a store that comes back late is still seen, and a store that stays away fails at
            // the deadline, not some backoff before it.
            var left = _options.Deadline - Stopwatch.GetElapsedTime(started);
            if (left < LastAttemptMinimum) break;
            var backoff = Min(Backoff(attempts), left - LastAttemptMinimum);
            try
            {
                await Task.Delay(backoff, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                cancellationToken.ThrowIfCancellationRequested();
                break;
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        var attemptsText = attempts == 1 ? "1 attempt" : $"{attempts} attempts";
        throw new ShuruStoreException(ShuruErrorKind.RemoteUnavailable,
            $"{describe}: the object store did not answer within {Seconds(_options.Deadline)} ({attemptsText}; last: {lastDetail})",
            path, lastNetworkError);
    }

    /// <summary>Jittered exponential backoff: between half and all of InitialBackoff * 2^(n-1),
    /// capped at MaxBackoff.</summary>
    private TimeSpan Backoff(int attempts)
    {
        var ceiling = _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempts - 1, 20));
        ceiling = Math.Min(ceiling, _options.MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ceiling * (0.5 + Random.Shared.NextDouble() * 0.5));
    }

    /// <summary>The exception to attach as the inner one: only network-level failures, whose
    /// messages name a host and a socket error and nothing that came from the request's
    /// signature. Service errors are summarised in the message instead.</summary>
    private static Exception? SafeInner(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is System.Net.Http.HttpRequestException or System.Net.Sockets.SocketException or IOException) return x;
        return null;
    }

    private void UpdatePeak(int now)
    {
        int peak;
        while (now > (peak = Volatile.Read(ref _peakInFlight)) && Interlocked.CompareExchange(ref _peakInFlight, now, peak) != peak) { }
    }

    /// <summary>The least time worth starting an attempt with.</summary>
    private static readonly TimeSpan LastAttemptMinimum = TimeSpan.FromMilliseconds(50);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    internal static string Seconds(TimeSpan t) => t.TotalSeconds >= 1 ? $"{t.TotalSeconds:0.#} s" : $"{t.TotalMilliseconds:0} ms";

    public void Dispose() => _slots.Dispose();
}
