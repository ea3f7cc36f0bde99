# The chunk-store scenarios users script: set up a VM disk from a base image, write to it,
# checkpoint, restart from the checkpoint, fork, explore and compare indexes.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Base = New-Ext4Image -Path (Join-Path $Dir 'base.ext4') -SizeMiB 16
    $script:Cas = Join-Path $Dir 'cas'
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'A VM disk from a base image' {
    It 'serves the base image lazily, byte for byte' {
        $s = Start-ShuruNbdServer -RootfsPath $Base -CasPath $Cas -SocketPath (Join-Path $Dir 'lazy.sock') -Name lazy
        try {
            $s.Mode | Should -Be 'ChunkStore'
            $s.DiskSize | Should -Be 16MB
            $s.BootIndexPath | Should -BeNullOrEmpty
            Invoke-Client qemu-img compare -f raw -F raw $Base $s.Uri | Should -Match 'identical'
            # Lazy ingestion stores the non-zero pieces as chunks named by their BLAKE3. It runs in
            # the background (reads never wait for it), so give it a moment to land.
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            do {
                $chunks = @(Get-ChildItem (Join-Path $Cas 'chunks') -File -ErrorAction SilentlyContinue | Where-Object Name -NotLike '.*')
                if ($chunks.Count -gt 0) { break }
                Start-Sleep -Milliseconds 100
            } while ([DateTime]::UtcNow -lt $deadline)
            $chunks.Count | Should -BeGreaterThan 0
            $sample = $chunks | Select-Object -First 1
            (Invoke-Client b3sum --no-names $sample.FullName).Trim() | Should -Be $sample.Name
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'writes, checkpoints, restarts from the checkpoint and reads the writes back' {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'w.sock') -Name writer
        Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0xab 1M 256k', 'write -z 4M 64k', 'flush' | Out-Null
        $cp = $s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'cp1.idx')
        $s | Stop-ShuruNbdServer -Confirm:$false

        $cp | Should -BeOfType ShuruStore.Commands.ShuruChunkIndex
        $cp.DiskSize | Should -Be 16MB
        $cp.FallbackPath | Should -Be $Base
        $cp.ParentPath | Should -BeNullOrEmpty

        $r = Start-ShuruNbdServer -CasPath $Cas -IndexPath $cp.Path -SocketPath (Join-Path $Dir 'r.sock') -Name restarted
        try {
            $r.BootIndexPath | Should -Be $cp.Path
            Invoke-QemuIo -Uri $r.Uri -Commands 'read -P 0xab 1M 256k', 'read -P 0 4M 64k' | Should -Match 'read 262144/262144'
            # What was not written still reads as the base image.
            $cmp = & qemu-img compare -f raw -F raw $Base $r.Uri 2>&1 | Out-String
            $cmp | Should -Match 'mismatch at offset 1048576'
        } finally { $r | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'warns that a writable disk without -StatePath keeps its live map in memory only' {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'warn.sock') -Name warned -WarningVariable w -WarningAction SilentlyContinue
        $s | Stop-ShuruNbdServer -Confirm:$false
        $w | Should -HaveCount 1
        "$w" | Should -Match 'StatePath'
        $t = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'warn.sock') -StatePath (Join-Path $Dir 'warn.state') -WarningVariable w2 -WarningAction SilentlyContinue
        $t | Stop-ShuruNbdServer -Confirm:$false
        $w2 | Should -HaveCount 0
    }

    It 'grows the disk with -DiskSize 32MB and never shrinks it' {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'g.sock') -DiskSize 32MB -Name grown
        $s.DiskSize | Should -Be 32MB
        $s | Stop-ShuruNbdServer -Confirm:$false
        $t = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'g.sock') -DiskSize 1MB -Name notshrunk
        $t.DiskSize | Should -Be 16MB
        $t | Stop-ShuruNbdServer -Confirm:$false
    }
}

