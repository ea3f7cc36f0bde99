using System.Management.Automation;

namespace ShuruStore.Commands;

/// <summary>
/// Tells the user when the session that owns a new server is likely to end soon. A server lives
/// as long as its runspace; a runspace without a host is a thread job's, a ForEach-Object
/// -Parallel script's or an application's, and the first two close as soon as their script
/// block ends, stopping the server with no one left to see it happen.
/// </summary>
internal static class SessionLifetime
{
    /// <summary>The name of the host PowerShell gives a runspace created without one.</summary>
    private const string NoHostName = "Default Host";

    public static void WarnIfRunspaceIsShortLived(PSCmdlet cmdlet)
    {
        if (cmdlet.Host?.Name != NoHostName) return;
        cmdlet.WriteWarning("This server belongs to a runspace without a host (a thread job, ForEach-Object -Parallel or an " +
                            "application's runspace) and stops when that runspace closes: for a thread job, as soon as its script " +
                            "block ends. End the script block with Wait-ShuruNbdServer to keep serving, or start the server in the session that uses it.");
    }
}
