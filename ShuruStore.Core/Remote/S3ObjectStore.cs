using System.Net;
using System.Runtime.InteropServices;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ShuruStore.Core.Remote;

/// <summary>
/// An <see cref="IObjectStore"/> on an S3-compatible service (AWS S3, Ceph radosgw, others),
/// rooted at an <see cref="S3Location"/>: keys are relative to its prefix.
/// </summary>
/// <remarks>
/// How the AWS SDK (v4) is configured, and why:
/// <list type="bullet">
/// <item>Flexible checksums only when an operation requires one
/// (RequestChecksumCalculation and ResponseChecksumValidation = WHEN_REQUIRED). The SDK's default
/// (WHEN_SUPPORTED) sends every PUT as aws-chunked with a trailing CRC32, which stores that do not
/// know trailing checksums reject (Ceph 16 answers XAmzContentSHA256Mismatch). Integrity does not
/// depend on it: over http the SDK signs the payload's SHA-256, which the server verifies, and
/// the chunk tier checks every chunk against its BLAKE3 name.</item>
/// <item>Path-style addressing for a custom endpoint (see <see cref="S3ClientSettings"/>).</item>
/// <item>Over https a PUT's payload is not signed (UNSIGNED-PAYLOAD): TLS protects it, and
/// hashing every byte with SHA-256 for the signature would only cost CPU. Over http the payload
/// is signed, which is also the only integrity check of the body on the way: with one hash of
/// the whole body, by this store's own request (<see cref="S3PlainHttp"/>), not the SDK's
/// aws-chunked encoding with a signature per chunk.</item>
/// <item>Over http GETs are this store's own requests too (<see cref="S3PlainHttp"/>): a cold read
/// is a stream of them, and the SDK's request pipeline was a fifth of the reader's CPU.</item>
/// <item>Whole-object GETs are sent as the range [0, buffer length): for a GET without a range
/// the SDK computes the MD5 of the body to compare with the ETag, which costs several times the
/// CPU of the transfer; ranged answers are passed through as they come. Both paths share one
/// reading of the answer (<see cref="RangedAnswer"/>).</item>
/// <item>The SDK's own retries are off (MaxErrorRetry = 0): <see cref="BoundedCalls"/> retries
/// inside the deadline, so the bound holds whatever the SDK's retry mode or quota would do.</item>
/// <item>The HTTP client's timeout is the attempt timeout, its connect timeout the connect
/// timeout, and its connection pool as large as the concurrency limit.</item>
/// <item>The SDK's logging is off for this client, and service errors are summarised by code,
/// HTTP status and request id only: no text of a request or its signature reaches a message.</item>
/// </list>
/// Error mapping: 404 (NoSuchKey, NoSuchBucket) is <see cref="ShuruErrorKind.RemoteObjectMissing"/>;
/// 403 and credential errors are <see cref="ShuruErrorKind.RemoteAccessDenied"/>; 5xx, 429,
/// SlowDown, RequestTimeout, connection failures and timeouts are retried and end as
/// <see cref="ShuruErrorKind.RemoteUnavailable"/>; any other 4xx is
/// <see cref="ShuruErrorKind.RemoteInvalid"/>. HEAD cannot tell a missing bucket from a missing
/// object (a HEAD answer has no body): both return null.
/// </remarks>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    /// <summary>Most keys in one DeleteObjects request, and in one page of a listing (the S3 limits).</summary>
    public const int MaxBatch = 1000;

    private readonly AmazonS3Client _client;
    private readonly BoundedCalls _calls;
    private readonly S3ClientSettings _settings;
    private readonly string _endpointText;
    private readonly bool _https;
    private readonly S3PlainHttp? _plainHttp; // PUTs and GETs over http (see the remarks)

    /// <summary>A store at <paramref name="location"/> with the given settings and limits.</summary>
    public S3ObjectStore(S3Location location, S3ClientSettings settings, ObjectStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(settings);
        options ??= ObjectStoreOptions.Default;
        Location = location;
        _settings = settings;
        _calls = new BoundedCalls(options);
        _https = settings.Endpoint is null || settings.Endpoint.Scheme == System.Uri.UriSchemeHttps;
        _endpointText = settings.Endpoint is null ? $"AWS S3 ({settings.Region})" : settings.Endpoint.GetLeftPart(UriPartial.Authority);
        _client = new AmazonS3Client(settings.Credentials.Sdk, BuildConfig(settings, options));
        if (!_https) _plainHttp = new S3PlainHttp(settings.Endpoint!, settings.Region, settings.Credentials.Sdk, options);
    }

    /// <summary>A store at <paramref name="location"/>, endpoint and credentials from the AWS
    /// environment and profile (<see cref="S3ClientSettings.Resolve"/>).</summary>
    public static S3ObjectStore FromEnvironment(S3Location location, ObjectStoreOptions? options = null) =>
        new(location, S3ClientSettings.Resolve(), options);

    internal static AmazonS3Config BuildConfig(S3ClientSettings settings, ObjectStoreOptions options)
    {
        var config = new AmazonS3Config
        {
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 0,
            Timeout = options.AttemptTimeout,
            ConnectTimeout = options.ConnectTimeout < options.AttemptTimeout ? options.ConnectTimeout : options.AttemptTimeout,
            MaxConnectionsPerServer = options.MaxConcurrency,
            DisableLogging = true,
            // Only this object decides the endpoint (S3ClientSettings), never a second resolution
            // inside the SDK from the same variables.
            IgnoreConfiguredEndpointUrls = true,
        };
        if (settings.Endpoint is not null)
        {
            config.ServiceURL = settings.Endpoint.ToString();
            config.AuthenticationRegion = settings.Region;
            config.ForcePathStyle = true;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(settings.Region);
        }
        return config;
    }

    /// <summary>Keys per DeleteObjects request (tests make it small to cover batching).</summary>
    internal int DeleteBatchSize { get; init; } = MaxBatch;

    /// <summary>Keys per listing page (tests make it small to cover paging).</summary>
    internal int ListPageSize { get; init; } = MaxBatch;

    /// <summary>The bucket and prefix this store is rooted at.</summary>
    public S3Location Location { get; }

    /// <summary>The time and concurrency limits.</summary>
    public ObjectStoreOptions Options => _calls.Options;

    /// <summary>The endpoint's scheme, host and port, or "AWS S3 (region)".</summary>
    public string Endpoint => _endpointText;

    /// <summary>Requests in flight now.</summary>
    public int InFlight => _calls.InFlight;

    /// <summary>The most requests that were ever in flight at once.</summary>
    public int PeakInFlight => _calls.PeakInFlight;

    /// <inheritdoc/>
    public string Description => $"{Location} at {_endpointText}";

    /// <inheritdoc/>
    public Task<int> GetAsync(string key, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var fullKey = Location.KeyOf(key);
        var path = Uri(fullKey);
        return _calls.RunAsync(async ct =>
        {
            // Asked as the range [0, buffer length): the SDK then hands over the body as it comes
            // instead of through an MD5 of the whole object checked against its ETag, which costs
            // several times the CPU of the transfer itself. Content-Range tells the object's size.
            // An empty buffer asks for byte 0, which only an empty object lacks.
            RangedAnswer response;
            try
            {
                response = await GetRangeAnswerAsync(fullKey, 0, Math.Max(0, destination.Length - 1), ct).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                return 0; // an existing object with no byte 0: it is empty
            }
            using (response)
            {
                long length = response.ContentLength;
                if (response.Status == HttpStatusCode.PartialContent)
                {
                    var (start, total) = ParseContentRange(response.ContentRange);
                    if (start is not 0 || total is null)
                        throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"GET {path}: unexpected Content-Range '{response.ContentRange}'", path);
                    length = total.Value;
                }
                if (length > destination.Length)
                    throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid,
                        $"GET {path}: the object is {length} bytes, more than the {destination.Length} expected", path);
                int n = await ReadFullyAsync(response.Body, destination, ct).ConfigureAwait(false);
                if (length < 0 && n == destination.Length && await HasMoreAsync(response.Body, ct).ConfigureAwait(false))
                    throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"GET {path}: the object is more than the {destination.Length} bytes expected", path);
                if (length >= 0 && n != length)
                    throw new IOException($"the answer ended after {n} of {length} bytes");
                return n;
            }
        }, Classify, $"GET {path}", path, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<int> GetRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var fullKey = Location.KeyOf(key);
        var path = Uri(fullKey);
        if (destination.Length == 0) return Task.FromResult(0);
        var describe = $"GET {path} bytes {offset}-{offset + destination.Length - 1}";
        return _calls.RunAsync(async ct =>
        {
            RangedAnswer response;
            try
            {
                response = await GetRangeAnswerAsync(fullKey, offset, offset + destination.Length - 1, ct).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                return 0; // the object ends at or before offset
            }
            using (response)
            {
                var stream = response.Body;
                if (response.Status == HttpStatusCode.PartialContent)
                {
                    if (ParseContentRange(response.ContentRange).Start is { } start && start != offset)
                        throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"{describe}: the answer starts at byte {start}", path);
                }
                else if (offset > 0)
                {
                    // A server that ignores Range sends the whole object: skip to the offset.
                    if (await SkipAsync(stream, offset, ct).ConfigureAwait(false) < offset) return 0;
                }
                return await ReadFullyAsync(stream, destination, ct).ConfigureAwait(false);
            }
        }, Classify, describe, path, cancellationToken);
    }

    /// <summary>GET of bytes [<paramref name="first"/>, <paramref name="last"/>] of an object, by
    /// this store's own request over http and by the SDK over https. A failure is thrown as an
    /// <see cref="AmazonS3Exception"/> either way (416 when the object has no byte <paramref name="first"/>).</summary>
    private async Task<RangedAnswer> GetRangeAnswerAsync(string fullKey, long first, long last, CancellationToken ct)
    {
        if (_plainHttp is not null)
        {
            var r = await _plainHttp.GetRangeAsync(Location.Bucket, fullKey, first, last, ct).ConfigureAwait(false);
            try
            {
                var body = await r.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                return new RangedAnswer(r.StatusCode, r.Content.Headers.ContentRange?.ToString(), r.Content.Headers.ContentLength ?? -1, body, r);
            }
            catch
            {
                r.Dispose();
                throw;
            }
        }
        var response = await _client.GetObjectAsync(new GetObjectRequest
        {
            BucketName = Location.Bucket,
            Key = fullKey,
            ByteRange = new ByteRange(first, last),
        }, ct).ConfigureAwait(false);
        return new RangedAnswer(response.HttpStatusCode, response.ContentRange, response.ContentLength, response.ResponseStream, response);
    }

    /// <summary>The parts of a GET's answer the readers look at, whichever path sent it; disposing
    /// it releases the answer (and its connection).</summary>
    private sealed class RangedAnswer(HttpStatusCode status, string? contentRange, long contentLength, Stream body, IDisposable owner) : IDisposable
    {
        public HttpStatusCode Status { get; } = status;
        /// <summary>"bytes START-END/TOTAL" of a 206 answer, null otherwise.</summary>
        public string? ContentRange { get; } = contentRange;
        /// <summary>Bytes in the body, -1 when the answer does not say.</summary>
        public long ContentLength { get; } = contentLength;
        public Stream Body { get; } = body;
        public void Dispose() => owner.Dispose();
    }

    /// <inheritdoc/>
    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var fullKey = Location.KeyOf(key);
        var path = Uri(fullKey);
        // The SDK reads a Stream (https); every attempt gets a fresh one over the same bytes.
        if (!MemoryMarshal.TryGetArray(content, out var segment)) segment = new ArraySegment<byte>(content.ToArray());
        await _calls.RunAsync<bool>(async ct =>
        {
            if (_plainHttp is not null)
            {
                await _plainHttp.PutAsync(Location.Bucket, fullKey, content, ct).ConfigureAwait(false);
                return true;
            }
            using var body = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
            await _client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = Location.Bucket,
                Key = fullKey,
                InputStream = body,
                AutoCloseStream = false,
                ContentType = "application/octet-stream",
                DisablePayloadSigning = _https,
            }, ct).ConfigureAwait(false);
            return true;
        }, Classify, $"PUT {path}", path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<ObjectInfo?> HeadAsync(string key, CancellationToken cancellationToken = default)
    {
        var relative = Normalize(key);
        var fullKey = Location.KeyOf(relative);
        var path = Uri(fullKey);
        return _calls.RunAsync<ObjectInfo?>(async ct =>
        {
            try
            {
                var r = await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = Location.Bucket, Key = fullKey }, ct).ConfigureAwait(false);
                return new ObjectInfo(relative, r.ContentLength, Utc(r.LastModified));
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
        }, Classify, $"HEAD {path}", path, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<ObjectListPage> ListPageAsync(string prefix, string? continuationToken, CancellationToken cancellationToken = default)
    {
        prefix ??= "";
        if (prefix.StartsWith('/') || prefix.Any(char.IsControl))
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"list prefix '{prefix.Replace('\0', '?')}' must not start with '/' or contain control characters", Location.ToString());
        var fullPrefix = Location.KeyPrefix + prefix;
        var path = Uri(fullPrefix);
        return _calls.RunAsync(async ct =>
        {
            var r = await _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = Location.Bucket,
                Prefix = fullPrefix,
                ContinuationToken = continuationToken,
                MaxKeys = ListPageSize,
            }, ct).ConfigureAwait(false);
            var root = Location.KeyPrefix;
            var objects = new List<ObjectInfo>(r.S3Objects?.Count ?? 0);
            foreach (var o in r.S3Objects ?? [])
                if (o.Key.StartsWith(root, StringComparison.Ordinal))
                    objects.Add(new ObjectInfo(o.Key[root.Length..], o.Size ?? 0, Utc(o.LastModified)));
            var next = r.IsTruncated == true ? r.NextContinuationToken : null;
            if (r.IsTruncated == true && string.IsNullOrEmpty(next))
                throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"LIST {path}: the answer is truncated but has no continuation token", path);
            return new ObjectListPage(objects, next);
        }, Classify, $"LIST {path}", path, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var fullKeys = keys.Select(Location.KeyOf).Distinct(StringComparer.Ordinal).ToList();
        var batches = new List<Task>();
        for (int i = 0; i < fullKeys.Count; i += DeleteBatchSize)
            batches.Add(DeleteBatchAsync(fullKeys.GetRange(i, Math.Min(DeleteBatchSize, fullKeys.Count - i)), cancellationToken));
        await Task.WhenAll(batches).ConfigureAwait(false);
    }

    private Task DeleteBatchAsync(List<string> fullKeys, CancellationToken cancellationToken)
    {
        var path = fullKeys.Count == 1 ? Uri(fullKeys[0]) : Location.ToString();
        var describe = fullKeys.Count == 1 ? $"DELETE {path}" : $"DELETE {fullKeys.Count} objects under {Location}";
        return _calls.RunAsync<bool>(async ct =>
        {
            var r = await _client.DeleteObjectsAsync(new DeleteObjectsRequest
            {
                BucketName = Location.Bucket,
                Objects = fullKeys.Select(k => new KeyVersion { Key = k }).ToList(),
                Quiet = true,
            }, ct).ConfigureAwait(false);
            if (r.DeleteErrors is { Count: > 0 } errors)
                throw new DeleteErrorException(errors.Count, errors[0].Code, errors[0].Key);
            return true;
        }, Classify, describe, path, cancellationToken);
    }

    /// <summary>A DeleteObjects answer that lists keys it could not delete.</summary>
    private sealed class DeleteErrorException(int count, string? code, string? key)
        : Exception($"{count} objects not deleted, the first {key} with {code}")
    {
        public string Code { get; } = code ?? "";
        public string Detail { get; } = $"{count} objects not deleted, the first with {SafeCode(code)}";
    }

    /// <summary>Kind and description of a failed attempt (see the class remarks for the rules).</summary>
    private (ShuruErrorKind Kind, string Detail) Classify(Exception e)
    {
        switch (e)
        {
            case DeleteErrorException d:
                return (KindOf(d.Code, 0), d.Detail);
            case AmazonServiceException s when (int)s.StatusCode != 0 || !string.IsNullOrEmpty(s.ErrorCode):
            {
                int status = (int)s.StatusCode;
                // A 400 without a request id was not read as an S3 request at all: the
                // connection was out of step (radosgw 16 leaves the unread body of a PUT it
                // rejected on the keep-alive connection). Every request here is idempotent: retry.
                if (status == 400 && string.IsNullOrEmpty(s.RequestId))
                    return (ShuruErrorKind.RemoteUnavailable, "HTTP 400 without a request id (the server could not read the request)");
                var detail = $"{SafeCode(s.ErrorCode)} (HTTP {status}{(IsSafeToken(s.RequestId) ? $", request id {s.RequestId}" : "")})";
                return (KindOf(s.ErrorCode, status), detail);
            }
        }
        for (var x = e; x is not null; x = x.InnerException)
            if (x is System.Security.Authentication.AuthenticationException)
                return (ShuruErrorKind.RemoteInvalid, $"TLS with {_endpointText} failed ({x.Message}); a private CA's certificate can be given in AWS_CA_BUNDLE");
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException or System.Net.Sockets.SocketException or IOException or TimeoutException or OperationCanceledException)
                return (ShuruErrorKind.RemoteUnavailable, $"{x.GetType().Name}: {_settings.Credentials.Redact(x.Message)}");
            if (x is AmazonUnmarshallingException)
                return (ShuruErrorKind.RemoteUnavailable, "an answer that is not S3 XML");
        }
        return (ShuruErrorKind.RemoteInvalid, $"{e.GetType().Name}: {_settings.Credentials.Redact(e.Message)}");
    }

    private static ShuruErrorKind KindOf(string? code, int status)
    {
        switch (code)
        {
            case "NoSuchKey" or "NoSuchBucket" or "NotFound":
                return ShuruErrorKind.RemoteObjectMissing;
            case "AccessDenied" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "ExpiredToken" or "InvalidToken"
                or "TokenRefreshRequired" or "AccountProblem" or "AllAccessDisabled" or "RequestTimeTooSkewed" or "UserSuspended":
                return ShuruErrorKind.RemoteAccessDenied;
            case "SlowDown" or "Throttling" or "ThrottlingException" or "RequestThrottled" or "TooManyRequests"
                or "RequestTimeout" or "InternalError" or "ServiceUnavailable" or "OperationAborted" or "RequestTimeoutException":
                return ShuruErrorKind.RemoteUnavailable;
        }
        return status switch
        {
            404 => ShuruErrorKind.RemoteObjectMissing,
            401 or 403 => ShuruErrorKind.RemoteAccessDenied,
            408 or 429 or >= 500 => ShuruErrorKind.RemoteUnavailable,
            0 => ShuruErrorKind.RemoteUnavailable,
            _ => ShuruErrorKind.RemoteInvalid,
        };
    }

    /// <summary>An S3 error code as it may appear in a message: letters, digits and dots only.</summary>
    private static string SafeCode(string? code) =>
        string.IsNullOrEmpty(code) ? "no error code" : code.Length <= 64 && code.All(c => char.IsAsciiLetterOrDigit(c) || c == '.') ? code : "an unreadable error code";

    private static bool IsSafeToken(string? s) =>
        !string.IsNullOrEmpty(s) && s.Length <= 128 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static string Normalize(string key)
    {
        if (!S3Location.TryNormalizeKey(key, allowEmpty: false, out var n, out var err))
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"object name '{key}' {err}");
        return n;
    }

    /// <summary>A time the SDK parsed from an answer, as UTC (null when the answer had none).</summary>
    private static DateTimeOffset? Utc(DateTime? time) =>
        time is not { } t ? null : new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime());

    private string Uri(string fullKey) => fullKey.Length == 0 ? S3Location.Scheme + Location.Bucket : S3Location.Scheme + Location.Bucket + "/" + fullKey;

    /// <summary>Start and total size from "bytes START-END/TOTAL" (TOTAL may be "*": unknown).</summary>
    private static (long? Start, long? Total) ParseContentRange(string? contentRange)
    {
        if (contentRange is null || !contentRange.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return (null, null);
        var span = contentRange.AsSpan(6);
        int dash = span.IndexOf('-'), slash = span.IndexOf('/');
        long? start = dash > 0 && long.TryParse(span[..dash], out var s) ? s : null;
        long? total = slash > 0 && long.TryParse(span[(slash + 1)..], out var t) ? t : null;
        return (start, total);
    }

    private static async Task<int> ReadFullyAsync(Stream stream, Memory<byte> destination, CancellationToken ct)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = await stream.ReadAsync(destination[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static async Task<bool> HasMoreAsync(Stream stream, CancellationToken ct)
    {
        var one = new byte[1];
        return await stream.ReadAsync(one, ct).ConfigureAwait(false) > 0;
    }

    private static async Task<long> SkipAsync(Stream stream, long count, CancellationToken ct)
    {
        var scratch = new byte[64 * 1024];
        long skipped = 0;
        while (skipped < count)
        {
            int n = await stream.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, count - skipped)), ct).ConfigureAwait(false);
            if (n == 0) break;
            skipped += n;
        }
        return skipped;
    }

    /// <summary>Location and endpoint; never credentials.</summary>
    public override string ToString() => $"S3ObjectStore({Description})";

    public void Dispose()
    {
        _client.Dispose();
        _plainHttp?.Dispose();
        _calls.Dispose();
    }
}
