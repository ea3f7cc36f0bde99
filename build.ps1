<#
.SYNOPSIS
    Builds, tests, serves and benchmarks ShuruStore.

.DESCRIPTION
    Tasks:
      Deps    Installs what the tests need and is missing: Debian packages (tools/install-deps.sh)
              and Pester from its NuGet package (tools/PesterRestore, never built).
      Build   Builds the solution and stages the importable module into out/ShuruStore/,
              then checks it with Test-ModuleManifest.
      Test    Deps + Build, then every xunit test and every Pester test (in a fresh child pwsh
              that imports the staged module), then one line: "tests: N passed, N failed, N skipped".
      Serve   Build, import the staged module and serve a disk over NBD on a Unix socket until
              Ctrl+C. With no -ImagePath, a small sample ext4 image is generated on the fly.
      Package Build, then publish the staged module with Publish-PSResource into the local file
              repository out/repository (ShuruStore.<version>.nupkg), from which PowerShell users
              install it: Register-PSResourceRepository ShuruStoreLocal -Uri ./out/repository -Trusted;
              Install-PSResource ShuruStore -Repository ShuruStoreLocal.
      Bench   Runs the benchmark suite against nbdkit and qemu-nbd (not part of Test).
              With -Scale: the scale section instead (bench/scale/run-scale.sh: cost against disk size,
              data written and concurrent clients, plots in docs/scale-*.svg, tables in docs/scale.md)
              and the end-to-end guest boot figure (bench/boot/run-boot.sh).
      Reliability  The long crash, fault, fuzz and load runs (tests/reliability/run-long.py, root,
              several minutes); writes their figures into docs/reliability.md. Test runs short ones.
              With -Soak MINUTES, the soak instead (tests/reliability/soak.py): mixed load, kill -9
              and restarts for that long, the server's RSS, fds and threads sampled every second and
              plotted to docs/soak.svg, the figures written into docs/reliability.md.

.EXAMPLE
    dotnet tool restore && dotnet pwsh -NoProfile -File ./build.ps1 -Task Serve

.EXAMPLE
    dotnet pwsh -NoProfile -File ./build.ps1 -Task Serve -ImagePath ./rootfs.ext4 -SocketPath /tmp/vm.sock
