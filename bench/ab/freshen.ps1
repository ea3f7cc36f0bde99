# Cost of renewing the age of reused chunks (shared stores): re-import an image whose chunks all exist,
# once with every chunk 2 hours old (each one freshened) and once with fresh chunks (none is).
param([string] $Image = '/var/tmp/sr/img.raw', [string] $Work = '/var/tmp/sr')
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')
$img = $Image; $cas = Join-Path $Work 'fr-cas'; Remove-Item -Recurse -Force $cas -ErrorAction SilentlyContinue
$t = Measure-Command { Import-ShuruDisk -Path $img -CasPath $cas -IndexPath (Join-Path $Work 'fr0.idx') -Force | Out-Null }
"first import (creates): {0:N0} ms" -f $t.TotalMilliseconds
foreach ($i in 1..3) {
  & find "$cas/chunks" -type f -exec touch -d '2 hours ago' '{}' +
  & sync
  $old = Measure-Command { Import-ShuruDisk -Path $img -CasPath $cas -IndexPath (Join-Path $Work 'fr1.idx') -Force | Out-Null }
  $fresh = Measure-Command { Import-ShuruDisk -Path $img -CasPath $cas -IndexPath (Join-Path $Work 'fr2.idx') -Force | Out-Null }
  "re-import, every chunk 2 h old (freshened): {0:N0} ms; re-import, chunks fresh: {1:N0} ms" -f $old.TotalMilliseconds, $fresh.TotalMilliseconds
}
$n = (Get-ChildItem "$cas/chunks" -File | Where-Object LastWriteTime -gt (Get-Date).AddMinutes(-5)).Count
"chunk files freshened: $n"
