# The module as a user meets it: manifest, exports, help, output types and format views.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Cmdlets = @('Start-ShuruNbdServer', 'Get-ShuruNbdServer', 'Stop-ShuruNbdServer', 'Save-ShuruCheckpoint',
        'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk')
}

Describe 'The staged module' {
    It 'is a valid manifest that exports exactly the cmdlets and nothing else' {
        $m = Test-ModuleManifest $StagedModule
        $m.ExportedCmdlets.Keys | Sort-Object | Should -Be ($Cmdlets | Sort-Object)
        $m.ExportedFunctions.Count | Should -Be 0
        $m.ExportedAliases.Count | Should -Be 0
        $m.CompatiblePSEditions | Should -Be 'Core'
    }

    It 'is imported from out/ShuruStore, not from a build folder' {
        (Get-Module ShuruStore).ModuleBase | Should -Be (Split-Path $StagedModule)
    }

    It 'declares an output type for <_>' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer', 'Stop-ShuruNbdServer', 'Save-ShuruCheckpoint',
        'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk') {
        (Get-Command $_).OutputType.Count | Should -BeGreaterThan 0
    }
}

Describe 'Help' {
    It 'Get-Help <_> has a synopsis, described parameters and at least two examples' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer',
        'Stop-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk') {
        $help = Get-Help $_ -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match '^\s*Start-|^\s*Get-|^\s*Stop-|^\s*Save-|^\s*Compare-|^\s*Import-|^\s*Export-|^\s*Test-|^\s*Remove-'   # not the auto-generated syntax
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        foreach ($p in (Get-Command $_).Parameters.Keys | Where-Object { $_ -notin $common }) {
            $ph = $help.Parameters.Parameter | Where-Object Name -EQ $p
            $ph | Should -Not -BeNullOrEmpty -Because "parameter -$p needs help"
            ($ph.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "parameter -$p needs a description"
        }
    }

    It 'Get-Help about_ShuruStore explains chunks, indexes, chains, checkpoints and durability' {
        $about = Get-Help about_ShuruStore | Out-String
        foreach ($word in 'chunk', 'index', 'chain', 'checkpoint', 'FLUSH', 'StatePath') {
            $about | Should -Match $word
        }
    }
}

Describe 'Format views' {
    It 'shows a chunk store with a human size' {
        $dir = New-TestDirectory
        try {
            New-Item -ItemType Directory (Join-Path $dir 'cas/chunks') | Out-Null
            [System.IO.File]::WriteAllBytes((Join-Path $dir 'cas/chunks/1111111111111111111111111111111111111111111111111111111111111111'), [byte[]]::new(2048))
            $text = Get-ShuruChunkStore -CasPath (Join-Path $dir 'cas') | Format-Table | Out-String
            $text | Should -Match '2 KiB'
        } finally { Remove-Item -Recurse -Force $dir }
    }

    It 'formats byte counts in binary units' {
        [ShuruStore.Commands.ByteSize]::Format(4GB) | Should -Be '4 GiB'
        [ShuruStore.Commands.ByteSize]::Format(1536KB) | Should -Be '1.5 MiB'
        [ShuruStore.Commands.ByteSize]::Format(512) | Should -Be '512 B'
    }
}
