using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>
/// Remove-Module ShuruStore stops the servers of the runspace that removes it: a binary module's
/// assembly stays loaded forever, but its servers must not outlive the module in that session.
/// </summary>
public sealed class ModuleLifetime : IModuleAssemblyCleanup
{
    /// <inheritdoc />
    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        var runspace = Runspace.DefaultRunspace;
        if (runspace is not null) ServerRegistry.StopAll(runspace.InstanceId);
    }
}
