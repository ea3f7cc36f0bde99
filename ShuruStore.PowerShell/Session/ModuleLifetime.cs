using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>
/// Remove-Module ShuruStore stops the servers of the runspace that removes it: a binary module's
/// assembly stays loaded forever, but its servers must not outlive the module in that session.
/// Import-Module ShuruStore -Force removes the module too, only to import it again at once: the
/// same assembly comes back (an assembly cannot be loaded twice), with this very registry, so
/// the servers are kept running and the re-imported cmdlets adopt them.
/// </summary>
public sealed class ModuleLifetime : IModuleAssemblyCleanup
{
    /// <summary>The cmdlet that removes a module on its way to importing it again.</summary>
    private const string ImportModuleCommand = "Microsoft.PowerShell.Commands.ImportModuleCommand";

    /// <inheritdoc />
    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        var runspace = Runspace.DefaultRunspace;
        if (runspace is null || IsReimport()) return;
        ServerRegistry.StopAll(runspace.InstanceId);
    }

    /// <summary>PowerShell does not tell a module why it is removed; Import-Module -Force is the
    /// caller on this thread's stack when the removal is a reload.</summary>
    private static bool IsReimport() =>
        new StackTrace().GetFrames().Any(f => f.GetMethod()?.DeclaringType?.FullName == ImportModuleCommand);
}
