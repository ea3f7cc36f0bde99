using System.Globalization;

namespace ShuruStore.Commands;

/// <summary>Human-readable byte counts for format views ("64 MiB", "1.5 GiB").</summary>
public static class ByteSize
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>Formats <paramref name="bytes"/> with binary units and at most one decimal.</summary>
    public static string Format(long bytes)
    {
        if (bytes < 1024) return bytes.ToString(CultureInfo.CurrentCulture) + " B";
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        string format = value >= 100 || value == Math.Floor(value) ? "0" : "0.#";
        return value.ToString(format, CultureInfo.CurrentCulture) + " " + Units[unit];
    }
}
