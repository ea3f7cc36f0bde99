# The remote chunk tier as a fleet uses it, against the project's real one-node Ceph cluster
# (tools/ceph/cluster.sh): separate pwsh processes are the "hosts", each with its own empty local
# store and no access to the base image. Host A publishes, B boots it, writes, saves and
# publishes, C boots B's checkpoint; this session then inspects, exports, survives radosgw going
# away, collects and meets a damaged object.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $cluster = Join-Path $RepoRoot 'tools/ceph/cluster.sh'
    Invoke-Client bash $cluster start | Out-Null   # a no-op when it is running (build.ps1 -Task Test starts it too)
    foreach ($line in (Invoke-Client bash $cluster env) -split "`n") {
        if ($line -match '^export (\w+)=(.*)$') { Set-Item "env:$($Matches[1])" $Matches[2].Trim("'", '"') }
    }
    $script:Cluster = $cluster
    $script:Dir = New-TestDirectory
    $env:XDG_CACHE_HOME = Join-Path $Dir 'xdg'     # where Get-/Compare-ShuruChunkIndex mirror published indexes
    $script:Dest = "s3://$($env:SHURU_TEST_BUCKET)/pester-$([guid]::NewGuid().ToString('N').Substring(0, 10))"
    $script:Prefix = $Dest.Substring("s3://$($env:SHURU_TEST_BUCKET)/".Length)

    # The base image: 16 MiB of random data (256 distinct chunks) and 16 MiB of zeros.
    $script:Base = Join-Path $Dir 'base.raw'
    Invoke-Client bash -c "head -c 16M /dev/urandom > '$Base' && truncate -s 32M '$Base'" | Out-Null
    # What each published checkpoint must read as: A writes 256 KiB at 1 MiB, B 128 KiB at 20 MiB.
    $script:ExpectA = Join-Path $Dir 'expect-a.raw'
    $script:ExpectB = Join-Path $Dir 'expect-b.raw'
    Copy-Item $Base $ExpectA
    Invoke-Client qemu-io -f raw -c 'write -P 0x5a 1M 256k' $ExpectA | Out-Null
    Copy-Item $ExpectA $ExpectB
    Invoke-Client qemu-io -f raw -c 'write -P 0xa5 20M 128k' $ExpectB | Out-Null

    # Runs $Script in a new pwsh "host" with the module and $Environment; returns the object its
    # last output line holds as JSON. Fails with the host's error output when it fails.
    function Invoke-TestHost([string] $Script, [hashtable] $Environment) {
        $p = Start-ModulePwsh -Script "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; $Script" -Environment $Environment
        $stderr = $p.StandardError.ReadToEndAsync()
        $stdout = $p.StandardOutput.ReadToEnd()
        $p.WaitForExit()
        if ($p.ExitCode -ne 0) { throw "host failed ($($p.ExitCode)): $stdout $($stderr.Result)" }
        ($stdout -split "`n" | Where-Object { $_.Trim() } | Select-Object -Last 1) | ConvertFrom-Json
    }
    # A host directory: nothing in it but what the host makes.
    function New-HostDirectory([string] $Name) { (New-Item -ItemType Directory (Join-Path $Dir $Name)).FullName }

    # Objects of the test prefix, through boto3 (the test's own client, not the module's).
    function Invoke-S3([string] $Operation, [string] $Key = '', [string] $On = $Prefix) {
        $py = @'
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ["AWS_REGION"])
bucket, prefix, op, key = os.environ["SHURU_TEST_BUCKET"], sys.argv[1], sys.argv[2], sys.argv[3]
if op == "list":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/" + key):
        for o in page.get("Contents", []): print(o["Key"][len(prefix) + 1:], o["Size"])
elif op == "purge":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys: s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
elif op == "delete":
    s3.delete_object(Bucket=bucket, Key=prefix + "/" + key)
