using System.Buffers.Binary;
using System.Net.Sockets;

namespace ShuruStore.Core.Nbd;

/// <summary>
/// A minimal NBD client for <see cref="Hosting.ProcessWarmUp"/>: it negotiates the way libnbd and
/// qemu do (fixed newstyle, structured replies, the base:allocation context, NBD_OPT_GO) and then
/// sends requests, several in flight at once, so that a rehearsal follows the server's real
/// request paths. It is not a general client: any error reply or protocol surprise throws.
/// </summary>
internal sealed class NbdWarmUpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _header = new byte[32];
    private byte[] _scratch = new byte[256 * 1024];
    private ulong _nextCookie = 1;

    private NbdWarmUpClient(Socket socket) => _socket = socket;

    /// <summary>Size of the export, from NBD_OPT_GO.</summary>
    public long ExportSize { get; private set; }

    /// <summary>Connects to <paramref name="socketPath"/> and negotiates
    /// <paramref name="exportName"/>.</summary>
    public static NbdWarmUpClient Connect(string socketPath, string exportName)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var client = new NbdWarmUpClient(socket);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            client.Negotiate(exportName);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private void Negotiate(string exportName)
    {
        ReadExact(_header.AsSpan(0, 18));
        if (BinaryPrimitives.ReadUInt64BigEndian(_header) != NbdProtocol.NbdMagic ||
            BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(8)) != NbdProtocol.IHaveOpt)
            throw new IOException("not a fixed-newstyle NBD server");
        Span<byte> flags = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, NbdProtocol.ClientFixedNewstyle | NbdProtocol.ClientNoZeroes);
        SendAll(flags);

        Option(NbdProtocol.OptStructuredReply, []);
        byte[] name = System.Text.Encoding.UTF8.GetBytes(exportName);
        byte[] context = "base:allocation"u8.ToArray();
        var meta = new byte[4 + name.Length + 4 + 4 + context.Length];
        BinaryPrimitives.WriteUInt32BigEndian(meta, (uint)name.Length);
        name.CopyTo(meta, 4);
        BinaryPrimitives.WriteUInt32BigEndian(meta.AsSpan(4 + name.Length), 1);
        BinaryPrimitives.WriteUInt32BigEndian(meta.AsSpan(8 + name.Length), (uint)context.Length);
        context.CopyTo(meta, 12 + name.Length);
        Option(NbdProtocol.OptSetMetaContext, meta);
        var go = new byte[4 + name.Length + 2];
        BinaryPrimitives.WriteUInt32BigEndian(go, (uint)name.Length);
        name.CopyTo(go, 4);
        Option(NbdProtocol.OptGo, go);
    }

    /// <summary>Sends an option and reads its replies up to the ACK.</summary>
    private void Option(uint option, byte[] data)
    {
        var request = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(request, NbdProtocol.IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(12), (uint)data.Length);
        data.CopyTo(request, 16);
        SendAll(request);
        while (true)
        {
            ReadExact(_header.AsSpan(0, 20));
            uint type = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(12));
            int length = checked((int)BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(16)));
            var payload = Payload(length);
            if (BinaryPrimitives.ReadUInt64BigEndian(_header) != NbdProtocol.OptionReplyMagic || (type & 0x80000000) != 0)
                throw new IOException($"option {option} refused (reply type 0x{type:x})");
            if (type == NbdProtocol.RepInfo && length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(payload) == NbdProtocol.InfoExport)
                ExportSize = (long)BinaryPrimitives.ReadUInt64BigEndian(payload[2..]);
            if (type == NbdProtocol.RepAck) return;
        }
    }

    /// <summary>Sends one request without waiting for its reply; returns its cookie.</summary>
    public ulong Send(ushort command, long offset, int length, ReadOnlySpan<byte> data = default)
    {
        ulong cookie = _nextCookie++;
        Span<byte> request = stackalloc byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(request, NbdProtocol.RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(request[4..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(request[6..], command);
        BinaryPrimitives.WriteUInt64BigEndian(request[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(request[16..], (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(request[24..], (uint)length);
        SendAll(request);
        if (!data.IsEmpty) SendAll(data);
        return cookie;
    }

    /// <summary>Reads the whole reply to one request (every structured chunk up to the last);
    /// <paramref name="simpleReadLength"/> is the payload of a simple READ reply.</summary>
    public void Receive(int simpleReadLength)
    {
        while (true)
        {
            ReadExact(_header.AsSpan(0, 4));
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(_header);
            if (magic == NbdProtocol.SimpleReplyMagic)
            {
                ReadExact(_header.AsSpan(4, 12));
                uint error = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(4));
                if (error != 0) throw new IOException($"request failed with NBD error {error}");
                Payload(simpleReadLength);
                return;
            }
            if (magic != NbdProtocol.StructuredReplyMagic) throw new IOException($"unexpected reply magic 0x{magic:x}");
            ReadExact(_header.AsSpan(4, 16));
            ushort flags = BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(4));
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(6));
            Payload(checked((int)BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(16))));
            if ((type & 0x8000) != 0) throw new IOException($"request failed (structured reply type 0x{type:x})");
            if ((flags & 1) != 0) return; // NBD_REPLY_FLAG_DONE
        }
    }

    /// <summary>Ends the session the way clients should (NBD_CMD_DISC).</summary>
    public void Disconnect() => Send(NbdProtocol.CmdDisc, 0, 0);

    private ReadOnlySpan<byte> Payload(int length)
    {
        if (length > _scratch.Length) _scratch = new byte[length];
        ReadExact(_scratch.AsSpan(0, length));
        return _scratch.AsSpan(0, length);
    }

    private void SendAll(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty) data = data[_socket.Send(data)..];
    }

    private void ReadExact(Span<byte> target)
    {
        while (!target.IsEmpty)
        {
            int n = _socket.Receive(target);
            if (n == 0) throw new EndOfStreamException("the server closed the connection");
            target = target[n..];
        }
    }

    public void Dispose() => _socket.Dispose();
}
