<#
.SYNOPSIS
    One scale point, second half (a fresh pwsh process): start from the index, read the index.
.DESCRIPTION
    Start-ShuruNbdServer -IndexPath <the checkpoint of write-point.ps1> until nbdinfo answers,
    twice (wall time inside this process: pwsh start-up is not counted; the second start is the
    figure, the first also pays the JIT), the process's VmHWM before
    and after (what holding the disk map costs), then Get-ShuruChunkIndex on the index (median
    of -Reps) and Get-ShuruChunkIndex -AllChunks counted once (every entry through the pipeline). Each
    timed operation also reports this process's CPU time, bytes allocated, gen-2 collections and
    GC pause over it.
    Prints "SCALE <metric> <value> <unit>" lines.
#>
param(
    [Parameter(Mandatory)][string] $WorkDir,
    [int] $Reps = 3,
    [switch] $SkipAllChunks
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')
. (Join-Path $PSScriptRoot measure.ps1)
function Get-Median([double[]] $v) { $s = $v | Sort-Object; $s[[int][math]::Floor(($s.Count - 1) / 2)] }

$cas = Join-Path $WorkDir 'cas'
$index = Join-Path $WorkDir 'disk.idx'
$sock = Join-Path $WorkDir 's.sock'

# Warm the cmdlets once on nothing, so the first timed call is not the JIT of the module.
$null = Get-Command Start-ShuruNbdServer, Get-ShuruChunkIndex
Out-Metric rss-idle2 (Get-HwmMiB) MiB

# Twice: the first start also pays the JIT of the start path (a constant); the second is the figure.
foreach ($name in 'start-first', 'start') {
    $server = Measure-Op $name {
        $s = Start-ShuruNbdServer -CasPath $cas -IndexPath $index -SocketPath $sock -Name start -WarningAction SilentlyContinue
        & nbdinfo --size $s.Uri | Out-Null
        $s
    }
    if ($name -eq 'start-first') { Out-Metric rss-started (Get-HwmMiB) MiB }
    $server | Stop-ShuruNbdServer -Confirm:$false
}

$null = Measure-Op getindex-first { Get-ShuruChunkIndex -LiteralPath $index }
$times = foreach ($i in 1..$Reps) {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $null = Get-ShuruChunkIndex -LiteralPath $index
    $sw.Stop()
    $sw.Elapsed.TotalMilliseconds
}
Out-Metric getindex-ms ([math]::Round((Get-Median $times), 1)) ms
if (-not $SkipAllChunks) {
    $n = Measure-Op getindex-all { (Get-ShuruChunkIndex -LiteralPath $index -AllChunks | Measure-Object).Count }
    Out-Metric getindex-all-entries $n entries
}
Out-Metric rss-final (Get-HwmMiB) MiB
