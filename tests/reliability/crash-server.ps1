<#
.SYNOPSIS
    A killable ShuruStore server for the reliability scripts: serves one chunk-store disk with the
    staged module and obeys commands read from stdin, one per line.
.DESCRIPTION
    Prints "READY <uri> <pid>" once the socket accepts clients. Commands:
      checkpoint PATH   Save-ShuruCheckpoint PATH; prints "SAVED PATH" only after it returned,
                        or "FAILED PATH <message>".
      stop              Stop-ShuruNbdServer (flush, close, remove socket), print "STOPPED <seconds it
                        took>", exit 0.
    End of stdin behaves like "stop". The scripts kill it with SIGKILL at random moments.
#>
param(
    [Parameter(Mandatory)][string] $SocketPath,
    [Parameter(Mandatory)][string] $CasPath,
    [string] $RootfsPath,
    [string] $IndexPath,
    [string] $StatePath,
    [long] $DiskSize,
    [long] $DirtyMemoryLimit,
    [switch] $ReadOnly
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../out/ShuruStore/ShuruStore.psd1')
$p = @{ SocketPath = $SocketPath; CasPath = $CasPath; ReadOnly = $ReadOnly; Name = 'reliab' }
if ($RootfsPath) { $p.RootfsPath = $RootfsPath }
if ($IndexPath) { $p.IndexPath = $IndexPath }
if ($StatePath) { $p.StatePath = $StatePath }
if ($DiskSize) { $p.DiskSize = $DiskSize }
if ($DirtyMemoryLimit) { $p.DirtyMemoryLimit = $DirtyMemoryLimit }
try { $server = Start-ShuruNbdServer @p }
catch {
    [Console]::Out.WriteLine("ERROR $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    [Console]::Out.Flush()
    exit 2
}
[Console]::Out.WriteLine("READY $($server.Uri) $PID")
[Console]::Out.Flush()
try {
    while ($null -ne ($line = [Console]::In.ReadLine())) {
        $line = $line.Trim()
        if ($line -eq 'stop') { break }
        if ($line -like 'checkpoint *') {
            $path = $line.Substring(11)
            try {
                $null = $server | Save-ShuruCheckpoint -Path $path -Force -ErrorAction Stop
                [Console]::Out.WriteLine("SAVED $path")
            } catch {
                $msg = $_.Exception.Message -replace '\s+', ' '
                [Console]::Out.WriteLine("FAILED $path $msg")
            }
            [Console]::Out.Flush()
        }
    }
} finally {
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $server | Stop-ShuruNbdServer -Confirm:$false
    [Console]::Out.WriteLine('STOPPED ' + $watch.Elapsed.TotalSeconds.ToString('0.000', [cultureinfo]::InvariantCulture))
    [Console]::Out.Flush()
}
