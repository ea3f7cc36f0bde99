namespace ShuruStore.Core.Remote;

/// <summary>What a publish did.</summary>
/// <param name="Uri">The published index (<c>s3://BUCKET/PREFIX/indexes/NAME.idx</c>): what a
/// host boots from.</param>
/// <param name="IndexesPublished">Indexes uploaded (the checkpoint, new parents, the base pieces' index).</param>
/// <param name="PacksUploaded">Packs uploaded.</param>
/// <param name="ChunksUploaded">Chunks in them.</param>
/// <param name="BytesUploaded">Bytes of packs, maps and indexes uploaded.</param>
/// <param name="PacksReused">Packs of the plan that were already in the destination.</param>
/// <param name="AlreadyPublished">True when nothing had to be done.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record PublishResult(string Uri, int IndexesPublished, int PacksUploaded, long ChunksUploaded, long BytesUploaded,
    int PacksReused, bool AlreadyPublished, TimeSpan Elapsed);
