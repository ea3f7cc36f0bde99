namespace ShuruStore.Core.Interop;

/// <summary>
/// Creating a directory with its missing ancestors so that they survive a crash: a new
/// directory's entry lives in its parent, so after each one is made its parent is fsynced.
/// Without that, a file published durably inside a new directory can vanish with the directory
/// after a power loss.
/// </summary>
internal static class DurableDirectory
{
    /// <summary>Creates <paramref name="directory"/> and every missing ancestor (as
    /// <c>mkdir -p</c> does), fsyncing the parent of each directory created; existing ones are
    /// left alone.</summary>
    public static void CreateAll(string directory)
    {
        var missing = new Stack<string>();
        for (string? d = Path.GetFullPath(directory); d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
            missing.Push(d);
        while (missing.Count > 0)
        {
            string d = missing.Pop();
            Directory.CreateDirectory(d);
            FileSync.FsyncDirectory(Path.GetDirectoryName(d)!);
        }
    }
}
