using System.Text;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Remote;

/// <summary>Where a local index came from, or was published to: the <c>s3://</c> URI of the
/// published index, the BLAKE3 of the published bytes and their length.</summary>
public sealed record IndexOrigin(string Uri, string RemoteDigest, long RemoteLength);

/// <summary>
/// The records, kept in a local chunk store, of which local index files are published indexes:
/// a mirror of a remote index (written when a remote checkpoint is booted) and a local checkpoint
/// that was published. A record is keyed by the BLAKE3 of the local file's bytes, so it follows
/// the content, not the path (a copied or moved index keeps its origin; an edited one loses it).
/// Publishing looks a chain's members up here: a member that is already in the destination is
/// named by its URI instead of being uploaded again, and a checkpoint saved from a booted remote
/// index has the mirror as parent, which publishing maps back to the origin URI.
/// <para>Layout: <c>&lt;cas&gt;/remote/origins/&lt;64 hex of the local bytes&gt;/&lt;32 hex of the
/// URI&gt;</c>, each file three lines: <c>uri …</c>, <c>digest …</c>, <c>length …</c>. One file per
/// (content, URI) pair, written atomically, so concurrent writers never lose each other's records.
/// shuru never looks outside <c>chunks/</c>, and neither the collector nor the verifier touch
/// <c>remote/</c>.</para>
/// </summary>
public static class IndexOrigins
{
    /// <summary>The folder of remote-tier files in a local chunk store.</summary>
    public const string RemoteFolder = "remote";

    private static string OriginsDir(string casPath) => Path.Combine(Path.GetFullPath(casPath), RemoteFolder, "origins");

    /// <summary>The key of a local index's bytes.</summary>
    public static string ContentKey(ReadOnlySpan<byte> localBytes) => Convert.ToHexStringLower(ChunkMap.DigestOf(localBytes));

    /// <summary>Records that the local index with these bytes is the published index <paramref name="origin"/>.</summary>
    public static void Record(string casPath, ReadOnlySpan<byte> localBytes, IndexOrigin origin)
    {
        string dir = Path.Combine(OriginsDir(casPath), ContentKey(localBytes));
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, Convert.ToHexStringLower(ChunkMap.DigestOf(Encoding.UTF8.GetBytes(origin.Uri)))[..32]);
        var text = $"uri {origin.Uri}\ndigest {origin.RemoteDigest}\nlength {origin.RemoteLength}\n";
        try { AtomicFile.Write(file, s => s.Write(Encoding.UTF8.GetBytes(text))); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ShuruStoreException(ShuruErrorKind.IOError, $"cannot record the origin of a remote index in '{dir}': {e.Message}", dir, e); }
    }

    /// <summary>The published indexes the local index with these bytes is, if any.</summary>
    public static IReadOnlyList<IndexOrigin> Find(string casPath, ReadOnlySpan<byte> localBytes)
    {
        string dir = Path.Combine(OriginsDir(casPath), ContentKey(localBytes));
        if (!Directory.Exists(dir)) return [];
        var found = new List<IndexOrigin>();
        foreach (var file in Directory.EnumerateFiles(dir))
        {
            if (Path.GetFileName(file).StartsWith('.')) continue; // an atomic write in progress
            string[] lines;
            try { lines = File.ReadAllLines(file); }
            catch (IOException) { continue; }
            string? uri = null, digest = null;
            long length = -1;
            foreach (var line in lines)
            {
                if (line.StartsWith("uri ", StringComparison.Ordinal)) uri = line[4..];
                else if (line.StartsWith("digest ", StringComparison.Ordinal)) digest = line[7..];
                else if (line.StartsWith("length ", StringComparison.Ordinal) && long.TryParse(line[7..], out var l)) length = l;
            }
            if (uri is not null && digest is { Length: 64 } && length >= 0 && S3Location.TryParse(uri, out _, out _))
                found.Add(new IndexOrigin(uri, digest, length));
        }
        return found;
    }

    /// <summary>The published indexes the local index file is, if any.</summary>
    public static IReadOnlyList<IndexOrigin> Find(string casPath, string localIndexPath) =>
        File.Exists(localIndexPath) ? Find(casPath, File.ReadAllBytes(localIndexPath)) : [];
}