elif op == "damage":
    body = bytearray(s3.get_object(Bucket=bucket, Key=prefix + "/" + key)["Body"].read())
    body[-1] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=prefix + "/" + key, Body=bytes(body))
'@
        Invoke-Client /usr/bin/python3 -c $py $On $Operation $Key
    }
    function Get-RemoteObjects([string] $Folder, [string] $On = $Prefix) {
        @((Invoke-S3 list $Folder $On) -split "`n" | Where-Object { $_.Trim() } | ForEach-Object {
            $k, $n = $_.Trim() -split ' '; [pscustomobject]@{ Key = $k; Length = [long]$n } })
    }
    function Assert-SameBytes([string] $Expected, [string] $Actual) {
        Invoke-Client cmp $Expected $Actual | Out-Null   # throws with the first difference
    }
}
AfterAll {
    Invoke-Client bash $Cluster rgw-start | Out-Null
    Invoke-S3 purge | Out-Null
    Invoke-S3 purge -On "$Prefix-stop" | Out-Null
    Get-ShuruNbdServer | Stop-ShuruNbdServer -Confirm:$false
    Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue
}

Describe 'A checkpoint published on one host boots on any other' {
    It 'host A publishes a lazily served, written and saved checkpoint (base pieces included); -WhatIf plans, a second run uploads nothing' {
        $a = New-HostDirectory 'host-a'
        Copy-Item $Base (Join-Path $a 'base.raw')
        $r = Invoke-TestHost -Environment @{ HOST_DIR = $a; DEST = $Dest } -Script @'
$d = $env:HOST_DIR
$s = Start-ShuruNbdServer -BaseImagePath "$d/base.raw" -CasPath "$d/cas" -SocketPath "$d/a.sock"
qemu-io -f raw -c 'write -P 0x5a 1M 256k' $s.Uri | Out-Null
if ($LASTEXITCODE) { throw 'qemu-io failed' }
$null = Save-ShuruCheckpoint -Server $s -Path "$d/golden.idx"
$s | Stop-ShuruNbdServer -Confirm:$false
$plan = Publish-ShuruCheckpoint "$d/golden.idx" "$d/cas" -Destination $env:DEST -WhatIf 6>$null
$r = Publish-ShuruCheckpoint "$d/golden.idx" "$d/cas" -Destination $env:DEST
$again = Publish-ShuruCheckpoint "$d/golden.idx" "$d/cas" -Destination $env:DEST
[pscustomobject]@{ Type = $r.GetType().FullName; Uri = $r.Uri; Chain = $r.Chain.Count; Uploaded = $r.ChunksUploaded; Packs = $r.PacksUploaded; Bytes = $r.BytesUploaded
    PlanWhatIf = $plan.WhatIf; Planned = $plan.ChunksUploaded; PlannedPacks = $plan.PacksUploaded
    AgainAlready = $again.AlreadyPublished; AgainPacks = $again.PacksUploaded; AgainBytes = $again.BytesUploaded } | ConvertTo-Json -Compress
'@
        $script:UriA = $r.Uri
        $r.Type | Should -Be 'ShuruStore.Commands.ShuruPublishResult'
        $r.Uri | Should -Be "$Dest/indexes/golden.idx"
        $r.Chain | Should -Be 2                          # the base image's pieces, then golden
        $r.Uploaded | Should -Be 253                     # 252 base pieces not overwritten + 1 (the 4 written chunks are alike); zeros never go
        $r.Bytes | Should -BeGreaterThan (253 * 64KB)     # the chunks, pack headers, maps and indexes
        $r.PlanWhatIf | Should -BeTrue
        $r.Planned | Should -Be $r.Uploaded
        $r.PlannedPacks | Should -Be $r.Packs
        $r.AgainAlready | Should -BeTrue
        $r.AgainPacks | Should -Be 0
        $r.AgainBytes | Should -Be 0
        # Host A is gone: nothing of it (base image, chunks) is left for the other hosts.
        Remove-Item -Recurse -Force $a
    }

    It 'host B boots it with an empty store and reads it byte for byte, writes, saves and publishes only its new chunks' {
        $b = New-HostDirectory 'host-b'
        $r = Invoke-TestHost -Environment @{ HOST_DIR = $b; DEST = $Dest; URI = $UriA } -Script @'
$d = $env:HOST_DIR
$s = Start-ShuruNbdServer -IndexPath $env:URI -CasPath "$d/cache" -SocketPath "$d/b.sock"
nbdcopy $s.Uri "$d/read.raw"
if ($LASTEXITCODE) { throw 'nbdcopy failed' }
qemu-io -f raw -c 'write -P 0xa5 20M 128k' $s.Uri | Out-Null
if ($LASTEXITCODE) { throw 'qemu-io failed' }
$cp = Save-ShuruCheckpoint -Server $s -Path "$d/hostb.idx"
$shown = ($s.PSObject.Properties | ForEach-Object { "$($_.Value)" }) -join "`n"
$remoteUri = $s.RemoteIndexUri
$s | Stop-ShuruNbdServer -Confirm:$false
$r = Publish-ShuruCheckpoint "$d/hostb.idx" "$d/cache" -Destination $env:DEST -Name hostb
[pscustomobject]@{ Uri = $r.Uri; Uploaded = $r.ChunksUploaded; Indexes = $r.IndexesPublished; Chain = $r.Chain; RemoteIndexUri = $remoteUri
    Parent = $cp.ParentPath; Shown = $shown } | ConvertTo-Json -Compress
'@
        $script:UriB = $r.Uri
        Assert-SameBytes $ExpectA (Join-Path $b 'read.raw')
        $r.RemoteIndexUri | Should -Be $UriA
        $r.Parent | Should -Not -BeNullOrEmpty             # the local checkpoint's parent: the published index's mirror
        $r.Uri | Should -Be "$Dest/indexes/hostb.idx"
        $r.Indexes | Should -Be 1                          # only hostb: golden and the base are already there
        $r.Uploaded | Should -Be 1                         # the (two identical) chunks B wrote
        $r.Chain | Should -Be @($r.Uri)                    # golden and the base below it were there already
        $r.Shown | Should -Not -Match ([regex]::Escape($env:AWS_SECRET_ACCESS_KEY))
        $r.Shown | Should -Not -Match ([regex]::Escape($env:AWS_ACCESS_KEY_ID))
    }

    It 'host C boots host B''s checkpoint and reads it byte for byte' {
        $c = New-HostDirectory 'host-c'
        $null = Invoke-TestHost -Environment @{ HOST_DIR = $c; URI = $UriB } -Script @'
$d = $env:HOST_DIR
$s = Start-ShuruNbdServer -IndexPath $env:URI -CasPath "$d/cache" -SocketPath "$d/c.sock" -ReadOnly
nbdcopy $s.Uri "$d/read.raw"
if ($LASTEXITCODE) { throw 'nbdcopy failed' }
$s | Stop-ShuruNbdServer -Confirm:$false
'{}'
'@
        Assert-SameBytes $ExpectB (Join-Path $c 'read.raw')
    }

    It 'host D boots it with -CacheLimit: fetched chunks are evicted to the limit, chunks only this host has are kept, reads stay exact' {
        $d = New-HostDirectory 'host-d'
        $r = Invoke-TestHost -Environment @{ HOST_DIR = $d; URI = $UriB } -Script @'
$d = $env:HOST_DIR
$s = Start-ShuruNbdServer -IndexPath $env:URI -CasPath "$d/cache" -SocketPath "$d/d.sock" -CacheLimit 2MB
qemu-io -f raw -c 'write -P 0x3c 4M 192k' -c flush $s.Uri | Out-Null
if ($LASTEXITCODE) { throw 'qemu-io failed' }
foreach ($round in 1, 2) {
    nbdcopy $s.Uri "$d/read$round.raw"
    if ($LASTEXITCODE) { throw 'nbdcopy failed' }
}
$s | Stop-ShuruNbdServer -Confirm:$false
$files = @(Get-ChildItem "$d/cache/chunks" -File | Where-Object Name -Match '^[0-9a-f]{64}$')
[pscustomobject]@{ Names = @($files.Name); Bytes = ($files | Measure-Object Length -Sum).Sum } | ConvertTo-Json -Compress
'@
        # What a reader sees: host B's disk with the written range.
        $expect = Join-Path $d 'expect.raw'
        Copy-Item $ExpectB $expect
        $fs = [IO.File]::OpenWrite($expect)
        $written = [byte[]]::new(192KB)
        [Array]::Fill($written, [byte]0x3c)
        try { $fs.Position = 4MB; $fs.Write($written, 0, $written.Length) } finally { $fs.Dispose() }
        Assert-SameBytes $expect (Join-Path $d 'read1.raw')
        Assert-SameBytes $expect (Join-Path $d 'read2.raw')
        # The written chunk exists only on this host: never evicted.
        $writtenChunk = (Invoke-Client bash -c "head -c 65536 /dev/zero | tr '\0' '\074' | b3sum --no-names").Trim()
        $r.Names | Should -Contain $writtenChunk
        # Two reads of a 32 MiB disk fetched every chunk; no more than the limit and a fetch group
        # or two in flight (1 MiB each) stays, besides the chunk this host wrote.
        $r.Bytes | Should -BeLessOrEqual (2MB + 2MB + 64KB)
        $r.Bytes | Should -BeGreaterThan 0
    }

    It 'Get-ShuruChunkIndex, Compare-ShuruChunkIndex and Export-ShuruDisk take s3:// indexes' {
        $i = Get-ShuruChunkIndex $UriB
        $i.ChunkCount | Should -Be 512
        @($i.Chain).Count | Should -Be 3
        # Shown by where the data lives, not by the local mirror it was read from.
        $i.Path | Should -Be $UriB
        "$i" | Should -Be $UriB
        @($i.Chain | Where-Object { $_ -notlike 's3://*' }).Count | Should -Be 0
        $i.Chain[1] | Should -Be $i.ParentPath
        $i.ParentPath | Should -BeLike 's3://*/indexes/*.idx'
        Test-Path -LiteralPath $i.MirrorPath -PathType Leaf | Should -BeTrue
        $i.MirrorPath | Should -Not -BeLike 's3://*'
        ($i | Get-ShuruChunkIndex).Path | Should -Be $UriB                      # the object pipes on by its URI
        $e0 = Get-ShuruChunkIndex $UriB -Chunk 0
        $e0.IndexPath | Should -Be $UriB
        $e0.Source | Should -BeLike 's3://*'
        $diff = Compare-ShuruChunkIndex $UriA $UriB -Summary
        $diff.DifferentChunks | Should -Be 2
        $diff.ReferencePath | Should -Be $UriA
        $diff.DifferencePath | Should -Be $UriB
        $e = Export-ShuruDisk $UriB -CasPath (Join-Path $Dir 'export-cache') -Destination (Join-Path $Dir 'export.raw')
        $e.DiskSize | Should -Be 32MB
        Assert-SameBytes $ExpectB (Join-Path $Dir 'export.raw')
        # Through a bounded cache: the image is exact, the cache keeps no more than its limit and a fetch group or two.
        $limited = Join-Path $Dir 'export-limited'
        $l = Export-ShuruDisk $UriB -CasPath $limited -Destination (Join-Path $Dir 'export-limited.raw') -CacheLimit 2MB
        $l.DiskSize | Should -Be 32MB
        Assert-SameBytes $ExpectB (Join-Path $Dir 'export-limited.raw')
        $kept = (Get-ChildItem (Join-Path $limited 'chunks') -File | Measure-Object Length -Sum).Sum
        $kept | Should -BeLessOrEqual (2MB + 2MB)
        # -CacheLimit is for published indexes only.
        $local = (Get-ShuruChunkIndex $UriB).MirrorPath
        $err = $null
        Export-ShuruDisk $local -CasPath $limited -Destination (Join-Path $Dir 'local.raw') -CacheLimit 2MB -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^NotForLocalIndex'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        Test-Path (Join-Path $Dir 'local.raw') | Should -BeFalse
    }
}

