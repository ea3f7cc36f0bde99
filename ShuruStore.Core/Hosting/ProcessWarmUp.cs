using System.Diagnostics;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Hosting;

/// <summary>
/// Once per process, right after the first disk starts serving: a private rehearsal of the request
/// paths, so the runtime has compiled them before a real client needs them.
/// <para>Why: .NET compiles a method quickly and unoptimised on first use and recompiles it
/// optimised only after it has been called often and no new code was compiled for a while. A
/// freshly started server therefore serves its first gigabyte with unoptimised code while the
/// compiler takes a core beside it.</para>
/// <para>How: on scratch storage in memory (<c>/dev/shm</c>, never the user's filesystem, where
/// creating and deleting files would slow their own chunk writes on some filesystems), it serves a
/// small disk of the kind the process serves first (a chunk-store disk over a small base image,
/// or a flat image) with the real server classes, and drives it with
/// <see cref="NbdWarmUpClient"/> the way nbdcopy, fio and qemu do: large reads (sendfile from
/// the base, from chunk files or from the flat file), 4 KiB reads one at a time and many in
/// flight, whole-chunk and 4 KiB writes, write-zeroes, block status and flushes. It does so in
/// bursts of <see cref="PhaseRounds"/> rounds, each on a fresh disk, and lets the compiler settle
/// between bursts. Then it deletes the scratch directory. It takes one to two seconds of one core
/// in the background, spread over a few seconds; while real clients are connected it waits, and it gives up for a client that
/// stays (a VM), which then gets the cores. It is skipped when /dev/shm is missing or small, and
/// turned off by <see cref="DiskServerOptions.WarmUpRounds"/> = 0.</para>
/// <para>Its scratch lives in memory, so it must not outlive the process: a process that exits
/// during the rehearsal (a short script) stops it and deletes the scratch on the way out
/// (<see cref="Abandon"/>), and a rehearsal sweeps away the scratch of processes that were
/// killed outright (<see cref="SweepAbandoned"/>).</para>
/// </summary>
public static class ProcessWarmUp
{
    private static int _started;
    private static Thread? s_thread;
    private static readonly CancellationTokenSource s_abandon = new();
    private const string ScratchPrefix = "shuru-warmup-";
    private static readonly TaskCompletionSource<WarmUpResult> s_done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The size of the scratch disk: small, yet large enough for the reads to cover
    /// many chunks. /dev/shm needs 16 times this free (image, chunks, spare).</summary>
    internal const long ScratchDiskSize = 8L * 1024 * 1024;

    internal const int DefaultRounds = 300;

    /// <summary>Rounds of one burst; the compiler settles between bursts. The runtime counts calls
    /// only once no new code has been compiled for a moment, and raises a method one tier per
    /// count (quick, then instrumented, then optimised), so one uninterrupted stream of requests
    /// leaves the hot paths unoptimised; bursts with pauses between them take them up tier by
    /// tier.</summary>
    internal const int PhaseRounds = 50;

    /// <summary>Short connections (connect, handshake, one 4 KiB read) after each burst.</summary>
    internal const int ConnectsPerPhase = 12;

    /// <summary>A pause ends once this long passed without a method compiled (a little longer than
    /// the runtime's own quiet period before it counts calls), or after <see cref="MaxSettle"/>.</summary>
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(150);
    private static readonly TimeSpan MaxSettle = TimeSpan.FromSeconds(3);

    /// <summary>How long the rehearsal waits for real clients to leave before it gives up.</summary>
    internal static readonly TimeSpan MaxPause = TimeSpan.FromSeconds(1);

    /// <summary>The one rehearsal of this process, once <see cref="StartOnce"/> ran (tests and
    /// diagnostics wait for it).</summary>
    public static Task<WarmUpResult> Completion => s_done.Task;

