using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>Stops NBD servers of this session: lets in-flight requests finish, flushes the disk,
/// closes clients and removes the socket.</summary>
[Cmdlet(VerbsLifecycle.Stop, "ShuruNbdServer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium,
    DefaultParameterSetName = ServerSet)]
[OutputType(typeof(ShuruNbdServer))]
public sealed class StopShuruNbdServerCommand : PSCmdlet
{
    private const string ServerSet = "Server";
    private const string NameSet = "Name";
    private const string AllSet = "All";

    /// <summary>Server handles, typically from the pipeline.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ParameterSetName = ServerSet)]
    [ValidateNotNull]
    public ShuruNbdServer[] Server { get; set; } = null!;

    /// <summary>Server names; wildcards allowed. Positional like Stop-Service's -Name: a string
    /// cannot become a handle, so the binder picks this set for it.</summary>
    [Parameter(Position = 0, Mandatory = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>Stop every server of this session.</summary>
    [Parameter(Mandatory = true, ParameterSetName = AllSet)]
    public SwitchParameter All { get; set; }

    /// <summary>Return the stopped handles.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        IEnumerable<ShuruNbdServer> targets = ParameterSetName switch
        {
            ServerSet => Server,
            NameSet => ServerSelection.ByName(this, ServerRegistry.List(Runspace.DefaultRunspace), Name),
            _ => ServerRegistry.List(Runspace.DefaultRunspace),
        };
        foreach (var server in targets)
        {
            ServerVerbose.Drain(this, server);
            if (!ShouldProcess($"{server.Name} ({server.Uri})", "Stop NBD server"))
                continue;
            try
            {
                server.Stop();
                WriteVerbose($"Server '{server.Name}' stopped; socket {server.SocketPath} removed.");
            }
            catch (Exception e)
            {
                // The server is down either way; a failed final flush is this item's error.
                WriteError(ShuruErrors.FromUnexpected(e, server));
            }
            if (PassThru) WriteObject(server);
        }
    }
}
