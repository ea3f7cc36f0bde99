# A data directory as real shuru installations have it, built by tests/interop/shuru_model.py
# (shuru-store 0.1.2 as /work/shared/spec/shuru-compat.md describes it), and every cmdlet on it:
# checkpoints written by shuru's checkpoint flow with paths relative to the folder shuru ran in, a
# lazily half-ingested live index (ZERO entries over base data), a disk grown with disk_size, a
# short rewritten tail chunk, and a checkpoint whose parent shuru's checkpoint delete removed.
# The second Describe asserts, one It each, every place where ShuruStore deliberately reads such
# files differently from shuru 0.1.2 (docs/compatibility.md lists them with these test names).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory              # the folder shuru ran in
    $script:Model = Join-Path $RepoRoot 'tests/interop/shuru_model.py'
    $script:Data = Join-Path $Dir 'data'         # shuru's data directory, given to it relatively
    $script:Cas = Join-Path $Data 'cas'
    $script:Cp = Join-Path $Data 'checkpoints'
    New-Item -ItemType Directory $Data | Out-Null
    # 16 MiB + 1000 bytes: the last chunk is short, as in real rootfs images.
    $script:Rootfs = New-Ext4Image -Path (Join-Path $Data 'rootfs.ext4') -SizeMiB 16
    $fs = [System.IO.File]::OpenWrite($Rootfs); $fs.SetLength(16MB + 1000); $fs.Position = 16MB
    $tail = [byte[]]::new(1000); [System.Random]::new(3).NextBytes($tail); $fs.Write($tail, 0, 1000)
    # Data past what the first session reads (7 MiB: ingested into the live index only; 10 MiB:
    # never read, left ZERO over base data), in space the file system does not use.
    foreach ($at in 7MB, 10MB) { $piece = [byte[]]::new(64KB); [System.Random]::new($at).NextBytes($piece); $fs.Position = $at; $fs.Write($piece, 0, 64KB) }
    $fs.Dispose()

    # Runs the model in the folder shuru ran in; returns its output.
    function Invoke-Model {
        Push-Location $Dir
        try { Invoke-Client /usr/bin/python3 $Model @args } finally { Pop-Location }
    }
    # What shuru 0.1.2 reads for an index (a raw file of the disk).
    function Read-Model([string] $Index, [string] $Name = [IO.Path]::GetFileNameWithoutExtension($Index)) {
        $out = Join-Path $Dir "model-$Name.img"
        Invoke-Model read $Index data/cas $out | Out-Null
        $out
    }
    # What a ShuruStore server started on an index serves (read-only), from the current location.
    function Read-Served([string] $Index, [string] $Name = [IO.Path]::GetFileNameWithoutExtension($Index), [switch] $AllowMissingParent, [string] $BaseImagePath) {
        $extra = @{}
        if ($AllowMissingParent) { $extra.AllowMissingParent = $true }
        if ($BaseImagePath) { $extra.BaseImagePath = $BaseImagePath }
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $Index -SocketPath (Join-Path $Dir "$Name.sock") -ReadOnly -WarningAction SilentlyContinue @extra
        try {
            $out = Join-Path $Dir "served-$Name.img"
            Invoke-Client nbdcopy $s.Uri $out | Out-Null
            $out
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }
    function Get-Sum([string] $Path) { (Get-FileHash -Algorithm SHA256 $Path).Hash }
    # The parent and fallback paths exactly as an index file stores them.
    function Get-StoredPaths([string] $Path) {
        $raw = [IO.File]::ReadAllBytes($Path); $n = [BitConverter]::ToUInt32($raw, 16)
        [Text.Encoding]::UTF8.GetString($raw, 20, $n), [Text.Encoding]::UTF8.GetString($raw, 24 + $n, [BitConverter]::ToUInt32($raw, 20 + $n))
    }
    function Get-ChunkName([byte] $Byte, [int] $Length = 64KB) {
        $f = Join-Path $Dir 'piece.bin'
        $bytes = [byte[]]::new($Length); [Array]::Fill($bytes, $Byte)
        [IO.File]::WriteAllBytes($f, $bytes)
        (Invoke-Client b3sum --no-names $f).Trim()
    }

    # shuru's own flow, relative data directory "data":
    # 1. lazy start on the rootfs; a client reads the first 6 MiB (ingested), writes at 1 MiB and
    #    into the short tail; checkpoint into a folder that does not exist yet; reads 2 MiB more;
    #    the live index is saved: half ingested, ZERO over base data elsewhere.
    Invoke-Model session data/rootfs.ext4 data/cas data/vm.idx 0 read:0:6M write:1M:64k:a1 write:16M:1000:b2 flush `
        checkpoint:data/checkpoints/base.idx read:6M:2M save-live | Out-Null
    # 2. boot the checkpoint, grow the disk to 24 MiB, write past the old end; checkpoint.
    Invoke-Model session '' data/cas data/checkpoints/base.idx 24M write:20M:128k:c3 write:16896k:64k:d4 `
        checkpoint:data/checkpoints/grown.idx | Out-Null
    # 3. and 4. two more generations; the last overwrites a chunk only the middle one names.
    Invoke-Model session '' data/cas data/checkpoints/grown.idx 0 write:2M:64k:e5 write:4M:64k:e6 checkpoint:data/checkpoints/mid.idx | Out-Null
    Invoke-Model session '' data/cas data/checkpoints/mid.idx 0 write:3M:64k:f6 write:4M:64k:f7 checkpoint:data/checkpoints/leaf.idx | Out-Null
    # shuru's checkpoint delete: the parent goes, its child stays.
    Remove-Item (Join-Path $Cp 'mid.idx')

    $script:Indexes = @{}
    foreach ($n in 'vm', 'base', 'grown', 'leaf') { $Indexes[$n] = if ($n -eq 'vm') { Join-Path $Data 'vm.idx' } else { Join-Path $Cp "$n.idx" } }
    $script:Expected = @{}
    foreach ($n in 'vm', 'base', 'grown', 'leaf') { $Expected[$n] = Get-Sum (Read-Model ($Indexes[$n].Substring($Dir.Length + 1))) }
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'A shuru data directory, from the folder shuru ran in' {
    BeforeEach { Push-Location $Dir }
    AfterEach { Pop-Location }

    It 'the model wrote what shuru writes: relative paths, a grown disk, a short tail chunk, a half-ingested live index' {
        Get-StoredPaths $Indexes.grown | Should -Be @('data/checkpoints/base.idx', 'data/rootfs.ext4')
        [BitConverter]::ToUInt64([IO.File]::ReadAllBytes($Indexes.grown), 0) | Should -Be 24MB
        (Get-Item (Join-Path $Cas "chunks/$(Get-ChunkName 0xb2 -Length 1000)")).Length | Should -Be 1000
        Test-Path (Join-Path $Cp 'mid.idx') | Should -BeFalse
    }

    It 'Get-ShuruChunkIndex reads every index, resolving relative paths against the current location' {
        $all = Get-ChildItem data -Recurse -Filter *.idx | Get-ShuruChunkIndex -WarningVariable warnings -WarningAction SilentlyContinue
        $all | Should -HaveCount 4
        $grown = $all | Where-Object Name -EQ grown.idx
        $grown.Chain | Should -Be @($Indexes.grown, $Indexes.base)
        $grown.ParentPath | Should -Be $Indexes.base
        $grown.BaseImagePath | Should -Be $Rootfs
        $grown.DiskSize | Should -Be 24MB
        $grown.IsChainComplete | Should -BeTrue
        $vm = $all | Where-Object Name -EQ vm.idx
        $vm.ChunksSetHere | Should -BeGreaterThan 0
        $vm.ChunksInherited | Should -BeGreaterThan 0 -Because 'ZERO entries over base data read from the base image'
        $leaf = $all | Where-Object Name -EQ leaf.idx
        $leaf.IsChainComplete | Should -BeFalse
        $leaf.MissingParentPath | Should -Be (Join-Path $Cp 'mid.idx')
        $leaf.MissingParentNamedBy | Should -Be $Indexes.leaf
        $leaf.Chain | Should -Be @($Indexes.leaf)
        $warnings | Should -HaveCount 1
        "$warnings" | Should -Match ([regex]::Escape((Join-Path $Cp 'mid.idx')))
        ($leaf | Out-String -Width 250) | Should -Match 'mid\.idx \(missing\)'
    }

    It 'serves the live index, the checkpoint and the grown disk exactly as shuru 0.1.2 reads them' {
        foreach ($n in 'vm', 'base', 'grown') {
            Get-Sum (Read-Served $Indexes[$n].Substring($Dir.Length + 1)) | Should -Be $Expected[$n] -Because "$n.idx"
        }
    }

    It 'refuses to serve the orphan, naming the missing parent and what would read wrong' {
        $err = $null
        try { Start-ShuruNbdServer -CasPath $Cas -IndexPath data/checkpoints/leaf.idx -SocketPath (Join-Path $Dir 'x.sock') } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be 'ParentIndexMissing,ShuruStore.Commands.StartShuruNbdServerCommand'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.Exception.Message | Should -Match ([regex]::Escape("names parent 'data/checkpoints/mid.idx'"))
        $err.Exception.Message | Should -Match ([regex]::Escape("from the base image '$Rootfs' or as zeros"))
        $err.Exception.Message | Should -Match 'AllowMissingParent'
        Test-Path (Join-Path $Dir 'x.sock') | Should -BeFalse
    }

    It 'serves the orphan with -AllowMissingParent, with a warning, as shuru 0.1.2 serves it' {
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath data/checkpoints/leaf.idx -SocketPath (Join-Path $Dir 'o.sock') -ReadOnly -AllowMissingParent -WarningVariable w -WarningAction SilentlyContinue
        try {
            "$w" | Should -Match 'mid\.idx.*does not exist'
            Invoke-Client nbdcopy $s.Uri (Join-Path $Dir 'orphan.img') | Out-Null
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Get-Sum (Join-Path $Dir 'orphan.img') | Should -Be $Expected.leaf
    }

    It 'Export-ShuruDisk refuses the orphan, and with -AllowMissingParent writes what shuru reads' {
        { Export-ShuruDisk data/checkpoints/leaf.idx data/cas (Join-Path $Dir 'leaf.raw') -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParentIndexMissing,ShuruStore.Commands.ExportShuruDiskCommand'
        Test-Path (Join-Path $Dir 'leaf.raw') | Should -BeFalse
        $r = Export-ShuruDisk data/checkpoints/leaf.idx data/cas (Join-Path $Dir 'leaf.raw') -AllowMissingParent -WarningVariable w -WarningAction SilentlyContinue
        "$w" | Should -Match 'mid\.idx'
        Get-Sum $r.Destination | Should -Be $Expected.leaf
        Get-Sum (Export-ShuruDisk data/checkpoints/grown.idx data/cas (Join-Path $Dir 'grown.raw')).Destination | Should -Be $Expected.grown
    }

    It 'Compare-ShuruChunkIndex compares across the broken chain and warns' {
        $d = Compare-ShuruChunkIndex data/checkpoints/grown.idx data/checkpoints/leaf.idx -WarningVariable w -WarningAction SilentlyContinue
        $d.Offset | Should -Be @(2MB, 3MB, 4MB) -Because 'the chunks at 2, 3 and 4 MiB were written after grown.idx'
        $d.ForEach({ $_.Length }) | Should -Be @(64KB, 64KB, 64KB)
        "$w" | Should -Match 'mid\.idx'
    }

    It 'Test-ShuruChunkStore checks what the chains reach and lists the missing parent' {
        $r = Get-ChildItem data -Recurse -Filter *.idx | Test-ShuruChunkStore -CasPath data/cas
        $r.Missing | Should -Be 0
        $r.Corrupt | Should -Be 0
        $r.MissingParents | Should -Be 1
        $r.IsHealthy | Should -BeFalse
        $p = @($r.Problems | Where-Object Kind -EQ ParentIndexMissing)
        $p | Should -HaveCount 1
        $p[0].Path | Should -Be (Join-Path $Cp 'mid.idx')
        $p[0].ReferencedBy | Should -Be $Indexes.leaf
        ($r | Out-String -Width 250) | Should -Match 'MissingParents'
    }

    It 'Save-ShuruCheckpoint creates missing folders and writes absolute paths' {
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath data/checkpoints/grown.idx -SocketPath (Join-Path $Dir 's.sock')
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x42 5M 64k', 'flush' | Out-Null
            $cp = $s | Save-ShuruCheckpoint data/new/deeper/next.idx
            Invoke-Client nbdcopy $s.Uri (Join-Path $Dir 'next.img') | Out-Null
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        $cp.Path | Should -Be (Join-Path $Data 'new/deeper/next.idx')
        $cp.ParentPath | Should -Be $Indexes.grown
        Get-StoredPaths $cp.Path | Should -Be @($Indexes.grown, $Rootfs)
        # shuru, from anywhere, reads the checkpoint as the server served it.
        Push-Location /
        try { Invoke-Client /usr/bin/python3 $Model read $cp.Path $Cas (Join-Path $Dir 'next-model.img') | Out-Null } finally { Pop-Location }
        Get-Sum (Join-Path $Dir 'next-model.img') | Should -Be (Get-Sum (Join-Path $Dir 'next.img'))
        Remove-Item -Recurse (Join-Path $Data 'new')
    }

    It 'a relative path naming different files from here and beside the index: the current location wins, with a warning' {
        # data/checkpoints/data/rootfs.ext4 is what "data/rootfs.ext4" names beside the index.
        $decoy = New-Item -ItemType Directory (Join-Path $Cp 'data') -Force
        Invoke-Client truncate -s 16M (Join-Path $decoy 'rootfs.ext4') | Out-Null
        try {
            $i = Get-ShuruChunkIndex data/checkpoints/base.idx -WarningVariable w -WarningAction SilentlyContinue
            $i.BaseImagePath | Should -Be $Rootfs
            "$w" | Should -Match ([regex]::Escape((Join-Path $decoy 'rootfs.ext4')))
            $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath data/checkpoints/base.idx -SocketPath (Join-Path $Dir 'w.sock') -ReadOnly -WarningVariable sw -WarningAction SilentlyContinue
            try {
                "$sw" | Should -Match 'different file'
                Invoke-Client nbdcopy $s.Uri (Join-Path $Dir 'decoy.img') | Out-Null
            } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
            Get-Sum (Join-Path $Dir 'decoy.img') | Should -Be $Expected.base
        } finally { Remove-Item -Recurse -Force $decoy }
    }

    It 'Remove-ShuruUnusedChunk with the pattern the help recommends keeps everything the surviving chains name' {
        $onlyInMid = Get-ChunkName 0xe6
        Test-Path (Join-Path $Cas "chunks/$onlyInMid") | Should -BeTrue
        $r = Get-ChildItem data -Recurse -Filter *.idx | Remove-ShuruUnusedChunk -CasPath data/cas -GracePeriod 0 -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $r.MissingParents | Should -Be @((Join-Path $Cp 'mid.idx'))
        "$w" | Should -Match 'mid\.idx'
        $r.ChunksRemoved | Should -BeGreaterOrEqual 1
        Test-Path (Join-Path $Cas "chunks/$onlyInMid") | Should -BeFalse
        foreach ($n in 'vm', 'base', 'grown') { Get-Sum (Read-Served $Indexes[$n].Substring($Dir.Length + 1) "$n-after") | Should -Be $Expected[$n] -Because "$n.idx" }
        Get-Sum (Read-Served data/checkpoints/leaf.idx leaf-after -AllowMissingParent) | Should -Be $Expected.leaf
    }
}

Describe 'Where ShuruStore deliberately reads shuru files differently from shuru 0.1.2' {
    BeforeAll {
        $script:Diff = New-Item -ItemType Directory (Join-Path $Data 'diff') -Force
        function Get-ErrorId([scriptblock] $Command) {
            try { & $Command | Out-Null; '' } catch { ($_.FullyQualifiedErrorId -split ',')[0] }
        }
    }
    BeforeEach { Push-Location $Dir }
    AfterEach { Pop-Location }

    It 'a missing parent: shuru reads the rest of the chain without a word; ShuruStore refuses unless -AllowMissingParent' {
        # A delta (only the chunks at 20 MiB, as Import-ShuruDisk -ParentIndexPath writes one) and an empty child of it.
        Invoke-Model derive data/checkpoints/grown.idx data/diff/delta.idx data/checkpoints/base.idx data/rootfs.ext4 320 2 | Out-Null
        Invoke-Model derive data/checkpoints/grown.idx data/diff/child.idx data/diff/delta.idx data/rootfs.ext4 0 0 | Out-Null
        $before = Get-Sum (Read-Model data/diff/child.idx child-before)
        Get-Sum (Read-Served data/diff/child.idx child-before) | Should -Be $before
        Remove-Item (Join-Path $Diff 'delta.idx')
        $out = Invoke-Model read data/diff/child.idx data/cas (Join-Path $Dir 'model-child-after.img')
        $out | Should -Match 'chain truncated' -Because 'shuru only warns on its log'
        $after = Get-Sum (Join-Path $Dir 'model-child-after.img')
        $after | Should -Not -Be $before -Because 'the data set only in the lost parent is gone'
        Get-ErrorId { Start-ShuruNbdServer -CasPath $Cas -IndexPath data/diff/child.idx -SocketPath (Join-Path $Dir 'c.sock') -ReadOnly } | Should -Be 'ParentIndexMissing'
        Get-Sum (Read-Served data/diff/child.idx child-after -AllowMissingParent) | Should -Be $after
    }

    It 'fallback inheritance: an index with a parent and no fallback reads the parent''s base image, not zeros' {
        Invoke-Model derive data/checkpoints/base.idx data/diff/nofallback.idx data/checkpoints/base.idx '' 0 0 | Out-Null
        $shuru = Get-Sum (Read-Model data/diff/nofallback.idx)
        $shuru | Should -Not -Be $Expected.base -Because 'shuru 0.1.2 never opens a parent''s fallback: unset chunks are zeros'
        (Get-ShuruChunkIndex data/diff/nofallback.idx).ChunksUnset | Should -Be 0 -Because 'the parent''s base image covers every chunk'
        Get-Sum (Read-Served data/diff/nofallback.idx) | Should -Be $Expected.base -Because 'ShuruStore reads the parent''s base image, the data the checkpoint was taken over'
        # A checkpoint of such a disk records the base image it reads; shuru's records none.
        Invoke-Model session '' data/cas data/diff/nofallback.idx 0 checkpoint:data/diff/nofallback-shuru.idx | Out-Null
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath data/diff/nofallback.idx -SocketPath (Join-Path $Dir 'nf.sock')
        try { $cp = $s | Save-ShuruCheckpoint data/diff/nofallback-ours.idx } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        $cp.BaseImagePath | Should -Be $Rootfs
        Get-StoredPaths (Join-Path $Diff 'nofallback-shuru.idx') | Should -Be @('data/diff/nofallback.idx', '')
        Get-StoredPaths $cp.Path | Should -Be @((Join-Path $Diff 'nofallback.idx'), $Rootfs)
    }

    It 'an entry count that does not match disk_size: shuru 0.1.2 reads it, ShuruStore refuses it (IndexInvalid, as shuru 0.1.3 does)' {
        # 1 MiB disk, 8 entries instead of 16, falling back to the rootfs.
        $ms = [IO.MemoryStream]::new(); $w = [IO.BinaryWriter]::new($ms)
        $w.Write([uint64]1MB); $w.Write([uint64]8); $w.Write([uint32]0)
        $fb = [Text.Encoding]::UTF8.GetBytes('data/rootfs.ext4'); $w.Write([uint32]$fb.Length); $w.Write($fb)
        foreach ($i in 1..8) { $w.Write([uint32]4); $w.Write([Text.Encoding]::ASCII.GetBytes('ZERO')) }
        $w.Flush(); [IO.File]::WriteAllBytes((Join-Path $Diff 'count.idx'), $ms.ToArray())
        $shuru = [IO.File]::ReadAllBytes((Read-Model data/diff/count.idx))
        $shuru.Length | Should -Be 1MB
        $rootfsHead = [byte[]]::new(1MB); $f = [IO.File]::OpenRead($Rootfs); $f.ReadExactly($rootfsHead, 0, 1MB); $f.Dispose()
        [Convert]::ToBase64String($shuru) | Should -Be ([Convert]::ToBase64String($rootfsHead))
        Get-ErrorId { Get-ShuruChunkIndex data/diff/count.idx -ErrorAction Stop } | Should -Be 'IndexInvalid'
        Get-ErrorId { Start-ShuruNbdServer -CasPath $Cas -IndexPath data/diff/count.idx -SocketPath (Join-Path $Dir 'n.sock') -ReadOnly } | Should -Be 'IndexInvalid'
    }

    It 'a missing fallback image: shuru reads zeros, ShuruStore refuses (BaseImageMissing)' {
        Invoke-Model derive data/checkpoints/base.idx data/diff/gone.idx '' data/vanished.ext4 0 0 | Out-Null
        $zeros = Join-Path $Dir 'zeros.img'
        Invoke-Client truncate -s ((Get-Item $Rootfs).Length) $zeros | Out-Null
        Get-Sum (Read-Model data/diff/gone.idx) | Should -Be (Get-Sum $zeros)
        Get-ErrorId { Start-ShuruNbdServer -CasPath $Cas -IndexPath data/diff/gone.idx -SocketPath (Join-Path $Dir 'g.sock') -ReadOnly } | Should -Be 'BaseImageMissing'
        Get-ErrorId { Export-ShuruDisk data/diff/gone.idx data/cas (Join-Path $Dir 'gone.raw') -ErrorAction Stop } | Should -Be 'BaseImageMissing'
    }

    It 'a relative path that names nothing from the working directory: shuru reads zeros, ShuruStore reads it beside the index' {
        # From the folder shuru ran in, ../../rootfs.ext4 is /rootfs.ext4; beside the index it is data/rootfs.ext4.
        Test-Path /rootfs.ext4 | Should -BeFalse
        Invoke-Model derive data/checkpoints/base.idx data/diff/deep/beside.idx '' ../../rootfs.ext4 0 10000 | Out-Null
        $shuru = Get-Sum (Read-Model data/diff/deep/beside.idx)
        $shuru | Should -Not -Be $Expected.base
        (Get-ShuruChunkIndex data/diff/deep/beside.idx).BaseImagePath | Should -Be $Rootfs
        Get-Sum (Read-Served data/diff/deep/beside.idx) | Should -Be $Expected.base
    }

    It 'a checkpoint stores absolute parent and fallback paths where shuru stores them as given' {
        Invoke-Model session '' data/cas data/checkpoints/base.idx 0 checkpoint:data/diff/by-shuru.idx | Out-Null
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath data/checkpoints/base.idx -SocketPath (Join-Path $Dir 'a.sock')
        try { $null = $s | Save-ShuruCheckpoint data/diff/by-shurustore.idx } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Get-StoredPaths (Join-Path $Diff 'by-shuru.idx') | Should -Be @('data/checkpoints/base.idx', 'data/rootfs.ext4')
        Get-StoredPaths (Join-Path $Diff 'by-shurustore.idx') | Should -Be @($Indexes.base, $Rootfs)
    }

    It 'a parent cycle: shuru 0.1.2 never terminates, ShuruStore refuses it (IndexChainCycle)' {
        Invoke-Model derive data/checkpoints/base.idx data/diff/c1.idx data/diff/c2.idx data/rootfs.ext4 0 0 | Out-Null
        Invoke-Model derive data/checkpoints/base.idx data/diff/c2.idx data/diff/c1.idx data/rootfs.ext4 0 0 | Out-Null
        & /usr/bin/python3 $Model read data/diff/c1.idx data/cas (Join-Path $Dir 'cycle.img') 2>&1 | Out-Null
        $LASTEXITCODE | Should -Be 3 -Because 'the model stops where shuru would loop forever'
        Get-ErrorId { Get-ShuruChunkIndex data/diff/c1.idx -ErrorAction Stop } | Should -Be 'IndexChainCycle'
    }

    It 'a parent that exists but cannot be parsed: shuru truncates the chain, ShuruStore refuses it (IndexInvalid)' {
        [IO.File]::WriteAllBytes((Join-Path $Diff 'garbage.idx'), [byte[]](1..40))
        Invoke-Model derive data/checkpoints/base.idx data/diff/over-garbage.idx data/diff/garbage.idx data/rootfs.ext4 0 10000 | Out-Null
        Invoke-Model read data/diff/over-garbage.idx data/cas (Join-Path $Dir 'garbage.img') | Should -Match 'chain truncated'
        Get-ErrorId { Get-ShuruChunkIndex data/diff/over-garbage.idx -ErrorAction Stop } | Should -Be 'IndexInvalid'
    }

    It 'an index whose chain names no fallback: shuru ignores its rootfs argument, ShuruStore uses -BaseImagePath' {
        Invoke-Model derive data/checkpoints/base.idx data/diff/bare.idx '' '' 0 10000 | Out-Null
        Get-Sum (Read-Model data/diff/bare.idx) | Should -Not -Be $Expected.base
        Get-Sum (Read-Served data/diff/bare.idx -BaseImagePath $Rootfs) | Should -Be $Expected.base
    }

    It 'a missing chunk file: shuru reads zeros, ShuruStore fails the read (ChunkMissing), never zeros' {
        $cas2 = Join-Path $Diff 'cas2'
        Invoke-Model write data/rootfs.ext4 data/diff/cas2 data/diff/eager.idx | Out-Null
        $victim = Get-ChildItem (Join-Path $cas2 'chunks') -File | Select-Object -First 1
        Remove-Item $victim.FullName
        Invoke-Model read data/diff/eager.idx data/diff/cas2 (Join-Path $Dir 'holes.img') | Out-Null
        Get-Sum (Join-Path $Dir 'holes.img') | Should -Not -Be (Get-Sum $Rootfs) -Because 'shuru read the lost chunk as zeros'
        Get-ErrorId { Export-ShuruDisk data/diff/eager.idx $cas2 (Join-Path $Dir 'eager.raw') -ErrorAction Stop } | Should -Be 'ChunkMissing'
    }
}
