using ShuruStore.Core.Remote;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>Endpoint, region and credential resolution from a given environment (no network).
/// AWS_PROFILE names a profile that cannot exist, so the machine's ~/.aws never takes part.</summary>
public sealed class S3ClientSettingsTests
{
    private const string Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    private const string KeyId = "AKIAIOSFODNN7EXAMPLE";

    private static Func<string, string?> Env(params (string Name, string Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Name, v => v.Value);
        d.TryAdd("AWS_PROFILE", "shurustore-test-no-such-profile-" + Guid.NewGuid().ToString("N"));
        return n => d.TryGetValue(n, out var v) ? v : null;
    }

    [Fact]
    public void ServiceSpecificEndpointWinsOverGenericAndUsesPathStyle()
    {
        var s = S3ClientSettings.Resolve(environment: Env(
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7480"), ("AWS_ENDPOINT_URL", "http://other:1"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret), ("AWS_REGION", "eu-west-3")));
        Assert.Equal(new Uri("http://127.0.0.1:7480"), s.Endpoint);
        Assert.True(s.ForcePathStyle);
        Assert.Equal("eu-west-3", s.Region);
        Assert.Equal("environment", s.Credentials.Source);

        s = S3ClientSettings.Resolve(environment: Env(("AWS_ENDPOINT_URL", "https://ceph.example:8443"), ("AWS_DEFAULT_REGION", "zg1"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret)));
        Assert.Equal(new Uri("https://ceph.example:8443"), s.Endpoint);
        Assert.Equal("zg1", s.Region);

        s = S3ClientSettings.Resolve(endpoint: "http://given:1", region: "r1", environment: Env(("AWS_ENDPOINT_URL_S3", "http://env:2"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret)));
        Assert.Equal("given", s.Endpoint!.Host);
        Assert.Equal("r1", s.Region);
    }

    [Fact]
    public void NoEndpointMeansAwsWithVirtualHostsAndDefaultRegion()
    {
        var s = S3ClientSettings.Resolve(environment: Env(("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret)));
        Assert.Null(s.Endpoint);
        Assert.False(s.ForcePathStyle);
        Assert.Equal("us-east-1", s.Region);

        s = S3ClientSettings.Resolve(environment: Env(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7480"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret)));
        Assert.Null(s.Endpoint);
    }

    [Theory]
    [InlineData("127.0.0.1:7480")]
    [InlineData("ftp://host/")]
    [InlineData("http://host:1/?x=1")]
    public void MalformedEndpointsAreRemoteInvalid(string endpoint)
    {
        var e = Assert.Throws<ShuruStoreException>(() => S3ClientSettings.Resolve(environment: Env(("AWS_ENDPOINT_URL_S3", endpoint),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret))));
        Assert.Equal(ShuruErrorKind.RemoteInvalid, e.Kind);
        Assert.Contains("AWS_ENDPOINT_URL_S3", e.Message);
    }

    [Fact]
    public void AnEndpointWithUserInformationIsRejectedWithoutRepeatingIt()
    {
        var e = Assert.Throws<ShuruStoreException>(() => S3ClientSettings.Resolve(environment: Env(
            ("AWS_ENDPOINT_URL", $"http://{KeyId}:{Uri.EscapeDataString(Secret)}@127.0.0.1:7480"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret))));
        Assert.Equal(ShuruErrorKind.RemoteInvalid, e.Kind);
        Assert.DoesNotContain(KeyId, e.ToString());
        Assert.DoesNotContain("wJalr", e.ToString());
    }

    [Fact]
    public void HalfAKeyPairOrNoCredentialsIsAccessDenied()
    {
        var e = Assert.Throws<ShuruStoreException>(() => S3ClientSettings.Resolve(environment: Env(("AWS_ACCESS_KEY_ID", KeyId))));
        Assert.Equal(ShuruErrorKind.RemoteAccessDenied, e.Kind);
        Assert.Contains("AWS_SECRET_ACCESS_KEY is not", e.Message);
        Assert.DoesNotContain(KeyId, e.Message);

        e = Assert.Throws<ShuruStoreException>(() => S3ClientSettings.Resolve(environment: Env(("AWS_SECRET_ACCESS_KEY", Secret))));
        Assert.Contains("AWS_ACCESS_KEY_ID is not", e.Message);
        Assert.DoesNotContain(Secret, e.Message);

        e = Assert.Throws<ShuruStoreException>(() => S3ClientSettings.Resolve(environment: Env()));
        Assert.Equal(ShuruErrorKind.RemoteAccessDenied, e.Kind);
        Assert.Contains("does not exist", e.Message); // AWS_PROFILE names a missing profile
    }

    [Fact]
    public void NothingPrintableShowsTheKeys()
    {
        var s = S3ClientSettings.Resolve(environment: Env(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7480"),
            ("AWS_ACCESS_KEY_ID", KeyId), ("AWS_SECRET_ACCESS_KEY", Secret), ("AWS_SESSION_TOKEN", "tok-" + Secret)));
        var explicitKeys = S3Credentials.FromKeys(KeyId, Secret);
        using var store = new S3ObjectStore(S3Location.Parse("s3://bkt/p"), s);
        var printed = string.Join("\n", s.ToString(), s.Credentials.ToString(), s.Credentials.Source, explicitKeys.ToString(),
            store.ToString(), store.Description, store.Endpoint, store.Options.ToString(),
            string.Join(",", typeof(S3Credentials).GetProperties().Select(p => p.GetValue(s.Credentials)?.ToString())));
        Assert.DoesNotContain(Secret, printed);
        Assert.DoesNotContain(KeyId, printed);
        Assert.Contains("environment", printed);
        Assert.Equal("***x***", explicitKeys.Redact(KeyId + "x" + Secret));
    }

    [Fact]
    public void OptionsAreValidated()
    {
        ObjectStoreOptions.Default.Validate();
        foreach (var bad in new[]
        {
            new ObjectStoreOptions { Deadline = TimeSpan.Zero },
            new ObjectStoreOptions { AttemptTimeout = TimeSpan.FromSeconds(-1) },
            new ObjectStoreOptions { MaxConcurrency = 0 },
            new ObjectStoreOptions { InitialBackoff = TimeSpan.FromSeconds(5), MaxBackoff = TimeSpan.FromSeconds(1) },
        })
            Assert.Equal(ShuruErrorKind.InvalidArgument, Assert.Throws<ShuruStoreException>(bad.Validate).Kind);
    }
}