Describe 'Ctrl+C during a publish' {
    It 'stops the upload at once (StopProcessing), and running it again finishes it without uploading the packs already there' {
        $d = New-HostDirectory 'interrupted'
        $disk = Join-Path $d 'disk.raw'
        Invoke-Client bash -c "head -c 48M /dev/urandom > '$disk'" | Out-Null
        $idx = Join-Path $d 'big.idx'
        $null = Import-ShuruDisk -Path $disk -CasPath (Join-Path $d 'cas') -IndexPath $idx
        $ps = [powershell]::Create()
        $stopDest = "$Dest-stop"                            # a store of its own: the other tests count objects in theirs
        $null = $ps.AddScript("Import-Module '$StagedModule'; Publish-ShuruCheckpoint '$idx' '$(Join-Path $d 'cas')' -Destination '$stopDest' -Parallelism 1")
        $run = $ps.BeginInvoke()
        try {
            # Once some packs are up, the store stops answering: the publish is stuck mid-upload.
            Wait-Until { @($ps.Streams.Progress | Where-Object PercentComplete -GT 5).Count -gt 0 -or $run.IsCompleted } -Because 'packs are being uploaded' -Seconds 120
            $run.IsCompleted | Should -BeFalse -Because 'the publish must still be running when it is stopped'
            Invoke-Client bash $Cluster rgw-pause | Out-Null
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()                                      # what Ctrl+C does: StopProcessing
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'the cancel ends requests in flight instead of waiting for their deadline'
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        } finally {
            Invoke-Client bash $Cluster rgw-resume | Out-Null
            $ps.Dispose()
        }
        @(Get-RemoteObjects 'indexes/' "$Prefix-stop" | ForEach-Object Key) -contains 'indexes/big.idx' | Should -BeFalse   # the index goes last
        @(Get-RemoteObjects 'uploads/' "$Prefix-stop" | ForEach-Object Key) -contains 'uploads/big.upload' | Should -BeTrue  # its marker protects its packs
        @(Get-RemoteObjects 'packs/' "$Prefix-stop").Count | Should -BeGreaterThan 0

        $r = Publish-ShuruCheckpoint $idx (Join-Path $d 'cas') -Destination $stopDest
        $r.PacksSkipped | Should -BeGreaterThan 0
        $r.PacksUploaded + $r.PacksSkipped | Should -Be 12
        @(Get-RemoteObjects 'uploads/' "$Prefix-stop").Count | Should -Be 0
        (Test-ShuruChunkStore -CasPath $stopDest -Structure).IsHealthy | Should -BeTrue
    }
}

