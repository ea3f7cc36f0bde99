# What the scale points measure about their own process, dot-sourced by start-point.ps1 and
# write-point.ps1: peak RSS, metric lines for run-scale.sh, and the physical account of one operation.

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
