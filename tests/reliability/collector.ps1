<#
.SYNOPSIS
    A second process that collects a chunk store on command, for the soak (soak.py): a server in
    another process keeps writing to the same store meanwhile.
.DESCRIPTION
    Prints "READY <pid>". For each stdin line "collect<TAB>IDX<TAB>IDX..." runs
    Remove-ShuruUnusedChunk on the store, keeping only those indexes (and whatever the store's
    registrations keep: the running server, a killed server's state file), and prints
    "COLLECTED scanned=N removed=N rescued=N bytes=N seconds=S" or "COLLECTFAILED <message>".
    End of stdin ends it.
#>
param(
    [Parameter(Mandatory)][string] $CasPath,
    [double] $GraceSeconds = 0
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')
[Console]::Out.WriteLine("READY $PID")
[Console]::Out.Flush()
$inv = [cultureinfo]::InvariantCulture
while ($null -ne ($line = [Console]::In.ReadLine())) {
    $parts = $line.Split("`t")
    if ($parts[0] -ne 'collect' -or $parts.Count -lt 2) { continue }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        $r = Remove-ShuruUnusedChunk -CasPath $CasPath -LiteralIndexPath $parts[1..($parts.Count - 1)] `
            -GracePeriod ([TimeSpan]::FromSeconds($GraceSeconds)) -Confirm:$false
        [Console]::Out.WriteLine("COLLECTED scanned=$($r.ChunksScanned) removed=$($r.ChunksRemoved) rescued=$($r.ChunksRescued) " +
            "bytes=$($r.BytesRemoved) seconds=" + $watch.Elapsed.TotalSeconds.ToString('0.00', $inv))
    } catch {
        [Console]::Out.WriteLine('COLLECTFAILED ' + ($_.Exception.Message -replace '\s+', ' '))
    }
    [Console]::Out.Flush()
}