Describe 'Forks of one checkpoint' {
    BeforeAll {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'f0.sock') -Name forkbase
        Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x22 0 64k', 'flush' | Out-Null
        $script:Root = ($s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'root.idx')).Path
        $s | Stop-ShuruNbdServer -Confirm:$false
    }

    It 'diverge independently and name the right parent' {
        $a = Start-ShuruNbdServer -CasPath $Cas -IndexPath $Root -SocketPath (Join-Path $Dir 'fa.sock') -Name fork-a
        $b = Start-ShuruNbdServer -CasPath $Cas -IndexPath $Root -SocketPath (Join-Path $Dir 'fb.sock') -Name fork-b
        try {
            Invoke-QemuIo -Uri $a.Uri -Commands 'write -P 0xaa 2M 128k' | Out-Null
            Invoke-QemuIo -Uri $b.Uri -Commands 'write -P 0xbb 2M 128k' | Out-Null
            Invoke-QemuIo -Uri $a.Uri -Commands 'read -P 0xaa 2M 128k', 'read -P 0x22 0 64k' | Out-Null
            Invoke-QemuIo -Uri $b.Uri -Commands 'read -P 0xbb 2M 128k', 'read -P 0x22 0 64k' | Out-Null
            $ca = $a | Save-ShuruCheckpoint (Join-Path $Dir 'fork-a.idx')
            $cb = $b | Save-ShuruCheckpoint (Join-Path $Dir 'fork-b.idx')
            $ca.ParentPath | Should -Be $Root
            $cb.ParentPath | Should -Be $Root
            # A second checkpoint in one session names the same parent (the booted index).
            Invoke-QemuIo -Uri $a.Uri -Commands 'write -P 0xa2 3M 64k' | Out-Null
            ($a | Save-ShuruCheckpoint (Join-Path $Dir 'fork-a2.idx')).ParentPath | Should -Be $Root
            $a.Checkpoints.Count | Should -Be 2
        } finally { $a, $b | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'compare as byte ranges with totals' {
        $ranges = Compare-ShuruChunkIndex -ReferencePath (Join-Path $Dir 'fork-a.idx') -DifferencePath (Join-Path $Dir 'fork-b.idx')
        $ranges | Should -HaveCount 1
        $ranges[0].Offset | Should -Be 2MB
        $ranges[0].Length | Should -Be 128KB
        $ranges[0].ChunkCount | Should -Be 2
        $sum = Compare-ShuruChunkIndex (Join-Path $Dir 'fork-a.idx') (Join-Path $Dir 'fork-a2.idx') -Summary
        $sum.DifferentChunks | Should -Be 1
        $sum.DifferentBytes | Should -Be 64KB
        $sum.RangeCount | Should -Be 1
    }

    It 'explore an index: counts, chain and the layer that provides each chunk' {
        $idx = Get-ChildItem (Join-Path $Dir 'fork-a.idx') | Get-ShuruChunkIndex
        $idx.ChunkCount | Should -Be 256
        $idx.Chain | Should -Be @((Join-Path $Dir 'fork-a.idx'), $Root)
        $idx.ChunksSetHere + $idx.ChunksInherited + $idx.ChunksUnset | Should -Be 256
        $entries = Get-ShuruChunkIndex (Join-Path $Dir 'fork-a.idx') -Chunk 0, 32, 33
        $entries | Should -HaveCount 3
        $entries[0].Offset | Should -Be 0
        $entries[1].Offset | Should -Be 2MB
        $entries[1].Layer | Should -Be 'Index'
        $entries[1].Hash | Should -Match '^[0-9a-f]{64}$'
        Test-Path (Join-Path $Cas "chunks/$($entries[1].Hash)") | Should -BeTrue
    }

    It 'refuses to overwrite the booted index or its chain' {
        $c = Start-ShuruNbdServer -CasPath $Cas -IndexPath (Join-Path $Dir 'fork-a.idx') -SocketPath (Join-Path $Dir 'fc.sock') -Name fork-c
        try {
            $before = Get-FileHash $Root
            $c | Save-ShuruCheckpoint -Path $Root -Force -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Match '^CheckpointOverwritesChain'
            (Get-FileHash $Root).Hash | Should -Be $before.Hash
            $c | Save-ShuruCheckpoint -Path (Join-Path $Dir 'fork-a.idx') -Force -ErrorAction SilentlyContinue -ErrorVariable err2
            $err2[0].FullyQualifiedErrorId | Should -Match '^CheckpointOverwritesChain'
            # Without -Force an existing file is never replaced.
            $c | Save-ShuruCheckpoint -Path (Join-Path $Dir 'fork-b.idx') -ErrorAction SilentlyContinue -ErrorVariable err3
            $err3[0].FullyQualifiedErrorId | Should -Match '^CheckpointExists'
        } finally { $c | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'Get-ShuruChunkStore reports the store' {
        $store = Get-ShuruChunkStore -CasPath $Cas
        $store.ChunkCount | Should -Be @(Get-ChildItem (Join-Path $Cas 'chunks') -File | Where-Object Name -Match '^[0-9a-f]{64}$').Count
        $store.TotalBytes | Should -BeGreaterThan 0
        $store.HasZeroChunk | Should -BeTrue
    }
}

Describe 'Live state (-StatePath)' {
    It 'resumes the live disk after the server stops without a checkpoint' {
        $state = Join-Path $Dir 'live.state'
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'st.sock') -StatePath $state -Name stateful
        Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x5a 5M 192k', 'flush' | Out-Null
        $s | Stop-ShuruNbdServer -Confirm:$false
        $t = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'st.sock') -StatePath $state -Name resumed
        try {
            Invoke-QemuIo -Uri $t.Uri -Commands 'read -P 0x5a 5M 192k' | Out-Null
        } finally { $t | Stop-ShuruNbdServer -Confirm:$false }
    }
}
