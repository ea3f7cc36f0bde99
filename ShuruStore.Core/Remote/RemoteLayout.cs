namespace ShuruStore.Core.Remote;

/// <summary>
/// Where things are in a remote chunk store rooted at <c>s3://BUCKET/PREFIX</c> (keys relative
/// to the root):
/// <list type="table">
/// <item><term><c>indexes/NAME.idx</c></term><description>a published checkpoint in shuru's
/// index format; its parent is named by its <c>s3://</c> URI and it has no fallback image (the
/// base image's pieces are a synthetic bottom index of their own)</description></item>
/// <item><term><c>maps/NAME.map</c></term><description>where the chunks of that index live that
/// its ancestors' maps do not locate (<see cref="ChunkMap"/>); written before the index</description></item>
/// <item><term><c>packs/ID.pack</c></term><description>chunks concatenated, about 4 MiB, with a
/// header naming them (<see cref="ChunkPack"/>); ID is derived from the header, so the same
/// chunks make the same pack</description></item>
/// <item><term><c>uploads/NAME.upload</c></term><description>an upload in progress: the packs
/// and indexes it will reference, so a collection never removes them (<see cref="UploadMarker"/>)</description></item>
/// </list>
/// The index is written last: a published index never names data the remote does not have.
/// </summary>
public static class RemoteLayout
{
    /// <summary>The folder of published indexes.</summary>
    public const string IndexesFolder = "indexes/";
    /// <summary>The folder of chunk maps.</summary>
    public const string MapsFolder = "maps/";
    /// <summary>The folder of packs.</summary>
    public const string PacksFolder = "packs/";
    /// <summary>The folder of upload markers.</summary>
    public const string UploadsFolder = "uploads/";

    /// <summary>The extension of a published index.</summary>
    public const string IndexExtension = ".idx";
    private const string MapExtension = ".map";
    private const string PackExtension = ".pack";
    private const string UploadExtension = ".upload";

    /// <summary>Longest checkpoint name, without the extension.</summary>
    public const int MaxNameLength = 200;

    /// <summary>The key of a published index.</summary>
    public static string IndexKey(string name) => IndexesFolder + CheckName(name) + IndexExtension;
    /// <summary>The key of an index's chunk map.</summary>
    public static string MapKey(string name) => MapsFolder + CheckName(name) + MapExtension;
    /// <summary>The key of a pack.</summary>
    public static string PackKey(PackId id) => PacksFolder + id + PackExtension;
    /// <summary>The key of the marker of an upload that publishes <paramref name="name"/>.</summary>
    public static string UploadKey(string name) => UploadsFolder + CheckName(name) + UploadExtension;

    /// <summary>A checkpoint name: a plain file name of letters, digits, '.', '-' and '_',
    /// starting with a letter or digit; a trailing ".idx" is dropped.</summary>
    public static bool TryNormalizeName(string? text, out string name, out string error)
    {
        name = "";
        var t = text ?? "";
        if (t.EndsWith(IndexExtension, StringComparison.Ordinal)) t = t[..^IndexExtension.Length];
        if (t.Length == 0) { error = "a checkpoint name is empty"; return false; }
        if (t.Length > MaxNameLength) { error = $"a checkpoint name is longer than {MaxNameLength} characters"; return false; }
        if (!char.IsAsciiLetterOrDigit(t[0]) || t.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')))
        {
            error = $"checkpoint name '{Printable(t)}' may contain only letters, digits, '.', '-' and '_', and must start with a letter or digit";
            return false;
        }
        name = t;
        error = "";
        return true;
    }

    /// <summary>The name of a checkpoint name's text, or an <see cref="ShuruErrorKind.InvalidArgument"/> error.</summary>
    public static string NormalizeName(string? text) =>
        TryNormalizeName(text, out var name, out var error) ? name : throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, error);

    /// <summary>Splits the URI of a published index (<c>s3://BUCKET/PREFIX/indexes/NAME.idx</c>)
    /// into the store's root and the checkpoint's name.</summary>
    public static (S3Location Root, string Name) ParseIndexUri(string uri)
    {
        var location = S3Location.Parse(uri);
        var folder = location.Parent;
        string file = location.Name;
        if (folder is null || folder.Name + "/" != IndexesFolder || !file.EndsWith(IndexExtension, StringComparison.Ordinal)
            || !TryNormalizeName(file, out var name, out _))
            throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid,
                $"'{location}' is not a published checkpoint; expected s3://BUCKET/PREFIX/{IndexesFolder}NAME{IndexExtension}", location.ToString());
        return (folder.Parent!, name);
    }

    /// <summary>The URI of a published index.</summary>
    public static string IndexUri(S3Location root, string name) => root.Child(IndexKey(name)).ToString();

    /// <summary>The checkpoint name of a key under <see cref="IndexesFolder"/> (or <see cref="MapsFolder"/>,
    /// <see cref="UploadsFolder"/>), or null when the key is something else.</summary>
    public static string? NameOfKey(string key, string folder)
    {
        string extension = folder switch
        {
            IndexesFolder => IndexExtension,
            MapsFolder => MapExtension,
            UploadsFolder => UploadExtension,
            _ => throw new ArgumentException($"no names in folder {folder}", nameof(folder)),
        };
        if (!key.StartsWith(folder, StringComparison.Ordinal) || !key.EndsWith(extension, StringComparison.Ordinal)) return null;
        var name = key[folder.Length..^extension.Length];
        return TryNormalizeName(name, out var n, out _) && n == name ? n : null;
    }

    /// <summary>The pack of a key under <see cref="PacksFolder"/>, or null when the key is something else.</summary>
    public static PackId? PackOfKey(string key) =>
        key.StartsWith(PacksFolder, StringComparison.Ordinal) && key.EndsWith(PackExtension, StringComparison.Ordinal)
        && PackId.TryParse(key.AsSpan(PacksFolder.Length, key.Length - PacksFolder.Length - PackExtension.Length), out var id) ? id : null;

    private static string CheckName(string name) =>
        TryNormalizeName(name, out var n, out var error) && n == name ? n : throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, error.Length > 0 ? error : $"'{Printable(name)}' is not a normalized checkpoint name");

    private static string Printable(string s) => new(s.Take(100).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
