using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Maintenance;

namespace ShuruStore.Commands;

/// <summary>
/// Shared plumbing of the store-maintenance cmdlets: Ctrl+C cancels the engine through a
/// <see cref="CancellationTokenSource"/> (the engine stops between whole chunks and leaves the
/// store consistent), and the engine's progress reports, which arrive synchronously on the
/// pipeline thread that runs it, become Write-Progress records.
/// </summary>
public abstract class MaintenanceCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private int _activityId;
    private bool _progressShown;

    /// <summary>Cancelled by Ctrl+C (StopProcessing).</summary>
    private protected CancellationToken Cancel => _stop.Token;

    /// <summary>The progress sink to hand to the engine.</summary>
    private protected IProgress<MaintenanceProgress> Progress(int activityId)
    {
        _activityId = activityId;
        return new SynchronousProgress<MaintenanceProgress>(p =>
        {
            if (_stop.IsCancellationRequested) return;
            var record = new ProgressRecord(activityId, p.Activity, p.Total > 0 && p.Unit == "bytes"
                ? $"{p.Phase}: {ByteSize.Format(p.Done)} of {ByteSize.Format(p.Total)}"
                : p.Total > 0 ? $"{p.Phase}: {p.Done} of {p.Total} {p.Unit}" : $"{p.Phase}: {p.Done} {p.Unit}")
            {
                PercentComplete = p.Percent,
            };
            WriteProgress(record);
            _progressShown = true;
        });
    }

    /// <summary>Closes the progress bar of the last activity.</summary>
    private protected void CompleteProgress()
    {
        if (!_progressShown || _stop.IsCancellationRequested) return;
        WriteProgress(new ProgressRecord(_activityId, "Done", "Done") { RecordType = ProgressRecordType.Completed });
        _progressShown = false;
    }

    /// <summary>Runs engine work, turning its failures into non-terminating errors against
    /// <paramref name="target"/> and a cancel into a stopped pipeline. Returns false on failure.</summary>
    private protected bool Run(object? target, Action work)
    {
        try
        {
            work();
            return true;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (ShuruStoreException e)
        {
            WriteError(ShuruErrors.From(e, target ?? e.Path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(ShuruErrors.FromUnexpected(e, target));
        }
        finally
        {
            CompleteProgress();
        }
        return false;
    }

    /// <summary>Resolves paths given by the user against $PWD (file system only).</summary>
    private protected string Resolve(string path) => PathResolver.ResolveUnresolved(this, path);

    /// <summary>The index files named by wildcard patterns and by literal paths. A name that
    /// matches no file stops the command (IndexNotFound): an index left out would make a
    /// collection delete its chunks, or a check skip them.</summary>
    private protected IEnumerable<string> ResolveIndexes(string[]? patterns, string[]? literalPaths)
    {
        var inputs = (patterns ?? []).Select(p => (Path: p, Literal: false)).Concat((literalPaths ?? []).Select(p => (Path: p, Literal: true)));
        foreach (var (path, literal) in inputs)
        {
            IReadOnlyList<string> files;
            try
            {
                files = PathResolver.ResolveExisting(this, path, literal);
            }
            catch (ItemNotFoundException)
            {
                files = [];
            }
            if (files.Count == 0)
            {
                ThrowTerminatingError(ShuruErrors.Create(ShuruErrors.IndexPathNotFound, ErrorCategory.ObjectNotFound, path,
                    $"No index file matches '{path}'. Nothing was done."));
            }
            foreach (string file in files) yield return file;
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
