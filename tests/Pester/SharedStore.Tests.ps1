# One chunk store shared by several processes (docs/reliability.md, "Shared stores"): a server in
# one pwsh process, collections and imports in others. The servers are real child pwsh processes
# running tests/reliability/crash-server.ps1; this Pester process is the "other process".
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Dir = New-TestDirectory
    $script:ServerScript = Join-Path $RepoRoot 'tests/reliability/crash-server.ps1'

    # The command line of a child pwsh like this one (a dotnet tool: dotnet pwsh.dll).
    function Get-PwshArguments {
        $exe = [Environment]::ProcessPath
        if ((Split-Path $exe -Leaf) -match '^dotnet(\.exe)?$') { , @($exe, (Join-Path $PSHOME 'pwsh.dll')) } else { , @($exe) }
    }

    # Starts crash-server.ps1 in its own pwsh process; returns the process once it serves.
    function Start-ServerProcess {
        param([string] $Socket, [string] $Cas, [string] $Rootfs, [string] $State, [string] $Index)
        $cmd = Get-PwshArguments
        $psi = [System.Diagnostics.ProcessStartInfo]::new($cmd[0])
        foreach ($a in @($cmd | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $ServerScript, '-SocketPath', $Socket, '-CasPath', $Cas)) { $psi.ArgumentList.Add($a) }
        if ($Rootfs) { $psi.ArgumentList.Add('-RootfsPath'); $psi.ArgumentList.Add($Rootfs) }
        if ($State) { $psi.ArgumentList.Add('-StatePath'); $psi.ArgumentList.Add($State) }
        if ($Index) { $psi.ArgumentList.Add('-IndexPath'); $psi.ArgumentList.Add($Index) }
        $psi.RedirectStandardInput = $true; $psi.RedirectStandardOutput = $true; $psi.UseShellExecute = $false
        $p = [System.Diagnostics.Process]::Start($psi)
        $deadline = [DateTime]::UtcNow.AddSeconds(120)
        while ([DateTime]::UtcNow -lt $deadline) {
            $line = $p.StandardOutput.ReadLine()
            if ($null -eq $line) { break }
            if ($line -like 'READY *') { return $p }
            if ($line -like 'ERROR *') { throw "server failed: $line" }
        }
        try { $p.Kill($true) } catch { }
        throw 'the server process did not start'
    }

    function Stop-ServerProcess($Process) {
        $Process.StandardInput.WriteLine('stop'); $Process.StandardInput.Close()
        if (-not $Process.WaitForExit(60000)) { $Process.Kill($true) }
    }

    # Every byte a server serves, through a real client.
    function Read-Served([string] $Socket, [string] $To) {
        Invoke-Client nbdcopy "nbd+unix:///export?socket=$Socket" $To | Out-Null
        , [System.IO.File]::ReadAllBytes($To)
    }

    # Chunk files of a store made old, as if written days ago by a job long finished.
    function Set-ChunksOld([string] $Cas) {
        Get-ChildItem (Join-Path $Cas 'chunks') -File | ForEach-Object { $_.LastWriteTimeUtc = [DateTime]::UtcNow.AddDays(-3) }
    }

    # A base image: random data with some zero stretches.
    function New-BaseImage([string] $Path, [int] $Seed, [int] $Chunks = 128) {
        $bytes = [byte[]]::new($Chunks * 64KB); [System.Random]::new($Seed).NextBytes($bytes)
        if ($Chunks -ge 16) { [Array]::Clear($bytes, 10 * 64KB, 3 * 64KB) }
        [System.IO.File]::WriteAllBytes($Path, $bytes)
        , $bytes   # one byte[], not its elements down the pipeline
    }
}

