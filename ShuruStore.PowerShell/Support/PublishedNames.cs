namespace ShuruStore.Commands;

/// <summary>
/// The published URI of each local mirror of a published chain, so objects read from a mirror
/// show where the user's data lives (<c>s3://…</c>) rather than a cache path; a path that is not
/// a mirror (a local index, a base image) is shown as it is.
/// </summary>
internal sealed class PublishedNames
{
    private readonly Dictionary<string, string> _uriByMirror;

    private PublishedNames(Dictionary<string, string> uriByMirror) => _uriByMirror = uriByMirror;

    /// <summary>No mirrors: every path is shown as it is.</summary>
    public static PublishedNames None { get; } = new(new Dictionary<string, string>(StringComparer.Ordinal));

    /// <summary>The names of a mirrored chain's members.</summary>
    public static PublishedNames Of(Core.Remote.MirroredChain chain) =>
        new(chain.Members.ToDictionary(m => Path.GetFullPath(m.LocalPath), m => m.Uri, StringComparer.Ordinal));

    /// <summary>The URI a mirror path stands for, or the path itself.</summary>
    public string? Show(string? path) =>
        path is not null && _uriByMirror.Count > 0 && _uriByMirror.TryGetValue(Path.GetFullPath(path), out string? uri) ? uri : path;
}
