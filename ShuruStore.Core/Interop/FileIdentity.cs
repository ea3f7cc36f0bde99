namespace ShuruStore.Core.Interop;

/// <summary>
/// What a file looked like at one <c>statx</c>: inode, length, modification and change time.
/// A file whose content was verified is trusted without re-reading only while all four stay the
/// same: any write moves its modification time, and any write, truncation, rename, link or
/// unlink moves its change time, which (unlike mtime) no tool can set back; the inode tells a
/// file replaced under the same name from the one verified. The residual risk is a rewrite that
/// keeps the length and lands in the same timestamp tick as the verified version; kernels with
/// multigrain timestamps give a change made after a statx a distinct ctime, which narrows even that.
/// </summary>
internal readonly record struct FileIdentity(ulong Inode, long Length, long ModifiedNanos, long ChangedNanos);