Describe 'Bad input and credentials' {
    It 'a malformed destination is RemoteInvalid (InvalidArgument), and user information in it is never echoed' {
        $idx = (Get-ShuruChunkIndex $UriA).MirrorPath     # the local mirror: an index file that exists
        $err = $null
        Publish-ShuruCheckpoint $idx (Join-Path $Dir 'xdg') -Destination 's3://someone:hunter2@bucket/x' -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Match '^RemoteInvalid'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        ($err[0] | Out-String) + $err[0].Exception.ToString() | Should -Not -Match 'hunter2'
    }

    It 'a wrong secret key is RemoteAccessDenied (PermissionDenied), and no key appears in the error' {
        $secret, $cache = $env:AWS_SECRET_ACCESS_KEY, $env:XDG_CACHE_HOME
        $env:AWS_SECRET_ACCESS_KEY = 'WRONGSECRETwrongsecret0123456789'
        $env:XDG_CACHE_HOME = Join-Path $Dir 'xdg-denied'      # nothing mirrored yet: the index must be asked for
        try {
            $out = try { Get-ShuruChunkIndex $UriA -ErrorAction Stop } catch { "$($_.FullyQualifiedErrorId)|$($_.CategoryInfo.Category)|$($_.Exception.ToString())|$($_ | Out-String)" }
        } finally { $env:AWS_SECRET_ACCESS_KEY, $env:XDG_CACHE_HOME = $secret, $cache }
        $out | Should -Match '^RemoteAccessDenied'
        $out | Should -Match '\|PermissionDenied\|'
        $out | Should -Not -Match 'WRONGSECRET'
        $out | Should -Not -Match ([regex]::Escape($env:AWS_ACCESS_KEY_ID))
    }

    It 'a published index that does not exist is an error, and the server does not start' {
        { Start-ShuruNbdServer -IndexPath "$Dest/indexes/nothing.idx" -CasPath (Join-Path $Dir 'none') -SocketPath (Join-Path $Dir 'none.sock') -ErrorAction Stop } |
            Should -Throw -ErrorId 'IndexNotFound*'
        Get-ShuruNbdServer | Should -BeNullOrEmpty
    }

    It 'local-only parameters on a remote store are refused (NotForRemoteStore)' {
        { Test-ShuruChunkStore -CasPath $Dest -Repair -ErrorAction Stop } | Should -Throw -ErrorId 'NotForRemoteStore*'
        { Remove-ShuruUnusedChunk -CasPath $Dest -IndexPath $ExpectA -ErrorAction Stop } | Should -Throw -ErrorId 'NotForRemoteStore*'
    }
}

