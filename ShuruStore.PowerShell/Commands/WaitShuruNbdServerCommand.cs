using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>
/// Waits until servers stop, as Wait-Process waits for processes: for a script that runs a
/// server as a service (start, wait, stop in finally) and for a thread job whose servers must
/// outlive the start. Servers stop through Stop-ShuruNbdServer in another session or thread, the
/// end of their session, or SIGTERM/SIGHUP; Ctrl+C ends the wait and leaves them running.
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "ShuruNbdServer", DefaultParameterSetName = ServerSet)]
[OutputType(typeof(ShuruNbdServer))]
public sealed class WaitShuruNbdServerCommand : PSCmdlet, IDisposable
{
    private const string ServerSet = "Server";
    private const string NameSet = "Name";

    private readonly List<ShuruNbdServer> _servers = [];
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Server handles, typically from the pipeline.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ParameterSetName = ServerSet)]
    [ValidateNotNull]
    public ShuruNbdServer[] Server { get; set; } = null!;

    /// <summary>Server names; wildcards allowed.</summary>
    [Parameter(Position = 0, Mandatory = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = null!;

    /// <summary>Seconds to wait at most; -1 (the default) waits as long as it takes.</summary>
    [Parameter]
    [Alias("TimeoutSec")]
    [ValidateRange(-1, int.MaxValue)]
    public int Timeout { get; set; } = -1;

    /// <summary>Return as soon as one of the servers has stopped.</summary>
    [Parameter]
    public SwitchParameter Any { get; set; }

    /// <summary>Return the servers that stopped.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        var servers = ParameterSetName == ServerSet
            ? Server
            : ServerSelection.ByName(this, ServerRegistry.List(Runspace.DefaultRunspace), Name);
        foreach (var server in servers)
            if (!_servers.Contains(server)) _servers.Add(server);
    }

    /// <inheritdoc />
    protected override void EndProcessing()
    {
        if (_servers.Count == 0) return;
        var stops = _servers.Select(s => s.Stopped).ToArray();
        var all = Any ? Task.WhenAny(stops) : Task.WhenAll(stops);
        try
        {
            all.Wait(Timeout < 0 ? System.Threading.Timeout.Infinite : (int)Math.Min(Timeout * 1000L, int.MaxValue), _stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }

        foreach (var server in _servers)
        {
            if (server.Stopped.IsCompleted)
            {
                if (PassThru) WriteObject(server);
            }
            else if (!Any || !all.IsCompleted)
            {
                // As Wait-Process does: a server still running when the time is up is this item's error.
                WriteError(ShuruErrors.Create(ShuruErrors.WaitTimeout, ErrorCategory.OperationTimeout, server,
                    $"Server '{server.Name}' was still running after {Timeout} s; it keeps serving."));
            }
        }
    }

    /// <inheritdoc />
    protected override void StopProcessing() => _stop.Cancel();

    /// <inheritdoc />
    public void Dispose()
    {
        _stop.Dispose();
        GC.SuppressFinalize(this);
    }
}
