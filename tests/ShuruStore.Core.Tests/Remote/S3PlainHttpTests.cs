using System.Security.Cryptography;
using System.Text;
using ShuruStore.Core.Remote;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>
/// The Signature Version 4 of the plain-http PUT and GET, checked against botocore (an independent
/// implementation: the expected header below is what botocore's S3SigV4Auth produced for the same
/// request, keys and time). The requests themselves are tested against the real cluster by every
/// remote test that publishes or reads (S3ObjectStoreTests: whole and ranged GETs, empty and
/// missing objects, wrong keys).
/// </summary>
public class S3PlainHttpTests
{
    [Fact]
    public void Signs_a_PUT_as_botocore_does()
    {
        var body = "Welcome to ShuruStore."u8.ToArray();
        string hash = Convert.ToHexStringLower(SHA256.HashData(body));
        Assert.Equal("995d026fdaa30f0315ea2601fcad52a440f76343993a8c44ef213b16272ab54e", hash);
        var headers = new Dictionary<string, string>
        {
            ["host"] = "127.0.0.1:7480",
            ["x-amz-content-sha256"] = hash,
            ["x-amz-date"] = "20261207T010203Z",
        };
        string path = "/" + S3PlainHttp.EncodeSegment("my-bucket") + "/" + S3PlainHttp.EncodePath("packs/a$b c.pack");
        Assert.Equal("/my-bucket/packs/a%24b%20c.pack", path);
        string auth = S3PlainHttp.Authorization("PUT", path, headers, hash, new DateTime(2026, 12, 7, 1, 2, 3, DateTimeKind.Utc),
            "us-east-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/s3/aws4_request, " +
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=8cf334bbcd4de866cc1468c392eb77711cb4c1ce82232df0f1956bbee8cf7bfb", auth);
    }

    [Fact]
    public void Signs_a_GET_as_botocore_does()
    {
        string emptyHash = Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty));
        var headers = new Dictionary<string, string>
        {
            ["host"] = "127.0.0.1:7480",
            ["x-amz-content-sha256"] = emptyHash,
            ["x-amz-date"] = "20261207T010203Z",
        };
        string auth = S3PlainHttp.Authorization("GET", "/my-bucket/packs/a%24b%20c.pack", headers, emptyHash,
            new DateTime(2026, 12, 7, 1, 2, 3, DateTimeKind.Utc), "us-east-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/s3/aws4_request, " +
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=57271083c1fd3bcccea5008c47b8144aefc174b903ccae49e5c091b4f7d34bfe", auth);
    }

    [Theory]
    [InlineData("abc-_.~XYZ019", "abc-_.~XYZ019")]
    [InlineData("a b", "a%20b")]
    [InlineData("ü", "%C3%BC")]
    [InlineData("a+b=c&d", "a%2Bb%3Dc%26d")]
    public void Encodes_a_key_segment_as_RFC_3986_says(string segment, string encoded) =>
        Assert.Equal(encoded, S3PlainHttp.EncodeSegment(segment));

    [Fact]
    public void Keeps_the_slashes_between_segments() =>
        Assert.Equal("indexes/vm%201.idx", S3PlainHttp.EncodePath("indexes/vm 1.idx"));
}
