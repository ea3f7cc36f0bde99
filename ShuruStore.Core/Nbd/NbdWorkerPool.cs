using System.Net.Sockets;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// The threads that accept clients and serve them. Every worker blocks in accept(2) on the
/// listening socket itself, so the kernel hands a new client straight to a waiting thread: no
/// thread is created and no hand-off happens between accept and the greeting, which is most of
/// what a client waits for before its first byte. A worker that finishes a connection goes back
/// to accepting while few others are idle, so a client that reconnects finds a warm thread.
/// When the last idle worker takes a client, a spare is started off that client's path.
/// </summary>
internal sealed class NbdWorkerPool
{
    /// <summary>Idle workers kept after their connection ended; more than this exit. Above the
    /// four connections nbdcopy opens at once, so such a burst never has to start and end threads
    /// while it shakes hands.</summary>
    public const int MaxIdle = 8;

    /// <summary>Workers waiting in accept from the start (nbdcopy's burst of four).</summary>
    public const int InitialIdle = 5;

    private readonly Socket _listener;
    private readonly Action<Socket> _serve;
    private readonly HashSet<Thread> _threads = [];
    private readonly Lock _lock = new();
    private int _idle;
    private bool _closed;

    /// <param name="listener">A listening socket. The owner calls <see cref="Close"/> and then
    /// disposes it, which wakes every idle worker, and each one then exits.</param>
    /// <param name="serve">Serves one accepted client on the calling worker, to its end.</param>
    public NbdWorkerPool(Socket listener, Action<Socket> serve)
    {
        _listener = listener;
        _serve = serve;
    }

    /// <summary>Starts the first idle workers, so clients connecting at once do not wait for
    /// spares to start.</summary>
    public void Start()
    {
        for (int i = 0; i < InitialIdle; i++) StartWorker();
    }

    /// <summary>No worker is started from now on. Returns every worker ever started and not yet
    /// ended, for the caller to join once the listener and the connections are closed.</summary>
    public Thread[] Close()
    {
        lock (_lock)
        {
            _closed = true;
            return [.. _threads];
        }
    }

    /// <summary>The workers alive now (tests check they are background threads).</summary>
    internal Thread[] Snapshot()
    {
        lock (_lock) return [.. _threads];
    }

    private void StartWorker()
    {
        lock (_lock)
        {
            if (_closed) return;
            var t = new Thread(WorkerLoop) { IsBackground = true, Name = "nbd-worker" };
            // Started under the lock: Close never returns a thread that Stop could not join.
            t.UnsafeStart();
            _threads.Add(t);
            // Counted idle from now, so a burst of accepts does not start a spare per client.
            _idle++;
        }
    }

    private void WorkerLoop()
    {
        NbdServer.EnterServerThread();
        try
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = _listener.Accept();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    lock (_lock)
                    {
                        // Stop closes the pool before the listener, so this tells the end of the
                        // server from a failed accept (a client that gave up, no descriptors left).
                        if (_closed)
                        {
                            _idle--;
                            return;
                        }
                    }
                    Thread.Sleep(10); // a failure that repeats (EMFILE) must not spin
                    continue;
                }

                bool needSpare;
                lock (_lock) needSpare = --_idle == 0 && !_closed;
                // Creating a thread is slow next to a handshake: a pool thread pays for it while
                // this worker greets its client.
                if (needSpare) ThreadPool.UnsafeQueueUserWorkItem(static p => p.StartWorker(), this, preferLocal: false);

                _serve(client);

                lock (_lock)
                {
                    if (_closed || _idle >= MaxIdle) return;
                    _idle++;
                }
            }
        }
        finally
        {
            lock (_lock) _threads.Remove(Thread.CurrentThread);
            NbdServer.LeaveServerThread();
        }
    }
}
