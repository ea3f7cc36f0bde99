<#
.SYNOPSIS
    Engine-level figures for bench/run-bench.sh (on by default; BENCH_ENGINE=0 skips them).
.DESCRIPTION
    In one pwsh process (Save-ShuruCheckpoint needs the server object):
      1. a chunk-store disk over a sparse base of -SizeGiB, empty CAS; nbdcopy writes -SizeGiB of
         random data into it (nbdkit's random plugin as the source): peak RSS of this process
      2. Save-ShuruCheckpoint of that full disk: wall time
      3. stop; Start-ShuruNbdServer -IndexPath <that index> until it serves: wall time
    Prints one line per figure: "ENGINE <workload> <value> <unit> <detail>".
#>
param(
    [Parameter(Mandatory)][string] $WorkDir,
    [int] $SizeGiB = 4
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../out/ShuruStore/ShuruStore.psd1')
$size = [long]$SizeGiB * 1GB
$base = Join-Path $WorkDir 'engine-base.raw'
$cas = Join-Path $WorkDir 'engine-cas'
$index = Join-Path $WorkDir 'engine.idx'
$sock = Join-Path $WorkDir 'engine.sock'
Remove-Item -Recurse -Force $cas, $index -ErrorAction SilentlyContinue
$f = [System.IO.File]::Create($base); $f.SetLength($size); $f.Dispose()   # sparse: reads as zeros

$proc = [System.Diagnostics.Process]::GetCurrentProcess()
$server = Start-ShuruNbdServer -RootfsPath $base -CasPath $cas -SocketPath $sock -Name engine
try {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    & nbdcopy --flush -- '[' nbdkit random "size=$size" ']' $server.Uri
    if ($LASTEXITCODE -ne 0) { throw "nbdcopy failed ($LASTEXITCODE)" }
    $sw.Stop()
    $proc.Refresh()
    "ENGINE engine-rss-write-${SizeGiB}g $([math]::Round($proc.PeakWorkingSet64 / 1MB)) MiB write=$([math]::Round($sw.Elapsed.TotalSeconds, 1))s"

    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $null = $server | Save-ShuruCheckpoint -Path $index
    $sw.Stop()
    "ENGINE engine-checkpoint-${SizeGiB}g $([math]::Round($sw.Elapsed.TotalMilliseconds, 1)) ms"
} finally {
    $server | Stop-ShuruNbdServer -Confirm:$false
}

$sw = [System.Diagnostics.Stopwatch]::StartNew()
$server = Start-ShuruNbdServer -CasPath $cas -IndexPath $index -SocketPath $sock -Name engine2
& nbdinfo --size $server.Uri | Out-Null
$sw.Stop()
"ENGINE engine-start-${SizeGiB}g $([math]::Round($sw.Elapsed.TotalMilliseconds, 1)) ms until nbdinfo answers"
$server | Stop-ShuruNbdServer -Confirm:$false
Remove-Item -Recurse -Force $cas, $index, $base -ErrorAction SilentlyContinue
