# Files must open both ways between ShuruStore and shuru-store 0.1.2. tests/interop/shuru_model.py
# is an independent model of shuru's files, written from the compatibility spec, with b3sum for
# chunk names: it plays shuru's part. ShuruDataDirectory.Tests.ps1 runs every cmdlet on a data
# directory the model writes through shuru's own flow, and asserts each deliberate difference.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Model = Join-Path $RepoRoot 'tests/interop/shuru_model.py'
    # 16 MiB + 1000 bytes: the last chunk is short, as in real rootfs images.
    $script:Image = New-Ext4Image -Path (Join-Path $Dir 'rootfs.ext4') -SizeMiB 16
    $fs = [System.IO.File]::OpenWrite($Image); $fs.SetLength(16MB + 1000); $fs.Position = 16MB
    $tail = [byte[]]::new(1000); [System.Random]::new(3).NextBytes($tail); $fs.Write($tail, 0, 1000); $fs.Dispose()
    $script:Cas = Join-Path $Dir 'cas'
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'shuru-written files in ShuruStore' {
    It 'boots an index and chunks written the way shuru writes them, and reads back the same bytes' {
        $idx = Join-Path $Dir 'shuru.idx'
        Invoke-Client /usr/bin/python3 $Model write $Image $Cas $idx | Out-Null
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $idx -SocketPath (Join-Path $Dir 'a.sock') -ReadOnly
        try {
            $s.DiskSize | Should -Be (16MB + 1000)
            Invoke-Client qemu-img compare -f raw -F raw $Image $s.Uri | Should -Match 'identical'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }
}

Describe 'ShuruStore-written files in shuru' {
    It 'a checkpoint and its chunks read back in the shuru model exactly as the server serves them' {
        $s = Start-ShuruNbdServer -RootfsPath $Image -CasPath $Cas -SocketPath (Join-Path $Dir 'b.sock')
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x5c 100k 300k', 'write -z 2M 128k', 'discard 4M 64k', 'write -P 0x77 16M 1000', 'flush' | Out-Null
            $cp = ($s | Save-ShuruCheckpoint (Join-Path $Dir 'ours.idx')).Path
            $served = Join-Path $Dir 'served.img'
            Invoke-Client nbdcopy $s.Uri $served | Out-Null
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        $modelOut = Join-Path $Dir 'model.img'
        Invoke-Client /usr/bin/python3 $Model read $cp $Cas $modelOut | Out-Null
        Invoke-Client qemu-img compare -f raw -F raw $served $modelOut | Should -Match 'identical'
        # Every chunk file is named by the BLAKE3 of its content (checked with b3sum).
        foreach ($f in Get-ChildItem (Join-Path $Cas 'chunks') -File | Select-Object -First 40) {
            (Invoke-Client b3sum --no-names $f.FullName).Trim() | Should -Be $f.Name
        }
    }

    It 'a chain of two checkpoints reads back through parents in the shuru model' {
        $first = Join-Path $Dir 'ours.idx'
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $first -SocketPath (Join-Path $Dir 'c.sock')
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x31 8M 64k', 'flush' | Out-Null
            $second = ($s | Save-ShuruCheckpoint (Join-Path $Dir 'second.idx')).Path
            $served = Join-Path $Dir 'served2.img'
            Invoke-Client nbdcopy $s.Uri $served | Out-Null
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        (Get-ShuruChunkIndex $second).ParentPath | Should -Be $first
        $modelOut = Join-Path $Dir 'model2.img'
        Invoke-Client /usr/bin/python3 $Model read $second $Cas $modelOut | Out-Null
        Invoke-Client qemu-img compare -f raw -F raw $served $modelOut | Should -Match 'identical'
    }
}
