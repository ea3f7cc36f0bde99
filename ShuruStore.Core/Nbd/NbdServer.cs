using System.Collections.Concurrent;
using System.Net.Sockets;
using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// An NBD server (fixed newstyle, structured replies, base:allocation) exporting one
/// <see cref="IBlockDevice"/> on a Unix socket. Many clients may connect at once; each is served
/// by a worker thread of <see cref="NbdWorkerPool"/> that reads its requests, and requests run
/// concurrently on the thread pool.
/// The protocol code knows nothing about how the device stores its bytes.
/// The caller owns the device: stopping the server does not dispose it.
/// </summary>
public sealed class NbdServer : IDisposable
{
    private readonly ConcurrentDictionary<long, NbdConnection> _connections = new();
    private readonly object _stateLock = new();
    private Socket? _listener;
    private NbdWorkerPool? _workers;
    private long _nextId;
    private long _totalConnections;
    private volatile NbdServerState _state = NbdServerState.Created;
    private bool _createdSocket;
    private (ulong Device, ulong Inode) _socketIdentity;

    public NbdServer(IBlockDevice device, NbdServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxPayload < 512 || options.MaxPayload > 32 * 1024 * 1024)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, "MaxPayload must be between 512 bytes and 32 MiB.");
        if (options.ExportName.Length > 4096)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, "ExportName must be at most 4096 bytes.");
        if (options.MaxPayloadMemory < 0 || options.ConnectionAllowance < 0 || options.ReplyWriteTimeout <= TimeSpan.Zero
            || options.PayloadStallTimeout <= TimeSpan.Zero)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                "MaxPayloadMemory and ConnectionAllowance must not be negative, ReplyWriteTimeout and PayloadStallTimeout must be positive.");
        Device = device;
        Options = options;
        PayloadBudget = new NbdMemoryBudget(options.MaxPayloadMemory > 0 ? options.MaxPayloadMemory : NbdMemoryBudget.DefaultLimit());
        SocketPath = Path.GetFullPath(options.SocketPath);
    }

    public IBlockDevice Device { get; }
    public NbdServerOptions Options { get; }
    public string SocketPath { get; }
    public string Uri => "nbd+unix:///" + Options.ExportName + "?socket=" + SocketPath;
    public NbdServerState State => _state;

    /// <summary>Clients connected now.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Connection opened/closed, negotiation failures, device errors. Raised on server
    /// threads; handlers must be quick and must not throw.</summary>
    public event EventHandler<NbdServerEventArgs>? Event;

    internal NbdCounters Counters { get; } = new();

    /// <summary>The payload memory the connections share.</summary>
    internal NbdMemoryBudget PayloadBudget { get; }

    /// <summary>Payload bytes charged to the server-wide budget now, and its limit.</summary>
    public (long Used, long Limit) PayloadMemory => (PayloadBudget.Used, PayloadBudget.Limit);

    private NbdPoolStallWatch? _stallWatch;

    /// <summary>Claims pool threads for replies stalled on clients that do not read (null before Start).</summary>
    internal NbdPoolStallWatch? StallWatch => _stallWatch;
    private NbdRescueWatch? _rescueWatch;
    /// <summary>Rescues requests that run too long on a connection's reader thread (set while running).</summary>
    internal NbdRescueWatch RescueWatch => _rescueWatch ?? throw new InvalidOperationException("the server is not running");

    /// <summary>The accepting and serving threads (null before Start).</summary>
    internal NbdWorkerPool? Workers => _workers;

    /// <summary>Binds and listens. Throws <see cref="ShuruStoreException"/> with SocketInUse,
    /// SocketPathNotSocket or SocketPathInvalid.</summary>
    public void Start()
    {
        lock (_stateLock)
        {
            if (_state != NbdServerState.Created)
                throw new InvalidOperationException($"The server cannot be started in state {_state}.");
            string path = UnixSocketPath.Prepare(SocketPath);
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            // .NET unlinks the path a listener was bound to when it is disposed, whatever sits there
            // by then (another server's socket, a user's file). So bind at a private temporary name,
            // secure it, and publish it at the real path with a link that never replaces anything:
            // the socket is owner-only before anyone can reach it, and on stop only the file we
            // created (same inode) is removed.
            string bindPath = UnixSocketPath.TemporaryNameFor(path);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(bindPath));
                // Owner-only: the socket gives full read-write access to the disk.
                if (!OperatingSystem.IsWindows())
                    File.SetUnixFileMode(bindPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                listener.Listen(128);
                if (bindPath != path)
                {
                    try { File.Move(bindPath, path, overwrite: false); }
                    catch (IOException) when (File.Exists(path) || Directory.Exists(path) || UnixSocketPath.IsSocket(path))
                    {
                        try { File.Delete(bindPath); } catch (IOException) { }
                        throw new ShuruStoreException(ShuruErrorKind.SocketPathNotSocket,
                            $"'{path}' appeared while the server was starting; it is left untouched.", path);
                    }
                }
                _createdSocket = true;
                _socketIdentity = FileStatusCalls.GetFileIdentity(path);
            }
            catch (ShuruStoreException)
            {
                listener.Dispose();
                throw;
            }
            catch (SocketException ex)
            {
                listener.Dispose();
                RemoveSocketFile();
                throw new ShuruStoreException(
                    ex.SocketErrorCode == SocketError.AddressAlreadyInUse ? ShuruErrorKind.SocketInUse : ShuruErrorKind.SocketPathInvalid,
                    $"Cannot listen on '{path}': {ex.Message}", path, ex);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                listener.Dispose();
                RemoveSocketFile();
                throw new ShuruStoreException(ShuruErrorKind.SocketPathInvalid, $"Cannot secure '{path}': {ex.Message}", path, ex);
            }
            _listener = listener;
            _workers = new NbdWorkerPool(listener, ServeClient);
            _stallWatch = new NbdPoolStallWatch(LiveConnections);
            _rescueWatch = new NbdRescueWatch(LiveConnections);
            _state = NbdServerState.Running;
            _workers.Start();
        }
        Raise(NbdServerEventKind.Started, $"serving {Device.Size} bytes as '{Options.ExportName}' at {Uri}");
    }

    /// <summary>Graceful stop: no new connections, requests arriving now get ESHUTDOWN, in-flight
    /// requests get <see cref="NbdServerOptions.ShutdownGrace"/> to finish; then sockets close,
    /// threads are joined and the socket file is removed. Idempotent.</summary>
    public void Stop()
    {
        bool anotherStopRuns;
        lock (_stateLock)
        {
            if (_state is NbdServerState.Stopped) return;
            if (_state is NbdServerState.Created)
            {
                _state = NbdServerState.Stopped;
                _stoppedEvent.Set();
                return;
            }
            anotherStopRuns = _state is NbdServerState.Stopping;
            _state = NbdServerState.Stopping;
        }
        if (anotherStopRuns)
        {
            // A server thread (an Event handler) must not wait for the other Stop, which joins
            // this very thread; any other caller returns only once the server is really down.
            if (t_serverThreadDepth == 0) _stoppedEvent.Wait();
            return;
        }

        // No lock from here on: connection threads raise events (whose handlers may call Stop)
        // while they end, and they are joined below.
        Raise(NbdServerEventKind.Stopping, $"stopping; {_connections.Count} connection(s) open");
        // Close the pool before the listener: a worker woken by the closed listener must see that
        // the server is ending, not a failed accept to retry.
        var workers = _workers?.Close() ?? [];
        try { _listener?.Dispose(); } catch (Exception) { /* closing anyway */ }

        // No connection registers once the state left Running (ServeClient checks it under
        // _stateLock), so this snapshot holds every connection there will be.
        var deadline = DateTime.UtcNow + Options.ShutdownGrace;
        var conns = _connections.Values.ToArray();
        foreach (var c in conns) c.WaitIdle(deadline);
        foreach (var c in conns) c.Abort();
        // Workers end once their connection has closed and the listener is gone.
        foreach (var t in workers)
            if (t != Thread.CurrentThread) t.Join();
        // Requests already on the device finish before Stop returns, so the owner can close the
        // device safely (queued ones see the abort and skip the device).
        if (t_serverThreadDepth == 0)
            foreach (var c in conns) c.WaitDrained(DrainBound);
        _stallWatch?.Dispose();
        _rescueWatch?.Dispose();
        RemoveSocketFile();
        lock (_stateLock) _state = NbdServerState.Stopped;
        _stoppedEvent.Set();
        Raise(NbdServerEventKind.Stopped, "stopped");
    }

    /// <summary>How long Stop waits for device calls still running after the clients are gone.</summary>
    private static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(30);

    private readonly ManualResetEventSlim _stoppedEvent = new(false);

    /// <summary>Nesting depth of server work on this thread (connection readers, request workers):
    /// lets Stop tell a call from its own threads from a call by the owner.</summary>
    [ThreadStatic] private static int t_serverThreadDepth;

    internal static void EnterServerThread() => t_serverThreadDepth++;
    internal static void LeaveServerThread() => t_serverThreadDepth--;

    public void Dispose() => Stop();

    public NbdServerStatistics GetStatistics()
    {
        var conns = _connections.Values.Select(c => c.Snapshot()).OrderBy(c => c.Id).ToList();
        return new NbdServerStatistics(conns.Count, Interlocked.Read(ref _totalConnections), Counters.BytesRead,
            Counters.BytesWritten, Counters.SnapshotRequests(), Counters.Errors, conns);
    }

    /// <summary>Serves one accepted client on the calling worker thread, to its end.</summary>
    private void ServeClient(Socket client)
    {
        NbdConnection? conn = null;
        lock (_stateLock)
        {
            if (_state != NbdServerState.Running)
            {
                client.Dispose();
                return;
            }
            if (_connections.Count < Options.MaxConnections)
            {
                long id = Interlocked.Increment(ref _nextId);
                Interlocked.Increment(ref _totalConnections);
                conn = new NbdConnection(this, client, id);
                _connections[id] = conn;
            }
        }
        if (conn is null)
        {
            Raise(NbdServerEventKind.NegotiationFailed,
                $"connection refused: {Options.MaxConnections} clients are already connected (the limit)");
            client.Dispose();
            return;
        }
        conn.Run(); // the connection announces itself (ConnectionOpened) and ends with ConnectionClosed
    }

    /// <summary>The connections open now, for the watches that look at them every few
    /// milliseconds: the dictionary's own enumerator takes no lock (Values takes all of them).</summary>
    private IEnumerable<NbdConnection> LiveConnections() => _connections.Select(static c => c.Value);

    internal void OnConnectionClosed(NbdConnection conn, string reason)
    {
        // Keep the entry while Stop is joining; Stop takes its own snapshot first.
        _connections.TryRemove(conn.Id, out _);
        Raise(NbdServerEventKind.ConnectionClosed, $"connection {conn.Id} closed: {reason}", conn.Id);
    }

    internal void Raise(NbdServerEventKind kind, string message, long connectionId = 0, Exception? ex = null)
    {
        var handler = Event;
        if (handler is null) return;
        try
        {
            handler(this, new NbdServerEventArgs(kind, message, connectionId, ex));
        }
        catch (Exception)
        {
            // A faulty subscriber must not take a connection down.
        }
    }

    private void RemoveSocketFile()
    {
        if (!_createdSocket) return;
        _createdSocket = false;
        try
        {
            // Only remove it if it is still the socket we created: never delete someone else's file.
            if (UnixSocketPath.IsSocket(SocketPath) && FileStatusCalls.GetFileIdentity(SocketPath) == _socketIdentity) File.Delete(SocketPath);
        }
        catch (Exception) { /* best effort */ }
    }
}
