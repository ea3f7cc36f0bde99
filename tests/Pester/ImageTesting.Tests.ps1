# Testing a VM image with Pester, the pattern about_ShuruStore documents (TESTING VM IMAGES WITH
# PESTER): a server on a throw-away copy-on-write layer in TestDrive, started in BeforeAll and
# stopped in AfterAll. This file uses it as a user would, and checks what it promises.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Golden = New-Ext4Image -Path (Join-Path (New-TestDirectory) 'golden.ext4') -SizeMiB 16
    $script:GoldenHash = (Get-FileHash $Golden).Hash

    $vm = Start-ShuruNbdServer $Golden TestDrive:/cas -SocketPath TestDrive:/ -WarningAction Ignore
}
AfterAll {
    $vm | Stop-ShuruNbdServer
    Remove-Item -Recurse -Force (Split-Path $Golden) -ErrorAction SilentlyContinue
}

Describe 'A VM image under test' {
    It 'is served as it is' {
        Invoke-Client qemu-img compare -f raw -F raw $Golden $vm.Uri | Should -Match 'identical'
    }

    It 'takes the writes of a test in the throw-away layer, not in the image' {
        Invoke-QemuIo -Uri $vm.Uri -Commands 'write -P 0xee 0 1M', 'flush' | Out-Null
        Invoke-QemuIo -Uri $vm.Uri -Commands 'read -P 0xee 0 1M' | Should -Match 'read 1048576/1048576'
        (Get-FileHash $Golden).Hash | Should -Be $GoldenHash
        $vm.SocketPath | Should -BeLike "$((Get-PSDrive TestDrive).Root)*"
        $vm.CasPath | Should -BeLike "$((Get-PSDrive TestDrive).Root)*"
    }
}

Describe 'The pattern''s cleanup' {
    It 'leaves no server, socket or layer behind once the Pester run is over, even when a test fails' {
        $work = New-TestDirectory
        try {
            $suite = Join-Path $work 'Image.Tests.ps1'
            $record = Join-Path $work 'record.txt'
            Set-Content $suite @"
BeforeAll {
    `$vm = Start-ShuruNbdServer '$Golden' TestDrive:/cas -SocketPath TestDrive:/ -WarningAction Ignore
}
AfterAll { `$vm | Stop-ShuruNbdServer }
Describe 'image' {
    It 'writes and fails' {
        Set-Content '$record' `$vm.SocketPath, (Get-PSDrive TestDrive).Root
        & qemu-io -f raw -c 'write -P 0x11 0 64k' `$vm.Uri | Out-Null
        `$false | Should -BeTrue
    }
}
"@
            $p = Start-ModulePwsh -Script (
                "Import-Module '$(Get-Module Pester | Select-Object -ExpandProperty Path)'; " +
                "`$r = Invoke-Pester -Path '$suite' -PassThru -Output None; " +
                "'failed=' + `$r.FailedCount; 'servers=' + @(Get-ShuruNbdServer).Count")
            $output = $p.StandardOutput.ReadToEnd()
            $p.WaitForExit()
            $output | Should -Match 'failed=1' -Because $p.StandardError.ReadToEnd()
            $output | Should -Match 'servers=0'
            $socket, $testDrive = Get-Content $record
            Test-Path $socket | Should -BeFalse
            Test-Path $testDrive | Should -BeFalse
            (Get-FileHash $Golden).Hash | Should -Be $GoldenHash
        } finally { Remove-Item -Recurse -Force $work }
    }
}
