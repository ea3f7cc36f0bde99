@{
    RootModule           = 'ShuruStore.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f3c1e-8d2a-4c57-9a4e-2f6d1e0b7c93'
    Author               = 'ShuruStore developers'
    CompanyName          = 'ShuruStore'
    Copyright            = '(c) ShuruStore developers. All rights reserved.'
    Description          = 'Serves virtual-machine disks over NBD from a content-addressed, copy-on-write chunk store compatible with shuru-store 0.1.2.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('ShuruStore.Format.ps1xml')
    CmdletsToExport      = @(
        'Start-ShuruNbdServer'
        'Get-ShuruNbdServer'
        'Stop-ShuruNbdServer'
        'Save-ShuruCheckpoint'
        'Get-ShuruChunkIndex'
        'Compare-ShuruChunkIndex'
        'Get-ShuruChunkStore'
        'Import-ShuruDisk'
        'Export-ShuruDisk'
        'Test-ShuruChunkStore'
        'Remove-ShuruUnusedChunk'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('NBD', 'VM', 'Disk', 'Storage', 'ContentAddressed', 'Linux')
            ProjectUri = ''
        }
    }
}
