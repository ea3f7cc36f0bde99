using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.Nbd;

public class FlatFileDeviceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("flat-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Image(long size)
    {
        string p = Path.Combine(_dir, "disk.img");
        using var fs = File.Create(p);
        fs.SetLength(size);
        return p;
    }

    [Fact]
    public void Missing_file_is_image_not_found()
    {
        var ex = Assert.Throws<ShuruStoreException>(() => new FlatFileDevice(Path.Combine(_dir, "none.img")));
        Assert.Equal(ShuruErrorKind.ImageNotFound, ex.Kind);
    }

    [Fact]
    public void Reads_writes_zeroes_and_extents()
    {
        using var d = new FlatFileDevice(Image(4 << 20));
        Assert.Equal(4 << 20, d.Size);
        Assert.True(d.Capabilities.HasFlag(BlockDeviceCapabilities.MultiConnection));
        var data = Enumerable.Range(0, 65536).Select(i => (byte)i).ToArray();
        d.Write(1 << 20, data, WriteFlags.Fua);
        var back = new byte[65536];
        d.Read(1 << 20, back);
        Assert.Equal(data, back);
        d.Flush();

        var ext = new List<Extent>();
        d.GetExtents(0, 4 << 20, ext);
        Assert.Equal(4 << 20, ext.Sum(e => e.Length));
        Assert.Equal(ExtentFlags.Hole | ExtentFlags.Zero, ext[0].Flags);
        Assert.Contains(ext, e => e.Flags == ExtentFlags.Data);

        d.WriteZeroes(1 << 20, 4096, WriteFlags.NoHole);
        d.Read(1 << 20, back);
        Assert.All(back.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(data[4096..], back[4096..]);

        d.Trim(1 << 20, 65536, WriteFlags.None);
        d.Read(1 << 20, back);
        Assert.All(back, b => Assert.Equal(0, b)); // punched (tmpfs/ext4 both support it)
        ext.Clear();
        d.GetExtents(0, 4 << 20, ext);
        Assert.DoesNotContain(ext, e => e.Flags == ExtentFlags.Data);
    }

    [Fact]
    public void Large_writes_start_their_writeback_at_once_and_small_ones_are_left_to_the_kernel()
    {
        using var d = new FlatFileDevice(Image(4 << 20));
        var big = Enumerable.Range(0, FlatFileDevice.StreamWriteSize).Select(i => (byte)(i * 7)).ToArray();
        d.Write(0, big.AsSpan(0, 4096), WriteFlags.None);                       // random I/O
        d.Write(65536, big.AsSpan(0, FlatFileDevice.StreamWriteSize - 1), WriteFlags.None);
        Assert.Equal(0, d.WritebacksStarted);
        d.Write(1 << 20, big, WriteFlags.None);                                  // a stream's request
        d.Write(2 << 20, big.AsSpan().ToArray().Concat(big).ToArray(), WriteFlags.None);
        Assert.Equal(2, d.WritebacksStarted);
        var back = new byte[big.Length];
        d.Read(1 << 20, back);
        Assert.Equal(big, back); // the data is what was written, whatever the disk does meanwhile
        d.Flush();
    }

    [Fact]
    public void Extents_within_a_known_data_run_are_clipped_to_the_query()
    {
        // The device remembers the last data run it found; answers from it must still be exact.
        using var d = new FlatFileDevice(Image(4 << 20));
        d.Write(1 << 20, new byte[1 << 20].Select(_ => (byte)7).ToArray(), WriteFlags.None);
        var ext = new List<Extent>();
        d.GetExtents(0, 4 << 20, ext);
        Assert.Equal([new Extent(1 << 20, ExtentFlags.Hole | ExtentFlags.Zero), new Extent(1 << 20, ExtentFlags.Data),
            new Extent(2 << 20, ExtentFlags.Hole | ExtentFlags.Zero)], ext);

        ext.Clear();
        d.GetExtents((1 << 20) + 4096, 8192, ext);
        Assert.Equal([new Extent(8192, ExtentFlags.Data)], ext);

        ext.Clear();
        d.GetExtents(3 << 19, 1 << 20, ext);
        Assert.Equal([new Extent(1 << 19, ExtentFlags.Data), new Extent(1 << 19, ExtentFlags.Hole | ExtentFlags.Zero)], ext);

        d.Trim((1 << 20) + 65536, 65536, WriteFlags.None);
        ext.Clear();
        d.GetExtents(1 << 20, 1 << 20, ext);
        Assert.Equal([new Extent(65536, ExtentFlags.Data), new Extent(65536, ExtentFlags.Hole | ExtentFlags.Zero),
            new Extent((1 << 20) - 131072, ExtentFlags.Data)], ext);
    }

    [Fact]
    public void Read_only_device_refuses_writes()
    {
        using var d = new FlatFileDevice(Image(65536), readOnly: true);
        Assert.True(d.Capabilities.HasFlag(BlockDeviceCapabilities.ReadOnly));
        var ex = Assert.Throws<BlockDeviceException>(() => d.Write(0, new byte[1], WriteFlags.None));
        Assert.Equal(BlockDeviceError.Permission, ex.Error);
    }
}
