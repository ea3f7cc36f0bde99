namespace ShuruStore.Core.Tests.Nbd;

/// <summary>Waiting in tests for a condition another thread brings about.</summary>
internal static class Poll
{
    /// <summary>Returns once <paramref name="condition"/> holds; throws a TimeoutException naming
    /// <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public static void Until(Func<bool> condition, string what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException(what);
            Thread.Sleep(20);
        }
    }
}
