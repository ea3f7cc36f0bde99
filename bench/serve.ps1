<#
.SYNOPSIS
    Serves one disk with the staged ShuruStore module until the process is terminated
    (SIGTERM or Ctrl+C), for scripts that drive ShuruStore from bash (benchmarks, crash tests).
.DESCRIPTION
    Prints "READY <uri>" once the socket accepts clients. On SIGTERM (sent to the pwsh process
    or its process group) the module's signal hook stops the server cleanly (flush, remove socket).
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath /tmp/s.sock -ImagePath disk.raw
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath /tmp/s.sock -RootfsPath base.raw -CasPath /tmp/cas
#>
param(
    [Parameter(Mandatory)][string] $SocketPath,
    [string] $ImagePath,
    [string] $RootfsPath,
    [string] $CasPath,
    [string] $IndexPath,
    [string] $StatePath,
    [long] $DiskSize,
    [long] $DirtyMemoryLimit,
    [switch] $ReadOnly
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../out/ShuruStore/ShuruStore.psd1')
$p = @{ SocketPath = $SocketPath; ReadOnly = $ReadOnly }
if ($ImagePath) { $p.ImagePath = $ImagePath }
else {
    $p.CasPath = $CasPath
    if ($RootfsPath) { $p.BaseImagePath = $RootfsPath }
    if ($IndexPath) { $p.IndexPath = $IndexPath }
    if ($StatePath) { $p.StatePath = $StatePath }
    if ($DiskSize) { $p.DiskSize = $DiskSize }
    if ($DirtyMemoryLimit) { $p.DirtyMemoryLimit = $DirtyMemoryLimit }
}
$server = Start-ShuruNbdServer @p
[Console]::Out.WriteLine("READY $($server.Uri)")
[Console]::Out.Flush()
try {
    # The process's one rehearsal of the request paths (ProcessWarmUp): reported once, for the
    # logs; it takes a second or two and ends even when it is turned off.
    $r = [ShuruStore.Core.Hosting.ProcessWarmUp]::Completion.GetAwaiter().GetResult()
    [Console]::Out.WriteLine("WARMUP completed=$($r.Completed) rounds=$($r.Rounds) ms=$([int]$r.Elapsed.TotalMilliseconds) $($r.Problem)")
    [Console]::Out.Flush()
    $server | Wait-ShuruNbdServer
} finally {
    $server | Stop-ShuruNbdServer -Confirm:$false
}
