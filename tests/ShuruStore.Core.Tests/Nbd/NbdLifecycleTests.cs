using System.Net.Sockets;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;

namespace ShuruStore.Core.Tests.Nbd;

public class NbdLifecycleTests
{
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Start_creates_an_owner_only_socket_and_stop_removes_it()
    {
        var t = new NbdTestServer();
        try
        {
            Assert.Equal(NbdServerState.Running, t.Server.State);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(t.SocketPath));
            Assert.Equal("nbd+unix:///export?socket=" + t.SocketPath, t.Server.Uri);
            t.Server.Stop();
            Assert.Equal(NbdServerState.Stopped, t.Server.State);
            Assert.False(File.Exists(t.SocketPath));
            t.Server.Stop(); // idempotent
        }
        finally { t.Dispose(); }
    }

    [Fact]
    public void Stale_socket_is_replaced()
    {
        using var t = new NbdTestServer(start: false);
        // .NET unlinks the path when a bound socket is disposed, so a process that exits without
        // cleaning up (like a crashed server) makes the stale socket.
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3",
            new[] { "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)", t.SocketPath });
        using (var p = System.Diagnostics.Process.Start(psi)!) p.WaitForExit();
        Assert.True(File.Exists(t.SocketPath));
        t.Server.Start();
        using var c = t.Client().Connect();
        Assert.Equal(64L << 20, c.ExportSize);
    }

    [Fact]
    public void Live_socket_is_refused_with_socket_in_use()
    {
        using var live = new NbdTestServer();
        using var second = new NbdServer(new MemoryDevice(4096), new NbdServerOptions { SocketPath = live.SocketPath });
        var ex = Assert.Throws<ShuruStoreException>(second.Start);
        Assert.Equal(ShuruErrorKind.SocketInUse, ex.Kind);
        using var c = live.Client().Connect(); // the first server is untouched
    }

    [Fact]
    public void Regular_file_at_the_path_is_never_deleted()
    {
        using var t = new NbdTestServer(start: false);
        File.WriteAllText(t.SocketPath, "precious");
        var ex = Assert.Throws<ShuruStoreException>(t.Server.Start);
        Assert.Equal(ShuruErrorKind.SocketPathNotSocket, ex.Kind);
        Assert.Equal("precious", File.ReadAllText(t.SocketPath));
        Directory.CreateDirectory(t.SocketPath + ".d");
        using var s2 = new NbdServer(new MemoryDevice(4096), new NbdServerOptions { SocketPath = t.SocketPath + ".d" });
        Assert.Equal(ShuruErrorKind.SocketPathNotSocket, Assert.Throws<ShuruStoreException>(s2.Start).Kind);
    }

    [Theory]
    [InlineData("/tmp/no-such-dir-for-nbd/s.sock")]
    [InlineData("/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock")]
    public void Unusable_paths_are_socket_path_invalid(string path)
    {
        using var s = new NbdServer(new MemoryDevice(4096), new NbdServerOptions { SocketPath = path });
        Assert.Equal(ShuruErrorKind.SocketPathInvalid, Assert.Throws<ShuruStoreException>(s.Start).Kind);
    }

    [Fact]
    public async Task Stop_answers_new_requests_with_eshutdown_and_lets_in_flight_ones_finish()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev, grace: TimeSpan.FromSeconds(20));
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(0, 0, 4096, cookie: 1);
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));

        var stop = Task.Run(t.Server.Stop);
        SpinWait.SpinUntil(() => t.Server.State == NbdServerState.Stopping, TimeSpan.FromSeconds(20));
        Assert.Equal(NbdServerState.Stopping, t.Server.State);
        c.SendRequest(0, 4096, 4096, cookie: 2);
        c.SendRequest(1, 4096, 4, cookie: 3, payload: [1, 2, 3, 4]);
        var r2 = c.ReadReply();
        var r3 = c.ReadReply();
        Assert.Equal((2ul, 108u), (r2.Cookie, r2.Error));
        Assert.Equal((3ul, 108u), (r3.Cookie, r3.Error));
        Assert.False(stop.IsCompleted);

        dev.Gate.Set();
        var r1 = c.ReadReply(4096);
        Assert.Equal((1ul, 0u), (r1.Cookie, r1.Error));
        await stop.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(c.IsClosedByServer());
        Assert.Equal(NbdServerState.Stopped, t.Server.State);
        Assert.False(File.Exists(t.SocketPath));
    }

    [Fact]
    public void Stop_abandons_requests_that_outlive_the_grace_period()
    {
        var dev = new TestDevice(new MemoryDevice(1 << 20)) { GatedOffset = 0 };
        using var t = new NbdTestServer(dev, grace: TimeSpan.FromMilliseconds(50));
        using var c = t.Client().Connect(structured: false);
        c.SendRequest(0, 0, 4096, cookie: 1);
        Assert.True(dev.Entered.Wait(TimeSpan.FromSeconds(20)));
        t.Server.Stop();
        Assert.Equal(NbdServerState.Stopped, t.Server.State);
        dev.Gate.Set();
        Assert.Throws<EndOfStreamException>(() => c.ReadReply(4096));
    }

    [Fact]
    public void Clients_can_disconnect_and_reconnect_and_data_survives()
    {
        using var t = new NbdTestServer();
        for (int i = 0; i < 5; i++)
        {
            using var c = t.Client().Connect(structured: i % 2 == 0);
            if (i > 0)
            {
                c.SendRequest(0, 0, 1, cookie: 1, flags: (ushort)(i % 2 == 0 ? 4 : 0));
                var r = c.ReadReply(1);
                Assert.Equal((byte)(i - 1), r.Structured ? r.Payload[8] : r.Payload[0]);
            }
            c.SendRequest(1, 0, 1, cookie: 2, payload: [(byte)i]);
            Assert.Equal(0u, c.ReadReply().Error);
            if (i % 2 == 0) c.SendRequest(2, 0, 0); // sometimes DISC, sometimes just drop
        }
        SpinWait.SpinUntil(() => t.Server.GetStatistics().ActiveConnections == 0, TimeSpan.FromSeconds(20));
        var stats = t.Server.GetStatistics();
        Assert.Equal(0, stats.ActiveConnections);
        Assert.Equal(5, stats.TotalConnections);
        lock (t.Events)
        {
            Assert.Equal(5, t.Events.Count(e => e.Kind == NbdServerEventKind.ConnectionOpened));
            Assert.Equal(5, t.Events.Count(e => e.Kind == NbdServerEventKind.ConnectionClosed));
        }
    }

    [Fact]
    public void Stop_may_be_called_from_an_event_handler()
    {
        using var t = new NbdTestServer();
        var stopped = new ManualResetEventSlim();
        t.Server.Event += (_, e) =>
        {
            if (e.Kind == NbdServerEventKind.ConnectionOpened) { t.Server.Stop(); stopped.Set(); }
        };
        using var c = t.Client();
        Assert.True(stopped.Wait(TimeSpan.FromSeconds(20)));
        Assert.Equal(NbdServerState.Stopped, t.Server.State);
        Assert.False(File.Exists(t.SocketPath));
    }

    [Fact]
    public void Owner_stop_does_not_deadlock_with_a_handler_that_stops_on_connection_close()
    {
        using var t = new NbdTestServer();
        t.Server.Event += (_, e) =>
        {
            if (e.Kind == NbdServerEventKind.ConnectionClosed) t.Server.Stop();
        };
        using var c = t.Client();
        c.ReadGreeting();
        // The owner's Stop closes the connection; the handler's Stop runs on the connection
        // thread that the owner's Stop joins. A generous bound detects a hang, not slowness.
        var stop = Task.Run(() => t.Server.Stop());
        Assert.True(stop.Wait(TimeSpan.FromSeconds(30)), "Stop deadlocked with a handler that stops the server");
        Assert.Equal(NbdServerState.Stopped, t.Server.State);
    }

    [Fact]
    public void A_second_stop_returns_only_when_the_server_is_down()
    {
        using var t = new NbdTestServer();
        using var c = t.Client();
        c.ReadGreeting();
        var first = Task.Run(() => t.Server.Stop());
        t.Server.Stop();
        Assert.Equal(NbdServerState.Stopped, t.Server.State);
        Assert.False(File.Exists(t.SocketPath));
        Assert.True(first.Wait(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Clients_past_the_connection_limit_are_closed_and_the_others_keep_working()
    {
        using var t = new NbdTestServer(maxConnections: 2);
        using var a = t.Client();
        a.ReadGreeting();
        using var b = t.Client();
        b.ReadGreeting();
        using var refused = t.Client();
        Assert.True(refused.IsClosedByServer());
        lock (t.Events) Assert.Contains(t.Events, e => e.Message.Contains("limit"));
        a.Dispose();
        // A slot frees when a client leaves.
        SpinWait.SpinUntil(() => t.Server.GetStatistics().ActiveConnections < 2, TimeSpan.FromSeconds(20));
        using var next = t.Client().Connect(structured: false);
    }

    [Fact]
    public void A_client_that_stalls_during_negotiation_is_dropped()
    {
        using var t = new NbdTestServer(negotiationTimeout: TimeSpan.FromMilliseconds(300));
        using var c = t.Client();
        c.ReadGreeting();
        // Sends nothing more: the server must give up on it instead of holding its thread forever.
        Assert.True(c.IsClosedByServer());
        SpinWait.SpinUntil(() => t.Server.GetStatistics().ActiveConnections == 0, TimeSpan.FromSeconds(20));
        Assert.Equal(0, t.Server.GetStatistics().ActiveConnections);
    }

    [Fact]
    public void Negotiation_failures_are_reported_as_events()
    {
        using var t = new NbdTestServer();
        using (var c = t.Client())
        {
            c.ReadGreeting();
            c.SendClientFlags(0x10);
            Assert.True(c.IsClosedByServer());
        }
        SpinWait.SpinUntil(() => { lock (t.Events) return t.Events.Any(e => e.Kind == NbdServerEventKind.NegotiationFailed); }, TimeSpan.FromSeconds(20));
        lock (t.Events) Assert.Contains(t.Events, e => e.Kind == NbdServerEventKind.NegotiationFailed && e.Message.Contains("unknown bits"));
    }

    [Fact]
    public void Statistics_report_open_connections()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(1, 0, 10, cookie: 1, payload: new byte[10]);
        c.ReadReply();
        var s = t.Server.GetStatistics();
        Assert.Equal(1, s.ActiveConnections);
        var conn = Assert.Single(s.Connections);
        Assert.True(conn.Negotiated);
        Assert.True(conn.StructuredReplies);
        Assert.Equal(10, conn.BytesWritten);
        Assert.Equal(1, conn.Requests["Write"]);
    }

    [Fact]
    public void Server_threads_are_background_threads()
    {
        using var t = new NbdTestServer();
        using var c = t.Client().Connect();
        c.SendRequest(1, 0, 10, cookie: 1, payload: new byte[10]);
        c.ReadReply();
        // A foreground thread started by the server would keep a pwsh process alive: the idle
        // acceptors and the one serving this client must all be background threads.
        var threads = t.Server.Workers!.Snapshot();
        Assert.True(threads.Length >= 2);
        Assert.All(threads, th => Assert.True(th.IsBackground));
    }
}
