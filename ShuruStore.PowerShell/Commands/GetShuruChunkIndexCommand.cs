using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Reads chunk indexes (checkpoints): sizes, counts, chain; or, with -Chunk/-AllChunks,
/// the entries and the layer that provides each. A chain that stops at a missing parent is read
/// as far as it goes, with a warning and the MissingParentPath property set.</summary>
[Cmdlet(VerbsCommon.Get, "ShuruChunkIndex", DefaultParameterSetName = PathSet)]
[OutputType(typeof(ShuruChunkIndex))]
[OutputType(typeof(ShuruChunkEntry))]
public sealed class GetShuruChunkIndexCommand : PSCmdlet
{
    private const string PathSet = "Path";
    private const string LiteralSet = "LiteralPath";

    /// <summary>Index files; wildcards allowed.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ParameterSetName = PathSet)]
    [Alias("IndexPath")]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = null!;

    /// <summary>Index files, taken literally (also FullName from Get-ChildItem).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralSet)]
    [Alias("FullName", "PSPath")]
    [ValidateNotNullOrEmpty]
    public string[] LiteralPath { get; set; } = null!;

    /// <summary>Chunk numbers to enumerate (e.g. 0, 5 or 0..15).</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long[]? Chunk { get; set; }

    /// <summary>Enumerate every entry.</summary>
    [Parameter]
    public SwitchParameter AllChunks { get; set; }

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        bool literal = ParameterSetName == LiteralSet;
        foreach (string input in literal ? LiteralPath : Path)
        {
            if (Core.Remote.S3Location.IsS3Uri(input))
            {
                // A published index is read from its local mirror (indexes and maps only) and
                // shown by its published URIs: the mirror is a cache, not the user's file.
                Core.Remote.MirroredChain chain;
                try { chain = Core.Remote.PublishedIndexes.MirrorChain(input); }
                catch (ShuruStoreException e)
                {
                    WriteError(ShuruErrors.From(e, input));
                    continue;
                }
                WriteVerbose($"{input} is mirrored at '{chain.TopPath}'.");
                Emit(chain.TopPath, PublishedNames.Of(chain));
                continue;
            }
            IReadOnlyList<string> files;
            try
            {
                files = PathResolver.ResolveExisting(this, input, literal);
            }
            catch (ItemNotFoundException e)
            {
                WriteError(new ErrorRecord(e, ShuruErrors.IndexPathNotFound, ErrorCategory.ObjectNotFound, input));
                continue;
            }
            foreach (string file in files) Emit(file, PublishedNames.None);
        }
    }

    private void Emit(string file, PublishedNames names)
    {
        IndexChainView view;
        try
        {
            view = IndexChainView.Open(file, new IndexPathResolver(PathResolver.WorkingDirectory(this)));
        }
        catch (ShuruStoreException e)
        {
            WriteError(ShuruErrors.From(e, file));
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(ShuruErrors.FromUnexpected(e, file));
            return;
        }

        string shown = names.Show(file)!;
        ChainWarnings.WritePathWarnings(this, view.Chain.Warnings);
        if (view.Chain.MissingParent is { } missing)
        {
            ChainWarnings.WriteMissingParent(this, missing,
                $"'{shown}' is shown as the rest of its chain reads: {MissingParentLink.Consequence(view.BaseImagePath)}. " +
                "Start-ShuruNbdServer and Export-ShuruDisk refuse it unless -AllowMissingParent is given.");
        }

        if (Chunk is null && !AllChunks)
        {
            WriteObject(ShuruChunkIndexFactory.FromView(view, names));
            return;
        }
        if (AllChunks)
        {
            foreach (var location in view.Chunks()) WriteObject(ShuruChunkIndexFactory.Entry(location, shown, names));
            return;
        }
        foreach (long n in Chunk!)
        {
            if (n >= view.ChunkCount)
            {
                WriteError(ShuruErrors.Create("ChunkOutOfRange", ErrorCategory.InvalidArgument, n,
                    $"Chunk {n} is past the end of '{shown}', which has {view.ChunkCount} chunks (0 to {view.ChunkCount - 1})."));
                continue;
            }
            WriteObject(ShuruChunkIndexFactory.Entry(view.Locate(n), shown, names));
        }
    }
}
