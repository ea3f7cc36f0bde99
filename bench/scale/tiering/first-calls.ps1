# Get-ShuruChunkIndex twice in a fresh process: wall and CPU of each call (bench/scale/tiering/run.sh).
param($Idx)
Import-Module (Join-Path $PSScriptRoot '../../../out/ShuruStore/ShuruStore.psd1')
$p = [System.Diagnostics.Process]::GetCurrentProcess()
foreach ($i in 1..2) {
  $p.Refresh(); $c0 = $p.TotalProcessorTime; $sw = [Diagnostics.Stopwatch]::StartNew()
  $null = Get-ShuruChunkIndex -LiteralPath $Idx
  $sw.Stop(); $p.Refresh()
  "call $i wall {0:F0} ms cpu {1:F0} ms" -f $sw.Elapsed.TotalMilliseconds, ($p.TotalProcessorTime - $c0).TotalMilliseconds
}
