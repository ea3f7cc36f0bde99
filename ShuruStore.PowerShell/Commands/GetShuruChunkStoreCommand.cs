using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Describes chunk stores: chunk count, bytes, zero-chunk presence, leftover temp files.
/// Takes store paths, or server handles (the store behind each chunk-store server, once).</summary>
/// <remarks>The default parameter set is the server one: the binder tries the default set first,
/// and in the path set a server would bind its CasPath property, null for a flat image.</remarks>
[Cmdlet(VerbsCommon.Get, "ShuruChunkStore", DefaultParameterSetName = ServerSet)]
[OutputType(typeof(ShuruChunkStore))]
public sealed class GetShuruChunkStoreCommand : PSCmdlet
{
    private const string PathSet = "Path";
    private const string ServerSet = "Server";
    private readonly HashSet<string> _storesOfServers = new(StringComparer.Ordinal);

    /// <summary>Chunk-store directories (the ones holding chunks/).</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [Alias("FullName", "Path")]
    [ValidateNotNullOrEmpty]
    public string[] CasPath { get; set; } = null!;

    /// <summary>Servers whose chunk stores to describe; a flat-image server has none and is skipped.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ServerSet)]
    [ValidateNotNull]
    public ShuruNbdServer[] Server { get; set; } = null!;

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        if (ParameterSetName == PathSet)
        {
            foreach (string input in CasPath) Describe(PathResolver.ResolveUnresolved(this, input));
            return;
        }
        foreach (var server in Server)
        {
            if (server.CasPath is not { } cas)
            {
                WriteVerbose($"Server '{server.Name}' serves a flat image ({server.ImagePath}); it has no chunk store.");
                continue;
            }
            // Forks of one checkpoint share a store: it is described once.
            if (_storesOfServers.Add(cas)) Describe(cas);
        }
    }

    private void Describe(string path)
    {
        try
        {
            var info = ChunkStoreInfo.Scan(path);
            WriteObject(new ShuruChunkStore
            {
                Path = info.CasPath,
                ChunkCount = info.ChunkCount,
                TotalBytes = info.TotalBytes,
                HasZeroChunk = info.ZeroChunkPresent,
                TemporaryFiles = info.TempFileCount,
                Users = [.. info.Registrations.Select(ShuruStoreUser.From)],
            });
        }
        catch (ShuruStoreException e)
        {
            WriteError(ShuruErrors.From(e, path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(ShuruErrors.FromUnexpected(e, path));
        }
    }
}
