# Serving disks, as a user's setup script would: start, describe with real clients, stop.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Image = New-Ext4Image -Path (Join-Path $Dir 'rootfs.ext4') -SizeMiB 16
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'Start-ShuruNbdServer with a flat image' {
    BeforeAll {
        $script:Flat = Join-Path $Dir 'flat.img'
        Copy-Item $Image $Flat
        $script:Server = Start-ShuruNbdServer -ImagePath $Flat -SocketPath (Join-Path $Dir 'flat.sock') -Name flat
    }
    AfterAll { $Server | Stop-ShuruNbdServer -Confirm:$false }

    It 'returns a handle with the URI a VM uses' {
        $Server | Should -BeOfType ShuruStore.Commands.ShuruNbdServer
        $Server.Uri | Should -Be "nbd+unix:///export?socket=$(Join-Path $Dir 'flat.sock')"
        $Server.Mode | Should -Be 'Flat'
        $Server.DiskSize | Should -Be 16MB
        $Server.State | Should -Be 'Running'
    }

    It 'is described by nbdinfo' {
        $info = Invoke-Client nbdinfo --json $Server.Uri | ConvertFrom-Json
        $info.exports[0].'export-size' | Should -Be 16MB
        $info.exports[0].'can_flush' | Should -BeTrue
    }

    It 'serves the exact bytes of the image (qemu-img compare)' {
        Invoke-Client qemu-img compare -f raw -F raw $Flat $Server.Uri | Should -Match 'identical'
    }

    It 'counts connections and bytes' {
        Invoke-Client nbdcopy $Server.Uri (Join-Path $Dir 'copy.img') | Out-Null
        $Server.TotalConnections | Should -BeGreaterThan 0
        $Server.BytesRead | Should -BeGreaterOrEqual 16MB
    }

    It 'socket is owner-only' {
        (Get-Item (Join-Path $Dir 'flat.sock')).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
    }
}

Describe 'Session tracking' {
    BeforeAll {
        $script:A = Start-ShuruNbdServer -ImagePath $Image -ReadOnly -SocketPath (Join-Path $Dir 'a.sock') -Name web-a
        $script:B = Start-ShuruNbdServer -ImagePath $Image -ReadOnly -SocketPath (Join-Path $Dir 'b.sock') -Name web-b
    }
    AfterAll { Stop-ShuruNbdServer -Name 'web-*' -Confirm:$false }

    It 'Get-ShuruNbdServer finds servers by wildcard' {
        (Get-ShuruNbdServer -Name 'web-*').Name | Sort-Object | Should -Be @('web-a', 'web-b')
        (Get-ShuruNbdServer web-a).Uri | Should -Be $A.Uri
    }

    It 'reports a name that matches nothing as ServerNotFound' {
        Get-ShuruNbdServer -Name nosuch -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^ServerNotFound'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses a second server with the same name' {
        { Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'c.sock') -Name web-a } |
            Should -Throw -ErrorId 'ServerNameInUse,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'refuses a socket a live server listens on (SocketInUse)' {
        { Start-ShuruNbdServer -ImagePath $Image -SocketPath $A.SocketPath -Name other } |
            Should -Throw -ErrorId 'SocketInUse,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'never replaces a path that is not a socket (SocketPathNotSocket)' {
        $file = Join-Path $Dir 'not-a-socket'
        Set-Content $file 'precious'
        { Start-ShuruNbdServer -ImagePath $Image -SocketPath $file -Name other } |
            Should -Throw -ErrorId 'SocketPathNotSocket,ShuruStore.Commands.StartShuruNbdServerCommand'
        Get-Content $file | Should -Be 'precious'
    }

    It 'a read-only export refuses writes' {
        { Invoke-QemuIo -Uri $A.Uri -Commands 'write -P 0x11 0 4k' } | Should -Throw
    }

    It '-WhatIf starts nothing' {
        $sock = Join-Path $Dir 'whatif.sock'
        Start-ShuruNbdServer -ImagePath $Image -SocketPath $sock -Name whatif -WhatIf | Should -BeNullOrEmpty
        Test-Path $sock | Should -BeFalse
        Get-ShuruNbdServer -Name whatif -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'Stop-ShuruNbdServer' {
    It 'stops by pipeline, removes the socket and forgets the server' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'stop.sock') -Name stopper
        Test-Path $s.SocketPath | Should -BeTrue
        $s | Stop-ShuruNbdServer -Confirm:$false
        Test-Path $s.SocketPath | Should -BeFalse
        $s.State | Should -Be 'Stopped'
        Get-ShuruNbdServer -Name stopper -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It '-WhatIf leaves the server running' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'keep.sock') -Name keeper
        Stop-ShuruNbdServer -Name keeper -WhatIf
        $s.State | Should -Be 'Running'
        Stop-ShuruNbdServer -All -Confirm:$false
        $s.State | Should -Be 'Stopped'
    }

    It 'a handle is IDisposable for try/finally scripts' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'disp.sock') -Name disposer
        try { Invoke-Client nbdinfo --size $s.Uri | Should -Match '16777216' } finally { $s.Dispose() }
        Test-Path $s.SocketPath | Should -BeFalse
    }

    It 'resolves relative paths against $PWD, not the process directory' {
        Push-Location $Dir
        try {
            $s = Start-ShuruNbdServer -ImagePath ./rootfs.ext4 -SocketPath ./rel.sock -Name relative -ReadOnly
            $s.SocketPath | Should -Be (Join-Path $Dir 'rel.sock')
            $s | Stop-ShuruNbdServer -Confirm:$false
        } finally { Pop-Location }
    }

    It 'reports a missing image as ImageNotFound' {
        { Start-ShuruNbdServer -ImagePath (Join-Path $Dir 'nope.img') -SocketPath (Join-Path $Dir 'n.sock') } |
            Should -Throw -ErrorId 'ImageNotFound,ShuruStore.Commands.StartShuruNbdServerCommand'
    }

    It 'refuses a path on a non-file-system provider' {
        { Start-ShuruNbdServer -ImagePath 'Env:/PATH' -SocketPath (Join-Path $Dir 'e.sock') } |
            Should -Throw -ErrorId 'PathNotFileSystem,ShuruStore.Commands.StartShuruNbdServerCommand'
    }
}
