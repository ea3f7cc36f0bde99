using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Describes chunk stores: chunk count, bytes, zero-chunk presence, leftover temp files.</summary>
[Cmdlet(VerbsCommon.Get, "ShuruChunkStore")]
[OutputType(typeof(ShuruChunkStore))]
public sealed class GetShuruChunkStoreCommand : PSCmdlet
{
    /// <summary>Chunk-store directories (the ones holding chunks/).</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "Path")]
    [ValidateNotNullOrEmpty]
    public string[] CasPath { get; set; } = null!;

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        foreach (string input in CasPath)
        {
            string path = PathResolver.ResolveUnresolved(this, input);
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
}
