namespace ShuruStore.Core.Storage;

/// <summary>
/// The link at which a parent chain stops because the parent it names does not exist (shuru's
/// <c>checkpoint delete</c> removes a parent without looking at its children). Everything set
/// only in that parent, or in the indexes beyond it, is unknown: a server reading the chain would
/// read those chunks from the base image or as zeros, which is what shuru 0.1.2 does silently.
/// </summary>
/// <param name="IndexPath">The index (absolute) that names the missing parent.</param>
/// <param name="StoredPath">The parent path as that index stores it.</param>
/// <param name="MissingPath">Where the parent was expected (absolute).</param>
/// <param name="OtherCandidate">For a relative stored path, the other place looked at.</param>
public sealed record MissingParentLink(string IndexPath, string StoredPath, string MissingPath, string? OtherCandidate)
{
    /// <summary>"index X names parent Y, which does not exist (looked for ...)".</summary>
    public string Describe() =>
        $"index '{IndexPath}' names parent '{StoredPath}', which does not exist (looked for '{MissingPath}'" +
        (OtherCandidate is null ? ")" : $" and '{OtherCandidate}')");

    /// <summary>What reading the chain without the parent gets wrong, given its base image.</summary>
    public static string Consequence(string? baseImagePath) =>
        "every chunk set only in that parent (or in an index beyond it) would read " +
        (baseImagePath is null ? "as zeros" : $"from the base image '{baseImagePath}' or as zeros") +
        " instead of the data that was checkpointed";

    /// <summary>The error for an operation that refuses such a chain (<paramref name="operation"/>:
    /// "cannot serve 'x.idx'", say).</summary>
    public ShuruStoreException ToException(string operation, string? baseImagePath, string howToAccept) =>
        new(ShuruErrorKind.ParentIndexMissing,
            $"{operation}: {Describe()}; {Consequence(baseImagePath)} (shuru 0.1.2 reads it that way without a word). " +
            $"Restore the parent, or {howToAccept}.", MissingPath);
}
