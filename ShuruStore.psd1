@{
    RootModule           = 'ShuruStore.dll'
    ModuleVersion        = '0.2.0'
    GUID                 = '5b0f3c1e-8d2a-4c57-9a4e-2f6d1e0b7c93'
    Author               = 'ShuruStore developers'
    CompanyName          = 'ShuruStore'
    Copyright            = '(c) ShuruStore developers. All rights reserved.'
    Description          = 'Serves virtual-machine disks over NBD from a content-addressed, copy-on-write chunk store compatible with shuru-store 0.1.2.'
    # The module is built for .NET 10, the runtime of PowerShell 7.6: on 7.4 (.NET 8) or 7.5
    # (.NET 9) its assembly cannot load, so Import-Module refuses those versions up front.
    PowerShellVersion    = '7.6'
    CompatiblePSEditions = @('Core')
    TypesToProcess       = @('ShuruStore.Types.ps1xml')
    FormatsToProcess     = @('ShuruStore.Format.ps1xml')
    CmdletsToExport      = @(
        'Start-ShuruNbdServer'
        'Get-ShuruNbdServer'
        'Stop-ShuruNbdServer'
        'Wait-ShuruNbdServer'
        'Save-ShuruCheckpoint'
        'Get-ShuruChunkIndex'
        'Compare-ShuruChunkIndex'
        'Get-ShuruChunkStore'
        'Import-ShuruDisk'
        'Export-ShuruDisk'
        'Test-ShuruChunkStore'
        'Remove-ShuruUnusedChunk'
        'Publish-ShuruCheckpoint'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('NBD', 'VM', 'Disk', 'Storage', 'ContentAddressed', 'Linux')
            ReleaseNotes = @'
0.2.0
- Start-ShuruNbdServer: starts one server per checkpoint from the pipeline (strings, Get-ChildItem,
  Get-ShuruChunkIndex), all or none; -SocketPath may be a directory ending in / (<name>.sock in it). Position 0
  is the image in both sets: "disk.raw flat.sock" serves a flat image, "base.raw ./cas -SocketPath s"
  a chunk-store disk. -BaseImagePath (alias -RootfsPath) names the base image; the positional form
  (rootfs, cas, index, socket, size) is gone: name -IndexPath, -SocketPath and -DiskSize.
- New Wait-ShuruNbdServer: waits until servers stop (-Timeout, -Any, -PassThru, Ctrl+C).
- Import-Module ShuruStore -Force keeps running servers; SIGHUP stops them cleanly like SIGTERM.
- Test-ShuruChunkStore returns one result per store (IsHealthy, Problems) and -Quiet a [bool];
  -Summary is gone. Test-ShuruChunkStore and Remove-ShuruUnusedChunk take stores from the pipeline
  (Get-ShuruChunkStore) and -IndexPath wildcards, with -LiteralIndexPath beside them.
- Remove-ShuruUnusedChunk is ConfirmImpact High: it asks unless -Confirm:$false.
- Get-ShuruChunkStore takes servers from the pipeline (flat-image servers are skipped).
- Stop-ShuruNbdServer takes a name by position.
- Every table column is a property or alias property; the server table shows SocketPath.
- One name for the base image: BaseImagePath (aliases RootfsPath, FallbackPath).
- Requires PowerShell 7.6.
- New Publish-ShuruCheckpoint; Start-ShuruNbdServer -IndexPath s3://... boots a published checkpoint
  (-RemoteTimeoutSec, -CacheLimit); Get/Compare-ShuruChunkIndex and Export-ShuruDisk take s3:// indexes;
  Test-ShuruChunkStore and Remove-ShuruUnusedChunk take -CasPath s3://BUCKET/PREFIX.
- One store shared by many processes: servers and imports register in <cas>/leases/; collections in any
  process keep what they use; Get-ShuruChunkStore shows Users, Test-ShuruChunkStore ended registrations.
- shuru data directories: a missing parent is reported, not fatal (-AllowMissingParent to serve it);
  relative paths resolve against the current location first; Save-ShuruCheckpoint creates missing folders.
- Start-ShuruNbdServer -MaxRequestMemory bounds payload memory across all clients.
'@
        }
    }
}
