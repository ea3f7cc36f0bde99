using ShuruStore.Core.Hosting;
using System.Management.Automation.Runspaces;
using System.Runtime.InteropServices;

namespace ShuruStore.Commands;

/// <summary>
/// The servers of each runspace (the design card's "session state"). The registry holds the
/// handles so their servers outlive the pipeline that started them, and shuts them down when
/// their runspace closes, when the module is removed, or when the process exits.
/// </summary>
internal static class ServerRegistry
{
    private static readonly object Gate = new();
    private static readonly Dictionary<Guid, List<ShuruNbdServer>> ByRunspace = [];
    private static readonly HashSet<Guid> WatchedRunspaces = [];
    private static int _processExitHooked;

    /// <summary>Tracks a started server under its owning runspace.</summary>
    public static void Add(Runspace? owner, ShuruNbdServer server)
    {
        HookProcessExit();
        lock (Gate)
        {
            if (!ByRunspace.TryGetValue(server.RunspaceId, out var list))
                ByRunspace[server.RunspaceId] = list = [];
            list.Add(server);
            if (owner is not null && WatchedRunspaces.Add(owner.InstanceId))
                owner.StateChanged += OnRunspaceStateChanged;
        }
    }

    /// <summary>The servers of one runspace, oldest first.</summary>
    public static IReadOnlyList<ShuruNbdServer> List(Runspace? owner)
    {
        lock (Gate)
        {
            return ByRunspace.TryGetValue(owner?.InstanceId ?? Guid.Empty, out var list) ? [.. list] : [];
        }
    }

    /// <summary>Stops tracking a server (it was stopped or disposed).</summary>
    public static void Forget(ShuruNbdServer server)
    {
        lock (Gate)
        {
            if (ByRunspace.TryGetValue(server.RunspaceId, out var list))
            {
                list.Remove(server);
                if (list.Count == 0) ByRunspace.Remove(server.RunspaceId);
            }
        }
    }

    /// <summary>Stops every server of a runspace.</summary>
    public static void StopAll(Guid runspaceId)
    {
        List<ShuruNbdServer>? servers;
        lock (Gate)
        {
            if (!ByRunspace.Remove(runspaceId, out servers)) return;
        }
        StopQuietly(servers);
    }

    /// <summary>Stops every server in the process (process exit).</summary>
    public static void StopEverything()
    {
        List<ShuruNbdServer> servers;
        lock (Gate)
        {
            servers = ByRunspace.Values.SelectMany(l => l).ToList();
            ByRunspace.Clear();
        }
        StopQuietly(servers);
    }

    private static void StopQuietly(IEnumerable<ShuruNbdServer> servers)
    {
        // Servers stop in parallel so a process exit is not delayed by one grace period per server.
        Parallel.ForEach(servers, server =>
        {
            try { server.Stop(); }
            catch (Exception) { /* shutting down: nobody is left to report to */ }
        });
    }

    private static void OnRunspaceStateChanged(object? sender, RunspaceStateEventArgs e)
    {
        var state = e.RunspaceStateInfo.State;
        if (sender is Runspace runspace && state is RunspaceState.Closing or RunspaceState.Closed or RunspaceState.Broken)
        {
            lock (Gate)
            {
                if (WatchedRunspaces.Remove(runspace.InstanceId)) runspace.StateChanged -= OnRunspaceStateChanged;
            }
            StopAll(runspace.InstanceId);
        }
    }

    private static void HookProcessExit()
    {
        if (Interlocked.Exchange(ref _processExitHooked, 1) != 0) return;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => StopEverything();
        // pwsh ends on SIGTERM (a service manager's stop, kill) and on SIGHUP (its terminal
        // closed, an SSH session dropped) without raising ProcessExit, which would leave the
        // sockets and the warm-up scratch in /dev/shm behind and skip the final flush. The
        // servers are stopped first; the signal is not cancelled, so the process still ends.
        // A process that ignores SIGHUP (started under nohup) is meant to outlive its terminal:
        // its servers do too, so SIGHUP is left alone (a handler would replace the ignore).
        if (OperatingSystem.IsWindows()) return;
        PosixSignal[] endings = ProcessSignals.HangUpIgnored ? [PosixSignal.SIGTERM] : [PosixSignal.SIGTERM, PosixSignal.SIGHUP];
        foreach (var signal in endings)
            Signals.Add(PosixSignalRegistration.Create(signal, _ =>
            {
                StopEverything();
                ProcessWarmUp.Abandon(); // its scratch is in memory (/dev/shm) and must not outlive us
            }));
    }

    private static readonly List<PosixSignalRegistration> Signals = []; // kept: disposing one unregisters its handler
}
