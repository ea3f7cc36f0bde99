using System.Globalization;

namespace ShuruStore.Core.Hosting;

/// <summary>
/// How this process was started to treat signals. A process started under <c>nohup</c> (or by a
/// parent that ignores SIGHUP) is meant to outlive its terminal, so nothing in it should stop on
/// SIGHUP either. Read before anything in the process handles the signal: registering a handler
/// replaces the inherited disposition.
/// </summary>
public static class ProcessSignals
{
    private const int SigHup = 1;

    /// <summary>Whether the process ignores SIGHUP (the kernel's mask of ignored signals, from
    /// <c>/proc/self/status</c>); false where that cannot be read.</summary>
    public static bool HangUpIgnored => IsIgnored(SigHup);

    /// <summary>Whether signal number <paramref name="signal"/> is ignored by this process now.</summary>
    internal static bool IsIgnored(int signal)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("SigIgn:", StringComparison.Ordinal)) continue;
                ulong mask = ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                return (mask >> (signal - 1) & 1) != 0;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException) { }
        return false;
    }
}
