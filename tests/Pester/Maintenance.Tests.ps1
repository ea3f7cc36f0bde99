# Store maintenance as users script it: ingest an image up front, turn a checkpoint back into an
# image, verify a store, collect unused chunks while a server is writing. Real data throughout:
# a generated ext4 image, qemu-img/qemu-io/nbdcopy against running servers.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Image = New-Ext4Image -Path (Join-Path $Dir 'rootfs.ext4') -SizeMiB 32
    $script:Cas = Join-Path $Dir 'cas'

    # Every chunk file hashes to its name and nothing else is in chunks/.
    function Assert-StoreConsistent([string] $CasPath) {
        $files = @(Get-ChildItem (Join-Path $CasPath 'chunks') -File -Force -ErrorAction SilentlyContinue)
        foreach ($f in $files) {
            $f.Name | Should -Match '^[0-9a-f]{64}$'
        }
        if ($files.Count -gt 0) {
            $sums = Invoke-Client b3sum $files.FullName
            foreach ($line in $sums -split "`n" | Where-Object { $_ }) {
                $hash, $path = $line.Trim() -split '\s+', 2
                Split-Path $path -Leaf | Should -Be $hash
            }
        }
    }
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'Import-ShuruDisk' {
    It 'ingests an ext4 image eagerly; a server on the index serves it byte for byte' {
        $r = Import-ShuruDisk -Path $Image -CasPath $Cas -IndexPath (Join-Path $Dir 'rootfs.idx')
        $r | Should -BeOfType ShuruStore.Commands.ShuruImportResult
        $r.DiskSize | Should -Be 32MB
        $r.ChunkCount | Should -Be 512
        $r.ChunksZero | Should -BeGreaterThan 100          # an almost empty file system is mostly zeros
        $r.ChunksNew | Should -BeGreaterThan 0
        $r.ChunksNew + $r.ChunksPresent + $r.ChunksZero | Should -Be 512
        @(Get-ChildItem (Join-Path $Cas 'chunks') -File).Count | Should -Be $r.ChunksNew
        $r.BytesStored | Should -Be ((Get-ChildItem (Join-Path $Cas 'chunks') -File | Measure-Object Length -Sum).Sum)
        Assert-StoreConsistent $Cas

        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $r.IndexPath -SocketPath (Join-Path $Dir 'imp.sock') -Name imported
        try {
            Invoke-Client qemu-img compare -f raw -F raw $Image $s.Uri | Should -Match 'identical'
            # Everything was ingested up front: serving it stores nothing new.
            @(Get-ChildItem (Join-Path $Cas 'chunks') -File).Count | Should -Be $r.ChunksNew
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'takes images from the pipeline, shares chunks and writes an index next to each' {
        $copyDir = Join-Path $Dir 'images'
        New-Item -ItemType Directory $copyDir | Out-Null
        Copy-Item $Image (Join-Path $copyDir 'a.ext4')
        Copy-Item $Image (Join-Path $copyDir 'b.ext4')
        $results = Get-ChildItem (Join-Path $copyDir '*.ext4') | Import-ShuruDisk -CasPath $Cas
        $results | Should -HaveCount 2
        $results.ChunksNew | Should -Be @(0, 0)
        Test-Path (Join-Path $copyDir 'a.idx') | Should -BeTrue
        Test-Path (Join-Path $copyDir 'b.idx') | Should -BeTrue
        # An existing index is never replaced without -Force.
        Import-ShuruDisk (Join-Path $copyDir 'a.ext4') $Cas -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        $err[0].FullyQualifiedErrorId | Should -Match '^CheckpointExists'
    }

    It 'imports a byte range (-Offset/-Length)' {
        $idx = Join-Path $Dir 'range.idx'
        $r = Import-ShuruDisk $Image $Cas $idx -Offset 1MB -Length 3MB
        $r.DiskSize | Should -Be 3MB
        $slice = Join-Path $Dir 'slice.raw'
        Invoke-Client dd "if=$Image" "of=$slice" bs=1M skip=1 count=3 status=none | Out-Null
        $e = Export-ShuruDisk $idx $Cas (Join-Path $Dir 'range.raw')
        Invoke-Client cmp $slice $e.Destination | Out-Null
    }

    It 'reports progress with Write-Progress' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$StagedModule'; Import-ShuruDisk -Path '$Image' -CasPath '$Dir/cas-progress' -IndexPath '$Dir/progress.idx'")
            $out = $ps.Invoke()
            $out[0].ChunksNew | Should -BeGreaterThan 0
            $records = @($ps.Streams.Progress)
            $records.Count | Should -BeGreaterThan 0
            $records[0].Activity | Should -Match 'Importing rootfs.ext4'
            $records[-1].RecordType | Should -Be 'Completed'
        } finally { $ps.Dispose() }
    }

    It 'imports a changed image on top of a checkpoint, storing only the difference' {
        $changed = Join-Path $Dir 'changed.ext4'
        Copy-Item $Image $changed
        Invoke-Client dd if=/dev/urandom "of=$changed" bs=64k count=3 seek=100 conv=notrunc status=none | Out-Null
        $r = Import-ShuruDisk $changed $Cas (Join-Path $Dir 'changed.idx') -ParentIndexPath (Join-Path $Dir 'rootfs.idx')
        $r.ChunksNew | Should -Be 3
        $r.ParentPath | Should -Be (Join-Path $Dir 'rootfs.idx')
        $idx = Get-ShuruChunkIndex $r.IndexPath
        $idx.ChunksSetHere | Should -Be 3
        $idx.ParentPath | Should -Be (Join-Path $Dir 'rootfs.idx')
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $r.IndexPath -SocketPath (Join-Path $Dir 'chg.sock') -Name changed
        try { Invoke-Client qemu-img compare -f raw -F raw $changed $s.Uri | Should -Match 'identical' }
        finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It '-WhatIf writes nothing' {
        Import-ShuruDisk $Image (Join-Path $Dir 'cas-whatif') (Join-Path $Dir 'whatif.idx') -WhatIf
        Test-Path (Join-Path $Dir 'whatif.idx') | Should -BeFalse
        Test-Path (Join-Path $Dir 'cas-whatif') | Should -BeFalse
    }

    It 'stops on PipelineStop (Ctrl+C) leaving whole chunks and no index' {
        $big = Join-Path $Dir 'big.raw'
        Invoke-Client dd if=/dev/urandom "of=$big" bs=1M count=192 status=none | Out-Null
        $stopCas = Join-Path $Dir 'cas-stop'
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$StagedModule'; Import-ShuruDisk -Path '$big' -CasPath '$stopCas' -IndexPath '$Dir/big.idx'")
            $async = $ps.BeginInvoke()
            $deadline = [datetime]::UtcNow.AddSeconds(30)
            while (-not (Test-Path (Join-Path $stopCas 'chunks/*')) -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $ps.Stop()
            { $ps.EndInvoke($async) } | Should -Throw
        } finally { $ps.Dispose() }
        Test-Path (Join-Path $Dir 'big.idx') | Should -BeFalse
        @(Get-ChildItem (Join-Path $stopCas 'chunks') -File).Count | Should -BeLessThan 3072
        Assert-StoreConsistent $stopCas
    }
}

Describe 'Export-ShuruDisk' {
    It 'turns a checkpoint written with qemu-io into a sparse image equal to what the server serves' {
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath (Join-Path $Dir 'rootfs.idx') -SocketPath (Join-Path $Dir 'exp.sock') -Name exporter
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0xcd 3M 200k', 'write -z 8M 1M', 'write -P 0x11 20M 64k', 'flush' | Out-Null
            $cp = $s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'written.idx')
            $e = Get-ChildItem $cp.Path | Export-ShuruDisk -CasPath $Cas -Destination (Join-Path $Dir 'written.raw')
            $e | Should -BeOfType ShuruStore.Commands.ShuruExportResult
            $e.DiskSize | Should -Be 32MB
            Invoke-Client qemu-img compare -f raw -F raw $e.Destination $s.Uri | Should -Match 'identical'
            # Sparse where the disk is zero.
            $allocated = [long](Invoke-Client stat -c '%b' $e.Destination).Trim() * 512
            $allocated | Should -BeLessThan (32MB / 2)
            $e.BytesWritten | Should -BeLessThan (32MB / 2)
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'exports several indexes from the pipeline into a directory' {
        $out = Join-Path $Dir 'exports'
        New-Item -ItemType Directory $out | Out-Null
        $r = Get-ChildItem (Join-Path $Dir 'rootfs.idx'), (Join-Path $Dir 'written.idx') | Export-ShuruDisk -CasPath $Cas -Destination $out
        $r | Should -HaveCount 2
        Invoke-Client cmp $Image (Join-Path $out 'rootfs.raw') | Out-Null
        Test-Path (Join-Path $out 'written.raw') | Should -BeTrue
        # No replacing without -Force; no temp files left behind.
        Export-ShuruDisk (Join-Path $Dir 'rootfs.idx') $Cas $out -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        $err[0].FullyQualifiedErrorId | Should -Match '^DestinationExists'
        @(Get-ChildItem $out -Force -Filter '.*').Count | Should -Be 0
    }
}

Describe 'Test-ShuruChunkStore' {
    BeforeAll {
        $script:Cas2 = Join-Path $Dir 'cas2'
        $script:Idx2 = (Import-ShuruDisk $Image $Cas2 (Join-Path $Dir 'check.idx')).IndexPath
    }

    It 'finds nothing wrong with a sound store' {
        $result = Test-ShuruChunkStore -CasPath $Cas2
        $result | Should -HaveCount 1
        $result.IsHealthy | Should -BeTrue
        $result.Problems | Should -BeNullOrEmpty
        $result.ChunksChecked | Should -BeGreaterThan 0
    }

    It '#18.4 -Quiet answers a sound store with one [bool] $true' {
        $answer = @(Test-ShuruChunkStore -CasPath $Cas2 -Quiet)
        $answer | Should -HaveCount 1
        $answer[0] | Should -BeOfType [bool]
        $answer[0] | Should -BeTrue
    }

    It 'finds a corrupted and a deleted chunk; -WhatIf repairs nothing; -Repair removes the corrupt one' {
        $chunks = @(Get-ChildItem (Join-Path $Cas2 'chunks') -File | Sort-Object Name)
        $corrupt = $chunks[0]; $deleted = $chunks[1]
        $bytes = [System.IO.File]::ReadAllBytes($corrupt.FullName); $bytes[100] = $bytes[100] -bxor 0xff
        [System.IO.File]::WriteAllBytes($corrupt.FullName, $bytes)
        Remove-Item $deleted.FullName
        Set-Content -Path (Join-Path $Cas2 'chunks/.tmp-leftover') -Value 'x'
        (Get-Item -Force (Join-Path $Cas2 'chunks/.tmp-leftover')).LastWriteTimeUtc = [datetime]::UtcNow.AddHours(-3)

        $result = Get-ChildItem (Join-Path $Dir 'check.idx') | Test-ShuruChunkStore -CasPath $Cas2
        $result.IsHealthy | Should -BeFalse
        $problems = $result.Problems
        $problems | Should -HaveCount 3
        ($problems | Where-Object Kind -EQ 'Corrupt').Hash | Should -Be $corrupt.Name
        ($problems | Where-Object Kind -EQ 'Missing').Hash | Should -Be $deleted.Name
        ($problems | Where-Object Kind -EQ 'Missing').ReferencedBy | Should -Be $Idx2
        ($problems | Where-Object Kind -EQ 'TempFile') | Should -Not -BeNullOrEmpty
        $problems.Repaired | Should -Not -Contain $true
        (Test-ShuruChunkStore $Cas2 | Format-Table | Out-String) | Should -Match 'False'
        Test-ShuruChunkStore $Cas2 -Quiet | Should -BeFalse -Because 'a store with a corrupt chunk is not healthy (#18.4)'

        Test-ShuruChunkStore -CasPath $Cas2 -Repair -WhatIf | Out-Null
        Test-Path $corrupt.FullName | Should -BeTrue
        Test-Path (Join-Path $Cas2 'chunks/.tmp-leftover') | Should -BeTrue

        $fixed = (Test-ShuruChunkStore -CasPath $Cas2 -Repair -Confirm:$false).Problems
        ($fixed | Where-Object Kind -EQ 'Corrupt').Repaired | Should -BeTrue
        Test-Path $corrupt.FullName | Should -BeFalse
        Test-Path (Join-Path $Cas2 'chunks/.tmp-leftover') | Should -BeFalse
        (Test-ShuruChunkStore -CasPath $Cas2).Problems | Should -BeNullOrEmpty
        # The index still misses both chunks; re-importing the image heals the store.
        @((Test-ShuruChunkStore $Cas2 $Idx2).Problems | Where-Object Kind -EQ 'Missing') | Should -HaveCount 2
        Import-ShuruDisk $Image $Cas2 $Idx2 -Force | Out-Null
        Test-ShuruChunkStore $Cas2 $Idx2 -Quiet | Should -BeTrue
    }
}

Describe 'Remove-ShuruUnusedChunk' {
    BeforeAll {
        $script:Cas3 = Join-Path $Dir 'cas3'
        $script:Golden = (Import-ShuruDisk $Image $Cas3 (Join-Path $Dir 'golden.idx')).IndexPath
        # An unrelated disk whose index is then deleted: its chunks are garbage.
        $other = New-Ext4Image -Path (Join-Path $Dir 'other.ext4') -SizeMiB 8
        Invoke-Client dd if=/dev/urandom "of=$other" bs=64k count=20 seek=40 conv=notrunc status=none | Out-Null
        $script:Garbage = (Import-ShuruDisk $other $Cas3 (Join-Path $Dir 'other.idx')).ChunksNew
        Remove-Item (Join-Path $Dir 'other.idx')
    }

    It 'refuses to run with nothing to keep' {
        { Remove-ShuruUnusedChunk -CasPath $Cas3 -GracePeriod 0 -ErrorAction Stop } | Should -Throw -ErrorId 'NoChunksToKeep*'
    }

    It '#18.10 -Force -GracePeriod 0 asks before emptying a store (ConfirmImpact High)' {
        $ConfirmPreference | Should -Be 'High'
        $before = @(Get-ChildItem (Join-Path $Cas3 'chunks') -File).Count
        # This session cannot answer a prompt, so asking is an error here, and nothing is removed.
        { Remove-ShuruUnusedChunk -CasPath $Cas3 -Force -GracePeriod 0 -ErrorAction Stop } | Should -Throw -ExpectedMessage '*NonInteractive*'
        @(Get-ChildItem (Join-Path $Cas3 'chunks') -File).Count | Should -Be $before
    }

    It '#18.10 -IndexPath takes wildcards, -LiteralIndexPath takes names as they are' {
        $keep = New-Item -ItemType Directory (Join-Path $Dir 'keep')
        Copy-Item -LiteralPath $Golden -Destination (Join-Path $keep 'g1.idx')
        Copy-Item -LiteralPath $Golden -Destination (Join-Path $keep 'g[2].idx')
        try {
            $plan = Remove-ShuruUnusedChunk -CasPath $Cas3 -IndexPath (Join-Path $keep '*.idx') -GracePeriod 0 -WhatIf -Verbose 4>&1
            ($plan | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message | Should -Match 'referenced by 2 indexes'
            $kept = ($plan | Where-Object { $_ -is [ShuruStore.Commands.ShuruCollectionResult] }).ChunksReferenced
            $kept | Should -BeGreaterThan 0
            (Remove-ShuruUnusedChunk -CasPath $Cas3 -LiteralIndexPath (Join-Path $keep 'g[2].idx') -GracePeriod 0 -WhatIf).ChunksReferenced | Should -Be $kept
            # As a wildcard, g[2].idx means g2.idx, which does not exist: nothing is collected.
            { Remove-ShuruUnusedChunk -CasPath $Cas3 -IndexPath (Join-Path $keep 'g[2].idx') -GracePeriod 0 -WhatIf } |
                Should -Throw -ErrorId 'IndexNotFound,ShuruStore.Commands.RemoveShuruUnusedChunkCommand'
        } finally { Remove-Item -LiteralPath $keep.FullName -Recurse }
    }

    It 'spares young chunks and -WhatIf reports what would go' {
        $young = Get-ChildItem (Join-Path $Dir 'golden.idx') | Remove-ShuruUnusedChunk -CasPath $Cas3 -Confirm:$false
        $young.ChunksRemoved | Should -Be 0
        $young.WhatIf | Should -BeFalse
        $young.ChunksSpared | Should -BeGreaterOrEqual $Garbage
        $before = @(Get-ChildItem (Join-Path $Cas3 'chunks') -File).Count
        $plan = Get-ChildItem (Join-Path $Dir 'golden.idx') | Remove-ShuruUnusedChunk -CasPath $Cas3 -GracePeriod 0 -WhatIf
        $plan.WhatIf | Should -BeTrue
        $plan.ChunksUnused | Should -BeGreaterOrEqual $Garbage
        $plan.BytesUnused | Should -BeGreaterThan 0
        $plan.ChunksRemoved | Should -Be 0
        @(Get-ChildItem (Join-Path $Cas3 'chunks') -File).Count | Should -Be $before
    }

    It 'keeps the unsaved-but-stored chunks of a running server while collecting' {
        $s = Start-ShuruNbdServer -CasPath $Cas3 -IndexPath $Golden -SocketPath (Join-Path $Dir 'gc.sock') -Name gc-live
        try {
            # New chunks, flushed, in no index on disk: only the running server knows them.
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x5e 2M 640k', 'write -P 0x6f 17M 64k', 'flush' | Out-Null
            $beforeGc = Join-Path $Dir 'before-gc.raw'
            Invoke-Client nbdcopy $s.Uri $beforeGc | Out-Null

            # Collect keeping only an unrelated index: the golden image's chunks survive through the server.
            $noise = Join-Path $Dir 'noise.raw'
            Invoke-Client dd if=/dev/urandom "of=$noise" bs=64k count=5 status=none | Out-Null
            $unrelated = (Import-ShuruDisk $noise $Cas3 (Join-Path $Dir 'unrelated.idx')).IndexPath
            $r = Remove-ShuruUnusedChunk -CasPath $Cas3 -IndexPath $unrelated -GracePeriod 0 -Confirm:$false
            $r | Should -BeOfType ShuruStore.Commands.ShuruCollectionResult
            $r.WhatIf | Should -BeFalse
            $r.ChunksRemoved | Should -BeGreaterOrEqual $Garbage
            $r.BytesRemoved | Should -BeGreaterThan 0
            $r.LiveServers | Should -Be 'gc-live'

            # The server reads its writes back, and the whole disk is unchanged.
            Invoke-QemuIo -Uri $s.Uri -Commands 'read -P 0x5e 2M 640k', 'read -P 0x6f 17M 64k' | Out-Null
            Invoke-Client qemu-img compare -f raw -F raw $beforeGc $s.Uri | Should -Match 'identical'
            $cp = $s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'after-gc.idx')
            Test-ShuruChunkStore -CasPath $Cas3 -IndexPath $cp.Path -Quiet | Should -BeTrue
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Assert-StoreConsistent $Cas3
        @(Get-ChildItem (Join-Path $Cas3 'chunks') -Force -Filter '.gc-*').Count | Should -Be 0
    }

    It 'loses nothing when collections run while the server writes and flushes the very content being collected' {
        # Garbage whose chunks are exactly what the server is about to write: chunk i is 64 KiB of byte i.
        $garbageImage = Join-Path $Dir 'patterns.raw'
        $fs = [System.IO.File]::Create($garbageImage)
        $buf = [byte[]]::new(64KB)
        try { foreach ($i in 1..96) { [Array]::Fill($buf, [byte]$i); $fs.Write($buf, 0, $buf.Length) } } finally { $fs.Dispose() }
        $g = Import-ShuruDisk $garbageImage $Cas3 (Join-Path $Dir 'patterns.idx')
        $g.ChunksNew + $g.ChunksPresent | Should -Be 96   # 0x5e was written by the test before
        Remove-Item (Join-Path $Dir 'patterns.idx')

        $s = Start-ShuruNbdServer -CasPath $Cas3 -IndexPath $Golden -SocketPath (Join-Path $Dir 'race.sock') -Name gc-race
        try {
            $qargs = @('-f', 'raw')
            foreach ($i in 1..96) {
                $qargs += @('-c', "write -P $i $((4MB) + $i * 64KB) 64k")
                if ($i % 4 -eq 0) { $qargs += @('-c', 'flush') }
            }
            $qargs += $s.Uri
            $psi = [System.Diagnostics.ProcessStartInfo]::new('qemu-io')
            foreach ($a in $qargs) { $psi.ArgumentList.Add($a) }
            $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
            $writer = [System.Diagnostics.Process]::Start($psi)
            $outTask = $writer.StandardOutput.ReadToEndAsync(); $errTask = $writer.StandardError.ReadToEndAsync()
            $removed = 0; $rescued = 0; $rounds = 0
            while (-not $writer.HasExited -or $rounds -lt 3) {
                $r = Remove-ShuruUnusedChunk -CasPath $Cas3 -IndexPath (Join-Path $Dir 'after-gc.idx'), (Join-Path $Dir 'unrelated.idx') -GracePeriod 0 -Confirm:$false
                $removed += $r.ChunksRemoved; $rescued += $r.ChunksRescued; $rounds++
            }
            $writer.WaitForExit()
            $writer.ExitCode | Should -Be 0 -Because $errTask.Result
            $outTask.Result | Should -Not -Match 'error|failed'
            $rounds | Should -BeGreaterThan 2
            Write-Host "    $rounds collections during the writes: $removed chunks removed, $rescued put back for the server"
            # Every pattern reads back, now and from a checkpoint on a fresh server.
            $reads = foreach ($i in 1..96) { "read -P $i $((4MB) + $i * 64KB) 64k" }
            Invoke-QemuIo -Uri $s.Uri -Commands $reads | Out-Null
            $cp = $s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'race.idx')
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Test-ShuruChunkStore $Cas3 $cp.Path -Quiet | Should -BeTrue
        $t = Start-ShuruNbdServer -CasPath $Cas3 -IndexPath $cp.Path -SocketPath (Join-Path $Dir 'race2.sock') -Name gc-race2
        try { Invoke-QemuIo -Uri $t.Uri -Commands $reads | Out-Null } finally { $t | Stop-ShuruNbdServer -Confirm:$false }
        Assert-StoreConsistent $Cas3
    }

    It 'keeps what the remaining checkpoints need and frees the rest' {
        $r = Get-ChildItem (Join-Path $Dir 'after-gc.idx') | Remove-ShuruUnusedChunk -CasPath $Cas3 -GracePeriod 0 -Confirm:$false
        $r.ChunksRemoved | Should -BeGreaterThan 0   # the unrelated index's chunks
        $s = Start-ShuruNbdServer -CasPath $Cas3 -IndexPath (Join-Path $Dir 'after-gc.idx') -SocketPath (Join-Path $Dir 'gc2.sock') -Name gc-after
        try {
            Invoke-Client qemu-img compare -f raw -F raw (Join-Path $Dir 'before-gc.raw') $s.Uri | Should -Match 'identical'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Test-ShuruChunkStore $Cas3 -Quiet | Should -BeTrue
    }
}
