namespace ShuruStore.Core.Nbd;

/// <summary>One transmission-phase request on its way from the reader loop to a thread-pool
/// worker. Holds the rented WRITE payload, if any, until the request completes.</summary>
internal sealed class NbdRequest : IThreadPoolWorkItem
{
    public required NbdConnection Connection { get; init; }
    public required ushort Type { get; init; }
    public required ushort Flags { get; init; }
    public required ulong Cookie { get; init; }
    public required ulong Offset { get; init; }
    public required uint Length { get; init; }
    /// <summary>The WRITE payload, from <see cref="PayloadStart"/> (rented from
    /// <see cref="NbdPayloadBuffers"/>; returned when the request completes).</summary>
    public byte[]? Payload { get; set; }
    public int PayloadStart { get; set; }
    /// <summary>Rented from ArrayPool: a small READ's bytes, already read by the reader thread
    /// because the device had them at hand (<see cref="BlockDevices.IBlockDevice.TryReadNoWait"/>); returned
    /// when the request completes.</summary>
    public byte[]? Preread { get; set; }
    /// <summary>Bytes charged against the connection's in-flight budget.</summary>
    public long Cost { get; init; }
    /// <summary>The part of <see cref="Cost"/> charged to the server-wide budget (the rest came
    /// from the connection's allowance).</summary>
    public long SharedCost { get; set; }

    public void Execute() => Connection.Execute(this);
}
