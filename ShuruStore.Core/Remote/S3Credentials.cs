using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Credentials for an S3-compatible store, opaque on purpose: the keys can be handed in or
/// found, but never read back, printed or logged through this type. <see cref="ToString"/> and
/// <see cref="Source"/> say only where they came from.
/// </summary>
/// <remarks>
/// Where they are looked for (<see cref="Find"/>), in order: the environment
/// (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, optionally AWS_SESSION_TOKEN), then the shared
/// profile named by AWS_PROFILE or "default" (~/.aws/credentials and ~/.aws/config, any kind of
/// profile the AWS SDK supports, e.g. role assumption or credential_process). The EC2/ECS
/// instance metadata endpoints are deliberately not asked: on a host without them that costs
/// seconds of network timeouts before the error, and a host that has them can name a profile.
/// </remarks>
public sealed class S3Credentials
{
    private readonly string[] _secrets;

    private S3Credentials(AWSCredentials sdk, string source, params string?[] secrets)
    {
        Sdk = sdk;
        Source = source;
        _secrets = secrets.Where(s => !string.IsNullOrEmpty(s)).Select(s => s!).ToArray();
    }

    /// <summary>The SDK's credentials object; stays inside the engine.</summary>
    internal AWSCredentials Sdk { get; }

    /// <summary>Where the credentials came from: "explicit keys", "environment" or "profile 'NAME'".</summary>
    public string Source { get; }

    /// <summary>Credentials from keys the caller holds.</summary>
    public static S3Credentials FromKeys(string accessKeyId, string secretAccessKey, string? sessionToken = null)
    {
        if (string.IsNullOrWhiteSpace(accessKeyId) || string.IsNullOrWhiteSpace(secretAccessKey))
            throw new ShuruStoreException(ShuruErrorKind.RemoteAccessDenied, "an access key id and a secret access key are both needed");
        AWSCredentials sdk = string.IsNullOrEmpty(sessionToken)
            ? new BasicAWSCredentials(accessKeyId, secretAccessKey)
            : new SessionAWSCredentials(accessKeyId, secretAccessKey, sessionToken);
        return new S3Credentials(sdk, "explicit keys", accessKeyId, secretAccessKey, sessionToken);
    }

    /// <summary>
    /// The credentials of the environment, else of the profile (see the remarks). Throws
    /// <see cref="ShuruErrorKind.RemoteAccessDenied"/> when there are none, or when the
    /// environment holds half a key pair (a typo there must not fall through to another identity).
    /// </summary>
    /// <param name="profileName">A profile to use instead of AWS_PROFILE / "default"; when given,
    /// the environment's keys are not used.</param>
    /// <param name="environment">Reads an environment variable (tests pass their own).</param>
    public static S3Credentials Find(string? profileName = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (profileName is null)
        {
            var id = NonEmpty(environment("AWS_ACCESS_KEY_ID"));
            var secret = NonEmpty(environment("AWS_SECRET_ACCESS_KEY"));
            var token = NonEmpty(environment("AWS_SESSION_TOKEN"));
            if (id is not null && secret is not null)
            {
                AWSCredentials sdk = token is null ? new BasicAWSCredentials(id, secret) : new SessionAWSCredentials(id, secret, token);
                return new S3Credentials(sdk, "environment", id, secret, token);
            }
            if (id is not null || secret is not null)
                throw new ShuruStoreException(ShuruErrorKind.RemoteAccessDenied,
                    id is null ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not" : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        }
        var explicitProfile = profileName ?? NonEmpty(environment("AWS_PROFILE"));
        var name = explicitProfile ?? "default";
        var chain = new CredentialProfileStoreChain();
        if (chain.TryGetProfile(name, out var profile))
        {
            AWSCredentials sdk;
            try { sdk = profile.GetAWSCredentials(chain); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The SDK's message names the profile's problem (missing role, bad format), not its keys.
                throw new ShuruStoreException(ShuruErrorKind.RemoteAccessDenied, $"the AWS profile '{name}' cannot give credentials: {e.GetType().Name}");
            }
            var basic = profile.Options;
            return new S3Credentials(sdk, $"profile '{name}'", basic.AccessKey, basic.SecretKey, basic.Token);
        }
        if (explicitProfile is not null)
            throw new ShuruStoreException(ShuruErrorKind.RemoteAccessDenied, $"the AWS profile '{name}' does not exist (in ~/.aws/credentials or ~/.aws/config)");
        throw new ShuruStoreException(ShuruErrorKind.RemoteAccessDenied,
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (or a 'default' profile in ~/.aws/credentials)");
    }

    /// <summary>Replaces every known key in <paramref name="text"/> with "***": a last guard for
    /// text that came from outside the engine (the SDK, the server) before it goes into a message.</summary>
    internal string Redact(string text)
    {
        foreach (var s in _secrets)
            if (s.Length >= 4) text = text.Replace(s, "***", StringComparison.Ordinal);
        return text;
    }

    /// <summary>Where the credentials came from; never the keys.</summary>
    public override string ToString() => $"S3 credentials from {Source}";

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}
