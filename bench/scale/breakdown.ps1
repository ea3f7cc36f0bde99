<#
.SYNOPSIS
    Where the per-chunk costs of an index go: the engine steps behind start-from-index,
    Save-ShuruCheckpoint and Get-ShuruChunkIndex, timed one by one on indexes of 1-64 GiB disks.
.DESCRIPTION
    For each -DiskGiB, an index of that disk with -WrittenGiB of distinct hashes at its start (the
    rest ZERO, fallback = a sparse base of the disk's size), written with the engine's own
    ChunkIndexFile.Save. Then, -Reps times each, with this process's CPU time and bytes allocated:
      parse        ChunkIndexFile.Load (read + validate every entry)
      fingerprint  File.ReadAllBytes + ChunkHasher.Hash of the whole index (what CowDisk.Open does
                   to fingerprint the booted index)
      livecopy     new ChunkHash?[count] + Array.Copy of the entries (CowDisk.Open's live map)
      clone        ChunkHash?[].Clone() (the checkpoint's SnapshotLive)
      save         ChunkIndexFile.Save (serialize, fsync, rename, directory fsync)
      summarize    IndexChainView.Open + Summarize (what Get-ShuruChunkIndex does without -AllChunks)
    Prints "BREAK <step> <disk GiB> <wall ms> <cpu ms> <alloc MiB> <entries>" (medians).
    Engine types are public; nothing here changes the engine.
#>
param(
    [Parameter(Mandatory)][string] $WorkDir,
    [int[]] $DiskGiB = @(1, 4, 16, 64),
    [int] $WrittenGiB = 1,
    [int] $Reps = 5
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')
$null = New-Item -ItemType Directory -Force -Path $WorkDir
$proc = [System.Diagnostics.Process]::GetCurrentProcess()
# Engine types by name after the import (a type literal would be resolved before the module loads).
# The engine assembly loads on first use; loading it from the module folder now puts it in the
# default load context, where the module's own reference finds it.
$core = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.Core.dll'))
$IndexFile = $core.GetType('ShuruStore.Core.Storage.ChunkIndexFile', $true)
$Hash = $core.GetType('ShuruStore.Core.Storage.ChunkHash', $true)
$Hasher = $core.GetType('ShuruStore.Core.Storage.ChunkHasher', $true)
$ChainView = $core.GetType('ShuruStore.Core.Storage.IndexChainView', $true)
$EntryArray = [System.Nullable`1].MakeGenericType($Hash).MakeArrayType()

function Measure-Step([string] $Step, [int] $Disk, [long] $Entries, [scriptblock] $Op) {
    $rows = foreach ($i in 1..$Reps) {
        [GC]::Collect(); [GC]::WaitForPendingFinalizers()
        $proc.Refresh(); $cpu0 = $proc.TotalProcessorTime; $a0 = [GC]::GetTotalAllocatedBytes($true)
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $null = & $Op
        $sw.Stop(); $proc.Refresh()
        [pscustomobject]@{ Wall = $sw.Elapsed.TotalMilliseconds; Cpu = ($proc.TotalProcessorTime - $cpu0).TotalMilliseconds
            Alloc = ([GC]::GetTotalAllocatedBytes($true) - $a0) / 1MB }
    }
    $m = { param($v) $s = @($v | Sort-Object); $s[[int][math]::Floor(($s.Count - 1) / 2)] }
    [Console]::Out.WriteLine(('BREAK {0} {1} {2:F1} {3:F1} {4:F1} {5}' -f $Step, $Disk,
        (& $m $rows.Wall), (& $m $rows.Cpu), (& $m $rows.Alloc), $Entries))
}

$rng = [System.Random]::new(42)
foreach ($d in $DiskGiB) {
    $size = [long]$d * 1GB
    $base = Join-Path $WorkDir "base-$d.raw"
    $f = [System.IO.File]::Create($base); $f.SetLength($size); $f.Dispose()
    $count = $IndexFile::ChunkCountFor($size)
    $entries = [Activator]::CreateInstance($EntryArray, [int]$count)
    $raw = [byte[]]::new(32)
    $written = [math]::Min($count, [long]$WrittenGiB * 1GB / 64KB)
    for ($i = 0; $i -lt $written; $i++) { $rng.NextBytes($raw); $entries[$i] = $Hash::FromBytes($raw) }
    $index = Join-Path $WorkDir "disk-$d.idx"
    $IndexFile::new($size, $null, $base, $entries).Save($index)
    $loaded = $IndexFile::Load($index)

    Measure-Step parse $d $count { $IndexFile::Load($index) }
    Measure-Step fingerprint $d $count { $Hasher::Hash([System.IO.File]::ReadAllBytes($index)) }
    Measure-Step livecopy $d $count {
        $live = [Activator]::CreateInstance($EntryArray, [int]$count)
        [array]::Copy($loaded.Entries, $live, $loaded.Entries.Length)
    }
    Measure-Step clone $d $count { $copy = $loaded.Entries.Clone() }   # assigned: output would be enumerated
    Measure-Step save $d $count { $loaded.Save((Join-Path $WorkDir "copy-$d.idx")) }
    Measure-Step summarize $d $count { $ChainView::Open($index, $null).Summarize() }
    Remove-Item -Force $base, $index, (Join-Path $WorkDir "copy-$d.idx")
}
