using System.Diagnostics;
using System.Management.Automation.Runspaces;
using ShuruStore.Commands;
using SmaPowerShell = System.Management.Automation.PowerShell;

namespace ShuruStore.PowerShell.Tests;

/// <summary>The session-state promises of the module, hosted in-process: a handle outlives its
/// pipeline, and every way a session ends stops its servers cleanly.</summary>
public class ServerRegistryTests
{
    [Fact]
    public void Server_outlives_the_pipeline_that_started_it()
    {
        using var session = new HostedSession();
        var server = session.StartFlat("keep");
        // A later, separate pipeline still sees it and clients still reach it.
        var listed = session.Run("Get-ShuruNbdServer -Name keep");
        Assert.Single(listed);
        Assert.Same(server, listed[0].BaseObject);
        Assert.True(HostedSession.IsListening(server.SocketPath));
        session.Run("Stop-ShuruNbdServer -Name keep -Confirm:$false");
        Assert.False(File.Exists(server.SocketPath));
    }

    [Fact]
    public void Closing_the_runspace_stops_its_servers_and_removes_their_sockets()
    {
        using var session = new HostedSession();
        var a = session.StartFlat("a");
        var b = session.StartFlat("b");
        Assert.True(HostedSession.IsListening(a.SocketPath));
        session.Runspace.Close();
        Assert.Equal(Core.Nbd.NbdServerState.Stopped, a.State);
        Assert.Equal(Core.Nbd.NbdServerState.Stopped, b.State);
        Assert.False(File.Exists(a.SocketPath));
        Assert.False(File.Exists(b.SocketPath));
    }

    [Fact]
    public void Remove_Module_stops_the_servers_of_that_session_only()
    {
        using var mine = new HostedSession();
        using var other = new HostedSession();
        var gone = mine.StartFlat("gone");
        var kept = other.StartFlat("kept");
        mine.Run("Remove-Module ShuruStore");
        Assert.Equal(Core.Nbd.NbdServerState.Stopped, gone.State);
        Assert.False(File.Exists(gone.SocketPath));
        Assert.Equal(Core.Nbd.NbdServerState.Running, kept.State);
        Assert.True(HostedSession.IsListening(kept.SocketPath));
        kept.Dispose();
    }

    [Fact]
    public void Sessions_do_not_see_each_others_servers()
    {
        using var one = new HostedSession();
        using var two = new HostedSession();
        var s = one.StartFlat("private");
        Assert.Empty(two.Run("Get-ShuruNbdServer"));
        s.Dispose();
    }

    [Fact]
    public void Dispose_stops_the_server_and_forgets_it()
    {
        using var session = new HostedSession();
        var s = session.StartFlat("disposable");
        s.Dispose();
        Assert.False(File.Exists(s.SocketPath));
        Assert.Empty(session.Run("Get-ShuruNbdServer"));
        s.Dispose(); // idempotent
    }

    [Fact]
    public void Pwsh_exits_promptly_with_a_server_still_running_and_removes_the_socket()
    {
        using var session = new HostedSession();
        string socket = session.Socket("exit");
        using var p = StartPwshWithServer(session, socket, "'listening ' + $s.Uri", redirectInput: false);
        // Generous bound: this catches a foreground thread keeping the process alive, not slowness.
        bool exited = p.WaitForExit(TimeSpan.FromSeconds(60));
        if (!exited) p.Kill(entireProcessTree: true);
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(exited, "pwsh did not exit with a server running: " + output);
        Assert.Contains("listening nbd+unix:///export?socket=" + socket, output);
        Assert.Equal(0, p.ExitCode);
        Assert.False(File.Exists(socket), "the process-exit hook should remove the socket");
    }

