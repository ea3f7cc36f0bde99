using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Tests.BlockDevices;

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
    public void A_stream_of_large_writes_starts_the_writeback_of_each_window_it_completes()
    {
        const long W = FlatFileDevice.WritebackWindow;
        using var d = new FlatFileDevice(Image(4 * W));
        int big = FlatFileDevice.StreamWriteSize;
        var data = Enumerable.Range(0, 2 * big).Select(i => (byte)(i * 7)).ToArray();
        d.Write(W - 4096, data.AsSpan(0, 4096), WriteFlags.None);     // small, even at a window's end
        d.Write(W - big - 1, data.AsSpan(0, big), WriteFlags.None);  // large, ends inside window 0
        Assert.Equal(0, d.WritebacksStarted);
        d.Write(W - big, data.AsSpan(0, big), WriteFlags.None);      // reaches the end of window 0
        Assert.Equal(1, d.WritebacksStarted);
        d.Write(W, data.AsSpan(0, big), WriteFlags.None);            // starts window 1: nothing complete
        Assert.Equal(1, d.WritebacksStarted);
        d.Write(3 * W - big, data, WriteFlags.None);                 // crosses from window 2 into 3
        Assert.Equal(2, d.WritebacksStarted);
        var back = new byte[2 * big];
        d.Read(3 * W - big, back);
        Assert.Equal(data, back); // the data is what was written, whatever the disk does meanwhile
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
