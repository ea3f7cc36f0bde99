using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>A path stored in an index, made absolute.</summary>
/// <param name="Path">The absolute path to use.</param>
/// <param name="OtherCandidate">For a relative stored path, the candidate not chosen; null for an
/// absolute one. When neither exists, <paramref name="Path"/> is shuru's reading.</param>
/// <param name="Warning">Set when both candidates exist and are different files.</param>
public readonly record struct ResolvedIndexPath(string Path, string? OtherCandidate, string? Warning);

/// <summary>
/// Resolves the parent and fallback paths stored in an index. shuru uses them as stored, so a
/// relative one is relative to the shuru process's working directory, and shuru's SDK writes
/// relative ones when it is given a relative data directory: that reading comes first whenever
/// it names an existing file. Otherwise the path is taken relative to the folder of the index
/// that names it, which keeps a data directory readable from anywhere once it is moved or opened
/// from elsewhere. When both readings name existing, different files the working directory wins
/// (as in shuru) and the caller gets a warning to pass on; when neither exists, shuru's reading is
/// the path reported missing. Absolute paths are used as they are.
/// </summary>
public sealed class IndexPathResolver
{
    /// <param name="workingDirectory">The directory shuru would have run in; null: this process's
    /// current directory (a host whose user has a location of their own, such as PowerShell's
    /// <c>$PWD</c>, passes that).</param>
    public IndexPathResolver(string? workingDirectory = null)
    {
        WorkingDirectory = System.IO.Path.GetFullPath(workingDirectory ?? Environment.CurrentDirectory);
    }

    /// <summary>The process current directory at the time of the call.</summary>
    public static IndexPathResolver ForCurrentDirectory() => new();

    /// <summary>The directory relative paths are first resolved against (absolute).</summary>
    public string WorkingDirectory { get; }

    /// <summary>Resolves <paramref name="stored"/>, found in the index <paramref name="namingIndexPath"/>
    /// as its <paramref name="field"/> (for the warning's wording).</summary>
    public ResolvedIndexPath Resolve(string stored, string namingIndexPath, string field)
    {
        if (System.IO.Path.IsPathFullyQualified(stored)) return new(System.IO.Path.GetFullPath(stored), null, null);
        string asShuru = System.IO.Path.GetFullPath(stored, WorkingDirectory);
        string besideIndex = System.IO.Path.GetFullPath(stored, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(namingIndexPath))!);
        if (string.Equals(asShuru, besideIndex, StringComparison.Ordinal)) return new(asShuru, null, null);
        if (!File.Exists(asShuru))
        {
            // Neither exists: shuru's reading is the one to report, with the other beside it.
            return File.Exists(besideIndex) ? new(besideIndex, asShuru, null) : new(asShuru, besideIndex, null);
        }
        string? warning = File.Exists(besideIndex) && !SameFile(asShuru, besideIndex)
            ? $"index '{namingIndexPath}' names its {field} '{stored}' relatively: '{asShuru}' (relative to the working directory " +
              $"'{WorkingDirectory}', as shuru reads it) is used, but '{besideIndex}' beside the index is a different file"
            : null;
        return new(asShuru, besideIndex, warning);
    }

    private static bool SameFile(string a, string b)
    {
        var ia = FileStatusCalls.GetFileIdentity(FinalTarget(a));
        var ib = FileStatusCalls.GetFileIdentity(FinalTarget(b));
        return ia != (0, 0) && ia == ib;
    }

    private static string FinalTarget(string path)
    {
        try { return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path; }
        catch (IOException) { return path; }
    }
}
