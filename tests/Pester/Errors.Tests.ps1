# Every documented error: a stable ErrorId, the right category, a message that names the file.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Cas = Join-Path $Dir 'cas'
    $script:Base = Join-Path $Dir 'base.img'
    Invoke-Client truncate -s 1M $Base | Out-Null

    # Writes an index in shuru's layout: u64 size, u64 count, parent, fallback, entries.
    function New-IndexBytes([long] $Size, [string] $Parent = '', [string] $Fallback = '', [string[]] $Entries) {
        $ms = [System.IO.MemoryStream]::new(); $w = [System.IO.BinaryWriter]::new($ms)
        $w.Write([uint64]$Size); $w.Write([uint64]$Entries.Count)
        foreach ($p in $Parent, $Fallback) { $b = [Text.Encoding]::UTF8.GetBytes($p); $w.Write([uint32]$b.Length); $w.Write($b) }
        foreach ($e in $Entries) { $b = [Text.Encoding]::UTF8.GetBytes($e); $w.Write([uint32]$b.Length); $w.Write($b) }
        $w.Flush(); $ms.ToArray()
    }
    function Set-Index([string] $Path, [byte[]] $Bytes) { [System.IO.File]::WriteAllBytes($Path, $Bytes); $Path }
    $script:Zero16 = @('ZERO') * 16
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'Index errors' {
    It 'a garbage index is IndexInvalid (InvalidData) and names the file' {
        $p = Set-Index (Join-Path $Dir 'garbage.idx') ([byte[]](1..40))
        Get-ShuruChunkIndex $p -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^IndexInvalid'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidData'
        $err[0].Exception.Message | Should -Match ([regex]::Escape($p))
    }

    It 'a hash that smuggles a path is IndexInvalid' {
        $entries = @('../../../../etc/passwd' + ('a' * 42)) + (@('ZERO') * 15)
        $p = Set-Index (Join-Path $Dir 'escape.idx') (New-IndexBytes -Size 1MB -Entries $entries)
        { Start-ShuruNbdServer -CasPath $Cas -IndexPath $p -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'IndexInvalid,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'an entry count that does not match the size is IndexInvalid' {
        $p = Set-Index (Join-Path $Dir 'count.idx') (New-IndexBytes -Size 2MB -Entries $Zero16)
        { Get-ShuruChunkIndex $p -ErrorAction Stop } | Should -Throw -ErrorId 'IndexInvalid,ShuruStore.Commands.GetShuruChunkIndexCommand'
    }

    It 'an index that is its own parent is IndexChainCycle' {
        $p = Join-Path $Dir 'self.idx'
        Set-Index $p (New-IndexBytes -Size 1MB -Parent $p -Entries $Zero16) | Out-Null
        { Get-ShuruChunkIndex $p -ErrorAction Stop } | Should -Throw -ErrorId 'IndexChainCycle,ShuruStore.Commands.GetShuruChunkIndexCommand'
        { Start-ShuruNbdServer -CasPath $Cas -IndexPath $p -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'IndexChainCycle,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'a missing parent is ParentIndexMissing' {
        $p = Set-Index (Join-Path $Dir 'orphan.idx') (New-IndexBytes -Size 1MB -Parent (Join-Path $Dir 'gone.idx') -Entries $Zero16)
        { Start-ShuruNbdServer -CasPath $Cas -IndexPath $p -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'ParentIndexMissing,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'a missing index file is a non-terminating ObjectNotFound per item' {
        $good = Set-Index (Join-Path $Dir 'good.idx') (New-IndexBytes -Size 1MB -Entries $Zero16)
        $out = Get-ShuruChunkIndex -Path (Join-Path $Dir 'missing.idx'), $good -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -HaveCount 1
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'Start errors' {
    It 'a missing base image is BaseImageMissing' {
        { Start-ShuruNbdServer -RootfsPath (Join-Path $Dir 'nobase.img') -CasPath $Cas -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'BaseImageMissing,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'an index whose fallback base is gone is BaseImageMissing' {
        $p = Set-Index (Join-Path $Dir 'nofallback.idx') (New-IndexBytes -Size 1MB -Fallback (Join-Path $Dir 'vanished.img') -Entries $Zero16)
        { Start-ShuruNbdServer -CasPath $Cas -IndexPath $p -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'BaseImageMissing,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'a socket path in a missing directory is SocketPathInvalid' {
        { Start-ShuruNbdServer -ImagePath $Base -SocketPath (Join-Path $Dir 'no/such/dir.sock') } |
            Should -Throw -ErrorId 'SocketPathInvalid,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'a live-state file of another disk is StateInvalid' {
        $state = Join-Path $Dir 'junk.state'
        Set-Content $state 'this is not a state file'
        { Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'x.sock') -StatePath $state } |
            Should -Throw -ErrorId 'StateInvalid,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'a live-state file another running disk holds is StateInUse' {
        $state = Join-Path $Dir 'held.state'
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'held.sock') -StatePath $state
        try {
            { Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'held2.sock') -StatePath $state } |
                Should -Throw -ErrorId 'StateInUse,ShuruStore.Commands.StartShuruNbdServerCommand'
            Test-Path (Join-Path $Dir 'held2.sock') | Should -BeFalse
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'a server that was stopped cannot be checkpointed (ServerStopped)' {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'stopped.sock')
        $s | Stop-ShuruNbdServer -Confirm:$false
        $s | Save-ShuruCheckpoint (Join-Path $Dir 'late.idx') -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^ServerStopped'
    }

    It 'a flat server has no checkpoints (InvalidArgument)' {
        $s = Start-ShuruNbdServer -ImagePath $Base -SocketPath (Join-Path $Dir 'flat.sock')
        try {
            $s | Save-ShuruCheckpoint (Join-Path $Dir 'flat.idx') -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Match '^InvalidArgument'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'Get-ShuruChunkStore on a missing directory is StoreInvalid' {
        Get-ShuruChunkStore -CasPath (Join-Path $Dir 'nostore') -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^StoreInvalid'
    }
}

Describe '#18.10 A directory given as an image' {
    It '<Command> <Parameter> says it is a directory, with the ErrorId of a missing image (<Id>)' -ForEach @(
        @{ Command = 'Import-ShuruDisk'; Parameter = '-Path'; Id = 'ImageNotFound'; Run = { Import-ShuruDisk -Path $Dir -CasPath $Cas -ErrorAction Stop } }
        @{ Command = 'Start-ShuruNbdServer'; Parameter = '-ImagePath'; Id = 'ImageNotFound'; Run = { Start-ShuruNbdServer -ImagePath $Dir -SocketPath (Join-Path $Dir 'd.sock') } }
        @{ Command = 'Start-ShuruNbdServer'; Parameter = '-BaseImagePath'; Id = 'BaseImageMissing'; Run = { Start-ShuruNbdServer -BaseImagePath $Dir -CasPath $Cas -SocketPath (Join-Path $Dir 'd.sock') } }
    ) {
        $e = { & $Run } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be "$Id,ShuruStore.Commands.$($Command -replace '-', '')Command"
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e.Exception.Message | Should -Match "is a directory, not an image file"
        $e.Exception.Message | Should -Not -Match 'does not exist'
        Test-Path (Join-Path $Dir 'd.sock') | Should -BeFalse
    }
}

Describe '#18 Errors of pipelines and parameter sets' {
    It 'the base image named twice is BaseImageGivenTwice (InvalidArgument)' {
        $e = { Start-ShuruNbdServer $Base $Cas -BaseImagePath $Base -SocketPath (Join-Path $Dir 'twice.sock') } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be 'BaseImageGivenTwice,ShuruStore.Commands.StartShuruNbdServerCommand'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'a checkpoint from the pipeline that does not exist is IndexNotFound (ObjectNotFound), and nothing starts' {
        $missing = Join-Path $Dir 'never-saved.idx'
        $e = { $missing | Start-ShuruNbdServer -CasPath $Cas -SocketPath (Join-Path $Dir 'never.sock') } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be 'IndexNotFound,ShuruStore.Commands.StartShuruNbdServerCommand'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e.Exception.Message | Should -Match ([regex]::Escape($missing))
        Get-ShuruNbdServer | Should -BeNullOrEmpty
    }

    It 'several checkpoints for one socket are SocketPathForSeveralServers (InvalidArgument)' {
        $idx = Set-Index (Join-Path $Dir 'one.idx') (New-IndexBytes -Size 1MB -Entries $Zero16)
        $e = { $idx, $idx | Start-ShuruNbdServer -CasPath $Cas -SocketPath (Join-Path $Dir 'one.sock') } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be 'SocketPathForSeveralServers,ShuruStore.Commands.StartShuruNbdServerCommand'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -Match "directory ending in '/'"
    }

    It 'one -Name for several checkpoints is ServerNameInUse (ResourceExists), and nothing starts' {
        $idx = Set-Index (Join-Path $Dir 'named.idx') (New-IndexBytes -Size 1MB -Entries $Zero16)
        $socks = New-Item -ItemType Directory (Join-Path $Dir 'named-socks')
        $e = { $idx, $idx | Start-ShuruNbdServer -CasPath $Cas -SocketPath "$($socks.FullName)/" -Name same } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be 'ServerNameInUse,ShuruStore.Commands.StartShuruNbdServerCommand'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-ShuruNbdServer | Should -BeNullOrEmpty
    }

    It 'an index name that matches no file is IndexNotFound (ObjectNotFound) for <Command>' -ForEach @(
        @{ Command = 'Test-ShuruChunkStore'; Run = { Test-ShuruChunkStore $Cas -IndexPath (Join-Path $Dir 'none-*.idx') } }
        @{ Command = 'Test-ShuruChunkStore'; Run = { Test-ShuruChunkStore $Cas -LiteralIndexPath (Join-Path $Dir 'none.idx') } }
        @{ Command = 'Remove-ShuruUnusedChunk'; Run = { Remove-ShuruUnusedChunk $Cas -LiteralIndexPath (Join-Path $Dir 'none.idx') -WhatIf } }
    ) {
        $null = New-Item -ItemType Directory -Force (Join-Path $Cas 'chunks')
        $e = { & $Run } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -Be "IndexNotFound,ShuruStore.Commands.$($Command -replace '-', '')Command"
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}
