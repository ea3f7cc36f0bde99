<#
.SYNOPSIS
    End-to-end guest boot: time from Start-ShuruNbdServer to a booted test guest that has read
    its disk, on a flat image, a cold chunk store, a warm chunk store and nbdkit (issue #20).
.DESCRIPTION
    One pwsh process drives everything, so the clock starts at the Start-ShuruNbdServer call
    (pwsh's own start-up is not counted; nbdkit's clock starts when it is spawned and ends the
    same way). The guest is the guest suite's (tests/guest/run-guest.sh: Debian kernel + busybox
    initramfs under qemu TCG, -smp 1), booted in verify mode on a 64 MiB ext4 image made by
    tests/guest/make-sample-ext4.sh holding what verify checks (hello.txt, a 5 MiB random file,
    sha256 and md5 sums): the guest mounts /dev/vda read-only and reads and checks every file.

    Times (seconds from the start call), read from the guest's serial log while it runs:
      vda     "shuru-guest: /dev/vda ready" (kernel booted, virtio disk probed: the partition scan read it)
      booted  "SHURU-RESULT: VERIFY-OK" (files read and checked: the booted-guest figure)

    Modes:
      flat    Start-ShuruNbdServer -ImagePath IMG -ReadOnly
      cold    Start-ShuruNbdServer -BaseImagePath IMG -CasPath <new empty dir> (lazy ingestion)
      warm    Start-ShuruNbdServer -CasPath CAS -IndexPath IDX, where CAS/IDX are the store and a
              checkpoint of a lazy server after one full read of IMG (nbdcopy to null:), made
              fresh for each rep before its boots
      nbdkit  nbdkit -U SOCK -r -f file IMG
      remote  Start-ShuruNbdServer -IndexPath s3://... -CasPath <new empty dir>: the warm mode's
              checkpoint, published for each rep with Publish-ShuruCheckpoint under
              -RemoteDestination (issue #17: a published checkpoint booted on an empty host);
              needs the object store's AWS_* environment (tools/ceph/cluster.sh env)
    Reps are interleaved (every rep boots each mode once, order rotated). Prints one line per
    boot: "BOOT <mode> <rep> <vda s> <booted s> <load1>".
#>
param(
    [Parameter(Mandatory)][string] $WorkDir,
    [int] $Reps = 3,
    # Number of the first rep (to add reps to an earlier run's results).
    [int] $FirstRep = 1,
    [int] $ImageMiB = 64,
    [string[]] $Modes = @('flat', 'cold', 'warm', 'nbdkit'),
    # s3://BUCKET/PREFIX under which the remote mode publishes each rep's checkpoint.
    [string] $RemoteDestination
)
$ErrorActionPreference = 'Stop'
$repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repo 'out/ShuruStore/ShuruStore.psd1')
$guest = Join-Path $repo 'tests/guest'
$null = New-Item -ItemType Directory -Force -Path $WorkDir
$img = Join-Path $WorkDir 'guest.ext4'
$sock = Join-Path $WorkDir 'boot.sock'
$logs = Join-Path $WorkDir 'logs'
$null = New-Item -ItemType Directory -Force -Path $logs

# The image: what init.sh's verify mode checks, written the way its write mode writes it.
$tree = Join-Path $WorkDir 'tree'
Remove-Item -Recurse -Force $tree -ErrorAction SilentlyContinue
$g = New-Item -ItemType Directory -Force -Path (Join-Path $tree 'guest')
$hello = (Select-String -Path (Join-Path $guest 'init.sh') -Pattern "^HELLO_CONTENT='(.*)'$").Matches[0].Groups[1].Value
[System.IO.File]::WriteAllText((Join-Path $g 'hello.txt'), "$hello`n")
$rand = [byte[]]::new(5MB); [System.Security.Cryptography.RandomNumberGenerator]::Fill($rand)
[System.IO.File]::WriteAllBytes((Join-Path $g 'random.bin'), $rand)
& bash -c "cd '$g' && sha256sum hello.txt random.bin > sums && md5sum hello.txt random.bin > sums.md5"
& bash (Join-Path $guest 'make-sample-ext4.sh') $img $ImageMiB -d $tree | Out-Null
if ($LASTEXITCODE -ne 0) { throw 'make-sample-ext4.sh failed' }
# Build (or confirm) the guest's kernel and initramfs now, so no boot pays for it.
& bash (Join-Path $guest 'build-guest.sh') (Join-Path $repo 'out/guest') 2>&1 | Out-Null
if ($LASTEXITCODE -ne 0) { throw 'build-guest.sh failed' }

function Wait-Socket([string] $Path) {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while (-not (Test-Path $Path)) {
        if ($sw.Elapsed.TotalSeconds -gt 30) { throw "no socket $Path after 30 s" }
        Start-Sleep -Milliseconds 5
    }
}

