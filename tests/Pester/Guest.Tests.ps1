# A real Linux guest (Debian kernel + busybox initramfs under qemu TCG) on a ShuruStore disk:
# write files and sync, checkpoint, boot a second server from the checkpoint, verify the files in
# a second guest, and fsck the image exported from the checkpoint.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:GuestDir = Join-Path $RepoRoot 'tests/guest'
    $script:Artifacts = Join-Path $RepoRoot 'out/guest'
    $script:Base = Join-Path $Dir 'rootfs.ext4'
    Invoke-Client bash (Join-Path $GuestDir 'make-sample-ext4.sh') $Base 64 | Out-Null
    $script:Cas = Join-Path $Dir 'cas'

    # Bytes nbdinfo --map reports as holes (type bit 1), summed over its --totals lines.
    function Get-HoleBytes([string] $Uri) {
        $total = 0L
        foreach ($line in (Invoke-Client nbdinfo --map --totals $Uri) -split "`n") {
            $f = $line.Trim() -split '\s+'
            if ($f.Count -ge 3 -and ([int]$f[2] -band 1)) { $total += [long]$f[0] }
        }
        $total
    }

    function Invoke-Guest([string] $Uri, [string] $Mode) {
        $out = & bash (Join-Path $GuestDir 'run-guest.sh') --uri $Uri --mode $Mode --timeout 240 --artifacts $Artifacts 2>&1 | Out-String
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $out }
    }
}
AfterAll {
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'A guest kernel on a ShuruStore disk' {
    It 'writes and syncs files on a lazily served base image' {
        $s = Start-ShuruNbdServer -RootfsPath $Base -CasPath $Cas -SocketPath (Join-Path $Dir 'g1.sock') -Name guest1
        try {
            $r = Invoke-Guest $s.Uri write
            $r.Output | Should -Match 'SHURU-RESULT: WRITE-OK'
            $r.ExitCode | Should -Be 0
            $s.GetStatistics().Requests['Flush'] | Should -BeGreaterThan 0 -Because 'the guest sync must reach the server as NBD_CMD_FLUSH'
            $script:Checkpoint = ($s | Save-ShuruCheckpoint -Path (Join-Path $Dir 'after-write.idx')).Path
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        # The base image is never written.
        Invoke-Client e2fsck -fn $Base | Out-Null
    }

    It 'a second server booted from the checkpoint shows a second guest the same files' {
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $Checkpoint -SocketPath (Join-Path $Dir 'g2.sock') -ReadOnly -Name guest2
        try {
            $r = Invoke-Guest $s.Uri verify
            $r.Output | Should -Match 'SHURU-RESULT: VERIFY-OK'
            $r.ExitCode | Should -Be 0
            # Export the checkpoint through a real client and check the filesystem offline.
            $exported = Join-Path $Dir 'exported.img'
            Invoke-Client nbdcopy $s.Uri $exported | Out-Null
            Invoke-Client e2fsck -fn $exported | Should -Match 'clean|files'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }

    It 'guest TRIMs become holes in the allocation map' {
        $s = Start-ShuruNbdServer -CasPath $Cas -IndexPath $Checkpoint -SocketPath (Join-Path $Dir 'g3.sock') -Name guest3
        try {
            $before = Get-HoleBytes $s.Uri
            $r = Invoke-Guest $s.Uri trim
            $r.Output | Should -Match 'SHURU-RESULT: TRIM-OK'
            $s.GetStatistics().Requests['Trim'] | Should -BeGreaterThan 0
            (Get-HoleBytes $s.Uri) | Should -BeGreaterThan $before
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }
}

Describe 'A guest kernel on a flat image' {
    It 'writes, syncs and reads back through the flat-file device' {
        $flat = Join-Path $Dir 'flat.ext4'
        Copy-Item $Base $flat
        $s = Start-ShuruNbdServer -ImagePath $flat -SocketPath (Join-Path $Dir 'flat.sock') -Name guestflat
        try {
            (Invoke-Guest $s.Uri write).Output | Should -Match 'SHURU-RESULT: WRITE-OK'
            (Invoke-Guest $s.Uri verify).Output | Should -Match 'SHURU-RESULT: VERIFY-OK'
            $s.GetStatistics().Requests['Flush'] | Should -BeGreaterThan 0
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        Invoke-Client e2fsck -fn $flat | Out-Null
    }
}
