# Pipelines and positions as PowerShell users type them (issue #18, items 1, 3 and 6): objects
# bind to the parameters that carry their paths, and every positional form means one thing.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Cas = Join-Path $Dir 'cas'
    $script:Base = Join-Path $Dir 'base.raw'
    Invoke-Client truncate -s 4M $Base | Out-Null
    # Two checkpoints over the base image, each with its own pattern at 1 MiB.
    $s = Start-ShuruNbdServer -BaseImagePath $Base -CasPath $Cas -SocketPath (Join-Path $Dir 'seed.sock') -Name seed
    Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0xa1 1M 64k' | Out-Null
    $script:IndexA = ($s | Save-ShuruCheckpoint (Join-Path $Dir 'a.idx')).Path
    Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0xb2 1M 64k' | Out-Null
    $script:IndexB = ($s | Save-ShuruCheckpoint (Join-Path $Dir 'b.idx')).Path
    $s | Stop-ShuruNbdServer -Confirm:$false
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe '#18.1 Checkpoints from the pipeline start one server each, or none' {
    AfterEach { Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false }

    It 'Get-ShuruChunkIndex | Start-ShuruNbdServer serves the checkpoint, not the base image' {
        $sock = Join-Path $Dir 'one.sock'
        $s = Get-ShuruChunkIndex $IndexA | Start-ShuruNbdServer $Base $Cas -SocketPath $sock
        @($s).Count | Should -Be 1
        $s.BootIndexPath | Should -Be $IndexA
        Invoke-QemuIo -Uri $s.Uri -Commands 'read -P 0xa1 1M 64k' | Should -Match 'read 65536/65536'
    }

    It 'two checkpoints start two servers, each on its own socket in a socket directory' {
        $socks = New-Item -ItemType Directory (Join-Path $Dir 'socks')
        $servers = Get-ChildItem (Join-Path $Dir '*.idx') | Start-ShuruNbdServer -CasPath $Cas -SocketPath "$($socks.FullName)/"
        $servers | Should -HaveCount 2
        ($servers.BootIndexPath | Sort-Object) | Should -Be @($IndexA, $IndexB)
        foreach ($s in $servers) { $s.SocketPath | Should -Be (Join-Path $socks.FullName "$($s.Name).sock") }
        $b = $servers | Where-Object BootIndexPath -EQ $IndexB
        Invoke-QemuIo -Uri $b.Uri -Commands 'read -P 0xb2 1M 64k' | Should -Match 'read 65536/65536'
    }

    It 'an object that names no index starts nothing (IndexNotFound)' {
        { [pscustomobject]@{ Name = 'not an index' } | Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'bad.sock') } |
            Should -Throw -ErrorId 'IndexNotFound,ShuruStore.Commands.StartShuruNbdServerCommand'
        Get-ShuruNbdServer | Should -BeNullOrEmpty
        Test-Path (Join-Path $Dir 'bad.sock') | Should -BeFalse
    }

    It 'two checkpoints for one socket file start nothing (SocketPathForSeveralServers)' {
        { $IndexA, $IndexB | Start-ShuruNbdServer -CasPath $Cas -SocketPath (Join-Path $Dir 'shared.sock') } |
            Should -Throw -ErrorId 'SocketPathForSeveralServers,ShuruStore.Commands.StartShuruNbdServerCommand'
        Get-ShuruNbdServer | Should -BeNullOrEmpty
    }

    It 'a checkpoint that cannot start stops the ones started before it' {
        $socks = New-Item -ItemType Directory (Join-Path $Dir 'rollback')
        # The second server's socket path is taken by a file, which a server never replaces.
        Set-Content (Join-Path $socks.FullName 'shuru2.sock') 'not a socket'
        { $IndexA, $IndexB | Start-ShuruNbdServer -CasPath $Cas -SocketPath "$($socks.FullName)/" } |
            Should -Throw -ErrorId 'SocketPathNotSocket,ShuruStore.Commands.StartShuruNbdServerCommand'
        Get-ShuruNbdServer | Should -BeNullOrEmpty
        (Get-ChildItem $socks.FullName).Name | Should -Be 'shuru2.sock'
    }
}

Describe '#18.3 Stores bind by property name' {
    BeforeAll {
        $script:Flat = Start-ShuruNbdServer -ImagePath $Base -SocketPath (Join-Path $Dir 'f.sock') -ReadOnly -Name flat3
        $script:Cow = Start-ShuruNbdServer -CasPath $Cas -IndexPath $IndexA -SocketPath (Join-Path $Dir 'c.sock') -Name cow3
        $script:Fork = Start-ShuruNbdServer -CasPath $Cas -IndexPath $IndexB -SocketPath (Join-Path $Dir 'k.sock') -Name fork3
    }
    AfterAll { $Flat, $Cow, $Fork | Stop-ShuruNbdServer -Confirm:$false }

    It 'Get-ShuruChunkStore | Test-ShuruChunkStore checks the store' {
        Get-ShuruChunkStore $Cas | Test-ShuruChunkStore -Quiet | Should -BeTrue
    }

    It 'Get-ShuruChunkStore | Remove-ShuruUnusedChunk collects the store' {
        $r = Get-ShuruChunkStore $Cas | Remove-ShuruUnusedChunk -IndexPath $IndexA -WhatIf
        $r.CasPath | Should -Be $Cas
        $r.LiveServers | Sort-Object | Should -Be @('cow3', 'fork3')
    }

    It 'Get-ShuruNbdServer | Get-ShuruChunkStore describes each store once, skipping flat servers' {
        $stores = Get-ShuruNbdServer | Get-ShuruChunkStore -ErrorVariable err
        $err | Should -BeNullOrEmpty
        $stores.Path | Should -Be $Cas
    }
}

Describe '#18.6 Positional parameters mean one thing' {
    AfterEach { Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false }

    It 'Stop-ShuruNbdServer takes a name by position' {
        $null = Start-ShuruNbdServer -ImagePath $Base -SocketPath (Join-Path $Dir 'named.sock') -Name fork
        Stop-ShuruNbdServer fork -Confirm:$false
        Get-ShuruNbdServer | Should -BeNullOrEmpty
    }

    It 'Start-ShuruNbdServer image socket serves the image flat' {
        Push-Location $Dir
        try {
            $s = Start-ShuruNbdServer ./base.raw ./flat.sock
            $s.Mode | Should -Be 'Flat'
            $s.SocketPath | Should -Be (Join-Path $Dir 'flat.sock')
            Test-Path (Join-Path $Dir 'flat.sock') -PathType Container | Should -BeFalse
        } finally { Pop-Location }
    }

    It 'Start-ShuruNbdServer image store -SocketPath serves a chunk-store disk over the image' {
        $s = Start-ShuruNbdServer $Base $Cas -SocketPath (Join-Path $Dir 'cow.sock')
        $s.Mode | Should -Be 'ChunkStore'
        $s.BaseImagePath | Should -Be $Base
        $s.CasPath | Should -Be $Cas
    }

    It 'a base image without a store is an error, never a flat server writing into it' {
        { Start-ShuruNbdServer -BaseImagePath $Base -SocketPath (Join-Path $Dir 'x.sock') } |
            Should -Throw -ErrorId 'MissingMandatoryParameter,ShuruStore.Commands.StartShuruNbdServerCommand'
    }
}
