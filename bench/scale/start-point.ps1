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

function Get-HwmMiB { [math]::Round(((Get-Content /proc/self/status | Where-Object { $_ -like 'VmHWM:*' }) -split '\s+')[1] / 1024) }
function Out-Metric([string] $Name, $Value, [string] $Unit) { [Console]::Out.WriteLine("SCALE $Name $Value $Unit") }
# Minor page faults and kernel CPU time of this process so far (/proc/self/stat fields 10 and 15).
function Get-SelfStat {
    $f = (Get-Content /proc/self/stat -Raw) -replace '^.*\) ', ''
    $v = $f -split ' '
    [pscustomobject]@{ MinFlt = [long]$v[7]; SysMs = [long]$v[12] * 1000 / 100 }
}

# CPU time (and its kernel part), minor page faults, bytes allocated, gen-2 collections and GC
# pause of this process around one timed
# operation, beside its wall time: the physical account of where a cost comes from.
function Measure-Op([string] $Name, [scriptblock] $Op) {
    $p = [System.Diagnostics.Process]::GetCurrentProcess()
    $st0 = Get-SelfStat
    $cpu0 = $p.TotalProcessorTime; $a0 = [GC]::GetTotalAllocatedBytes($true)
    $g0 = [GC]::CollectionCount(2); $pause0 = [GC]::GetTotalPauseDuration()
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $result = & $Op
    $sw.Stop()
    $p.Refresh()
    Out-Metric "$Name-ms" ([math]::Round($sw.Elapsed.TotalMilliseconds, 1)) ms
    Out-Metric "$Name-cpu-ms" ([math]::Round(($p.TotalProcessorTime - $cpu0).TotalMilliseconds, 1)) ms
    Out-Metric "$Name-alloc-mib" ([math]::Round(([GC]::GetTotalAllocatedBytes($true) - $a0) / 1MB, 1)) MiB
    Out-Metric "$Name-gc2" ([GC]::CollectionCount(2) - $g0) count
    Out-Metric "$Name-gcpause-ms" ([math]::Round(([GC]::GetTotalPauseDuration() - $pause0).TotalMilliseconds, 1)) ms
    $st1 = Get-SelfStat
    Out-Metric "$Name-minflt" ($st1.MinFlt - $st0.MinFlt) count
    Out-Metric "$Name-sys-ms" ($st1.SysMs - $st0.SysMs) ms
    $result
}
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
