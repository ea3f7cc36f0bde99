using Amazon.Runtime.CredentialManagement;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Which S3 service to talk to and as whom: endpoint, region, addressing style and credentials,
/// resolved once from explicit values, the AWS environment variables and the shared profile.
/// Its ToString() and properties never show the credentials.
/// </summary>
/// <remarks>
/// Resolution order (the first that is set wins):
/// <list type="bullet">
/// <item>endpoint: the explicit one, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
/// endpoint_url; none means AWS itself. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the
/// environment and profile ones, as in every AWS SDK.</item>
/// <item>region: the explicit one, AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else
/// us-east-1 (S3-compatible stores such as Ceph accept any region name that matches their
/// zonegroup; us-east-1 is what their default zonegroup answers to).</item>
/// <item>credentials: see <see cref="S3Credentials.Find"/>.</item>
/// </list>
/// A custom endpoint is addressed path-style (http://host/bucket/key): virtual-hosted style
/// (http://bucket.host/key) needs wildcard DNS that a local or on-premises store rarely has.
/// An endpoint must be an absolute http or https URL without user information, query or fragment.
/// </remarks>
public sealed class S3ClientSettings
{
    private S3ClientSettings(Uri? endpoint, string region, S3Credentials credentials)
    {
        Endpoint = endpoint;
        Region = region;
        Credentials = credentials;
    }

    /// <summary>The custom endpoint (scheme, host, port), or null for AWS.</summary>
    public Uri? Endpoint { get; }

    /// <summary>The signing region.</summary>
    public string Region { get; }

    /// <summary>Whether requests name the bucket in the path (every custom endpoint) rather than the host.</summary>
    public bool ForcePathStyle => Endpoint is not null;

    /// <summary>The credentials; opaque (their ToString names only their source).</summary>
    public S3Credentials Credentials { get; }

    /// <summary>Resolves the settings (see the remarks); throws <see cref="ShuruStoreException"/>
    /// (<see cref="ShuruErrorKind.RemoteInvalid"/> for a bad endpoint,
    /// <see cref="ShuruErrorKind.RemoteAccessDenied"/> when there are no credentials).</summary>
    /// <param name="endpoint">An endpoint to use instead of the environment's.</param>
    /// <param name="region">A region to use instead of the environment's.</param>
    /// <param name="credentials">Credentials to use instead of finding them.</param>
    /// <param name="profileName">A profile to use instead of AWS_PROFILE / "default".</param>
    /// <param name="environment">Reads an environment variable (tests pass their own).</param>
    public static S3ClientSettings Resolve(string? endpoint = null, string? region = null, S3Credentials? credentials = null,
        string? profileName = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var profile = FindProfile(profileName ?? NonEmpty(environment("AWS_PROFILE")));
        bool ignoreConfigured = IsTrue(environment("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) || profile?.IgnoreConfiguredEndpointUrls == true;

        string? endpointText = NonEmpty(endpoint);
        string endpointSource = "the endpoint given";
        if (endpointText is null && !ignoreConfigured)
        {
            foreach (var (value, source) in new[]
            {
                (environment("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"),
                (environment("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"),
                (profile?.EndpointUrl, $"endpoint_url of AWS profile '{profile?.Name}'"),
            })
            {
                if (NonEmpty(value) is { } v) { endpointText = v; endpointSource = source; break; }
            }
        }
        var endpointUri = endpointText is null ? null : ParseEndpoint(endpointText, endpointSource);

        var resolvedRegion = NonEmpty(region) ?? NonEmpty(environment("AWS_REGION")) ?? NonEmpty(environment("AWS_DEFAULT_REGION"))
            ?? profile?.Region?.SystemName ?? "us-east-1";
        foreach (var c in resolvedRegion)
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-'))
                throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"the region '{resolvedRegion}' may only contain letters, digits and '-'");

        var creds = credentials ?? S3Credentials.Find(profileName, environment);
        return new S3ClientSettings(endpointUri, resolvedRegion, creds);
    }

    /// <summary>Checks an endpoint URL. The message never repeats a URL that carries user
    /// information, since that part may be a key.</summary>
    internal static Uri ParseEndpoint(string text, string source)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            var shown = text.Contains('@') ? "(not shown: it contains '@')" : $"'{text}'";
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"{source} {shown} is not an absolute http:// or https:// URL");
        }
        if (uri.UserInfo.Length > 0)
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid,
                $"{source} must not contain user information (user:password@): credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"{source} '{uri.GetLeftPart(UriPartial.Path)}' must not have a query or fragment");
        return uri;
    }

    private static CredentialProfile? FindProfile(string? name)
    {
        try
        {
            return new CredentialProfileStoreChain().TryGetProfile(name ?? "default", out var p) ? p : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Endpoint, region and where the credentials came from; never the keys.</summary>
    public override string ToString() =>
        $"{(Endpoint is null ? "AWS S3" : Endpoint.GetLeftPart(UriPartial.Authority))}, region {Region}, {Credentials}";

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    private static bool IsTrue(string? s) => string.Equals(s?.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}
