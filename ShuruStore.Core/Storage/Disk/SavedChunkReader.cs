using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Reads the bytes of a chunk's saved place (<see cref="ChunkPlaceKind.Live"/>,
/// <see cref="ChunkPlaceKind.Parent"/>, <see cref="ChunkPlaceKind.Base"/>,
/// <see cref="ChunkPlaceKind.Unset"/>): a hash from the chunk store, verified; a base piece from
/// the base image; zeros. The zero chunk is never read from disk. A missing or damaged chunk is
/// EIO naming both the disk chunk and the stored chunk, never zeros.
/// </summary>
internal sealed class SavedChunkReader(IChunkStore store, BaseImage? baseImage)
{
    private const int CS = ChunkHasher.ChunkSize;

    /// <summary>The chunk store.</summary>
    public IChunkStore Store => store;
    /// <summary>The base image, or null.</summary>
    public BaseImage? Base => baseImage;

    /// <summary>Bytes [<paramref name="inChunk"/>, +dest.Length) of a chunk whose place is saved.</summary>
    public void Read(ChunkPlace place, long chunk, int inChunk, Span<byte> dest)
    {
        switch (place.Kind)
        {
            case ChunkPlaceKind.Live or ChunkPlaceKind.Parent:
                ReadStored(place.Hash, chunk, inChunk, dest);
                break;
            case ChunkPlaceKind.Base:
                baseImage!.ReadRange(chunk * CS + inChunk, dest);
                break;
            case ChunkPlaceKind.Unset:
                dest.Clear();
                break;
            default:
                throw new InvalidOperationException($"disk chunk {chunk} has unsaved writes: read them under its stripe");
        }
    }

    /// <summary>A range of a stored chunk.</summary>
    public void ReadStored(ChunkHash hash, long chunk, int inChunk, Span<byte> dest)
    {
        if (hash.IsZeroChunk) { dest.Clear(); return; } // synthesised, never read from disk
        bool found;
        try { found = store.TryReadRange(hash, inChunk, dest); }
        catch (ShuruStoreException e)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: {e.Message}", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: cannot read chunk {hash}: {e.Message}", e); }
        if (!found)
            throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: chunk {hash} is missing from the chunk store");
    }
}
