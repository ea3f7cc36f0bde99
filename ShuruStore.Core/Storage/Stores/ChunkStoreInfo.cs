namespace ShuruStore.Core.Storage;

/// <summary>A summary of a chunk store directory, for the cmdlets.</summary>
/// <param name="CasPath">The store root.</param>
/// <param name="ChunkCount">Files whose name is a valid chunk hash.</param>
/// <param name="TotalBytes">Bytes in those files.</param>
/// <param name="ZeroChunkPresent">Whether the 64 KiB zero chunk's file exists.</param>
/// <param name="TempFileCount">Leftover <c>.tmp-*</c> files from interrupted writes.</param>
/// <param name="OtherFileCount">Anything else in <c>chunks/</c>.</param>
public sealed record ChunkStoreInfo(string CasPath, long ChunkCount, long TotalBytes, bool ZeroChunkPresent, long TempFileCount, long OtherFileCount)
{
    /// <summary>Who uses the store: live registrations, and ended ones (a killed server, or a
    /// stopped one with a resumable state file).</summary>
    public IReadOnlyList<StoreRegistration> Registrations { get; init; } = [];

    /// <summary>Scans <c>&lt;casPath&gt;/chunks</c> without reading chunk contents.</summary>
    public static ChunkStoreInfo Scan(string casPath)
    {
        string root = Path.GetFullPath(casPath);
        string chunks = Path.Combine(root, "chunks");
        if (!Directory.Exists(root))
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{root}' does not exist", root);
        long count = 0, bytes = 0, temps = 0, other = 0;
        bool zero = false;
        if (Directory.Exists(chunks))
        {
            foreach (var fi in new DirectoryInfo(chunks).EnumerateFiles())
            {
                if (ChunkHash.TryParse(fi.Name, out var h))
                {
                    count++; bytes += fi.Length;
                    if (h.IsZeroChunk) zero = true;
                }
                else if (fi.Name.StartsWith(".tmp-", StringComparison.Ordinal)) temps++;
                else other++;
            }
        }
        return new ChunkStoreInfo(root, count, bytes, zero, temps, other) { Registrations = StoreRegistrations.Read(root) };
    }
}
