using System.Text;

namespace ShuruStore.Core.Remote;

/// <summary>
/// The marker of an upload in progress (<c>uploads/NAME.upload</c>): written before the first
/// pack, removed after the index. It names every pack and checkpoint the upload will reference,
/// so a collection that runs meanwhile keeps them whatever their age, and an upload interrupted
/// for days still finds its packs when it is run again. A marker older than the collector's
/// stale-upload age is taken for an abandoned upload.
/// <para>Text, one item a line: <c>shurustore-upload 1</c>, then <c>index NAME</c> and
/// <c>pack ID</c> lines.</para>
/// </summary>
public sealed record UploadMarker(IReadOnlyList<string> Names, IReadOnlyList<PackId> Packs)
{
    private const string Header = "shurustore-upload 1";

    /// <summary>The marker's bytes.</summary>
    public byte[] ToBytes()
    {
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var n in Names) sb.Append("index ").Append(n).Append('\n');
        foreach (var p in Packs) sb.Append("pack ").Append(p).Append('\n');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Parses a marker; <paramref name="source"/> names it in errors.</summary>
    public static UploadMarker Parse(ReadOnlySpan<byte> data, string source)
    {
        string text;
        try { text = new UTF8Encoding(false, true).GetString(data); }
        catch (DecoderFallbackException) { throw Bad("it is not UTF-8 text"); }
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0 || lines[0] != Header) throw Bad($"it does not start with '{Header}'");
        var names = new List<string>();
        var packs = new List<PackId>();
        for (int i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.StartsWith("index ", StringComparison.Ordinal) && RemoteLayout.TryNormalizeName(line[6..], out var n, out _) && n == line[6..]) names.Add(n);
            else if (line.StartsWith("pack ", StringComparison.Ordinal) && PackId.TryParse(line.AsSpan(5), out var p)) packs.Add(p);
            else throw Bad($"line {i + 1} is neither 'index NAME' nor 'pack ID'");
        }
        return new UploadMarker(names, packs);

        ShuruStoreException Bad(string what) => new(ShuruErrorKind.RemoteInvalid, $"upload marker {source} is invalid: {what}", source);
    }
}