AfterAll {
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'A collection in another process never takes a live server''s chunks' {
    It 'serves exactly what it served before plus its own writes, whatever the collection does' {
        $cas = Join-Path $Dir 'cas1'
        $base = Join-Path $Dir 'base1.img'
        [byte[]] $expected = New-BaseImage $base 11
        # 1. An imported disk whose index was later deleted: its chunks are unreferenced and old.
        $imported = Import-ShuruDisk -Path $base -CasPath $cas -IndexPath (Join-Path $Dir 'old.idx')
        Remove-Item $imported.IndexPath
        $other = Join-Path $Dir 'other1.img'
        $null = New-BaseImage $other 12 -Chunks 8
        $otherIdx = (Import-ShuruDisk -Path $other -CasPath $cas -IndexPath (Join-Path $Dir 'other1.idx')).IndexPath
        Set-ChunksOld $cas
        $chunksBefore = @(Get-ChildItem (Join-Path $cas 'chunks') -File).Count

        # 2. Process A serves a disk over an image with the same content; a guest reads all of it
        #    (lazy ingestion finds the chunk files already there), writes and flushes.
        $sock = Join-Path $Dir 'a1.sock'
        $a = Start-ServerProcess -Socket $sock -Cas $cas -Rootfs $base -State (Join-Path $Dir 'a1.state')
        try {
            [byte[]] $first = Read-Served $sock (Join-Path $Dir 'first.raw')
            [System.Linq.Enumerable]::SequenceEqual($first, $expected) | Should -BeTrue
            Invoke-QemuIo -Uri "nbd+unix:///export?socket=$sock" -Commands @('write -P 0x5a 1M 192k', 'flush') | Out-Null
            for ($i = 1MB; $i -lt 1MB + 192KB; $i++) { $expected[$i] = 0x5a }
            # Ingestion of what the guest read lands in the background, when A's clients are quiet;
            # until then those pieces still read from the base and are nobody's chunks. Once it
            # has run, every old chunk is A's but for the three A overwrote before ingestion
            # reached them (whether it did first depends on timing): a dry run finds at most those
            # three unused. Without registrations it would find all of them, for good.
            $overwritten = 3
            $deadline = (Get-Date).AddSeconds(60)
            while ((Remove-ShuruUnusedChunk -CasPath $cas -IndexPath $otherIdx -WhatIf).ChunksUnused -gt $overwritten) {
                if ((Get-Date) -gt $deadline) { throw 'the collection still finds chunks of the disk A serves unused after 60 s' }
                Start-Sleep -Milliseconds 200
            }

            # The store shows A as a live user.
            $users = @(Get-ShuruChunkStore $cas | Select-Object -ExpandProperty Users)
            $users.Count | Should -Be 1
            $users[0].IsAlive | Should -BeTrue
            $users[0].ProcessId | Should -Be $a.Id
            $users[0].SocketPath | Should -Be $sock

            # 3. Process B (this one) collects, knowing only its own checkpoint.
            $r = Remove-ShuruUnusedChunk -CasPath $cas -IndexPath $otherIdx -Confirm:$false
            $r.ChunksRemoved | Should -BeLessOrEqual $overwritten   # every other old chunk is A's now
            @(Get-ChildItem (Join-Path $cas 'chunks') -File).Count | Should -BeGreaterOrEqual ($chunksBefore - $overwritten)

            # 4. A serves exactly what it served before, plus its own writes.
            [byte[]] $after = Read-Served $sock (Join-Path $Dir 'after.raw')
            [System.Linq.Enumerable]::SequenceEqual($after, $expected) | Should -BeTrue
        }
        finally { Stop-ServerProcess $a }
    }
}

Describe 'A server killed with kill -9, then a collection' {
    It 'resumes from its state file byte for byte' {
        $cas = Join-Path $Dir 'cas2'
        $base = Join-Path $Dir 'base2.img'
        [byte[]] $expected = New-BaseImage $base 21
        $state = Join-Path $Dir 'k.state'
        $keep = New-BaseImage (Join-Path $Dir 'keep2.img') 22 -Chunks 4
        $keepIdx = (Import-ShuruDisk -Path (Join-Path $Dir 'keep2.img') -CasPath $cas -IndexPath (Join-Path $Dir 'keep2.idx')).IndexPath
        $sock = Join-Path $Dir 'k.sock'
        $k = Start-ServerProcess -Socket $sock -Cas $cas -Rootfs $base -State $state
        $null = Read-Served $sock (Join-Path $Dir 'k-read.raw')
        Invoke-QemuIo -Uri "nbd+unix:///export?socket=$sock" -Commands @('write -P 0x33 2M 256k', 'write -P 0x44 7000k 64k', 'flush') | Out-Null
        for ($i = 2MB; $i -lt 2MB + 256KB; $i++) { $expected[$i] = 0x33 }
        for ($i = 7000KB; $i -lt 7000KB + 64KB; $i++) { $expected[$i] = 0x44 }
        Start-Sleep -Milliseconds 500
        Invoke-Client kill -9 $k.Id | Out-Null
        $k.WaitForExit(30000) | Should -BeTrue
        Remove-Item $sock -ErrorAction SilentlyContinue
        Set-ChunksOld $cas

        $ended = @(Get-ShuruChunkStore $cas | Select-Object -ExpandProperty Users)
        $ended.Count | Should -Be 1
        $ended[0].IsAlive | Should -BeFalse
        $ended[0].StatePath | Should -Be $state
        $test = Test-ShuruChunkStore -CasPath $cas
        $test.EndedRegistrations | Should -Be 1
        $test.Problems.Kind | Should -Contain 'EndedRegistration'

        $r = Remove-ShuruUnusedChunk -CasPath $cas -IndexPath $keepIdx -GracePeriod 0 -Confirm:$false
        $r.ChunksRemoved | Should -Be 0

        $k2 = Start-ServerProcess -Socket $sock -Cas $cas -Rootfs $base -State $state
        try {
            [byte[]] $back = Read-Served $sock (Join-Path $Dir 'k-back.raw')
            [System.Linq.Enumerable]::SequenceEqual($back, $expected) | Should -BeTrue
            # The restarted server took over the killed one's registration.
            @((Get-ShuruChunkStore $cas).Users).Count | Should -Be 1
        }
        finally { Stop-ServerProcess $k2 }

        # Stopped with a state file: still resumable, so repair leaves it; once the state file is
        # gone, the registration keeps nothing and repair removes it.
        $null = Test-ShuruChunkStore -CasPath $cas -Repair -Confirm:$false
        @((Get-ShuruChunkStore $cas).Users).Count | Should -Be 1
        Remove-Item $state
        $null = Test-ShuruChunkStore -CasPath $cas -Repair -Confirm:$false
        @((Get-ShuruChunkStore $cas).Users).Count | Should -Be 0
    }
}

Describe 'A running server''s overwritten chunks, collected from another process' {
    It 'removes what the server stored and overwrote while it keeps serving its current data' {
        # Failed before the server restarted its log of stored names: every chunk it ever stored
        # stayed a root for as long as it ran, so a disk rewritten for days grew the store without bound.
        $cas = Join-Path $Dir 'cas4'
        $base = Join-Path $Dir 'base4.img'
        $null = New-BaseImage $base 41 -Chunks 16
        $null = New-BaseImage (Join-Path $Dir 'keep4.img') 42 -Chunks 4
        $keepIdx = (Import-ShuruDisk -Path (Join-Path $Dir 'keep4.img') -CasPath $cas -IndexPath (Join-Path $Dir 'keep4.idx')).IndexPath
        $sock = Join-Path $Dir 'o.sock'
        $o = Start-ServerProcess -Socket $sock -Cas $cas -Rootfs $base
        try {
            # 1500 different chunks written over the first one, each flushed (python3-libnbd).
            $py = @"
import nbd, random
h = nbd.NBD(); h.connect_uri('nbd+unix:///export?socket=$sock')
for i in range(1500):
    h.pwrite(random.Random(i).randbytes(65536), 0); h.flush()
h.shutdown()
"@
            $py | & /usr/bin/python3 - 2>&1 | Out-String | Should -BeNullOrEmpty
            $r = Remove-ShuruUnusedChunk -CasPath $cas -IndexPath $keepIdx -GracePeriod 0 -Confirm:$false
            # The log restarts at the first flush past 1,024 names: the chunks stored before it are free.
            $r.ChunksRemoved | Should -BeGreaterOrEqual 1000
            $log = @(Get-ChildItem (Join-Path $cas 'leases') -Filter '*.refs')
            $log.Count | Should -Be 1
            $log[0].Length | Should -BeLessThan (1024 * 32)
            # The disk still serves its last write.
            $py = @"
import nbd, random, sys
h = nbd.NBD(); h.connect_uri('nbd+unix:///export?socket=$sock')
sys.stdout.write('same' if h.pread(65536, 0) == random.Random(1499).randbytes(65536) else 'different')
h.shutdown()
"@
            ($py | & /usr/bin/python3 - 2>&1 | Out-String).Trim() | Should -Be 'same'
        }
        finally { Stop-ServerProcess $o }
    }
}

Describe 'Two servers in two processes and a collector in a third, on one store' {
    It 'loses nothing and corrupts nothing (reliability/shared.py, short)' {
        $json = Join-Path $Dir 'shared.json'
        $out = & /usr/bin/python3 (Join-Path $RepoRoot 'tests/reliability/shared.py') --seconds 60 --seed 5 --json $json 2>&1 | Out-String
        $code = $LASTEXITCODE
        Write-Host $out
        $r = Get-Content -Raw $json | ConvertFrom-Json
        $r.collections | Should -BeGreaterOrEqual 5
        $r.checkpoints | Should -BeGreaterOrEqual 4
        $r.imports | Should -BeGreaterOrEqual 2
        $r.removed | Should -BeGreaterThan 0   # the forgotten imports' own chunks went
        $r.problems | Should -Be 0
        $code | Should -Be 0
    }
}
