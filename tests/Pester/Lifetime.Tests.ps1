# How long servers live, as PowerShell users meet it (issue #18, items 2 and 8): reloading the
# module, closing the terminal, thread jobs; and Wait-ShuruNbdServer, which waits for the end.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:Image = Join-Path $Dir 'disk.raw'
    Invoke-Client truncate -s 4M $Image | Out-Null

    # A separate pwsh serving $Image at $Socket with SIGHUP treated as -HangUp says; returns the
    # process once it has printed its id (in .ChildPid), for the test to signal.
    function Start-SignalledServer([string] $Socket, [string] $HangUp, [hashtable] $Environment = @{}) {
        $p = Start-ModulePwsh -HangUp $HangUp -Environment $Environment -Script (
            "`$s = Start-ShuruNbdServer -ImagePath '$Image' -SocketPath '$Socket'; " +
            "[Console]::Out.WriteLine('pid ' + `$PID); [Console]::Out.Flush(); Start-Sleep -Seconds 600")
        $line = $p.StandardOutput.ReadLine()
        if ($line -notmatch '^pid \d+$') { $p.Kill($true); throw "The server's pwsh failed: $($p.StandardError.ReadToEnd())" }
        $p | Add-Member -NotePropertyName ChildPid -NotePropertyValue ([int]($line -split ' ')[1]) -PassThru
    }
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe '#18.2 Reloading the module' {
    It 'Import-Module ShuruStore -Force keeps the servers running and listed' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'reload.sock') -Name reload
        Import-Module $StagedModule -Force
        $s.State | Should -Be 'Running'
        (Get-ShuruNbdServer -Name reload).Uri | Should -Be $s.Uri
        Invoke-Client nbdinfo --size $s.Uri | Should -Match '4194304'
        Stop-ShuruNbdServer -Name reload
        Test-Path $s.SocketPath | Should -BeFalse
    }

    It 'Remove-Module ShuruStore still stops them' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'removed.sock') -Name removed
        try {
            Remove-Module ShuruStore
            $s.State | Should -Be 'Stopped'
            Test-Path $s.SocketPath | Should -BeFalse
        } finally { Import-Module $StagedModule }
    }
}

Describe '#18.8 Ways a session ends' {
    It 'SIGHUP (a closed terminal) stops the servers and removes the socket and the warm-up scratch' -Skip:(-not (Test-Path /dev/shm)) {
        $sock = Join-Path $Dir 'hup.sock'
        # A long rehearsal, so that it is still running when the signal comes.
        $p = Start-SignalledServer -Socket $sock -HangUp Default -Environment @{ SHURUSTORE_WARMUP = '100000' }
        try {
            $childPid = $p.ChildPid
            Wait-Until { Test-Path "/dev/shm/shuru-warmup-$childPid-*" } -Because 'the rehearsal has its scratch in /dev/shm'
            Test-Path $sock | Should -BeTrue
            Invoke-Client kill -HUP $childPid | Out-Null
            $p.WaitForExit(60000) | Should -BeTrue -Because 'SIGHUP ends pwsh'
            Test-Path $sock | Should -BeFalse
            Test-Path "/dev/shm/shuru-warmup-$childPid-*" | Should -BeFalse
        } finally {
            if (-not $p.HasExited) { $p.Kill($true) }
        }
    }

    It 'SIGHUP leaves a process started under nohup and its servers running' -Skip:(-not (Test-Path /proc/self/status)) {
        # Failed while the module stopped every server on SIGHUP whatever the process's disposition:
        # under nohup the servers stopped and the process went on without them.
        $sock = Join-Path $Dir 'nohup.sock'
        $p = Start-SignalledServer -Socket $sock -HangUp Ignore
        try {
            $childPid = $p.ChildPid
            Invoke-Client kill -HUP $childPid | Out-Null
            $p.WaitForExit(3000) | Should -BeFalse -Because 'a process that ignores SIGHUP goes on'
            (Invoke-Client nbdinfo --size "nbd+unix:///export?socket=$sock" | Out-String).Trim() | Should -Be ((Get-Item $Image).Length).ToString()
            # SIGTERM still ends it cleanly.
            Invoke-Client kill -TERM $childPid | Out-Null
            $p.WaitForExit(60000) | Should -BeTrue -Because 'SIGTERM ends pwsh'
            Test-Path $sock | Should -BeFalse
        } finally {
            if (-not $p.HasExited) { $p.Kill($true) }
        }
    }

    It 'a server started in a thread job warns that it stops with the job, and does' {
        $sock = Join-Path $Dir 'job.sock'
        $job = Start-ThreadJob {
            Import-Module $using:StagedModule
            Start-ShuruNbdServer -ImagePath $using:Image -SocketPath $using:sock | Out-Null
        }
        $job | Receive-Job -Wait -AutoRemoveJob -WarningVariable w -WarningAction SilentlyContinue
        ($w | Out-String) | Should -Match 'thread job'
        ($w | Out-String) | Should -Match 'Wait-ShuruNbdServer'
        Wait-Until { -not (Test-Path $sock) } -Because 'the job''s end stops its server' -Seconds 30
    }

    It 'a server in the main session does not warn' {
        $null = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'main.sock') -ReadOnly -WarningVariable w -Name main
        Stop-ShuruNbdServer main
        $w | Should -BeNullOrEmpty
    }
}

Describe 'Wait-ShuruNbdServer' {
    It 'returns once another session stops the server' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'wait.sock') -Name waited
        $stopper = Start-ThreadJob {
            Import-Module $using:StagedModule
            Start-Sleep -Milliseconds 500
            $using:s | Stop-ShuruNbdServer
        }
        try {
            $done = $s | Wait-ShuruNbdServer -Timeout 60 -PassThru
            $done | Should -Be $s
            $done.State | Should -Be 'Stopped'
            Test-Path $s.SocketPath | Should -BeFalse
        } finally { $stopper | Remove-Job -Force }
    }

    It '-Timeout leaves a running server running, with a WaitTimeout error' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'late.sock') -Name late
        try {
            $out = Wait-ShuruNbdServer late -Timeout 1 -PassThru -ErrorVariable err -ErrorAction SilentlyContinue
            $out | Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'WaitTimeout,ShuruStore.Commands.WaitShuruNbdServerCommand'
            $err[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
            $s.State | Should -Be 'Running'
        } finally { $s | Stop-ShuruNbdServer }
    }

    It '-Any returns when the first server stops' {
        $a = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'any-a.sock') -Name any-a
        $b = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'any-b.sock') -Name any-b
        try {
            $a | Stop-ShuruNbdServer
            $first = $a, $b | Wait-ShuruNbdServer -Any -Timeout 60 -PassThru
            $first | Should -Be $a
            $b.State | Should -Be 'Running'
        } finally { $b | Stop-ShuruNbdServer }
    }

    It 'Ctrl+C ends the wait and leaves the server running' {
        $s = Start-ShuruNbdServer -ImagePath $Image -SocketPath (Join-Path $Dir 'ctrlc.sock') -Name ctrlc
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$StagedModule'; `$args[0] | Wait-ShuruNbdServer").AddArgument($s)
            $async = $ps.BeginInvoke()
            Start-Sleep -Milliseconds 500
            $async.IsCompleted | Should -BeFalse -Because 'the wait goes on while the server runs'
            $ps.Stop()   # what Ctrl+C does to the pipeline
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $s.State | Should -Be 'Running'
        } finally {
            $ps.Dispose()
            $s | Stop-ShuruNbdServer
        }
    }
}
