# Tables that show what people need, with columns they can sort and filter on (issue #18, item 5).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Image = Join-Path $Dir 'disk.raw'
    Invoke-Client truncate -s 4M $Image | Out-Null
    [xml] $script:Formats = Get-Content -Raw (Join-Path (Get-Module ShuruStore).ModuleBase 'ShuruStore.Format.ps1xml')
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe '#18.5 Every table column is a property' {
    It 'the <_> table''s columns are properties or alias properties of its type' -ForEach @(
        'ShuruNbdServer', 'ShuruChunkIndex', 'ShuruChunkEntry', 'ShuruIndexDifference', 'ShuruChunkStore',
        'ShuruImportResult', 'ShuruExportResult', 'ShuruStoreProblem', 'ShuruStoreTestResult', 'ShuruCollectionResult',
        'ShuruPublishResult', 'ShuruRemoteStoreTestResult', 'ShuruRemoteProblem', 'ShuruRemoteCollectionResult') {
        $typeName = "ShuruStore.Commands.$_"
        $view = $Formats.SelectSingleNode("//View[ViewSelectedBy/TypeName='$typeName' and TableControl]")
        $view | Should -Not -BeNullOrEmpty -Because "$_ has a table view"
        $typeData = Get-TypeData $typeName
        $aliases = if ($typeData) { @($typeData.Members.Keys) } else { @() }
        foreach ($label in $view.TableControl.TableHeaders.TableColumnHeader.Label) {
            ($null -ne ([type]$typeName).GetProperty($label)) -or ($label -in $aliases) |
                Should -BeTrue -Because "the column '$label' of $_ must name a property"
        }
    }

    It 'servers sort and filter by the columns the table shows, under StrictMode' {
        $a = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'a.sock') -Name view-a
        $b = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'b.sock') -Name view-b
        try {
            Invoke-QemuIo -Uri $b.Uri -Commands 'read 0 64k' | Out-Null
            Set-StrictMode -Version Latest
            (Get-ShuruNbdServer | Sort-Object Read -Descending | Select-Object -First 1).Name | Should -Be 'view-b'
            $b.Read | Should -Be $b.BytesRead
            $b.Clients | Should -Be $b.Connections
            $b.Written | Should -Be 0
        } finally {
            $a, $b | Stop-ShuruNbdServer -Confirm:$false
        }
    }

    It 'indexes are found by the Name the table shows' {
        $cas = Join-Path $Dir 'cas'
        $s = Start-ShuruNbdServer -RootfsPath $Image -CasPath $cas -SocketPath (Join-Path $Dir 'i.sock')
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'write -P 0x5a 0 64k' | Out-Null
            $null = $s | Save-ShuruCheckpoint (Join-Path $Dir 'a.idx')
            $null = $s | Save-ShuruCheckpoint (Join-Path $Dir 'b.idx')
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Set-StrictMode -Version Latest
        $found = Get-ShuruChunkIndex (Join-Path $Dir '*.idx') | Where-Object Name -EQ 'a.idx'
        $found.Path | Should -Be (Join-Path $Dir 'a.idx')
        $found.Chunks | Should -Be 64
        $found.SetHere | Should -Be 1
        $store = Get-ShuruChunkStore $cas
        $store.Size | Should -Be 64KB
        $store.Chunks | Should -Be 1
    }
}

Describe '#18.5 The server table shows the socket path whole' {
    It 'a socket in a test directory fits a 100-column window' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'a.sock') -ReadOnly
        try {
            $table = $s | Format-Table | Out-String -Width 100
            $table | Should -Match ([regex]::Escape($s.SocketPath))
            $table | Should -Not -Match '…'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'a socket path too long for the window wraps, and is never cut' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'a-socket-name-long-enough-to-wrap-in-eighty-columns.sock') -ReadOnly
        try {
            $table = $s | Format-Table | Out-String -Width 80
            $table | Should -Not -Match '…'
            $table -replace '\s', '' | Should -Match ([regex]::Escape($s.SocketPath))
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }
}
