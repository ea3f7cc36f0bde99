using System.Runtime.CompilerServices;

namespace ShuruStore.Core.Remote;

/// <summary>
/// A flat store of immutable named byte objects: what the remote chunk tier needs from S3 and
/// nothing more, so a test can wrap it (to count, delay or fail calls) and another kind of store
/// could stand behind it.
/// </summary>
/// <remarks>
/// Contract every implementation keeps:
/// <list type="bullet">
/// <item>Keys are relative to the store's root (for S3: the location's prefix), '/'-separated,
/// without empty, "." or ".." segments; listing returns keys in the same relative form.</item>
/// <item>Every call ends within the store's deadline, retrying transient failures with backoff
/// inside it, and then throws <see cref="ShuruStoreException"/> with one of the Remote kinds:
/// <see cref="ShuruErrorKind.RemoteUnavailable"/> (gave up: retry later),
/// <see cref="ShuruErrorKind.RemoteObjectMissing"/>, <see cref="ShuruErrorKind.RemoteAccessDenied"/>,
/// <see cref="ShuruErrorKind.RemoteInvalid"/>. Cancelling the token ends a call at once with
/// <see cref="OperationCanceledException"/>.</item>
/// <item>Calls are safe to make concurrently; the store bounds how many are in flight and makes
/// the others wait (the wait counts against their deadline).</item>
/// <item>No message, property or ToString() of a store or of its errors contains credentials.</item>
/// </list>
/// </remarks>
public interface IObjectStore
{
    /// <summary>Where the store is, for messages (e.g. <c>s3://bucket/prefix</c>); never credentials.</summary>
    string Description { get; }

    /// <summary>Reads a whole object into <paramref name="destination"/> and returns its length.
    /// An object longer than the buffer fails with <see cref="ShuruErrorKind.RemoteInvalid"/>
    /// (the caller is told what it expected wrong, nothing is truncated silently).</summary>
    Task<int> GetAsync(string key, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>Reads bytes [offset, offset + destination.Length) of an object and returns how
    /// many were read: fewer only when the object ends first, 0 when it ends at or before offset.</summary>
    Task<int> GetRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>Stores an object, replacing one of the same key. Safe to retry: the content is
    /// written whole or not at all.</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>The object's length, or null when it does not exist.</summary>
    Task<ObjectInfo?> HeadAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>One page of the keys that start with <paramref name="prefix"/> (relative, may be
    /// "" for all), in ascending key order. Pass the previous page's
    /// <see cref="ObjectListPage.ContinuationToken"/> for the next; null starts from the beginning.</summary>
    Task<ObjectListPage> ListPageAsync(string prefix, string? continuationToken, CancellationToken cancellationToken = default);

    /// <summary>Deletes objects, in batches as large as the store allows. A key that does not
    /// exist counts as deleted. Throws when any key could not be deleted.</summary>
    Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default);
}

/// <summary>An object's key (relative to the store's root), length in bytes and, when the store
/// says, when it was last written (a collector's grace period is measured from it).</summary>
public sealed record ObjectInfo(string Key, long Length, DateTimeOffset? LastModified = null);

/// <summary>A page of a listing; <see cref="ContinuationToken"/> is null on the last page.</summary>
public sealed record ObjectListPage(IReadOnlyList<ObjectInfo> Objects, string? ContinuationToken);

/// <summary>Conveniences on top of <see cref="IObjectStore"/>.</summary>
public static class ObjectStoreExtensions
{
    /// <summary>Every object under a prefix, page after page (each page a call with its own deadline).</summary>
    public static async IAsyncEnumerable<ObjectInfo> ListAllAsync(this IObjectStore store, string prefix,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? token = null;
        do
        {
            var page = await store.ListPageAsync(prefix, token, cancellationToken).ConfigureAwait(false);
            foreach (var o in page.Objects) yield return o;
            token = page.ContinuationToken;
        } while (token is not null);
    }
}
