using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>What publishing does with one index of the chain.</summary>
public enum PublishAction
{
    /// <summary>It is uploaded (its packs, then its map, then the index).</summary>
    Upload,
    /// <summary>It is already in the destination: named by its URI, nothing uploaded.</summary>
    AlreadyPublished,
}

/// <summary>One index of the published chain.</summary>
/// <param name="Name">Its name in the destination.</param>
/// <param name="Uri">Its published URI.</param>
/// <param name="LocalPath">The local index it comes from; null for the index of the base image's pieces.</param>
/// <param name="Action">Uploaded or already there.</param>
/// <param name="Chunks">Chunks it adds (not located by the maps below it).</param>
/// <param name="Bytes">Their bytes.</param>
public sealed record PublishMember(string Name, string Uri, string? LocalPath, PublishAction Action, long Chunks, long Bytes);

/// <summary>A pack the plan needs in the destination.</summary>
/// <param name="Id">Its name.</param>
/// <param name="Entries">Its chunks, in order.</param>
/// <param name="Length">Its total length (header and chunks).</param>
/// <param name="Exists">Whether it was found in the destination when the plan was made.</param>
public sealed record PlannedPack(PackId Id, IReadOnlyList<PackEntry> Entries, long Length, bool Exists);

/// <summary>
/// What <see cref="CheckpointPublisher.Execute"/> will do (and all that -WhatIf shows): the
/// chain's indexes bottom first, each uploaded or already published, and the packs to upload.
/// Made by <see cref="CheckpointPublisher.Plan(PublishOptions, IObjectStore, S3Location, CancellationToken)"/>;
/// touches nothing in the destination.
/// </summary>
public sealed class PublishPlan
{
    internal PublishPlan(PublishOptions options, S3Location root, string uri, IReadOnlyList<PublishMember> members, IReadOnlyList<PlannedPack> packs,
        IReadOnlyList<PlannedIndex> uploads, IReadOnlyDictionary<ChunkHash, long> basePieces, string? basePath)
    {
        Options = options; Root = root; Uri = uri; Members = members; Packs = packs; Uploads = uploads; BasePieces = basePieces; BaseImagePath = basePath;
    }

    /// <summary>What was asked.</summary>
    public PublishOptions Options { get; }
    /// <summary>The destination.</summary>
    public S3Location Root { get; }
    /// <summary>The URI the checkpoint is (or will be) published at.</summary>
    public string Uri { get; }
    /// <summary>The published chain, bottom first.</summary>
    public IReadOnlyList<PublishMember> Members { get; }
    /// <summary>Every pack the new indexes' maps point into (existing ones are relied on, not uploaded).</summary>
    public IReadOnlyList<PlannedPack> Packs { get; }
    /// <summary>True when the checkpoint is already published: nothing to do.</summary>
    public bool AlreadyPublished => Members.Count > 0 && Members[^1].Action == PublishAction.AlreadyPublished;
    /// <summary>Packs to upload.</summary>
    public int PacksToUpload => Packs.Count(p => !p.Exists);
    /// <summary>Bytes to upload in packs.</summary>
    public long BytesToUpload => Packs.Where(p => !p.Exists).Sum(p => p.Length);
    /// <summary>Chunks to upload in packs.</summary>
    public long ChunksToUpload => Packs.Where(p => !p.Exists).Sum(p => (long)p.Entries.Count);
    /// <summary>The base image whose pieces are published (null: none).</summary>
    public string? BaseImagePath { get; }

    internal IReadOnlyList<PlannedIndex> Uploads { get; }
    /// <summary>Base pieces to read from the base image: chunk name → byte offset in the base.</summary>
    internal IReadOnlyDictionary<ChunkHash, long> BasePieces { get; }
}

/// <summary>An index of the plan: its published bytes, its map (null when it is already
/// published), and the local file (if any) whose origin is recorded afterwards.</summary>
internal sealed record PlannedIndex(string Name, byte[] Bytes, ChunkMap? Map, string? LocalPath, byte[]? LocalBytes);
