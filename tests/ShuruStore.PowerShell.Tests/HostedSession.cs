using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Net.Sockets;
using ShuruStore.Commands;
using SmaPowerShell = System.Management.Automation.PowerShell;

namespace ShuruStore.PowerShell.Tests;

/// <summary>A runspace with the module imported from this build's ShuruStore.dll, and a scratch
/// directory with a small flat image to serve.</summary>
public sealed class HostedSession : IDisposable
{
    public HostedSession()
    {
        Directory = Path.Combine("/tmp", "shuru-hosted-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        ImagePath = Path.Combine(Directory, "disk.img");
        using (var f = File.Create(ImagePath)) f.SetLength(1 << 20);
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(ModuleAssemblyPath);
        Runspace = RunspaceFactory.CreateRunspace(iss);
        Runspace.Open();
    }

    public static string ModuleAssemblyPath => typeof(StartShuruNbdServerCommand).Assembly.Location;

    public string Directory { get; }
    public string ImagePath { get; }
    public Runspace Runspace { get; }

    public string Socket(string name) => Path.Combine(Directory, name + ".sock");

    /// <summary>Runs a script in the session; fails the test on any error record.</summary>
    public IReadOnlyList<PSObject> Run(string script, params (string Name, object Value)[] variables)
    {
        using var ps = SmaPowerShell.Create();
        ps.Runspace = Runspace;
        foreach (var (name, value) in variables) Runspace.SessionStateProxy.SetVariable(name, value);
        var result = ps.AddScript(script).Invoke();
        if (ps.HadErrors)
            throw new InvalidOperationException(string.Join(Environment.NewLine, ps.Streams.Error.Select(e => e.ToString())));
        return result;
    }

    public ShuruNbdServer StartFlat(string name) =>
        (ShuruNbdServer)Run("Start-ShuruNbdServer -ImagePath $img -SocketPath $sock -Name $name",
            ("img", ImagePath), ("sock", Socket(name)), ("name", name))[0].BaseObject;

    /// <summary>True when something accepts connections on the socket.</summary>
    public static bool IsListening(string socketPath)
    {
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (Runspace.RunspaceStateInfo.State == RunspaceState.Opened) Runspace.Close();
        Runspace.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }

    /// <summary>The repository root (holds ShuruStore.sln and dotnet-tools.json).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ShuruStore.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("ShuruStore.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
