namespace ShuruStore.Core.Storage;

/// <summary>
/// What a verified chunk file looked like when its content was hashed. A chunk file is trusted
/// without re-hashing only while all four stay the same: any write to the file moves its
/// modification time, and any write, truncation, rename, link or unlink moves its change time,
/// which (unlike mtime) no tool can set back; the inode tells a file replaced under the same
/// name from the one verified. The residual risk is a rewrite that keeps the length and lands
/// in the same timestamp tick as the verified version (and also moves neither time's
/// recorded value); kernels with multigrain timestamps (Linux 6.13+, ext4/xfs/btrfs/tmpfs) give
/// a change made after a statx a distinct ctime, which narrows even that.
/// </summary>
internal readonly record struct ChunkFileIdentity(ulong Inode, long Length, long ModifiedNanos, long ChangedNanos);
