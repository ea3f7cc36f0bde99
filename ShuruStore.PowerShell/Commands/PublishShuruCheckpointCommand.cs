using System.Management.Automation;
using ShuruStore.Core;
using ShuruStore.Core.Remote;

namespace ShuruStore.Commands;

/// <summary>
/// Publishes a local checkpoint to S3-compatible object storage so that any host can boot it:
/// everything its chain needs that the destination lacks (chunks in packs, base-image pieces,
/// parent checkpoints), the index last. The engine plans and uploads; this cmdlet asks, shows
/// progress and turns Ctrl+C into a cancel (what was uploaded stays for the next run).
/// </summary>
[Cmdlet(VerbsData.Publish, "ShuruCheckpoint", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(ShuruPublishResult))]
public sealed class PublishShuruCheckpointCommand : MaintenanceCmdlet
{
    /// <summary>The local checkpoint; FullName or IndexPath from the pipeline.</summary>
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string IndexPath { get; set; } = null!;

    /// <summary>The local chunk store holding its chunks.</summary>
    [Parameter(Position = 1, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string CasPath { get; set; } = null!;

    /// <summary>The remote store, s3://BUCKET/PREFIX.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = null!;

    /// <summary>The published name (indexes/NAME.idx); default: the index's file name without extension.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>Packs uploaded at once.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int Parallelism { get; set; } = 16;

    /// <summary>Seconds an object-store request may take, retries included.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int RemoteTimeoutSec { get; set; } = 30;

    /// <inheritdoc />
    protected override void ProcessRecord()
    {
        string index = Resolve(IndexPath);
        if (!File.Exists(index))
        {
            WriteError(ShuruErrors.Create(ShuruErrors.IndexPathNotFound, ErrorCategory.ObjectNotFound, index,
                $"The index '{index}' does not exist. Nothing was published."));
            return;
        }
        string cas = Resolve(CasPath);
        var options = new PublishOptions { IndexPath = index, CasPath = cas, Destination = Destination, Name = Name, Parallelism = Parallelism };
        var storeOptions = ObjectStoreOptions.Default.WithDeadline(TimeSpan.FromSeconds(RemoteTimeoutSec));
        Run(index, () =>
        {
            var root = S3Location.Parse(Destination);
            using var remote = S3ObjectStore.FromEnvironment(root, storeOptions);
            var plan = CheckpointPublisher.Plan(options, remote, root, Cancel);
            foreach (var m in plan.Members)
                WriteVerbose($"{m.Uri}: {(m.Action == PublishAction.Upload ? $"upload, {m.Chunks} new chunks ({ByteSize.Format(m.Bytes)})" : "already published")}" +
                             (m.LocalPath is null ? " (the base image's pieces)" : $" from '{m.LocalPath}'"));
            long bytesSkipped = plan.Packs.Where(p => p.Exists).Sum(p => p.Length);
            int packsSkipped = plan.Packs.Count(p => p.Exists);
            string what = plan.AlreadyPublished
                ? $"Nothing to upload: already published as {plan.Uri}"
                : $"Upload {plan.Members.Count(m => m.Action == PublishAction.Upload)} indexes and {plan.PacksToUpload} packs " +
                  $"({plan.ChunksToUpload} chunks, {ByteSize.Format(plan.BytesToUpload)}); reuse {packsSkipped} packs already there";
            if (!ShouldProcess(plan.Uri, what))
            {
                WriteObject(new ShuruPublishResult
                {
                    Uri = plan.Uri, IndexPath = index, Destination = root.ToString(), WhatIf = true, AlreadyPublished = plan.AlreadyPublished,
                    IndexesPublished = plan.Members.Count(m => m.Action == PublishAction.Upload), PacksUploaded = plan.PacksToUpload,
                    ChunksUploaded = plan.ChunksToUpload, BytesUploaded = plan.BytesToUpload, PacksSkipped = packsSkipped, BytesSkipped = bytesSkipped,
                    Chain = [.. plan.Members.Select(m => m.Uri)],
                });
                return;
            }
            var r = CheckpointPublisher.Execute(plan, remote, Progress(5), Cancel);
            WriteVerbose($"Published {r.Uri}: {r.PacksUploaded} packs ({r.ChunksUploaded} chunks), {ByteSize.Format(r.BytesUploaded)} uploaded, " +
                         $"{r.PacksReused} packs reused, in {r.Elapsed.TotalSeconds:0.##} s.");
            WriteObject(new ShuruPublishResult
            {
                Uri = r.Uri, IndexPath = index, Destination = root.ToString(), AlreadyPublished = r.AlreadyPublished,
                IndexesPublished = r.IndexesPublished, PacksUploaded = r.PacksUploaded, ChunksUploaded = r.ChunksUploaded,
                BytesUploaded = r.BytesUploaded, PacksSkipped = r.PacksReused, BytesSkipped = bytesSkipped,
                Chain = [.. plan.Members.Select(m => m.Uri)], Duration = r.Elapsed,
            });
        });
    }
}
