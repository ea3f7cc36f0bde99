<#
.SYNOPSIS
    The remote chunk tier against the object store's own raw rates, in one run on the test cluster.
.DESCRIPTION
    On a disk of random data (every 64 KiB chunk distinct, so nothing is deduplicated):
      publish   Publish-ShuruCheckpoint of the imported disk      vs  raw parallel PUT of the same bytes in 4 MiB objects
      cold      nbdcopy of the published disk on an empty host    vs  raw parallel GET of the published packs
                (the same bytes in 4 MiB objects, before and after the read); reported beside it: vs the raw
                GET of fresh 4 MiB objects, and vs a raw GET that keeps every 64 KiB as a file, as the cache must
      cached    nbdcopy of the same server once everything is cached  vs  a local chunk-store disk of the same index
      ttfb      Start-ShuruNbdServer to the first 4 KiB read, published (empty cache) vs local
    The raw rates come from bench/remote/raw_rate.py (boto3, 32 requests in flight), run before and after
    the tier's measurements; the ratio uses their mean. Cached and local reads alternate, 3 rounds each,
    medians. Writes the table to docs/remote.md (between its remote-tier-bench markers) and a JSON record
    to bench/remote/results/.
    Needs the cluster (tools/ceph/cluster.sh start) and the staged module (build.ps1 -Task Build).
#>
param(
    [int] $SizeMiB = 1024,
    [string] $WorkRoot = '/var/tmp',
    [switch] $NoDocs
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $root 'out/ShuruStore/ShuruStore.psd1') -Force
$PSDefaultParameterValues['Start-ShuruNbdServer:WarningAction'] = 'SilentlyContinue'
$cluster = Join-Path $root 'tools/ceph/cluster.sh'
foreach ($line in (& bash $cluster env) -split "`n") {
    if ($line -match '^export (\w+)=(.*)$') { Set-Item "env:$($Matches[1])" $Matches[2].Trim("'", '"') }
}
function Invoke-Native { & $args[0] @($args | Select-Object -Skip 1); if ($LASTEXITCODE) { throw "$($args -join ' ') failed ($LASTEXITCODE)" } }
function Get-Load { ((Get-Content /proc/loadavg) -split ' ')[0..2] -join ' ' }
function Measure-Seconds([scriptblock] $Block) { $c = [Diagnostics.Stopwatch]::StartNew(); & $Block | Out-Null; $c.Elapsed.TotalSeconds }
function Get-Median([double[]] $v) { $s = $v | Sort-Object; $s[[int][math]::Floor(($s.Count - 1) / 2)] }

