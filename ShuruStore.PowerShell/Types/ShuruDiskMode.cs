namespace ShuruStore.Commands;

/// <summary>How a server's disk is stored.</summary>
public enum ShuruDiskMode
{
    /// <summary>Content-addressed chunks and an index (copy-on-write over a base image).</summary>
    ChunkStore,
    /// <summary>A plain raw image served as it is.</summary>
    Flat,
}