Describe 'radosgw stopped mid-read' {
    It 'an uncached read gets EIO within the configured bound, cached ranges keep working on the same connection, and reads recover' {
        $s = Start-ShuruNbdServer -IndexPath $UriA -CasPath (Join-Path $Dir 'outage-cache') -SocketPath (Join-Path $Dir 'outage.sock') -RemoteTimeoutSec 4
        try {
            Invoke-QemuIo -Uri $s.Uri -Commands 'read 0 64k' | Out-Null          # one chunk fetched, nothing read ahead
            Invoke-Client bash $Cluster rgw-stop | Out-Null
            try {
                $clock = [Diagnostics.Stopwatch]::StartNew()
                $out = & qemu-io -f raw -c 'read 0 64k' -c 'read 8M 64k' -c 'read 0 64k' $s.Uri 2>&1 | Out-String
                $clock.Stop()
                $out | Should -Match 'Input/output error'
                ([regex]::Matches($out, 'read 65536/65536 bytes')).Count | Should -Be 2   # the cached chunk, before and after the failure
                $clock.Elapsed.TotalSeconds | Should -BeLessThan 20 -Because 'the bound is 4 s (plus a loaded machine''s slack)'
                $s.State | Should -Be 'Running'
            } finally {
                Invoke-Client bash $Cluster rgw-start | Out-Null
            }
            Wait-Until { (& bash $Cluster status) -match '^running' } -Because 'radosgw answers again' -Seconds 60
            # The chunk that failed is fetched now (verified against its name, as every fetched chunk is).
            Invoke-QemuIo -Uri $s.Uri -Commands 'read 8M 64k' | Should -Match 'read 65536/65536'
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
    }
}

Describe 'Collection of the remote store' {
    It 'published indexes are roots, recent uploads are spared, unreferenced packs go (with ShouldProcess)' {
        # Host B's checkpoint is withdrawn: its index goes, its map and its one pack stay behind.
        $packsBefore = Get-RemoteObjects 'packs/'
        Invoke-S3 delete 'indexes/hostb.idx' | Out-Null

        $spared = Remove-ShuruUnusedChunk -CasPath $Dest -Confirm:$false
        $spared | Should -BeOfType ShuruStore.Commands.ShuruRemoteCollectionResult
        $spared.Indexes | Should -Be 2
        $spared.PacksSpared | Should -Be 1                  # hostb's pack, younger than the grace period
        $spared.ObjectsRemoved | Should -Be 0

        $plan = Remove-ShuruUnusedChunk -CasPath $Dest -GracePeriod 0 -WhatIf
        $plan.WhatIf | Should -BeTrue
        $plan.ObjectsUnused | Should -Be 2                  # hostb's pack and its map
        (Get-RemoteObjects 'packs/').Count | Should -Be $packsBefore.Count

        # Run where the progress stream can be read: the collection shows a progress bar.
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$StagedModule'; Remove-ShuruUnusedChunk -CasPath '$Dest' -GracePeriod 0 -Confirm:`$false")
            $r = @($ps.Invoke())[0]
            $ps.Streams.Error | Should -BeNullOrEmpty
            $bars = @($ps.Streams.Progress)
        } finally { $ps.Dispose() }
        $r.ObjectsRemoved | Should -Be 2
        @($bars | Where-Object { $_.Activity -like 'Removing unused objects from s3://*' -and $_.StatusDescription -eq 'Removing: 2 of 2 objects' }).Count | Should -BeGreaterThan 0
        @($bars | Where-Object { $_.Activity -like 'Collecting unused objects in s3://*' }).Count | Should -BeGreaterThan 0
        $bars[-1].RecordType | Should -Be 'Completed'
        (Get-RemoteObjects 'packs/').Count | Should -Be ($packsBefore.Count - 1)
        (Get-RemoteObjects 'maps/').Key | Should -Not -Contain 'maps/hostb.map'

        # Everything golden needs is still there and intact.
        $t = Test-ShuruChunkStore -CasPath $Dest
        $t.IsHealthy | Should -BeTrue
        $t.ChunksChecked | Should -Be 253
    }
}