$work = Join-Path $WorkRoot ('shuru-tier-bench-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $work | Out-Null
$prefix = 'tier-bench-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
$dest = "s3://$($env:SHURU_TEST_BUCKET)/$prefix"
$size = [long]$SizeMiB * 1MB
$loadBefore = Get-Load
$started = [DateTime]::UtcNow
$servers = @()
try {
    Write-Host "work dir $work, destination $dest, load $loadBefore"
    $base = Join-Path $work 'disk.raw'
    Invoke-Native bash -c "head -c ${SizeMiB}M /dev/urandom > '$base'"
    $local = Join-Path $work 'local-cas'
    $idx = Join-Path $work 'disk.idx'
    $null = Import-ShuruDisk -Path $base -CasPath $local -IndexPath $idx

    # The medians of one run of raw_rate.py (one rep) with the given arguments.
    function Get-RawMedians([string] $Name, [string[]] $Arguments) {
        $out = Join-Path $work "raw-$Name.json"
        Invoke-Native /usr/bin/python3 (Join-Path $PSScriptRoot 'raw_rate.py') @Arguments --reps 1 --out $out 2>$null | Out-Null
        (Get-Content -Raw $out | ConvertFrom-Json).median
    }
    # The files phase (a GET that keeps each 64 KiB as a file, as the cache must) runs only after
    # the tier's reads: it deletes its files at the end, and on a journal-less ext4 files created
    # right after many deletions cost far more (docs/performance.md, step 22).
    function Get-RawRates([string] $Name, [switch] $WithFiles) {
        $phases = if ($WithFiles) { 'put-4m,get-4m,get-4m-files' } else { 'put-4m,get-4m' }
        $m = Get-RawMedians $Name @('--phases', $phases, '--large-count', ($SizeMiB / 4), '--files-dir', $work)
        [pscustomobject]@{ Put = [double]$m.'put-4m'.mib_per_s; Get = [double]$m.'get-4m'.mib_per_s; GetFiles = [double]$m.'get-4m-files'.mib_per_s }
    }
    Write-Host 'raw rates (before)'
    $rawBefore = Get-RawRates 'before'

    Write-Host 'publish'
    $pub = Publish-ShuruCheckpoint $idx $local -Destination $dest -Name disk
    $publishRate = $pub.BytesUploaded / 1MB / $pub.Duration.TotalSeconds

    # boto3's GET of the published packs themselves (the same bytes in 4 MiB objects, written as
    # long before as the cold read finds them), before and after the cold read.
    function Get-PublishedRate([string] $Name) {
        [double](Get-RawMedians "published-$Name" @('--phases', 'get-published', '--published', $prefix)).'get-published'.mib_per_s
    }
    Write-Host 'raw GET of the published packs (before)'
    $packsBefore = Get-PublishedRate 'before'

    Write-Host 'cold read on an empty host'
    $cache = Join-Path $work 'cache'
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $remote = Start-ShuruNbdServer -IndexPath $pub.Uri -CasPath $cache -SocketPath (Join-Path $work 'remote.sock') -Name remote
    $servers += $remote
    Invoke-Native qemu-io -r -f raw -c 'read 0 4k' $remote.Uri | Out-Null
    $ttfbRemote = $clock.Elapsed.TotalSeconds
    $coldSeconds = Measure-Seconds { Invoke-Native nbdcopy $remote.Uri null: }
    $coldRate = $SizeMiB / $coldSeconds
    Write-Host 'raw GET of the published packs (after)'
    $packsAfter = Get-PublishedRate 'after'
    $rawPacks = ($packsBefore + $packsAfter) / 2

    Write-Host 'time to first byte, local'
    $clock = [Diagnostics.Stopwatch]::StartNew()
    $localServer = Start-ShuruNbdServer -IndexPath $idx -CasPath $local -SocketPath (Join-Path $work 'local.sock') -Name local
    $servers += $localServer
    Invoke-Native qemu-io -r -f raw -c 'read 0 4k' $localServer.Uri | Out-Null
    $ttfbLocal = $clock.Elapsed.TotalSeconds

    Write-Host 'cached vs local'
    $cached = @(); $localRates = @()
    for ($round = 0; $round -lt 3; $round++) {
        $cached += $SizeMiB / (Measure-Seconds { Invoke-Native nbdcopy $remote.Uri null: })
        $localRates += $SizeMiB / (Measure-Seconds { Invoke-Native nbdcopy $localServer.Uri null: })
    }
    $cachedRate = Get-Median $cached; $localRate = Get-Median $localRates
    $servers | Stop-ShuruNbdServer -Confirm:$false
    $servers = @()

    Write-Host 'raw rates (after)'
    $rawAfter = Get-RawRates 'after' -WithFiles
    $rawPut = ($rawBefore.Put + $rawAfter.Put) / 2
    $rawGet = ($rawBefore.Get + $rawAfter.Get) / 2
    $loadAfter = Get-Load

    $commit = (& git -C $root rev-parse --short HEAD)
    $f = { param($x) [string]::Format([cultureinfo]::InvariantCulture, '{0:0.0}', $x) }
    $r = { param($x) [string]::Format([cultureinfo]::InvariantCulture, '{0:0.00}', $x) }
    $table = @(
        "- $($started.ToString('yyyy-MM-dd HH:mm')) UTC, commit $commit, disk $SizeMiB MiB of random data, nproc $([Environment]::ProcessorCount); load average before / after: $loadBefore / $loadAfter"
        "- raw (boto3, 32 in flight, 4 MiB objects) before / after: PUT $(& $f $rawBefore.Put) / $(& $f $rawAfter.Put) MiB/s, GET $(& $f $rawBefore.Get) / $(& $f $rawAfter.Get) MiB/s"
        ''
        '| measurement | ShuruStore | baseline | ratio | target |'
        '|---|---:|---:|---:|---:|'
        "| publish (Publish-ShuruCheckpoint, $($pub.PacksUploaded) packs) | $(& $f $publishRate) MiB/s | raw PUT $(& $f $rawPut) MiB/s | $(& $r ($publishRate / $rawPut)) | ≥ 0.8 |"
        "| cold sequential read (nbdcopy, empty host) | $(& $f $coldRate) MiB/s | raw GET of the published packs $(& $f $rawPacks) MiB/s ($(& $f $packsBefore) before, $(& $f $packsAfter) after) | $(& $r ($coldRate / $rawPacks)) | ≥ 0.8 |"
        "| the same cold read against raw GETs of fresh 4 MiB objects (just written) | $(& $f $coldRate) MiB/s | raw GET $(& $f $rawGet) MiB/s | $(& $r ($coldRate / $rawGet)) | (report) |"
        "| the same cold read against a raw GET that keeps every 64 KiB as a file (the cache's layout; after) | $(& $f $coldRate) MiB/s | raw GET + files $(& $f $rawAfter.GetFiles) MiB/s | $(& $r ($coldRate / $rawAfter.GetFiles)) | (report) |"
        "| cached read (nbdcopy, median of 3) | $(& $f $cachedRate) MiB/s | local chunk-store disk $(& $f $localRate) MiB/s | $(& $r ($cachedRate / $localRate)) | ≥ 0.95 |"
        "| time to first byte (start + 4 KiB read) | $([int]($ttfbRemote * 1000)) ms (published, empty cache) | $([int]($ttfbLocal * 1000)) ms (local) | $(& $r ($ttfbRemote / $ttfbLocal)) | |"
    )
    $table | ForEach-Object { Write-Host $_ }
    $resultsDir = Join-Path $PSScriptRoot 'results'
    New-Item -ItemType Directory -Force $resultsDir | Out-Null
    [ordered]@{
        date = $started.ToString('o'); commit = $commit; sizeMiB = $SizeMiB; loadBefore = $loadBefore; loadAfter = $loadAfter
        rawBefore = $rawBefore; rawAfter = $rawAfter; publishMiBps = $publishRate; coldMiBps = $coldRate
        publishedGetBeforeMiBps = $packsBefore; publishedGetAfterMiBps = $packsAfter
        cachedMiBps = $cached; localMiBps = $localRates; ttfbRemoteS = $ttfbRemote; ttfbLocalS = $ttfbLocal
    } | ConvertTo-Json -Depth 4 | Set-Content (Join-Path $resultsDir ("tier-" + $started.ToString('yyyyMMdd-HHmm') + '.json'))
    if (-not $NoDocs) {
        $doc = Join-Path $root 'docs/remote.md'
        $text = Get-Content -Raw $doc
        $begin = '<!-- remote-tier-bench:begin -->'; $end = '<!-- remote-tier-bench:end -->'
        $block = "$begin`n$($table -join "`n")`n$end"
        $text = if ($text.Contains($begin)) { [regex]::Replace($text, [regex]::Escape($begin) + '[\s\S]*?' + [regex]::Escape($end), { $block }) }
                else { $text.TrimEnd() + "`n`n## The tier's benchmark (bench/remote/tier.ps1)`n`n$block`n" }
        [IO.File]::WriteAllText($doc, $text)
    }
} finally {
    $servers | Stop-ShuruNbdServer -Confirm:$false -ErrorAction SilentlyContinue
    $purge = 'import boto3,os,sys' + "`n" + 's3=boto3.client("s3",endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],region_name=os.environ["AWS_REGION"])' + "`n" +
        'for p in s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["SHURU_TEST_BUCKET"],Prefix=sys.argv[1]+"/"):' + "`n" +
        '    k=[{"Key":o["Key"]} for o in p.get("Contents",[])]' + "`n" +
        '    k and s3.delete_objects(Bucket=os.environ["SHURU_TEST_BUCKET"],Delete={"Objects":k})'
    & /usr/bin/python3 -c $purge $prefix
    Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}
