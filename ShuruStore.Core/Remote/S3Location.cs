using System.Text;

namespace ShuruStore.Core.Remote;

/// <summary>
/// A place in an S3-compatible object store: a bucket and a key prefix, written
/// <c>s3://BUCKET</c> or <c>s3://BUCKET/PREFIX</c>. Immutable; equal when bucket and prefix are.
/// </summary>
/// <remarks>
/// Rules, and why:
/// <list type="bullet">
/// <item>The bucket name follows the S3 naming rules (3-63 characters, lowercase letters, digits,
/// dots and hyphens, starting and ending with a letter or digit, no "..", not an IPv4 address):
/// only such names work with both path-style and virtual-hosted addressing.</item>
/// <item>The prefix is a '/'-separated path. Leading and trailing '/' are dropped, so
/// <c>s3://b/vm/</c> and <c>s3://b/vm</c> are the same location. Empty, "." and ".." segments,
/// backslashes and control characters are rejected: S3 would accept them, but they make keys
/// that differ from what a reader of the URI expects, and ".." would look like a path escape.</item>
/// <item>Keys are the prefix and a relative name joined with one '/', at most 1024 UTF-8 bytes
/// (the S3 limit).</item>
/// <item>The URI carries no credentials, endpoint or query: those come from the AWS environment
/// (see <see cref="S3ClientSettings"/>), so a location can be printed and logged safely.</item>
/// </list>
/// </remarks>
public sealed class S3Location : IEquatable<S3Location>
{
    /// <summary>The URI scheme, lowercase.</summary>
    public const string Scheme = "s3://";

    /// <summary>The longest key S3 accepts, in UTF-8 bytes.</summary>
    public const int MaxKeyBytes = 1024;

    private S3Location(string bucket, string prefix)
    {
        Bucket = bucket;
        Prefix = prefix;
    }

    /// <summary>The bucket name.</summary>
    public string Bucket { get; }

    /// <summary>The key prefix without leading or trailing '/', or "" for the bucket's root.</summary>
    public string Prefix { get; }