    /// <summary>Starts the rehearsal in the background unless it already ran in this process or
    /// is turned off (<paramref name="rounds"/> = 0). It rehearses the kind of disk the process
    /// serves first (<paramref name="chunkStore"/>: a chunk-store disk, else a flat image) and
    /// only that: the runtime's profile-guided optimisation specialises calls for the device types
    /// it saw, and a kind the process never serves would only blur that.</summary>
    public static void StartOnce(bool chunkStore, int rounds)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        if (rounds <= 0)
        {
            s_done.TrySetResult(new WarmUpResult(false, 0, TimeSpan.Zero, "turned off (0 rounds, e.g. SHURUSTORE_WARMUP=0)"));
            return;
        }
        // A background thread dies with the process without running its finally blocks, so the
        // process's exit stops the rehearsal and waits for it to delete its scratch.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Abandon();
        s_thread = new Thread(() => s_done.TrySetResult(Run(ScratchRoot(), chunkStore, rounds, abandon: s_abandon.Token))) { IsBackground = true, Name = "shuru-warmup" };
        s_thread.Start();
    }

    /// <summary>Stops this process's rehearsal, if one runs, and waits (at most two seconds) until
    /// it has deleted its scratch. For a process on its way out: its exit calls this, and so does
    /// a host's SIGTERM handler, since pwsh ends on SIGTERM without raising the exit event.</summary>
    public static void Abandon()
    {
        s_abandon.Cancel();
        s_thread?.Join(TimeSpan.FromSeconds(2));
    }

    /// <summary>Deletes the scratch directories under <paramref name="scratchRoot"/> whose process
    /// is gone (killed before it could clean up): no process with that id, or one that started
    /// after the directory last changed (the id was reused). Returns how many it deleted.</summary>
    internal static int SweepAbandoned(string scratchRoot)
    {
        int swept = 0;
        IEnumerable<string> dirs;
        try { dirs = Directory.EnumerateDirectories(scratchRoot, ScratchPrefix + "*").ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
        foreach (string dir in dirs)
        {
            string rest = Path.GetFileName(dir)[ScratchPrefix.Length..];
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest.AsSpan(0, dash), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                if (OwnerIsAlive(pid, Directory.GetLastWriteTimeUtc(dir))) continue;
                Directory.Delete(dir, recursive: true);
                swept++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // another sweeper, or not ours
        }
        return swept;
    }

    private static bool OwnerIsAlive(int pid, DateTime dirChangedUtc)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.StartTime.ToUniversalTime() <= dirChangedUtc;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false; // no such process (or it ended while we looked)
        }
    }

    /// <summary>Where the scratch directory goes: /dev/shm when it is a writable directory with
    /// room to spare; null otherwise (no rehearsal).</summary>
    internal static string? ScratchRoot()
    {
        const string shm = "/dev/shm";
        try
        {
            if (!OperatingSystem.IsLinux() || !Directory.Exists(shm)) return null;
            return new DriveInfo(shm).AvailableFreeSpace >= 16 * ScratchDiskSize ? shm : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Runs one rehearsal under <paramref name="scratchRoot"/> (null: none) and reports
    /// it; never throws (a failed rehearsal costs speed, nothing else).</summary>
    /// <param name="scratchRoot">Where the scratch directory goes (null: no rehearsal).</param>
    /// <param name="chunkStore">Rehearse a chunk-store disk (else a flat image).</param>
    /// <param name="rounds">Rounds of requests to send.</param>
    /// <param name="clientsConnected">Real clients connected to this process's servers now
    /// (default: the clients of every disk this process hosts); tests pass their own.</param>
    /// <param name="abandon">Cancelled when the process is exiting: the rehearsal stops after the
    /// request in hand and deletes its scratch.</param>
    internal static WarmUpResult Run(string? scratchRoot, bool chunkStore, int rounds = DefaultRounds, Func<int>? clientsConnected = null,
        CancellationToken abandon = default)
    {
        clientsConnected ??= () => HostedServers.ClientConnections;
        if (scratchRoot is null) return new WarmUpResult(false, 0, TimeSpan.Zero, "no /dev/shm with room for the scratch disk");
        var clock = Stopwatch.StartNew();
        SweepAbandoned(scratchRoot);
        string dir;
        try
        {
            dir = Path.Combine(scratchRoot, $"{ScratchPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) { return new WarmUpResult(false, 0, clock.Elapsed, e.Message); }
        int done = 0;
        try
        {
            string imagePath = Path.Combine(dir, "image.raw");
            WriteScratchImage(imagePath);
            var data = new byte[256 * 1024];
            var random = new Random(7);
            random.NextBytes(data);
            string? stoppedFor = null;
            var requests = new Dictionary<string, long>();
            for (int phase = 0; done < rounds && stoppedFor is null; phase++)
            {
                stoppedFor = RunPhase(dir, phase, imagePath, chunkStore, ref done, Math.Min(rounds, done + PhaseRounds),
                    clientsConnected, data, random, requests, settleAfter: done + PhaseRounds < rounds, abandon);
            }
            return new WarmUpResult(stoppedFor is null, done, clock.Elapsed, stoppedFor) { Requests = requests };
        }
        catch (Exception e)
        {
            return new WarmUpResult(false, done, clock.Elapsed, e.Message);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>One burst of rounds on a disk of its own: a fresh chunk store each time, so the
    /// reads of every burst find the base image not yet ingested, as a real first read does. With
    /// <paramref name="settleAfter"/>, the disk stays open while the compiler settles, and lazy
    /// ingestion (which waits for the client to go quiet) stores the base's pieces meanwhile.
    /// Returns why the rehearsal stopped early, or null.</summary>
    private static string? RunPhase(string dir, int phase, string imagePath, bool chunkStore, ref int done, int end,
        Func<int> clientsConnected, byte[] data, Random random, Dictionary<string, long> requests, bool settleAfter,
        CancellationToken abandon)
    {
        string socketPath = Path.Combine(dir, $"s{phase}.sock"), casPath = Path.Combine(dir, $"cas{phase}");
        string? stoppedFor = null;
        using (IBlockDevice device = chunkStore
            ? CowDisk.Open(new CowDiskOptions { BaseImagePath = imagePath, CasPath = casPath, DiskSize = ScratchDiskSize, Holder = null })
            : new FlatFileDevice(imagePath))
        using (var server = Serve(device, socketPath))
        {
            using (var client = NbdWarmUpClient.Connect(socketPath, "export"))
            {
                var paused = Stopwatch.StartNew();
                for (; done < end; done++)
                {
                    // Real clients get the cores: the rehearsal waits while any is connected (a
                    // probe such as nbdinfo comes and goes) and gives up for one that stays;
                    // whatever is not compiled yet then compiles on first use, as without a rehearsal.
                    paused.Restart();
                    while (clientsConnected() > 0 && !abandon.IsCancellationRequested)
                    {
                        if (paused.Elapsed > MaxPause) { stoppedFor = $"clients stayed connected: stopped after {done} rounds"; break; }
                        abandon.WaitHandle.WaitOne(20);
                    }
                    if (stoppedFor is null && abandon.IsCancellationRequested) stoppedFor = $"the process is exiting: stopped after {done} rounds";
                    if (stoppedFor is not null) break;
                    Rehearse(client, done, data, random);
                }
                client.Disconnect();
            }
            // A connection's start (accept, handshake, first read) runs once per client: a
            // burst of short connections lets the compiler see it often enough to optimise it.
            for (int k = 0; k < ConnectsPerPhase && stoppedFor is null && !abandon.IsCancellationRequested; k++)
            {
                using var probe = NbdWarmUpClient.Connect(socketPath, "export");
                probe.Send(NbdProtocol.CmdRead, 0, 4096);
                probe.Receive(4096);
                probe.Disconnect();
            }
            if (stoppedFor is null && settleAfter) WaitForCompilerToSettle(abandon);
            server.Stop(); // drains: every request of the burst is counted
            foreach (var (kind, count) in server.GetStatistics().Requests)
                requests[kind] = requests.GetValueOrDefault(kind) + count;
        }
        try { if (Directory.Exists(casPath)) Directory.Delete(casPath, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the whole scratch goes at the end
        return stoppedFor;
    }

    /// <summary>Waits while the runtime is still compiling (methods raised to a higher tier in the
    /// background), so the next burst of requests runs the code of the tier just reached and is
    /// counted towards the next.</summary>
    private static void WaitForCompilerToSettle(CancellationToken abandon)
    {
        var settle = Stopwatch.StartNew();
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        var quiet = Stopwatch.StartNew();
        while (quiet.Elapsed < QuietPeriod && settle.Elapsed < MaxSettle && !abandon.IsCancellationRequested)
        {
            abandon.WaitHandle.WaitOne(25);
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) { compiled = now; quiet.Restart(); }
        }
    }

    private static NbdServer Serve(IBlockDevice device, string socketPath)
    {
        var server = new NbdServer(device, new NbdServerOptions { SocketPath = socketPath });
        server.Start();
        return server;
    }

    /// <summary>A base image like a root filesystem: data, a zero-filled stretch and a hole.</summary>
    private static void WriteScratchImage(string path)
    {
        var data = new byte[ScratchDiskSize * 3 / 4];
        new Random(3).NextBytes(data);
        data.AsSpan(data.Length / 2, 256 * 1024).Clear();
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        file.Write(data);
        file.SetLength(ScratchDiskSize); // the last quarter is a hole
    }

    /// <summary>One round of the requests real clients send, in their shapes.</summary>
    private static void Rehearse(NbdWarmUpClient client, int round, byte[] data, Random random)
    {
        const int big = 256 * 1024, small = 4096;
        long bigSlots = ScratchDiskSize / big, smallSlots = ScratchDiskSize / small;
        // Sequential 256 KiB reads, four in flight (nbdcopy).
        for (int k = 0; k < 4; k++) client.Send(NbdProtocol.CmdRead, (round * 4 + k) % bigSlots * big, big);
        for (int k = 0; k < 4; k++) client.Receive(big);
        // 4 KiB random reads: many in flight (fio QD32), then one at a time (QD1).
        for (int k = 0; k < 16; k++) client.Send(NbdProtocol.CmdRead, random.NextInt64(smallSlots) * small, small);
        for (int k = 0; k < 16; k++) client.Receive(small);
        for (int k = 0; k < 4; k++)
        {
            client.Send(NbdProtocol.CmdRead, random.NextInt64(smallSlots) * small, small);
            client.Receive(small);
        }
        // Writes with new content every round: whole chunks (stored behind the writer) and pieces.
        BitConverter.TryWriteBytes(data, round);
        client.Send(NbdProtocol.CmdWrite, round * 7 % bigSlots * big, big, data);
        client.Receive(0);
        for (int k = 0; k < 8; k++) client.Send(NbdProtocol.CmdWrite, random.NextInt64(smallSlots) * small, small, data.AsSpan(k * small, small));
        for (int k = 0; k < 8; k++) client.Receive(0);
        if (round % 8 != 7) return;
        client.Send(NbdProtocol.CmdBlockStatus, 0, (int)ScratchDiskSize);
        client.Receive(0);
        client.Send(NbdProtocol.CmdWriteZeroes, random.NextInt64(bigSlots) * big, big);
        client.Receive(0);
        client.Send(NbdProtocol.CmdFlush, 0, 0);
        client.Receive(0);
    }
}

/// <summary>What the process's warm-up did: whether it completed, how many rounds of requests it
/// sent to each scratch disk, how long it took, and why it stopped early or did not run.</summary>
public sealed record WarmUpResult(bool Completed, int Rounds, TimeSpan Elapsed, string? Problem)
{
    /// <summary>Requests the scratch disk served, by command (empty if it did not run).</summary>
    public IReadOnlyDictionary<string, long> Requests { get; init; } = new Dictionary<string, long>();
}
