namespace ShuruStore.Core.Storage;

/// <summary>Waiting for a disk's background workers.</summary>
internal static class Workers
{
    /// <summary>Waits for a worker count to drop to zero (workers check the disk's closing token
    /// and finish their current batch quickly).</summary>
    public static void SpinUntilZero(ref int running)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref running) != 0) spin.SpinOnce(sleep1Threshold: 10);
    }
}
