using System.Management.Automation;

namespace ShuruStore.Commands;

/// <summary>
/// Resolves user paths against the PowerShell location ($PWD, PSDrives, ~), never the process
/// working directory, and insists on the FileSystem provider: the engine only knows files.
/// </summary>
internal static class PathResolver
{
    /// <summary>A path that may not exist yet (an output, a socket, an index to create).</summary>
    public static string ResolveUnresolved(PSCmdlet cmdlet, string path)
    {
        string resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out ProviderInfo provider, out _);
        EnsureFileSystem(cmdlet, path, provider);
        return resolved;
    }

    /// <summary>Existing paths matching a wildcard pattern; an error when none match.</summary>
    public static IReadOnlyList<string> ResolveExisting(PSCmdlet cmdlet, string path, bool literal)
    {
        if (literal)
        {
            string single = ResolveUnresolved(cmdlet, path);
            if (!File.Exists(single) && !Directory.Exists(single))
                throw new ItemNotFoundException($"Cannot find path '{single}' because it does not exist.");
            return [single];
        }
        var result = cmdlet.SessionState.Path.GetResolvedProviderPathFromPSPath(path, out ProviderInfo provider);
        EnsureFileSystem(cmdlet, path, provider);
        return result;
    }

    /// <summary>The user's file-system location ($PWD, or the last file-system location when the
    /// current one is on another provider): the working directory a relative path stored in an
    /// index is first resolved against, as shuru resolves it against its own.</summary>
    public static string WorkingDirectory(PSCmdlet cmdlet) => cmdlet.SessionState.Path.CurrentFileSystemLocation.ProviderPath;

    private static void EnsureFileSystem(PSCmdlet cmdlet, string path, ProviderInfo provider)
    {
        if (provider.Name != "FileSystem")
        {
            cmdlet.ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.PathNotFileSystem, ErrorCategory.InvalidArgument, path,
                $"The path '{path}' is on the {provider.Name} provider; ShuruStore works with file-system paths only."));
        }
    }
}
