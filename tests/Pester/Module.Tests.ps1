# The module as a user meets it: manifest, exports, help, output types and format views.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Cmdlets = @('Start-ShuruNbdServer', 'Get-ShuruNbdServer', 'Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint',
        'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint')
}

Describe 'The staged module' {
    It 'is a valid manifest that exports exactly the cmdlets and nothing else' {
        $m = Test-ModuleManifest $StagedModule
        $m.ExportedCmdlets.Keys | Sort-Object | Should -Be ($Cmdlets | Sort-Object)
        $m.ExportedFunctions.Count | Should -Be 0
        $m.ExportedAliases.Count | Should -Be 0
        $m.CompatiblePSEditions | Should -Be 'Core'
    }

    It '#18.7 requires the PowerShell whose .NET runtime the module is built for' {
        # PowerShell 7.4 runs on .NET 8, 7.5 on .NET 9, 7.6 on .NET 10.
        $pwshFor = @{ 8 = [version]'7.4'; 9 = [version]'7.5'; 10 = [version]'7.6' }
        $assembly = [ShuruStore.Commands.ShuruNbdServer].Assembly
        $framework = $assembly.GetCustomAttributes([System.Runtime.Versioning.TargetFrameworkAttribute], $false)[0].FrameworkName
        $framework -match 'Version=v(\d+)\.' | Should -BeTrue -Because "$framework names a .NET version"
        $needed = $pwshFor[[int]$Matches[1]]
        $needed | Should -Not -BeNullOrEmpty -Because "the table knows the PowerShell of $framework"
        [version](Test-ModuleManifest $StagedModule).PowerShellVersion | Should -BeGreaterOrEqual $needed
    }

    It '#18.7 tells what changed in this version' {
        $notes = (Test-ModuleManifest $StagedModule).ReleaseNotes
        $notes | Should -Match ([regex]::Escape((Test-ModuleManifest $StagedModule).Version.ToString()))
    }

    It '#18.7 names its project, licence and updatable help' -Skip {
        # Waiting for the project's public address and licence, which this repository does not state yet.
        $data = (Test-ModuleManifest $StagedModule).PrivateData.PSData
        $data.ProjectUri, $data.LicenseUri | Should -Not -BeNullOrEmpty
        (Test-ModuleManifest $StagedModule).HelpInfoUri | Should -Not -BeNullOrEmpty
    }

    It 'is imported from out/ShuruStore, not from a build folder' {
        (Get-Module ShuruStore).ModuleBase | Should -Be (Split-Path $StagedModule)
    }

    It 'declares an output type for <_>' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer', 'Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint',
        'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint') {
        (Get-Command $_).OutputType.Count | Should -BeGreaterThan 0
    }
}

Describe 'Help' {
    It 'Get-Help <_> has a synopsis, described parameters and at least two examples' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer',
        'Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'Get-ShuruChunkStore',
        'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint') {
        $help = Get-Help $_ -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match '^\s*Publish-|^\s*Start-|^\s*Get-|^\s*Stop-|^\s*Save-|^\s*Compare-|^\s*Import-|^\s*Export-|^\s*Test-|^\s*Remove-'   # not the auto-generated syntax
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        foreach ($p in (Get-Command $_).Parameters.Keys | Where-Object { $_ -notin $common }) {
            $ph = $help.Parameters.Parameter | Where-Object Name -EQ $p
            $ph | Should -Not -BeNullOrEmpty -Because "parameter -$p needs help"
            ($ph.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "parameter -$p needs a description"
        }
    }

    It '#18.9 shows the defaults the cmdlets really use' {
        (Get-Help Start-ShuruNbdServer -Parameter DirtyMemoryLimit).defaultValue | Should -Be '256MB'
        (Get-Help Test-ShuruChunkStore -Parameter GracePeriod).defaultValue | Should -Be '01:00:00'
        (Get-Help Remove-ShuruUnusedChunk -Parameter GracePeriod).defaultValue | Should -Be '01:00:00'
        (Get-Help Wait-ShuruNbdServer -Parameter Timeout).defaultValue | Should -Be '-1'
    }

    It '#18.9 <_> never shows None for a parameter that has a default' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer',
        'Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex',
        'Get-ShuruChunkStore', 'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint') {
        $cmd = Get-Command $_
        $fresh = [Activator]::CreateInstance($cmd.ImplementingType)
        foreach ($p in $cmd.Parameters.Values) {
            $property = $cmd.ImplementingType.GetProperty($p.Name)
            if (-not $property -or $p.ParameterType -eq [switch]) { continue }
            $value = $property.GetValue($fresh)
            if ($null -eq $value -or ($value -is [ValueType] -and $value -eq [Activator]::CreateInstance($value.GetType()))) { continue }
            (Get-Help $_ -Parameter $p.Name).defaultValue | Should -Not -Be 'None' -Because "-$($p.Name) defaults to $value"
        }
    }

    It '#18.9 <_> lists -WhatIf and -Confirm in every syntax block' -ForEach @('Start-ShuruNbdServer', 'Stop-ShuruNbdServer',
        'Save-ShuruCheckpoint', 'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint') {
        foreach ($item in (Get-Help $_).syntax.syntaxItem) {
            $item.parameter.name | Should -Contain 'WhatIf'
            $item.parameter.name | Should -Contain 'Confirm'
        }
        (Get-Help $_ -Parameter WhatIf).description | Out-String | Should -Match 'what would happen'
    }

    It '#18.9 <_> lists parameters in the order Get-Command -Syntax does' -ForEach @('Start-ShuruNbdServer', 'Get-ShuruNbdServer',
        'Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex',
        'Get-ShuruChunkStore', 'Import-ShuruDisk', 'Export-ShuruDisk', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Publish-ShuruCheckpoint') {
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters
        $sets = (Get-Command $_).ParameterSets
        $items = @((Get-Help $_).syntax.syntaxItem)
        $items | Should -HaveCount $sets.Count
        for ($i = 0; $i -lt $sets.Count; $i++) {
            $expected = [regex]::Matches($sets[$i].ToString(), '(?<=^|[\s\[])-(\w+)') | ForEach-Object { $_.Groups[1].Value } | Where-Object { $_ -notin $common }
            @($items[$i].parameter.name) | Should -Be @($expected) -Because "syntax block $i of $_ ($($sets[$i].Name))"
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

Describe '#18.10 One name for the base image' {
    It 'is BaseImagePath on servers, indexes, imports and parameters, with shuru''s names as aliases' {
        (Get-Command Start-ShuruNbdServer).Parameters.BaseImagePath.Aliases | Should -Contain 'RootfsPath'
        (Get-Command Import-ShuruDisk).Parameters.BaseImagePath.Aliases | Should -Contain 'FallbackPath'
        foreach ($type in 'ShuruNbdServer', 'ShuruChunkIndex', 'ShuruImportResult') {
            ([type]"ShuruStore.Commands.$type").GetProperty('BaseImagePath') | Should -Not -BeNullOrEmpty -Because "$type names the base image BaseImagePath"
        }
        (Get-TypeData ShuruStore.Commands.ShuruNbdServer).Members['RootfsPath'].ReferencedMemberName | Should -Be 'BaseImagePath'
        (Get-TypeData ShuruStore.Commands.ShuruChunkIndex).Members['FallbackPath'].ReferencedMemberName | Should -Be 'BaseImagePath'
    }
}
