# Regenerates the session transcript shown in README.md. After build.ps1 -Task Build, run it from an
# empty folder holding rootfs.ext4 (e.g. a copy of out/serve/sample-rootfs.ext4).
param([string] $Module = (Join-Path $PSScriptRoot "../out/ShuruStore/ShuruStore.psd1"))
Import-Module $Module

# The forks keep their live maps in memory on purpose; their warning would only clutter the page.
$PSDefaultParameterValues['Start-ShuruNbdServer:WarningAction'] = 'SilentlyContinue'
$null = New-Item -ItemType Directory -Force /tmp/review

$cmds = @(
  '$vm = Start-ShuruNbdServer ./rootfs.ext4 ./cas -SocketPath /tmp/vm.sock -StatePath ./vm.state -Name vm'
  '$vm'
  'qemu-io -f raw -c "write -P 0xab 1M 256k" -c flush $vm.Uri'
  '$vm | Save-ShuruCheckpoint ./installed.idx'
  'Stop-ShuruNbdServer vm'
  '$a = Start-ShuruNbdServer -CasPath ./cas -IndexPath ./installed.idx -SocketPath /tmp/a.sock -Name fork-a'
  '$b = Start-ShuruNbdServer -CasPath ./cas -IndexPath ./installed.idx -SocketPath /tmp/b.sock -Name fork-b'
  'qemu-io -f raw -c "write -P 0xaa 2M 128k" $a.Uri | Out-Null; qemu-io -f raw -c "write -P 0xbb 2M 128k" $b.Uri | Out-Null'
  'Get-ShuruNbdServer'
  'Compare-ShuruChunkIndex ($a | Save-ShuruCheckpoint ./a.idx).Path ($b | Save-ShuruCheckpoint ./b.idx).Path'
  'Stop-ShuruNbdServer fork-*'
  'Get-ChildItem *.idx | Get-ShuruChunkIndex | Sort-Object SetHere'
  'Get-ShuruChunkIndex ./a.idx, ./b.idx | Start-ShuruNbdServer -CasPath ./cas -SocketPath /tmp/review/ -ReadOnly'
  'Get-ShuruChunkIndex ./a.idx -Chunk 0,16,32'
  'Get-ShuruChunkStore ./cas | Test-ShuruChunkStore'
  'Get-ShuruNbdServer | Stop-ShuruNbdServer'
)
foreach ($cmd in $cmds) { Write-Host "PS> $cmd"; Invoke-Expression $cmd | Out-Host }
