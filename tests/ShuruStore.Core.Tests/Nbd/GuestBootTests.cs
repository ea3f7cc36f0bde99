using System.Security.Cryptography;
using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>A real Linux kernel as the NBD client: qemu's NBD block driver under a virtio disk,
/// driven by the guest's own writes, fsync, discard and reads.</summary>
public class GuestBootTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nbdguest-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [ToolFact("qemu-system-x86_64", "cpio", "gzip", "busybox", "linux-kernel")]
    public void Linux_guest_writes_fsyncs_discards_and_reads_back_through_the_server()
    {
        string img = Path.Combine(_dir, "guest.img");
        using (var fs = File.Create(img)) fs.SetLength(16 << 20);
        using var t = new NbdTestServer(new FlatFileDevice(img));
        string script = Path.Combine(AppContext.BaseDirectory, "Nbd", "guest-boot.sh");
        var r = ExternalTool.Run("/bin/bash", [script, t.Uri, _dir], TimeSpan.FromSeconds(170));
        Assert.True(r.ExitCode == 0, r.ToString());
        var marker = r.Stdout.Split('\n').Single(l => l.StartsWith("GUEST-RESULT", StringComparison.Ordinal)).TrimEnd('\r').Split(' ');
        Assert.Equal(marker[1], marker[2]); // what the guest wrote is what it read back

        SpinWait.SpinUntil(() => t.Server.GetStatistics().ActiveConnections == 0, TimeSpan.FromSeconds(20));
        var stats = t.Server.GetStatistics();
        Assert.True(stats.Requests["Flush"] > 0, "the guest's fsync must arrive as NBD_CMD_FLUSH");
        Assert.True(stats.Requests["Trim"] > 0, "blkdiscard with discard=unmap must arrive as NBD_CMD_TRIM");
        Assert.Equal(0, stats.Errors);
        t.Server.Stop();

        var first = new byte[1 << 20];
        using (var fs = File.OpenRead(img)) fs.ReadExactly(first);
        Assert.Equal(marker[1], Convert.ToHexStringLower(MD5.HashData(first)));
    }
}
