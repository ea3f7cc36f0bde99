using System.Text.Json;
using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>The server against the real NBD clients of Debian 12 (libnbd, qemu, fio).</summary>
public class RealClientTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nbdreal-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string SparseImage(long size, string name = "disk.img")
    {
        string p = Path.Combine(_dir, name);
        using var fs = File.Create(p);
        fs.SetLength(size);
        return p;
    }

    [ToolFact("nbdinfo")]
    public void Nbdinfo_json_reports_size_flags_and_block_sizes()
    {
        using var t = new NbdTestServer(new MemoryDevice(64L << 20), description: "memory disk");
        var r = ExternalTool.MustRun("nbdinfo", "--json", t.Uri);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("newstyle-fixed", doc.RootElement.GetProperty("protocol").GetString());
        Assert.True(doc.RootElement.GetProperty("structured").GetBoolean());
        var e = doc.RootElement.GetProperty("exports")[0];
        Assert.Equal(64L << 20, e.GetProperty("export-size").GetInt64());
        Assert.Equal("export", e.GetProperty("export-name").GetString());
        Assert.Equal("memory disk", e.GetProperty("description").GetString());
        foreach (var f in new[] { "can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_df", "can_multi_conn", "can_cache" })
            Assert.True(e.GetProperty(f).GetBoolean(), f);
        Assert.False(e.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(1, e.GetProperty("block_size_minimum").GetInt32());
        Assert.Equal(4096, e.GetProperty("block_size_preferred").GetInt32());
        Assert.Equal(32 << 20, e.GetProperty("block_size_maximum").GetInt32());
        Assert.Contains("base:allocation", e.GetProperty("contexts").EnumerateArray().Select(x => x.GetString()));
    }

    [ToolFact("nbdinfo")]
    public void Nbdinfo_json_on_a_read_only_flat_image()
    {
        using var t = new NbdTestServer(new FlatFileDevice(SparseImage(8 << 20), readOnly: true));
        using var doc = JsonDocument.Parse(ExternalTool.MustRun("nbdinfo", "--json", t.Uri).Stdout);
        var e = doc.RootElement.GetProperty("exports")[0];
        Assert.True(e.GetProperty("is_read_only").GetBoolean());
        Assert.False(e.GetProperty("can_trim").GetBoolean());
        Assert.Equal(8 << 20, e.GetProperty("export-size").GetInt64());
        var list = ExternalTool.MustRun("nbdinfo", "--list", "--json", t.Uri);
        Assert.Contains("\"export\"", list.Stdout);
    }

    [ToolFact("qemu-io")]
    public void Qemu_io_writes_reads_zeroes_discards_and_flushes_a_flat_image()
    {
        string img = SparseImage(16 << 20);
        using (var t = new NbdTestServer(new FlatFileDevice(img)))
        {
            var r = ExternalTool.MustRun("qemu-io", "-f", "raw",
                "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "write -z 1M 1M", "-c", "read -P 0 1M 1M",
                "-c", "write -P 0xcd 2M 1M", "-c", "discard 2M 1M",
                "-c", "write -f -P 0x5a 4M 64k", "-c", "read -P 0x5a 4M 64k",
                "-c", "write -P 0x11 15M 1M", "-c", "flush",
                t.Uri);
            Assert.DoesNotContain("fail", r.Stdout + r.Stderr, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("discard 1048576/1048576", r.Stdout);
            // Past the end: qemu-io reports the error, the server stays up.
            var bad = ExternalTool.Run("qemu-io", ["-f", "raw", "-c", "read 16M 4k", t.Uri]);
            Assert.Contains("error", (bad.Stdout + bad.Stderr).ToLowerInvariant());
        }
        using var fs = File.OpenRead(img);
        var buf = new byte[1];
        fs.Position = 4 << 20; fs.ReadExactly(buf); Assert.Equal(0x5a, buf[0]);
        fs.Position = 15 << 20; fs.ReadExactly(buf); Assert.Equal(0x11, buf[0]);
        fs.Position = 1 << 20; fs.ReadExactly(buf); Assert.Equal(0, buf[0]);
    }

    [ToolFact("nbdcopy", "cmp")]
    public void Nbdcopy_with_four_connections_round_trips()
    {
        string src = Path.Combine(_dir, "src.img");
        var data = new byte[24 << 20];
        new Random(42).NextBytes(data.AsSpan(0, 10 << 20));
        new Random(7).NextBytes(data.AsSpan(16 << 20, 4 << 20)); // hole in the middle
        File.WriteAllBytes(src, data);
        string outp = Path.Combine(_dir, "out.img");
        using var t = new NbdTestServer(new MemoryDevice(24 << 20));
        ExternalTool.MustRun("nbdcopy", "-C", "4", src, t.Uri);
        ExternalTool.MustRun("nbdcopy", "-C", "4", t.Uri, outp);
        ExternalTool.MustRun("cmp", src, outp);
        Assert.True(t.Server.GetStatistics().TotalConnections >= 2);
    }

    [ToolFact("nbdinfo")]
    public void Nbdinfo_map_shows_holes_and_data()
    {
        string img = SparseImage(8 << 20);
        using (var fs = File.OpenWrite(img)) { fs.Position = 1 << 20; fs.Write(new byte[65536].Select(_ => (byte)1).ToArray()); }
        using var t = new NbdTestServer(new FlatFileDevice(img));
        var r = ExternalTool.MustRun("nbdinfo", "--map", t.Uri);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Contains(lines, l => l[0] == "0" && l[1] == "1048576" && l[^1] == "hole,zero");
        Assert.Contains(lines, l => l[0] == "1048576" && l[^1] == "data");
        Assert.Equal(8L << 20, lines.Sum(l => long.Parse(l[1])));
    }

    [ToolFact("qemu-img")]
    public void Qemu_img_convert_compare_and_map()
    {
        string src = Path.Combine(_dir, "q.img");
        using (var fs = File.Create(src))
        {
            fs.SetLength(16 << 20);
            var block = new byte[1 << 20];
            new Random(3).NextBytes(block);
            fs.Position = 2 << 20; fs.Write(block);
            fs.Position = 9 << 20; fs.Write(block);
        }
        using var t = new NbdTestServer(new MemoryDevice(16 << 20));
        ExternalTool.MustRun("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, t.Uri);
        ExternalTool.MustRun("qemu-img", "compare", "-f", "raw", "-F", "raw", src, t.Uri);
        var map = ExternalTool.MustRun("qemu-img", "map", "--output=json", "-f", "raw", t.Uri);
        using var doc = System.Text.Json.JsonDocument.Parse(map.Stdout);
        var data = doc.RootElement.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean())
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64())).ToList();
        Assert.Equal(new[] { (2L << 20, 1L << 20), (9L << 20, 1L << 20) }, data);
    }

    [ToolFact("fio")]
    public void Fio_random_write_with_crc32c_verify()
    {
        using var t = new NbdTestServer(new FlatFileDevice(SparseImage(32 << 20)));
        var r = ExternalTool.Run("fio", ["--name=verify", "--ioengine=nbd", "--uri=" + t.Uri, "--rw=randwrite", "--bs=4k",
            "--size=8M", "--iodepth=16", "--verify=crc32c", "--do_verify=1", "--output-format=json"], TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout[r.Stdout.IndexOf('{')..]);
        var job = doc.RootElement.GetProperty("jobs")[0];
        Assert.Equal(0, job.GetProperty("error").GetInt32());
        Assert.True(job.GetProperty("write").GetProperty("io_bytes").GetInt64() >= 8 << 20);
        Assert.True(job.GetProperty("read").GetProperty("io_bytes").GetInt64() >= 8 << 20); // the verify pass
    }

    [ToolFact("python3:nbd")]
    public void Libnbd_negative_cases_in_non_strict_mode()
    {
        using var t = new NbdTestServer(new MemoryDevice(16 << 20));
        string script = Path.Combine(AppContext.BaseDirectory, "Nbd", "libnbd_negative.py");
        var r = ExternalTool.Run("/usr/bin/python3", [script, t.Uri], TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("ALL OK", r.Stdout);
        Assert.Equal(Server_state_running, t.Server.State.ToString());
    }

    private const string Server_state_running = "Running";
}
