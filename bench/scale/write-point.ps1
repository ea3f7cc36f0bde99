<#
.SYNOPSIS
    One scale point, first half (its own pwsh process): write, then checkpoint.
.DESCRIPTION
    A chunk-store disk of -DiskGiB over a sparse base (reads as zeros), an empty CAS; nbdcopy
    writes -WrittenGiB of non-repeating random data (nbdkit's random plugin) at offset 0 and
    flushes (its CPU time, and the MiB the machine wrote to the work dir's disk meanwhile); then
    Save-ShuruCheckpoint twice (each with its CPU time, allocation and GC): the first one after the write, the second one
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
. (Join-Path $PSScriptRoot measure.ps1)

# MiB written to the block device under the work dir so far (/proc/diskstats, whole machine).
function Get-DiskWrittenMiB {
    $dev = Split-Path -Leaf ((& df --output=source $WorkDir | Select-Object -Last 1).Trim())
    $line = Get-Content /proc/diskstats | Where-Object { ($_.Trim() -split '\s+')[2] -eq $dev }
    if (-not $line) { return 0 }
    [long](($line.Trim() -split '\s+')[9]) * 512 / 1MB
}

$base = Join-Path $WorkDir 'base.raw'
$cas = Join-Path $WorkDir 'cas'
$index = Join-Path $WorkDir 'disk.idx'
$sock = Join-Path $WorkDir 'w.sock'
$f = [System.IO.File]::Create($base); $f.SetLength([long]$DiskGiB * 1GB); $f.Dispose()

Out-Metric rss-idle (Get-HwmMiB) MiB
$server = Start-ShuruNbdServer -RootfsPath $base -CasPath $cas -SocketPath $sock -Name scale -WarningAction SilentlyContinue
try {
    $p = [System.Diagnostics.Process]::GetCurrentProcess(); $cpu0 = $p.TotalProcessorTime
    $disk0 = Get-DiskWrittenMiB
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    & nbdcopy --flush -- '[' nbdkit random "size=$([long]$WrittenGiB * 1GB)" ']' $server.Uri
    if ($LASTEXITCODE -ne 0) { throw "nbdcopy failed ($LASTEXITCODE)" }
    $sw.Stop(); $p.Refresh()
    Out-Metric write-s ([math]::Round($sw.Elapsed.TotalSeconds, 2)) s
    Out-Metric write-cpu-s ([math]::Round(($p.TotalProcessorTime - $cpu0).TotalSeconds, 2)) s
    Out-Metric write-disk-mib ([math]::Round((Get-DiskWrittenMiB) - $disk0)) MiB
    Out-Metric rss-write (Get-HwmMiB) MiB

    $null = Measure-Op checkpoint-first { $server | Save-ShuruCheckpoint -Path $index }
    $again = Join-Path $WorkDir 'again.idx'
    $null = Measure-Op checkpoint { $server | Save-ShuruCheckpoint -Path $again }
    Out-Metric rss-checkpoint (Get-HwmMiB) MiB
    Out-Metric index-bytes (Get-Item $index).Length B
} finally {
    $server | Stop-ShuruNbdServer -Confirm:$false
}
