# Shared by every Pester file: dot-source it in BeforeAll. Each file runs in the child pwsh that
# build.ps1 starts, and imports the *staged* module (out/ShuruStore), never the build output.
Set-StrictMode -Version 3.0
$script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
# SHURUSTORE_TEST_MODULE runs the suites against another copy of the module (an installed one,
# or an older build to see a new test fail on it).
$script:StagedModule = if ($env:SHURUSTORE_TEST_MODULE) { $env:SHURUSTORE_TEST_MODULE } else { Join-Path $script:RepoRoot 'out/ShuruStore/ShuruStore.psd1' }
Import-Module $script:StagedModule -Force -ErrorAction Stop
# Most tests start writable disks without -StatePath on purpose; the memory-only warning is
# tested on its own (ChunkStore.Tests.ps1) and would only clutter the output here.
$PSDefaultParameterValues['Start-ShuruNbdServer:WarningAction'] = 'SilentlyContinue'

# A fresh directory under /tmp (short: Unix socket paths are limited to 107 bytes).
function New-TestDirectory {
    $dir = Join-Path '/tmp' ("shuru-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 10))
    New-Item -ItemType Directory -Path $dir | Out-Null
    $dir
}

# Runs a native client and returns its output; throws with the output when it fails.
function Invoke-Client {
    # No param block: every argument (even -E or -c) goes to the native command.
    $command = $args[0]
    $arguments = @($args | Select-Object -Skip 1)
    $output = & $command @arguments 2>&1 | Out-String
    if ($LASTEXITCODE -ne 0) { throw "$command $($arguments -join ' ') failed ($LASTEXITCODE): $output" }
    $output
}

# A raw ext4 image with a few files, made without mounting anything.
function New-Ext4Image {
    param([Parameter(Mandatory)][string] $Path, [int] $SizeMiB = 32)
    $content = Join-Path (Split-Path $Path) ('content-' + [guid]::NewGuid().ToString('N').Substring(0, 6))
    New-Item -ItemType Directory -Force -Path (Join-Path $content 'etc') | Out-Null
    Set-Content -Path (Join-Path $content 'etc/hostname') -Value 'pester-guest'
    $bytes = [byte[]]::new(300KB); [System.Random]::new(7).NextBytes($bytes)
    [System.IO.File]::WriteAllBytes((Join-Path $content 'random.bin'), $bytes)
    Invoke-Client truncate -s "${SizeMiB}M" $Path | Out-Null
    Invoke-Client mkfs.ext4 -F -q -E root_owner=0:0 -d $content $Path | Out-Null
    Remove-Item -Recurse -Force $content
    $Path
}

# qemu-io against a server's URI; returns the output text.
function Invoke-QemuIo {
    param([Parameter(Mandatory)][string] $Uri, [Parameter(Mandatory)][string[]] $Commands)
    $qargs = @('-f', 'raw')
    foreach ($c in $Commands) { $qargs += @('-c', $c) }
    $qargs += $Uri
    $out = Invoke-Client qemu-io @qargs
    if ($out -match 'Pattern verification failed|error|failed') { throw "qemu-io reported a problem: $out" }
    $out
}

# A separate pwsh (this same one, as `dotnet pwsh.dll`, so that its process id is the one to
# signal) running -Command $Script with the module imported (not with -NoImport) in
# $WorkingDirectory; its output is redirected. Variables in $Environment are set for it (a $null
# value removes one). -HangUp sets how it starts out treating SIGHUP ('Default': ends the process;
# 'Ignore': as under nohup) instead of inheriting this process's disposition, which a test run
# started under nohup would pass on.
function Start-ModulePwsh {
    param([Parameter(Mandatory)][string] $Script, [hashtable] $Environment = @{}, [switch] $NoImport, [string] $WorkingDirectory = $PWD.ProviderPath,
        [ValidateSet('Default', 'Ignore')][string] $HangUp)
    $command = if ($NoImport) { $Script } else { "Import-Module '$StagedModule'; $Script" }
    $argv = @([Environment]::ProcessPath)
    if ((Split-Path ([Environment]::ProcessPath) -Leaf) -match '^dotnet') { $argv += Join-Path $PSHOME 'pwsh.dll' }
    $argv += '-NoProfile', '-NonInteractive', '-Command', $command
    if ($HangUp) {
        # python3 sets the disposition and execs pwsh in its place: the same process id.
        $disposition = if ($HangUp -eq 'Ignore') { 'SIG_IGN' } else { 'SIG_DFL' }
        $argv = @('/usr/bin/python3', '-c', "import os, signal, sys; signal.signal(signal.SIGHUP, signal.$disposition); os.execv(sys.argv[1], sys.argv[1:])") + $argv
    }
    $psi = [System.Diagnostics.ProcessStartInfo]::new($argv[0])
    $psi.WorkingDirectory = $WorkingDirectory
    foreach ($a in $argv | Select-Object -Skip 1) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    foreach ($name in $Environment.Keys) {
        if ($null -eq $Environment[$name]) { $null = $psi.Environment.Remove($name) } else { $psi.Environment[$name] = $Environment[$name] }
    }
    [System.Diagnostics.Process]::Start($psi)
}

# Waits until $Condition is true; throws $Because after $Seconds.
function Wait-Until {
    param([Parameter(Mandatory)][scriptblock] $Condition, [Parameter(Mandatory)][string] $Because, [int] $Seconds = 60)
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $Seconds s waiting until $Because" }
        Start-Sleep -Milliseconds 100
    }
}