# Boots the guest on $Uri; returns the two times in seconds since $Clock started.
function Invoke-GuestBoot([string] $Uri, [System.Diagnostics.Stopwatch] $Clock, [string] $Log) {
    $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
    foreach ($a in @((Join-Path $guest 'run-guest.sh'), '--uri', $Uri, '--mode', 'verify', '--timeout', '300', '--log', $Log)) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    $p = [System.Diagnostics.Process]::Start($psi)
    $vda = $null; $booted = $null
    while ($true) {
        $text = if (Test-Path $Log) { [System.IO.File]::ReadAllText($Log) } else { '' }
        if ($null -eq $vda -and $text.Contains('shuru-guest: /dev/vda ready')) { $vda = $Clock.Elapsed.TotalSeconds }
        if ($text.Contains('SHURU-RESULT: ')) { $booted = $Clock.Elapsed.TotalSeconds; break }
        if ($p.HasExited) { break }
        Start-Sleep -Milliseconds 20
    }
    $p.WaitForExit()
    $out = $p.StandardOutput.ReadToEnd() + $p.StandardError.ReadToEnd()
    if ($p.ExitCode -ne 0 -or $out -notmatch 'VERIFY-OK') { throw "guest boot failed ($($p.ExitCode)): $out" }
    [pscustomobject]@{ Vda = $vda; Booted = $booted }
}

# A warm store: a lazy server reads IMG once in full, then checkpoints.
function New-WarmStore([string] $Cas, [string] $Index) {
    $s = Start-ShuruNbdServer -BaseImagePath $img -CasPath $Cas -SocketPath $sock -Name warmup -WarningAction SilentlyContinue
    try {
        & nbdcopy $s.Uri null:
        if ($LASTEXITCODE -ne 0) { throw 'nbdcopy (warm-up read) failed' }
        $null = $s | Save-ShuruCheckpoint -Path $Index
    } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
}

# JIT and first-use costs of the cmdlets are paid once here, not by the first timed mode.
New-WarmStore (Join-Path $WorkDir 'cas-jit') (Join-Path $WorkDir 'jit.idx')
$uri = "nbd+unix:///?socket=$sock"
for ($rep = $FirstRep; $rep -lt $FirstRep + $Reps; $rep++) {
    $warmCas = Join-Path $WorkDir "cas-warm-$rep"; $warmIdx = Join-Path $WorkDir "warm-$rep.idx"
    New-WarmStore $warmCas $warmIdx
    if ($Modes -contains 'remote') {
        if (-not $RemoteDestination) { throw 'the remote mode needs -RemoteDestination s3://BUCKET/PREFIX' }
        $remoteUri = (Publish-ShuruCheckpoint $warmIdx $warmCas -Destination "$RemoteDestination/rep$rep" -Name "warm-$rep").Uri
    }
    $order = for ($i = 0; $i -lt $Modes.Count; $i++) { $Modes[($i + $rep - 1) % $Modes.Count] }
    foreach ($mode in $order) {
        Remove-Item -Force $sock -ErrorAction SilentlyContinue
        $log = Join-Path $logs "$mode-$rep.log"
        $nbdkit = $null; $server = $null
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        switch ($mode) {
            'flat' { $server = Start-ShuruNbdServer -ImagePath $img -SocketPath $sock -ReadOnly -Name boot }
            'cold' { $server = Start-ShuruNbdServer -BaseImagePath $img -CasPath (Join-Path $WorkDir "cas-cold-$rep") -SocketPath $sock -Name boot -WarningAction SilentlyContinue }
            'warm' { $server = Start-ShuruNbdServer -CasPath $warmCas -IndexPath $warmIdx -SocketPath $sock -Name boot -WarningAction SilentlyContinue }
            'remote' { $server = Start-ShuruNbdServer -IndexPath $remoteUri -CasPath (Join-Path $WorkDir "cas-remote-$rep") -SocketPath $sock -Name boot -WarningAction SilentlyContinue }
            'nbdkit' {
                $nbdkit = Start-Process -FilePath nbdkit -ArgumentList @('-U', $sock, '-r', '-f', 'file', $img) -PassThru
                Wait-Socket $sock
            }
        }
        try { $t = Invoke-GuestBoot $uri $clock $log }
        finally {
            if ($server) { $server | Stop-ShuruNbdServer -Confirm:$false }
            if ($nbdkit) { $nbdkit.Kill(); $nbdkit.WaitForExit() }
        }
        $load = (Get-Content /proc/loadavg).Split(' ')[0]
        [Console]::Out.WriteLine(('BOOT {0} {1} {2:F2} {3:F2} {4}' -f $mode, $rep, $t.Vda, $t.Booted, $load))
    }
}
