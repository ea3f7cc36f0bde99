using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using Amazon.Runtime;
using Amazon.S3;

namespace ShuruStore.Core.Remote;

/// <summary>
/// PutObject and ranged GetObject over plain http, signed (AWS Signature Version 4) as boto3 and
/// the AWS CLI sign them: a PUT with one SHA-256 of the whole body, a GET with the hash of its
/// empty body. The AWS SDK for .NET sends a PUT over http as aws-chunked with a signature per
/// chunk, which costs an S3-compatible server noticeably more CPU per byte (radosgw: about a
/// fifth), and refuses an unsigned payload without TLS; with its chunk encoding turned off it was
/// slower still. Its GET costs the reader CPU it does not need on a cold read: a request object,
/// a pipeline of handlers and an unmarshaller per answer, and a large path for the runtime to
/// compile while the read is running. Over https the SDK's own requests are used (the payload is
/// not signed there: TLS protects it).
/// <para>The PUT body's hash is signed, so the server still checks every byte it stores against
/// it; what a GET returns is checked by its reader (every chunk against its BLAKE3 name).
/// Failures are thrown as the SDK's <see cref="AmazonS3Exception"/> (status, error code and
/// request id read from the error document) so that one classification serves both paths.</para>
/// </summary>
internal sealed class S3PlainHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private readonly string _region;
    private readonly AWSCredentials _credentials;

    public S3PlainHttp(Uri endpoint, string region, AWSCredentials credentials, ObjectStoreOptions options)
    {
        _endpoint = endpoint;
        _region = region;
        _credentials = credentials;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.MaxConcurrency,
            ConnectTimeout = options.ConnectTimeout < options.AttemptTimeout ? options.ConnectTimeout : options.AttemptTimeout,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        // Each attempt is bounded by the caller's token (BoundedCalls), not by the client.
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>SHA-256 of an empty body: what a GET signs as its payload.</summary>
    private const string EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>Stores <paramref name="content"/> as <paramref name="key"/> in <paramref name="bucket"/>
    /// (path-style addressing).</summary>
    public async Task PutAsync(string bucket, string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, Address(bucket, key, out string path)) { Version = HttpVersion.Version11 };
        request.Content = new ReadOnlyMemoryContent(content);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.ContentLength = content.Length;
        using var response = await SendAsync(request, path, Convert.ToHexStringLower(SHA256.HashData(content.Span)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks for bytes [<paramref name="first"/>, <paramref name="last"/>] of an object.
    /// The answer is 206 with the range, or 200 with the whole object from a server that ignores
    /// ranges; the caller reads its body and disposes it. An object that has no byte
    /// <paramref name="first"/> fails with HTTP 416 (RequestedRangeNotSatisfiable).</summary>
    public async Task<HttpResponseMessage> GetRangeAsync(string bucket, string key, long first, long last, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, Address(bucket, key, out string path)) { Version = HttpVersion.Version11 };
        request.Headers.Range = new RangeHeaderValue(first, last);
        return await SendAsync(request, path, EmptyPayloadHash, cancellationToken).ConfigureAwait(false);
    }

    private Uri Address(string bucket, string key, out string path)
    {
        path = "/" + EncodeSegment(bucket) + "/" + EncodePath(key);
        return new Uri(_endpoint.GetLeftPart(UriPartial.Authority) + path, UriKind.Absolute);
    }

    /// <summary>Signs and sends <paramref name="request"/> (which it then owns) and returns the
    /// successful answer with its body unread; a failed one is thrown as an <see cref="AmazonS3Exception"/>.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string path, string payloadHash, CancellationToken cancellationToken)
    {
        using var owned = request;
        var identity = await _credentials.GetCredentialsAsync().ConfigureAwait(false);
        var uri = request.RequestUri!;
        var now = DateTime.UtcNow;
        string host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        var signed = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["host"] = host,
            ["x-amz-content-sha256"] = payloadHash,
            ["x-amz-date"] = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(identity.Token)) signed["x-amz-security-token"] = identity.Token;
        request.Headers.TryAddWithoutValidation("Authorization",
            Authorization(request.Method.Method, path, signed, payloadHash, now, _region, identity.AccessKey, identity.SecretKey));
        foreach (var (name, value) in signed)
            if (name != "host") request.Headers.TryAddWithoutValidation(name, value);

        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            string body = "";
            try { body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false); }
            catch (HttpRequestException) { /* the status alone then */ }
            var (code, requestId) = ReadError(body);
            throw new AmazonS3Exception($"{request.Method.Method} answered HTTP {(int)response.StatusCode}", ErrorType.Unknown, code, requestId, response.StatusCode);
        }
    }

    /// <summary>The Authorization header of a Signature Version 4 request with an empty query
    /// string: <paramref name="headers"/> are the signed headers (lower-case names, sorted).</summary>
    internal static string Authorization(string method, string canonicalPath, IReadOnlyDictionary<string, string> headers, string payloadHash,
        DateTime signedAt, string region, string accessKey, string secretKey)
    {
        string date = signedAt.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        string amzDate = signedAt.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        string scope = $"{date}/{region}/s3/aws4_request";
        var names = headers.Keys.OrderBy(n => n, StringComparer.Ordinal).ToList();
        string signedHeaders = string.Join(';', names);
        var canonical = new StringBuilder();
        canonical.Append(method).Append('\n').Append(canonicalPath).Append('\n').Append('\n');
        foreach (var n in names) canonical.Append(n).Append(':').Append(headers[n].Trim()).Append('\n');
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        string toSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))}";
        byte[] key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secretKey), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, "s3"u8);
        key = HMACSHA256.HashData(key, "aws4_request"u8);
        string signature = Hex(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(toSign)));
        return $"AWS4-HMAC-SHA256 Credential={accessKey}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
    }

    /// <summary>An object key as it appears in the canonical path: each segment encoded, the
    /// slashes between them kept (S3 does not encode the path twice).</summary>
    internal static string EncodePath(string key) => string.Join('/', key.Split('/').Select(EncodeSegment));

    /// <summary>RFC 3986 encoding: unreserved characters kept, every other UTF-8 byte as %XX.</summary>
    internal static string EncodeSegment(string segment)
    {
        var sb = new StringBuilder(segment.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(segment))
        {
            if (b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~')
                sb.Append((char)b);
            else
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>Code and request id of an S3 error document; empty when the body is not one.</summary>
    private static (string Code, string RequestId) ReadError(string body)
    {
        if (string.IsNullOrWhiteSpace(body)) return ("", "");
        try
        {
            var doc = new XmlDocument { XmlResolver = null };
            using var reader = XmlReader.Create(new StringReader(body), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
            doc.Load(reader);
            return (doc.SelectSingleNode("/Error/Code")?.InnerText ?? "", doc.SelectSingleNode("/Error/RequestId")?.InnerText ?? "");
        }
        catch (XmlException) { return ("", ""); }
    }

    public void Dispose() => _http.Dispose();
}
