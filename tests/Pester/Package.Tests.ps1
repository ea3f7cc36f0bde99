# The module as PowerShell users install it: build.ps1 -Task Package publishes it into a local
# PSResourceGet repository, and Install-PSResource installs it from there into a clean module path.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Repository = Join-Path $RepoRoot 'out/repository'
    $script:Version = (Test-ModuleManifest $StagedModule).Version
}

Describe 'build.ps1 -Task Package' {
    It 'publishes the module''s .nupkg into out/repository' {
        $pwsh = [Environment]::ProcessPath
        $pwshArgs = @()
        if ((Split-Path $pwsh -Leaf) -match '^dotnet') { $pwshArgs += Join-Path $PSHOME 'pwsh.dll' }
        $log = & $pwsh @pwshArgs -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'build.ps1') -Task Package -NoBuild 2>&1 | Out-String
        $LASTEXITCODE | Should -Be 0 -Because $log
        Test-Path (Join-Path $Repository "ShuruStore.$Version.nupkg") | Should -BeTrue
    }

    It 'installs with Install-PSResource into a clean module path and imports by name' {
        $cleanHome = New-TestDirectory
        # .NET reports a missing ~/.config as no folder, and NuGet would then write its settings
        # under the current directory.
        $null = New-Item -ItemType Directory (Join-Path $cleanHome '.config')
        try {
            # A HOME of its own: an empty user module path and no registered repositories.
            $p = Start-ModulePwsh -NoImport -WorkingDirectory $cleanHome -Environment @{ HOME = $cleanHome; XDG_DATA_HOME = $null; PSModulePath = $null } -Script (
                "Register-PSResourceRepository -Name ShuruStoreLocal -Uri '$Repository' -Trusted; " +
                "Install-PSResource ShuruStore -Repository ShuruStoreLocal -Version '$Version'; " +
                "Import-Module ShuruStore -ErrorAction Stop; " +
                "(Get-Module ShuruStore).ModuleBase; (Get-Command -Module ShuruStore).Count; " +
                "(Get-Help Start-ShuruNbdServer).Synopsis")
            $output = $p.StandardOutput.ReadToEnd()
            $errors = $p.StandardError.ReadToEnd()
            $p.WaitForExit()
            $p.ExitCode | Should -Be 0 -Because $errors
            $lines = @($output -split "`n" | ForEach-Object Trim | Where-Object { $_ })
            $lines[0] | Should -Be (Join-Path $cleanHome ".local/share/powershell/Modules/ShuruStore/$Version")
            [int]$lines[1] | Should -Be @((Test-ModuleManifest $StagedModule).ExportedCmdlets.Keys).Count
            $lines[2] | Should -Be 'Serves a virtual-machine disk over NBD on a Unix socket.'
        } finally { Remove-Item -Recurse -Force $cleanHome -ErrorAction SilentlyContinue }
    }
}