    [Fact]
    public void SIGTERM_stops_the_servers_and_removes_the_socket()
    {
        if (OperatingSystem.IsWindows()) return;
        using var session = new HostedSession();
        string socket = session.Socket("term");
        using var p = StartPwshWithServer(session, socket,
            "[Console]::Out.WriteLine('listening'); [Console]::Out.Flush(); while ($true) { Start-Sleep -Milliseconds 100 }",
            redirectInput: true);
        try
        {
            // Started once the cmdlet has returned (the socket exists a moment earlier, before
            // the server is registered with the session and its hooks).
            var started = Task.Run(() =>
            {
                string? line;
                while ((line = p.StandardOutput.ReadLine()) is not null)
                    if (line == "listening") return true;
                return false;
            });
            Assert.True(started.Wait(TimeSpan.FromSeconds(60)) && started.Result, "the server did not start");
            Assert.True(File.Exists(socket));
            // The process that runs pwsh (the dotnet muxer in front of it does not forward signals).
            int pwsh = FindPwsh(socket);
            Assert.True(pwsh > 0, "no pwsh process found");
            Assert.Equal(0, kill(pwsh, 15 /* SIGTERM */));
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), "pwsh did not end on SIGTERM");
            Assert.False(File.Exists(socket), "SIGTERM should stop the server and remove its socket");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("0")]
    public void The_first_server_of_a_process_rehearses_the_request_paths_unless_turned_off(string? setting)
    {
        using var session = new HostedSession();
        string socket = session.Socket("warm" + (setting ?? "default"));
        using var p = StartPwshWithServer(session, socket,
            "$r = [ShuruStore.Core.Hosting.ProcessWarmUp]::Completion.GetAwaiter().GetResult(); " +
            "'warm-up ' + $r.Completed + ' ' + $r.Rounds + ' ' + $r.Requests['Read'] + ' ' + $r.Problem; " +
            "(Get-ChildItem /dev/shm -Filter \"shuru-warmup-$PID-*\" -ErrorAction Ignore).Count; $s | Stop-ShuruNbdServer",
            redirectInput: false, environment: new() { ["SHURUSTORE_WARMUP"] = setting });
        bool exited = p.WaitForExit(TimeSpan.FromSeconds(120));
        if (!exited) p.Kill(entireProcessTree: true);
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(exited, "pwsh did not finish: " + output);
        var lines = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (setting == "0")
            Assert.Contains("warm-up False 0  turned off (0 rounds, e.g. SHURUSTORE_WARMUP=0)", lines);
        else if (Directory.Exists("/dev/shm"))
        {
            // 300 rounds of 24 reads on a scratch flat image, in 6 bursts each ending with 12 short connections that read once
            Assert.Contains($"warm-up True 300 {300 * 24 + 6 * 12}", lines);
            Assert.Contains("0", lines);                     // its scratch directory is gone
        }
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void A_script_that_exits_during_the_rehearsal_leaves_no_scratch_behind()
    {
        // The rehearsal's scratch is in memory (/dev/shm); a short script ends while it runs.
        // Before the exit stopped it, every such process left a 10 MiB directory behind.
        if (!Directory.Exists("/dev/shm")) return;
        using var session = new HostedSession();
        string socket = session.Socket("shortlived");
        using var p = StartPwshWithServer(session, socket, "'pid ' + $PID", redirectInput: false,
            environment: new() { ["SHURUSTORE_WARMUP"] = "100000" }); // far longer than the script
        bool exited = p.WaitForExit(TimeSpan.FromSeconds(120));
        if (!exited) p.Kill(entireProcessTree: true);
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(exited, "pwsh did not finish: " + output);
        Assert.Equal(0, p.ExitCode);
        string pid = output.Split('\n', StringSplitOptions.TrimEntries).Single(l => l.StartsWith("pid ", StringComparison.Ordinal))[4..];
        Assert.Empty(Directory.EnumerateDirectories("/dev/shm", $"shuru-warmup-{pid}-*"));
    }

    /// <summary>A separate pwsh that imports the module, starts a server on <paramref name="socket"/>
    /// as <c>$s</c>, then runs <paramref name="then"/>; its output is redirected. Variables in
    /// <paramref name="environment"/> are set (or, with a null value, removed) for it.</summary>
    private static Process StartPwshWithServer(HostedSession session, string socket, string then, bool redirectInput,
        Dictionary<string, string?>? environment = null)
    {
        string script = $"Import-Module '{HostedSession.ModuleAssemblyPath}'; " +
                        $"$s = Start-ShuruNbdServer -ImagePath '{session.ImagePath}' -SocketPath '{socket}'; " + then;
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = HostedSession.RepoRoot, // dotnet-tools.json pins the pwsh tool
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
        };
        foreach (var a in new[] { "pwsh", "-NoProfile", "-NonInteractive", "-Command", script }) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? [])
            if (value is null) psi.Environment.Remove(name); else psi.Environment[name] = value;
        return Process.Start(psi)!;
    }

    private static int FindPwsh(string socket)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmd.Contains("pwsh.dll") && cmd.Contains(socket)) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return -1;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
