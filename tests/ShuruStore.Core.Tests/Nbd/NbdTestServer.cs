using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>A server on a fresh short socket path in its own temp directory.</summary>
internal sealed class NbdTestServer : IDisposable
{
    public NbdTestServer(IBlockDevice? device = null, string? description = null, TimeSpan? grace = null, bool start = true,
        int maxConnections = 64, TimeSpan? negotiationTimeout = null, long maxPayloadMemory = 0, long connectionAllowance = 2L << 20,
        TimeSpan? replyWriteTimeout = null, TimeSpan? payloadStallTimeout = null)
    {
        Dir = Path.Combine("/tmp", "nbdt-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Dir);
        Device = device ?? new MemoryDevice(64L << 20);
        Server = new NbdServer(Device, new NbdServerOptions
        {
            SocketPath = Path.Combine(Dir, "s.sock"),
            Description = description,
            ShutdownGrace = grace ?? TimeSpan.FromSeconds(5),
            MaxConnections = maxConnections,
            NegotiationTimeout = negotiationTimeout ?? TimeSpan.FromSeconds(30),
            MaxPayloadMemory = maxPayloadMemory,
            ConnectionAllowance = connectionAllowance,
            ReplyWriteTimeout = replyWriteTimeout ?? TimeSpan.FromSeconds(60),
            PayloadStallTimeout = payloadStallTimeout ?? TimeSpan.FromSeconds(20),
        });
        Server.Event += (_, e) => { lock (Events) Events.Add(e); };
        if (start) Server.Start();
    }

    public string Dir { get; }
    public IBlockDevice Device { get; }
    public NbdServer Server { get; }
    public List<NbdServerEventArgs> Events { get; } = new();
    public string SocketPath => Server.SocketPath;
    public string Uri => Server.Uri;

    public NbdTestClient Client() => new(SocketPath);

    public void Dispose()
    {
        Server.Dispose();
        Device.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>Wraps a device to inject failures and to hold requests at a gate.</summary>
internal sealed class TestDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    public TestDevice(IBlockDevice inner, BlockDeviceCapabilities? caps = null)
    {
        _inner = inner;
        // Every request goes through Read and Write (where the gates and failures are): the
        // fast paths are not declared, so the server never takes them.
        Capabilities = (caps ?? inner.Capabilities) & ~(BlockDeviceCapabilities.NoWaitReads | BlockDeviceCapabilities.FileRanges);
    }

    /// <summary>Reads and writes at this offset wait for <see cref="Gate"/>.</summary>
    public long GatedOffset { get; set; } = -1;
    public ManualResetEventSlim Gate { get; } = new(false);
    public ManualResetEventSlim Entered { get; } = new(false);
    public Exception? ReadFailure { get; set; }
    public Exception? ZeroFailure { get; set; }

    public long Size => _inner.Size;
    public BlockDeviceCapabilities Capabilities { get; }
    public int PreferredBlockSize => _inner.PreferredBlockSize;
    public int WriteBufferAlignment => _inner.WriteBufferAlignment;
    public bool TryReadNoWait(long offset, Span<byte> buffer) => false;
    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges) => false;

    public void Read(long offset, Span<byte> buffer)
    {
        if (offset == GatedOffset)
        {
            Entered.Set();
            Gate.Wait(TimeSpan.FromSeconds(30));
        }
        if (ReadFailure is not null) throw ReadFailure;
        _inner.Read(offset, buffer);
    }

    public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags)
    {
        if (offset == GatedOffset)
        {
            Entered.Set();
            Gate.Wait(TimeSpan.FromSeconds(30));
        }
        _inner.Write(offset, data, flags);
    }
    public void Flush() => _inner.Flush();
    public void Trim(long offset, long length, WriteFlags flags) => _inner.Trim(offset, length, flags);
    public void WriteZeroes(long offset, long length, WriteFlags flags)
    {
        if (ZeroFailure is not null) throw ZeroFailure;
        _inner.WriteZeroes(offset, length, flags);
    }
    public void Cache(long offset, long length) => _inner.Cache(offset, length);
    public void GetExtents(long offset, long length, List<Extent> extents) => _inner.GetExtents(offset, length, extents);
    public void Dispose() => _inner.Dispose();
}
