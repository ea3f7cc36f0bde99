using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>Lists the NBD servers running in this session, by name with wildcards.</summary>
[Cmdlet(VerbsCommon.Get, "ShuruNbdServer")]
[OutputType(typeof(ShuruNbdServer))]
public sealed class GetShuruNbdServerCommand : PSCmdlet
{
    /// <summary>Server names; wildcards allowed. Default: all.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        var servers = ServerRegistry.List(Runspace.DefaultRunspace);
        foreach (var server in servers) ServerVerbose.Drain(this, server);
        foreach (var server in ServerSelection.ByName(this, servers, Name))
            WriteObject(server);
    }
}

/// <summary>Finds servers by name the way Get-Process finds processes: a name with no wildcard
/// that matches nothing is a non-terminating ServerNotFound error.</summary>
internal static class ServerSelection
{
    public static IEnumerable<ShuruNbdServer> ByName(PSCmdlet cmdlet, IReadOnlyList<ShuruNbdServer> servers, string[]? names)
    {
        if (names is null || names.Length == 0)
        {
            foreach (var s in servers) yield return s;
            yield break;
        }
        var seen = new HashSet<ShuruNbdServer>();
        foreach (string name in names)
        {
            var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
            bool any = false;
            foreach (var server in servers.Where(s => pattern.IsMatch(s.Name)))
            {
                any = true;
                if (seen.Add(server)) yield return server;
            }
            if (!any && !WildcardPattern.ContainsWildcardCharacters(name))
            {
                cmdlet.WriteError(ShuruErrors.Create(ShuruErrors.ServerNotFound, ErrorCategory.ObjectNotFound, name,
                    $"No ShuruStore server named '{name}' runs in this session. Get-ShuruNbdServer lists the running ones."));
            }
        }
    }
}

/// <summary>Writes a server's buffered activity (connections, errors) as verbose messages.</summary>
internal static class ServerVerbose
{
    public static void Drain(PSCmdlet cmdlet, ShuruNbdServer server)
    {
        // Only drain when someone listens: the events stay queued for a later -Verbose call.
        if (!cmdlet.MyInvocation.BoundParameters.ContainsKey("Verbose") &&
            cmdlet.GetVariableValue("VerbosePreference") is not ActionPreference.Continue)
            return;
        foreach (string message in server.DrainEvents()) cmdlet.WriteVerbose(message);
    }
}
