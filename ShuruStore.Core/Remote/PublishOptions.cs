namespace ShuruStore.Core.Remote;

/// <summary>What to publish, where, and how many uploads at once. Holds no endpoint or
/// credentials (those come from the AWS environment), so it is safe to print.</summary>
public sealed record PublishOptions
{
    /// <summary>The local checkpoint to publish (its whole chain goes with it).</summary>
    public required string IndexPath { get; init; }

    /// <summary>The local chunk store holding its chunks.</summary>
    public required string CasPath { get; init; }

    /// <summary>The remote store: <c>s3://BUCKET/PREFIX</c>.</summary>
    public required string Destination { get; init; }

    /// <summary>The published checkpoint's name (<c>indexes/NAME.idx</c>); null: the index's file
    /// name without its extension.</summary>
    public string? Name { get; init; }

    /// <summary>Packs uploaded at once (each held in memory while it is sent).</summary>
    public int Parallelism { get; init; } = 16;

    /// <summary>Bytes of chunks per pack, at most (the last pack of an index may be smaller).</summary>
    public int PackBytes { get; init; } = 4 << 20;

    /// <summary>Throws <see cref="ShuruStoreException"/> (<see cref="ShuruErrorKind.InvalidArgument"/>)
    /// when a value is out of range.</summary>
    public void Validate()
    {
        if (Parallelism is < 1 or > 256)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(Parallelism)} must be 1 to 256 (it is {Parallelism})");
        if (PackBytes is < Storage.ChunkHasher.ChunkSize or > 64 << 20)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"{nameof(PackBytes)} must be 64 KiB to 64 MiB (it is {PackBytes})");
    }
}
