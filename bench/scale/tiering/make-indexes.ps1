# Indexes of a 16 and a 64 GiB disk with 1 GiB (16384 chunks) of distinct hashes, the rest ZERO,
# over sparse bases: the inputs of first-calls.ps1 (bench/scale/tiering/run.sh).
param($Dir)
Import-Module (Join-Path $PSScriptRoot '../../../out/ShuruStore/ShuruStore.psd1')
$core = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot '../../../out/ShuruStore/ShuruStore.Core.dll'))
$IF = $core.GetType('ShuruStore.Core.Storage.ChunkIndexFile', $true); $H = $core.GetType('ShuruStore.Core.Storage.ChunkHash', $true)
$EA = [System.Nullable`1].MakeGenericType($H).MakeArrayType()
$rng = [System.Random]::new(1); $raw = [byte[]]::new(32)
foreach ($d in 16, 64) {
  $size = [long]$d * 1GB; $base = "$Dir/base-$d.raw"; $f = [System.IO.File]::Create($base); $f.SetLength($size); $f.Dispose()
  $n = $IF::ChunkCountFor($size); $e = [Activator]::CreateInstance($EA, [int]$n)
  for ($i = 0; $i -lt 16384; $i++) { $rng.NextBytes($raw); $e[$i] = $H::FromBytes($raw) }
  $IF::new($size, $null, $base, $e).Save("$Dir/disk-$d.idx")
}