Describe 'A damaged remote object' {
    It 'is reported by Test-ShuruChunkStore, never cached or served: the read gets EIO and the server stays up' {
        $pack = Get-RemoteObjects 'packs/' | Sort-Object Length -Descending | Select-Object -First 1
        Invoke-S3 damage $pack.Key | Out-Null

        $t = Test-ShuruChunkStore -CasPath $Dest -WarningAction SilentlyContinue
        $t | Should -BeOfType ShuruStore.Commands.ShuruRemoteStoreTestResult
        $t.IsHealthy | Should -BeFalse
        $damaged = @($t.Problems | Where-Object Kind -EQ 'ChunkDamaged')
        $damaged | Should -HaveCount 1
        $damaged[0].Uri | Should -Be "$Dest/$($pack.Key)"
        Test-ShuruChunkStore -CasPath $Dest -Quiet -WarningAction SilentlyContinue | Should -BeFalse

        $cache = Join-Path $Dir 'damaged-cache'
        $s = Start-ShuruNbdServer -IndexPath $UriA -CasPath $cache -SocketPath (Join-Path $Dir 'damaged.sock') -ReadOnly
        try {
            $out = & nbdcopy $s.Uri (Join-Path $Dir 'damaged.raw') 2>&1 | Out-String
            $LASTEXITCODE | Should -Not -Be 0
            $out | Should -Match 'Input/output error'
            $s.State | Should -Be 'Running'
            Invoke-Client qemu-io -r -f raw -c 'read -P 0x5a 1M 64k' $s.Uri | Should -Match 'read 65536/65536'   # intact chunks are still served
        } finally { $s | Stop-ShuruNbdServer -Confirm:$false }
        $local = Test-ShuruChunkStore -CasPath $cache
        $local.Corrupt | Should -Be 0
    }
}
