# Regenerates the session transcript shown in README.md. After build.ps1 -Task Build, run it from an
# empty folder holding rootfs.ext4 (e.g. a copy of out/serve/sample-rootfs.ext4).
param([string] $Module = (Join-Path $PSScriptRoot "../out/ShuruStore/ShuruStore.psd1"))
Import-Module $Module

$cmds = @(
  '$vm = Start-ShuruNbdServer -RootfsPath ./rootfs.ext4 -CasPath ./cas -SocketPath /tmp/vm.sock -StatePath ./vm.state -Name vm'
  '$vm'
  'qemu-io -f raw -c "write -P 0xab 1M 256k" -c flush $vm.Uri'
  '$vm | Save-ShuruCheckpoint ./installed.idx'
  '$vm | Stop-ShuruNbdServer'
  '$a = Start-ShuruNbdServer -CasPath ./cas -IndexPath ./installed.idx -SocketPath /tmp/a.sock -Name fork-a'
  '$b = Start-ShuruNbdServer -CasPath ./cas -IndexPath ./installed.idx -SocketPath /tmp/b.sock -Name fork-b'
  'qemu-io -f raw -c "write -P 0xaa 2M 128k" $a.Uri | Out-Null; qemu-io -f raw -c "write -P 0xbb 2M 128k" $b.Uri | Out-Null'
  'Get-ShuruNbdServer'
  'Compare-ShuruChunkIndex ($a | Save-ShuruCheckpoint ./a.idx).Path ($b | Save-ShuruCheckpoint ./b.idx).Path'
  'Get-ChildItem *.idx | Get-ShuruChunkIndex'
  'Get-ShuruChunkIndex ./a.idx -Chunk 0,16,32'
  'Get-ShuruChunkStore ./cas'
  'Get-ShuruNbdServer | Stop-ShuruNbdServer'
)
foreach ($cmd in $cmds) { Write-Host "PS> $cmd"; Invoke-Expression $cmd | Out-Host }