#>
[CmdletBinding()]
param(
    [ValidateSet('Deps', 'Build', 'Test', 'Serve', 'Package', 'Bench', 'Reliability')]
    [string[]] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Serve: the base image (raw rootfs). Default: a generated sample ext4 image.
    [string] $ImagePath,
    # Serve: the chunk store directory. Default: out/serve/cas.
    [string] $CasPath,
    # Serve: boot from this index if it exists.
    [string] $IndexPath,
    # Serve: the Unix socket. Default: out/serve/shuru.sock (or one in /tmp when the path is too long).
    [string] $SocketPath,
    # Serve: keep the live disk map durable in this file at every FLUSH.
    [string] $StatePath,
    # Serve: serve the image as a plain flat file instead of through the chunk store.
    [switch] $Flat,

    # Test: only run the Pester files whose names match this wildcard.
    [string] $PesterFilter = '*',
    # Test: skip the xunit projects (for quick Pester iterations).
    [switch] $SkipXunit,
    # Serve, Package: use the module already staged in out/ShuruStore (their tests use it).
    [switch] $NoBuild,
    # Bench: run the scale section and the guest-boot figure (docs/scale.md) instead of the peer benchmark.
    [switch] $Scale,

    # Reliability: run the soak for this many minutes instead of the long runs.
    [ValidateRange(1, 1440)]
    [int] $Soak
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$Staged = Join-Path $Out 'ShuruStore'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:POWERSHELL_TELEMETRY_OPTOUT = '1'
if (-not $env:NUGET_CERT_REVOCATION_MODE) { $env:NUGET_CERT_REVOCATION_MODE = 'offline' }

# Runs a native command and fails the build when it exits non-zero.
function Invoke-Native {
    # No param block on purpose: every argument (including ones like -c) goes to the command.
    $command = $args[0]
    $arguments = @($args | Select-Object -Skip 1)
    Write-Host "> $command $($arguments -join ' ')" -ForegroundColor DarkGray
    & $command @arguments
    if ($LASTEXITCODE -ne 0) { throw "'$command $($arguments -join ' ')' failed with exit code $LASTEXITCODE" }
}

# The command line that starts this same pwsh: as a dotnet tool it is `dotnet <PSHOME>/pwsh.dll`.
function Get-PwshCommand {
    $exe = [Environment]::ProcessPath
    if ((Split-Path $exe -Leaf) -match '^dotnet(\.exe)?$') { @($exe, (Join-Path $PSHOME 'pwsh.dll')) } else { @($exe) }
}

function Get-PesterModulePath {
    $nugetRoot = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' }
    Join-Path $nugetRoot 'pester/5.7.1/tools/Pester.psd1'
}

function Invoke-Deps {
    Invoke-Native bash (Join-Path $Root 'tools/install-deps.sh')
    Invoke-CephCluster
    if (-not (Test-Path (Get-PesterModulePath))) {
        Invoke-Native dotnet restore (Join-Path $Root 'tools/PesterRestore/PesterRestore.csproj')
    }
}

# The one-node Ceph cluster (S3 on 127.0.0.1) of the remote tier's tests: installed and started
# when missing, a no-op when already running; left running (tools/ceph/cluster.sh stop removes it).
function Invoke-CephCluster {
    Invoke-Native bash (Join-Path $Root 'tools/ceph/cluster.sh') start
}

function Invoke-Build {
    Invoke-Native dotnet build (Join-Path $Root 'ShuruStore.sln') -c $Configuration --nologo -v quiet
    # Stage the importable module: the manifest, the binary module and its engine, formats, help.
    if (Test-Path $Staged) { Remove-Item $Staged -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $Staged
    $bin = Join-Path $Root "ShuruStore.PowerShell/bin/$Configuration/net10.0"
    Copy-Item (Join-Path $Root 'ShuruStore.psd1') $Staged
    Get-ChildItem $bin -Filter '*.dll' |
        Where-Object Name -NotMatch '^(System\.Management\.Automation|Microsoft\.PowerShell)' |
        Copy-Item -Destination $Staged
    Copy-Item (Join-Path $Root 'ShuruStore.PowerShell/ShuruStore.Format.ps1xml'), (Join-Path $Root 'ShuruStore.PowerShell/ShuruStore.Types.ps1xml') $Staged
    $helpDir = New-Item -ItemType Directory -Path (Join-Path $Staged 'en-US')
    Copy-Item (Join-Path $Root 'ShuruStore.PowerShell/help/about_ShuruStore.help.txt') $helpDir
    # Cmdlet help is generated from the cmdlets' metadata plus the prose file, in a fresh pwsh
    # (importing a binary module here would pin this build process to it).
    $pwsh = Get-PwshCommand
    $helpArgs = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tools/New-ShuruHelp.ps1'),
        '-ModulePath', (Join-Path $Staged 'ShuruStore.psd1'),
        '-HelpDataPath', (Join-Path $Root 'ShuruStore.PowerShell/help/ShuruStore.Help.psd1'),
        '-OutFile', (Join-Path $helpDir 'ShuruStore.dll-Help.xml'))
    Invoke-Native $pwsh[0] @helpArgs
    $manifest = Test-ModuleManifest (Join-Path $Staged 'ShuruStore.psd1')
    Write-Host "Staged $($manifest.Name) $($manifest.Version) into $Staged"
}

# Parses an xunit TRX file into pass/fail/skip counts. A run that did not complete (the test host
# crashed or was aborted) counts one failure more, even when every recorded test passed.
function Read-TrxCounts([string] $Path, [int] $ExitCode) {
    [xml] $trx = Get-Content -Raw $Path
    $summary = $trx.TestRun.ResultSummary
    $c = $summary.Counters
    $failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
    if (($summary.outcome -notin 'Completed', 'Failed' -or $ExitCode -ne 0) -and $failed -eq 0) {
        Write-Warning "${Path}: outcome '$($summary.outcome)', exit code ${ExitCode}: counted as a failure"
        $failed = 1
    }
    if ($summary.outcome -eq 'Failed' -and $failed -eq 0) { $failed = 1 }
    $failedNames = @($trx.TestRun.Results.UnitTestResult |
        Where-Object { $_.outcome -notin 'Passed', 'NotExecuted' } | ForEach-Object testName)
    [pscustomobject]@{ Passed = [int]$c.passed; Failed = $failed; Skipped = [int]$c.notExecuted; FailedNames = $failedNames }
}

function Invoke-Test {
    Invoke-Deps
    Invoke-Build
    $results = New-Object System.Collections.Generic.List[object]
    $resultsDir = Join-Path $Out 'test-results'
    if (Test-Path $resultsDir) { Remove-Item $resultsDir -Recurse -Force }
    $null = New-Item -ItemType Directory $resultsDir

    if (-not $SkipXunit) {
        foreach ($project in 'tests/ShuruStore.Core.Tests', 'tests/ShuruStore.PowerShell.Tests') {
            $name = Split-Path $project -Leaf
            # A failing test must not stop the run: the summary line counts it. Exit code is read from the TRX.
            & dotnet test (Join-Path $Root $project) -c $Configuration --no-build --nologo `
                --logger "trx;LogFileName=$name.trx" --logger 'console;verbosity=normal' --results-directory $resultsDir
            $exitCode = $LASTEXITCODE
            $trxPath = Join-Path $resultsDir "$name.trx"
            if (-not (Test-Path $trxPath)) { throw "dotnet test for $name produced no results (exit code $exitCode)" }
            $results.Add((Read-TrxCounts $trxPath $exitCode))
        }
    }

    # Pester runs in a fresh child pwsh: a binary module can never be unloaded from a process, so
    # every test file imports the staged module into a clean process of its own.
    $pesterJson = Join-Path $resultsDir 'pester-summary.json'
    $pesterScript = @'
param($PesterPath, $TestsPath, $SummaryPath)
# The filter comes through the environment: pwsh on Unix glob-expands wildcard arguments of native commands.
$Filter = $env:SHURU_PESTER_FILTER
Import-Module $PesterPath -MinimumVersion 5.7.1
$config = New-PesterConfiguration
$config.Run.Path = @(Get-ChildItem -Path $TestsPath -Filter '*.Tests.ps1' | Where-Object Name -like "$Filter.Tests.ps1" | ForEach-Object FullName)
if ($config.Run.Path.Value.Count -eq 0) { throw "No Pester file in $TestsPath matches '$Filter'" }
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.TestResult.Enabled = $false
$r = Invoke-Pester -Configuration $config
$failedNames = @($r.Failed | ForEach-Object ExpandedPath) + @($r.FailedBlocks | ForEach-Object ExpandedPath) + @($r.FailedContainers | ForEach-Object Name)
@{ Passed = $r.PassedCount; Failed = $r.FailedCount + $r.FailedBlocksCount + $r.FailedContainersCount; Skipped = $r.SkippedCount + $r.NotRunCount; FailedNames = $failedNames } |
    ConvertTo-Json | Set-Content -Path $SummaryPath
'@
    $scriptFile = Join-Path $resultsDir 'run-pester.ps1'
    Set-Content -Path $scriptFile -Value $pesterScript
    $pwsh = Get-PwshCommand
    $pwshArgs = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $scriptFile,
        '-PesterPath', (Get-PesterModulePath), '-TestsPath', (Join-Path $Root 'tests/Pester'), '-SummaryPath', $pesterJson)
    $env:SHURU_PESTER_FILTER = $PesterFilter
    # Pester's exit code is the failure count and wraps at 256: the JSON summary is the truth.
    & $pwsh[0] @pwshArgs
    if (-not (Test-Path $pesterJson)) { throw "Pester produced no summary (exit code $LASTEXITCODE)" }
    $results.Add((Get-Content -Raw $pesterJson | ConvertFrom-Json))

    $passed = ($results | Measure-Object Passed -Sum).Sum
    $failed = ($results | Measure-Object Failed -Sum).Sum
    $skipped = ($results | Measure-Object Skipped -Sum).Sum
    $script:TestFailed = $failed -gt 0
    # The failures are named again just above the summary: a CI log shown only by its tail still says what broke.
    foreach ($name in $results | ForEach-Object { $_.FailedNames } | Where-Object { $_ }) { Write-Output "failed: $name" }
    # The last line of the run: CI reads it.
    Write-Output "tests: $passed passed, $failed failed, $skipped skipped"
}

function New-SampleImage([string] $Path) {
    # A small ext4 root filesystem with a few files, made without mounting anything.
    $dir = Join-Path ([System.IO.Path]::GetTempPath()) "shuru-sample-$PID"
    $null = New-Item -ItemType Directory -Force (Join-Path $dir 'etc'), (Join-Path $dir 'home/shuru')
    Set-Content (Join-Path $dir 'etc/hostname') 'shuru-sample'
    Set-Content (Join-Path $dir 'home/shuru/README') 'This disk was generated by ShuruStore build.ps1 -Task Serve.'
    $null = New-Item -ItemType Directory -Force (Split-Path $Path)
    Invoke-Native truncate -s 64M $Path
    Invoke-Native mkfs.ext4 -F -q -L shuru-sample -E root_owner=0:0 -d $dir $Path
    Remove-Item $dir -Recurse -Force
}

function Invoke-Serve {
    if (-not $NoBuild) { Invoke-Build }
    $serveDir = Join-Path $Out 'serve'
    $null = New-Item -ItemType Directory -Force $serveDir
    if (-not $ImagePath) {
        $ImagePath = Join-Path $serveDir 'sample-rootfs.ext4'
        if (-not (Test-Path $ImagePath)) {
            Invoke-Native bash (Join-Path $Root 'tools/install-deps.sh')
            New-SampleImage $ImagePath
            Write-Host "Generated a 64 MiB sample ext4 image at $ImagePath"
        }
    }
    if (-not $CasPath) { $CasPath = Join-Path $serveDir 'cas' }
    if (-not $SocketPath) {
        $SocketPath = Join-Path $serveDir 'shuru.sock'
        # Unix socket paths are limited to 107 bytes.
        if ($SocketPath.Length -gt 100) { $SocketPath = "/tmp/shurustore-$([Environment]::UserName).sock" }
    }
    Import-Module (Join-Path $Staged 'ShuruStore.psd1') -Force
    $serverArgs = @{ SocketPath = $SocketPath; Name = 'serve' }
    if ($Flat) {
        $serverArgs.ImagePath = $ImagePath
    } else {
        $serverArgs.BaseImagePath = $ImagePath
        $serverArgs.CasPath = $CasPath
        if ($IndexPath) { $serverArgs.IndexPath = $IndexPath }
        if ($StatePath) { $serverArgs.StatePath = $StatePath }
    }
    $server = Start-ShuruNbdServer @serverArgs
    $failure = $null
    try {
        $server | Format-List | Out-Host
        Write-Host "Serving $ImagePath. Connect a VM or qemu with:"
        Write-Host "    $($server.Uri)"
        Write-Host "e.g. nbdinfo '$($server.Uri)'. Press Ctrl+C to stop."
        # Until Ctrl+C (which stops this pipeline), SIGTERM or SIGHUP (the module stops the
        # server, and the process ends).
        $server | Wait-ShuruNbdServer
    } catch {
        $failure = $_
        throw
    } finally {
        # Runs on Ctrl+C and on a stopped pipeline alike: flush, close clients, remove the socket.
        $server | Stop-ShuruNbdServer -Confirm:$false
        Write-Host "Stopped; socket $($server.SocketPath) removed."
        # A script ended by Ctrl+C exits 0 or 1 depending on where the stop lands (seen under
        # load); a serve that stopped its server cleanly succeeded, so it says so here, the one
        # place a stopped pipeline still runs. Serve is the last task of a run.
        if (-not $failure) { exit 0 }
    }
}

# Publishes the staged module into out/repository, a PSResourceGet file repository. Publishing
# needs a registered repository, and PSResourceGet keeps registrations under HOME: it runs in a
# child pwsh whose HOME is a scratch folder, so the user's own registrations stay as they are.
function Invoke-Package {
    if (-not $NoBuild) { Invoke-Build }
    $repository = Join-Path $Out 'repository'
    $version = (Test-ModuleManifest (Join-Path $Staged 'ShuruStore.psd1')).Version
    $null = New-Item -ItemType Directory -Force $repository
    # A version is published once; a rebuild of the same version replaces its package.
    Remove-Item (Join-Path $repository "ShuruStore.$version.nupkg") -ErrorAction Ignore
    $scratchHome = Join-Path ([System.IO.Path]::GetTempPath()) "shurustore-package-$PID"
    # .NET reports a missing ~/.config as no folder at all, and NuGet then writes its settings
    # under the current directory: the scratch HOME gets one, and is the current directory too.
    $null = New-Item -ItemType Directory -Force (Join-Path $scratchHome '.config')
    $publish = 'param($Module, $Repository) $ErrorActionPreference = ''Stop''; ' +
        'Register-PSResourceRepository -Name ShuruStoreBuild -Uri $Repository -Trusted; ' +
        'Publish-PSResource -Path $Module -Repository ShuruStoreBuild'
    $pwsh = Get-PwshCommand
    $publishArgs = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command', "& { $publish } '$Staged' '$repository'")
    $realHome = $env:HOME
    Push-Location $scratchHome
    try {
        $env:HOME = $scratchHome
        Invoke-Native $pwsh[0] @publishArgs
    } finally {
        $env:HOME = $realHome
        Pop-Location
        Remove-Item $scratchHome -Recurse -Force -ErrorAction Ignore
    }
    $package = Join-Path $repository "ShuruStore.$version.nupkg"
    if (-not (Test-Path $package)) { throw "Publish-PSResource wrote no $package" }
    Write-Host "Published $package. Install it with:"
    Write-Host "    Register-PSResourceRepository ShuruStoreLocal -Uri '$repository' -Trusted"
    Write-Host "    Install-PSResource ShuruStore -Repository ShuruStoreLocal"
}

function Invoke-Bench {
    Invoke-Deps
    Invoke-Build
    # The peer bench's scratch files (about a hundred thousand chunk files) are deleted only after
    # the tier's bench: on a journal-less ext4 (these VMs' root) files created in the minutes after
    # many deletions cost several times more (docs/performance.md, step 22), and the tier's cold
    # read creates 16,384 of them.
    $benchWork = Join-Path '/var/tmp' ('shuru-bench.' + [guid]::NewGuid().ToString('N').Substring(0, 8))
    $env:BENCH_WORKDIR = $benchWork
    $env:BENCH_KEEP = '1'
    try {
        Invoke-Native bash (Join-Path $Root 'bench/run-bench.sh') $Configuration
        # The remote chunk tier against the object store's raw rates (Invoke-Deps started the cluster);
        # a child pwsh, as for Pester: the binary module it imports can never be unloaded from this one.
        $pwsh = Get-PwshCommand
        Invoke-Native $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -File (Join-Path $Root 'bench/remote/tier.ps1')
    } finally {
        Remove-Item Env:BENCH_WORKDIR, Env:BENCH_KEEP -ErrorAction SilentlyContinue
        foreach ($dir in 'img', 'cas', 'sock') { Remove-Item -Recurse -Force (Join-Path $benchWork $dir) -ErrorAction SilentlyContinue }
        Write-Host "peer bench results and logs: $(Join-Path $benchWork 'results')"
    }
}

function Invoke-BenchScale {
    Invoke-Deps
    Invoke-Build
    Invoke-Native bash (Join-Path $Root 'bench/scale/run-scale.sh')
    Invoke-Native bash (Join-Path $Root 'bench/boot/run-boot.sh')
}

function Invoke-Reliability {
    Invoke-Deps
    Invoke-Build
    if ($Soak) {
        Invoke-Native /usr/bin/python3 (Join-Path $Root 'tests/reliability/soak.py') --minutes $Soak `
            --svg (Join-Path $Root 'docs/soak.svg') --docs
    } else {
        Invoke-Native /usr/bin/python3 (Join-Path $Root 'tests/reliability/run-long.py')
    }
}

$script:TestFailed = $false
foreach ($t in $Task) {
    switch ($t) {
        'Deps' { Invoke-Deps }
        'Build' { Invoke-Build }
        'Test' { Invoke-Test }
        'Serve' { Invoke-Serve }
        'Package' { Invoke-Package }
        'Bench' { if ($Scale) { Invoke-BenchScale } else { Invoke-Bench } }
        'Reliability' { Invoke-Reliability }
    }
}
if ($script:TestFailed) { exit 1 }
