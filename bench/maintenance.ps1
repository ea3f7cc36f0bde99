# Throughput of the store-maintenance cmdlets on a random image and an (almost empty) ext4 image.
# After ./build.ps1: dotnet pwsh -NoProfile -File bench/maintenance.ps1 [-SizeMiB 256] [-Dir /tmp/x]
param([string] $Dir = '/tmp/shuru-bench-maint', [int] $SizeMiB = 256)
Import-Module (Join-Path $PSScriptRoot '../out/ShuruStore/ShuruStore.psd1') -Force
$d = $Dir; Remove-Item -Recurse -Force $d -ErrorAction SilentlyContinue; New-Item -ItemType Directory $d | Out-Null
& dd if=/dev/urandom of=$d/rand.raw bs=1M count=$SizeMiB status=none
& sync
$i = Measure-Command { $script:ri = Import-ShuruDisk -Path $d/rand.raw -CasPath $d/cas -IndexPath $d/rand.idx }
"import random $SizeMiB MiB: {0:0.00}s = {1:0} MiB/s  new={2}" -f $i.TotalSeconds, ($SizeMiB / $i.TotalSeconds), $ri.ChunksNew
$i2 = Measure-Command { $script:ri2 = Import-ShuruDisk -Path $d/rand.raw -CasPath $d/cas -IndexPath $d/rand2.idx }
"re-import (all present): {0:0.00}s = {1:0} MiB/s" -f $i2.TotalSeconds, ($SizeMiB / $i2.TotalSeconds)
$e = Measure-Command { $script:re = Export-ShuruDisk -IndexPath $d/rand.idx -CasPath $d/cas -Destination $d/rand.out }
"export random $SizeMiB MiB: {0:0.00}s = {1:0} MiB/s" -f $e.TotalSeconds, ($SizeMiB / $e.TotalSeconds)
& cmp $d/rand.raw $d/rand.out; "cmp exit $LASTEXITCODE"
$t = Measure-Command { $script:p = Test-ShuruChunkStore -CasPath $d/cas }
"verify $SizeMiB MiB: {0:0.00}s = {1:0} MiB/s healthy={2}" -f $t.TotalSeconds, ($SizeMiB / $t.TotalSeconds), $p.IsHealthy
Remove-Item $d/rand2.idx
$gt = Measure-Command { $script:g = Remove-ShuruUnusedChunk -CasPath $d/cas -IndexPath $d/rand.idx -GracePeriod 0 -Confirm:$false }
"gc, all kept: {0:0.00}s" -f $gt.TotalSeconds
Remove-Item $d/rand.idx
$gt = Measure-Command { $script:g = Remove-ShuruUnusedChunk -CasPath $d/cas -GracePeriod 0 -Force -Confirm:$false }
"gc, all removed: {0:0.00}s removed={1}" -f $gt.TotalSeconds, $script:g.ChunksRemoved
& truncate -s "${SizeMiB}M" $d/ext4.img; & mkfs.ext4 -F -q -b 4096 $d/ext4.img
$i = Measure-Command { $script:ri = Import-ShuruDisk -Path $d/ext4.img -CasPath $d/cas -IndexPath $d/ext4.idx }
"import ext4 $SizeMiB MiB: {0:0.00}s = {1:0} MiB/s  new={2} zero={3}" -f $i.TotalSeconds, ($SizeMiB / $i.TotalSeconds), $ri.ChunksNew, $ri.ChunksZero
$e = Measure-Command { $script:re = Export-ShuruDisk -IndexPath $d/ext4.idx -CasPath $d/cas -Destination $d/ext4.out }
"export ext4 $SizeMiB MiB: {0:0.00}s = {1:0} MiB/s  allocated={2}" -f $e.TotalSeconds, ($SizeMiB / $e.TotalSeconds), (& du -h $d/ext4.out)
Remove-Item -Recurse -Force $d