    /// <summary>True when the text starts with <c>s3://</c> (any case): how callers tell an S3
    /// location from a file path before parsing it.</summary>
    public static bool IsS3Uri(string? text) =>
        text is not null && text.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <c>s3://BUCKET[/PREFIX]</c>; throws <see cref="ShuruStoreException"/>
    /// (<see cref="ShuruErrorKind.RemoteInvalid"/>) with the reason when it is malformed.</summary>
    public static S3Location Parse(string text)
    {
        if (!TryParse(text, out var location, out var error))
        {
            // A location with user information is not repeated anywhere, not even as the path.
            var rest = IsS3Uri(text) ? text[Scheme.Length..] : text ?? "";
            var hasUserInfo = (rest.IndexOf('/') is var slash && slash >= 0 ? rest[..slash] : rest).Contains('@');
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, error, hasUserInfo ? null : Printable(text));
        }
        return location;
    }

    /// <summary>Parses <c>s3://BUCKET[/PREFIX]</c>; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParse(string? text, out S3Location location, out string error)
    {
        location = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "an S3 location is empty; expected s3://BUCKET or s3://BUCKET/PREFIX";
            return false;
        }
        if (!IsS3Uri(text))
        {
            error = $"'{Printable(text)}' is not an S3 location; expected s3://BUCKET or s3://BUCKET/PREFIX";
            return false;
        }
        var rest = text[Scheme.Length..];
        if (rest.IndexOfAny(['?', '#']) >= 0)
        {
            error = $"'{Printable(text)}': an S3 location has no query or fragment (endpoint and credentials come from the AWS environment)";
            return false;
        }
        int slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..];
        if (bucket.Contains('@'))
        {
            // Never echo it: text before '@' may be a key someone tried to pass inline.
            error = "an S3 location must not contain user information ('@'); credentials come from the AWS environment or profile";
            return false;
        }
        if (!IsValidBucket(bucket, out var bucketError))
        {
            error = $"'{Printable(text)}': {bucketError}";
            return false;
        }
        if (!TryNormalizeKey(prefix, allowEmpty: true, out var normalized, out var prefixError))
        {
            error = $"'{Printable(text)}': the prefix {prefixError}";
            return false;
        }
        if (Encoding.UTF8.GetByteCount(normalized) >= MaxKeyBytes)
        {
            error = $"'{Printable(text)}': the prefix is longer than an S3 key may be ({MaxKeyBytes} bytes)";
            return false;
        }
        location = new S3Location(bucket, normalized);
        error = "";
        return true;
    }

    /// <summary>The full object key of <paramref name="relativeKey"/> under this location's prefix
    /// (e.g. prefix "vm/a" and "chunks/ab12" give "vm/a/chunks/ab12").</summary>
    public string KeyOf(string relativeKey)
    {
        if (!TryNormalizeKey(relativeKey, allowEmpty: false, out var rel, out var err))
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"object name '{Printable(relativeKey)}' {err}", ToString());
        var key = Prefix.Length == 0 ? rel : Prefix + "/" + rel;
        if (Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"the key of '{Printable(relativeKey)}' under {this} is longer than {MaxKeyBytes} bytes", ToString());
        return key;
    }

    /// <summary>The prefix that every full key under this location starts with: "" or "PREFIX/".</summary>
    public string KeyPrefix => Prefix.Length == 0 ? "" : Prefix + "/";

    /// <summary>The location of a name or sub-path under this one (<c>s3://b/vm</c> + "a.idx"
    /// is <c>s3://b/vm/a.idx</c>).</summary>
    public S3Location Child(string relativePath) => new(Bucket, KeyOf(relativePath));

    /// <summary>The location one level up (<c>s3://b/vm/a.idx</c> gives <c>s3://b/vm</c>), or
    /// null at the bucket's root.</summary>
    public S3Location? Parent
    {
        get
        {
            if (Prefix.Length == 0) return null;
            int slash = Prefix.LastIndexOf('/');
            return new S3Location(Bucket, slash < 0 ? "" : Prefix[..slash]);
        }
    }

    /// <summary>The last segment of the prefix ("a.idx" for <c>s3://b/vm/a.idx</c>), or "" at the root.</summary>
    public string Name => Prefix.Length == 0 ? "" : Prefix[(Prefix.LastIndexOf('/') + 1)..];

    /// <summary>The location of a full object key in this bucket.</summary>
    public S3Location WithPrefix(string prefix)
    {
        if (!TryNormalizeKey(prefix, allowEmpty: true, out var normalized, out var err))
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"prefix '{Printable(prefix)}' {err}", ToString());
        return new S3Location(Bucket, normalized);
    }

    /// <summary><c>s3://BUCKET</c> or <c>s3://BUCKET/PREFIX</c>; parses back to an equal location.</summary>
    public override string ToString() => Prefix.Length == 0 ? Scheme + Bucket : Scheme + Bucket + "/" + Prefix;

    public bool Equals(S3Location? other) =>
        other is not null && string.Equals(Bucket, other.Bucket, StringComparison.Ordinal) && string.Equals(Prefix, other.Prefix, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as S3Location);

    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(Bucket), StringComparer.Ordinal.GetHashCode(Prefix));

    /// <summary>Checks a bucket name against the S3 naming rules.</summary>
    public static bool IsValidBucket(string bucket, out string error)
    {
        if (bucket.Length == 0) { error = "the bucket name is missing (s3://BUCKET/PREFIX)"; return false; }
        if (bucket.Length is < 3 or > 63) { error = $"the bucket name '{Printable(bucket)}' must be 3 to 63 characters long"; return false; }
        foreach (var c in bucket)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-'))
            {
                error = $"the bucket name '{Printable(bucket)}' may only contain lowercase letters, digits, '.' and '-'";
                return false;
            }
        }
        if (!char.IsAsciiLetterOrDigit(bucket[0]) || !char.IsAsciiLetterOrDigit(bucket[^1]))
        {
            error = $"the bucket name '{Printable(bucket)}' must start and end with a letter or digit";
            return false;
        }
        if (bucket.Contains("..", StringComparison.Ordinal))
        {
            error = $"the bucket name '{Printable(bucket)}' must not contain '..'";
            return false;
        }
        if (System.Net.IPAddress.TryParse(bucket, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && bucket.Count(c => c == '.') == 3)
        {
            error = $"the bucket name '{Printable(bucket)}' must not look like an IP address";
            return false;
        }
        error = "";
        return true;
    }

    /// <summary>
    /// Strips leading and trailing '/' and checks every segment. Shared by prefixes and by the
    /// relative names an <see cref="IObjectStore"/> is given, so both obey the same rules.
    /// </summary>
    internal static bool TryNormalizeKey(string? key, bool allowEmpty, out string normalized, out string error)
    {
        normalized = "";
        key ??= "";
        var trimmed = key.Trim('/');
        if (trimmed.Length == 0)
        {
            error = allowEmpty ? "" : "is empty";
            return allowEmpty;
        }
        foreach (var c in trimmed)
        {
            if (char.IsControl(c)) { error = "contains a control character"; return false; }
            if (c == '\\') { error = "contains '\\' (use '/' between segments)"; return false; }
        }
        foreach (var segment in trimmed.Split('/'))
        {
            if (segment.Length == 0) { error = "contains an empty segment ('//')"; return false; }
            if (segment is "." or "..") { error = $"contains a '{segment}' segment"; return false; }
        }
        if (!IsWellFormedUtf16(trimmed)) { error = "is not valid Unicode text"; return false; }
        normalized = trimmed;
        error = "";
        return true;
    }

    private static bool IsWellFormedUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(s[i])) return false;
        }
        return true;
    }

    /// <summary>Text for an error message: control characters shown as '?', at most 200 characters.</summary>
    private static string Printable(string? text)
    {
        if (text is null) return "";
        var sb = new StringBuilder(Math.Min(text.Length, 200));
        foreach (var c in text.Length > 200 ? text[..200] : text) sb.Append(char.IsControl(c) ? '?' : c);
        if (text.Length > 200) sb.Append('…');
        return sb.ToString();
    }
}
