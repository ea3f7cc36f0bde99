<#
.SYNOPSIS
    One scale point, first half (its own pwsh process): write, then checkpoint.
.DESCRIPTION
    A chunk-store disk of -DiskGiB over a sparse base (reads as zeros), an empty CAS; nbdcopy
    writes -WrittenGiB of non-repeating random data (nbdkit's random plugin) at offset 0 and
    flushes; then Save-ShuruCheckpoint twice: the first one after the write, the second one
    with nothing new (the cost of describing the disk alone). Peak RSS is this process's
    VmHWM (/proc/self/status): the server runs in this process. The server is stopped at the end.
    Prints "SCALE <metric> <value> <unit>" lines; bench/scale/run-scale.sh collects them.
#>
param(
    [Parameter(Mandatory)][string] $WorkDir,
    [Parameter(Mandatory)][int] $DiskGiB,
    [Parameter(Mandatory)][int] $WrittenGiB
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')

function Get-HwmMiB { [math]::Round(((Get-Content /proc/self/status | Where-Object { $_ -like 'VmHWM:*' }) -split '\s+')[1] / 1024) }
function Out-Metric([string] $Name, $Value, [string] $Unit) { [Console]::Out.WriteLine("SCALE $Name $Value $Unit") }

$base = Join-Path $WorkDir 'base.raw'
$cas = Join-Path $WorkDir 'cas'
$index = Join-Path $WorkDir 'disk.idx'
$sock = Join-Path $WorkDir 'w.sock'
$f = [System.IO.File]::Create($base); $f.SetLength([long]$DiskGiB * 1GB); $f.Dispose()

Out-Metric rss-idle (Get-HwmMiB) MiB
$server = Start-ShuruNbdServer -RootfsPath $base -CasPath $cas -SocketPath $sock -Name scale -WarningAction SilentlyContinue
try {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    & nbdcopy --flush -- '[' nbdkit random "size=$([long]$WrittenGiB * 1GB)" ']' $server.Uri
    if ($LASTEXITCODE -ne 0) { throw "nbdcopy failed ($LASTEXITCODE)" }
    $sw.Stop()
    Out-Metric write-s ([math]::Round($sw.Elapsed.TotalSeconds, 2)) s
    Out-Metric rss-write (Get-HwmMiB) MiB

    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $null = $server | Save-ShuruCheckpoint -Path $index
    $sw.Stop()
    Out-Metric checkpoint-first-ms ([math]::Round($sw.Elapsed.TotalMilliseconds, 1)) ms
    $again = Join-Path $WorkDir 'again.idx'
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $null = $server | Save-ShuruCheckpoint -Path $again
    $sw.Stop()
    Out-Metric checkpoint-ms ([math]::Round($sw.Elapsed.TotalMilliseconds, 1)) ms
    Out-Metric rss-checkpoint (Get-HwmMiB) MiB
    Out-Metric index-bytes (Get-Item $index).Length B
} finally {
    $server | Stop-ShuruNbdServer -Confirm:$false
}
