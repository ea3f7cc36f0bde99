# The help text of every cmdlet. tools/New-ShuruHelp.ps1 merges it with the cmdlets' own
# parameter metadata into en-US/ShuruStore.dll-Help.xml (MAML) at build time.
@{
    'Start-ShuruNbdServer' = @{
        Synopsis    = 'Serves a virtual-machine disk over NBD on a Unix socket.'
        Description = @(
            'Starts an NBD server for a disk and returns a handle that stays in this session until it is stopped. The server keeps running after the pipeline ends; Stop-ShuruNbdServer, Remove-Module ShuruStore, closing the runspace, exiting pwsh, SIGTERM and SIGHUP shut it down cleanly (flush, close clients, remove the socket). Wait-ShuruNbdServer waits until it stops.'
            'With -CasPath the disk is a copy-on-write chunk-store disk, compatible with shuru-store 0.1.2: it boots from -IndexPath if that file exists, otherwise starts in lazy mode on the base image (-ImagePath or -BaseImagePath), whose non-zero 64 KiB pieces are stored as chunks on first read. Writes never touch the base image or existing chunks. Without -CasPath the image is served as a plain flat file, and writes change it.'
            'Position 0 is the image in both forms: Start-ShuruNbdServer ./disk.raw /tmp/flat.sock serves a flat image; Start-ShuruNbdServer ./base.raw ./cas -SocketPath /tmp/vm.sock serves a chunk-store disk over base.raw.'
            'Checkpoints can come down the pipeline (index paths, Get-ChildItem, Get-ShuruChunkIndex): each starts a server of its own, and with several of them -SocketPath must be a directory, written with a trailing / (each server listens on <directory>/<name>.sock). Every input is checked first and the servers start together: if one cannot start, the others are stopped again and nothing is returned. A checkpoint from the pipeline must exist.'
            'Clients connect to the Uri of the handle, nbd+unix:///export?socket=PATH: qemu (-drive file=URI,format=raw), nbdinfo, nbdcopy, qemu-img, fio or any NBD client. Several clients may connect at once and reconnect at will.'
            'An index whose chain names a parent index that does not exist (shuru''s checkpoint delete removes a parent without looking at its children) is refused with ParentIndexMissing, which names the missing parent: served without it, every chunk set only in that parent would read from the base image or as zeros, which is what shuru does without a word. -AllowMissingParent serves it anyway, with a warning. Relative parent and fallback paths stored in an index are read as shuru reads them, against the working directory (here the current location, $PWD) when that names an existing file, otherwise against the index''s folder; when both name different files the current location wins and the cmdlet warns (about_ShuruStore, COMPATIBILITY WITH SHURU).'
            'With -IndexPath s3://BUCKET/PREFIX/indexes/NAME.idx it boots a checkpoint published with Publish-ShuruCheckpoint, on a host that has nothing else: -CasPath is the local cache. The chain''s indexes are mirrored into it, and chunks are fetched on demand (whole 1 MiB groups ahead of a sequential reader, duplicates fetched once), verified against their names before use and kept there. Writes are local copy-on-write; Save-ShuruCheckpoint saves a local checkpoint whose parent is the published index, and that checkpoint can be published in turn. Endpoint and credentials come from the AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) or profile; they never appear in messages or in the handle. When the object store is away, slow or not answering, a read of data not cached locally fails with EIO after -RemoteTimeoutSec (retried with backoff until then); the server stays up, cached data keeps being served, and reads work again when the store returns.'
            'A server belongs to the runspace that started it. In a thread job (Start-ThreadJob) or a ForEach-Object -Parallel script the runspace closes when the script block ends, and the server stops with it: the cmdlet warns there; end the script block with Wait-ShuruNbdServer to keep serving.'
        )
        Parameters  = @{
            ImagePath        = 'The raw image. Without -CasPath it is served as it is (a flat image: writes change the file). With -CasPath it is the base image under the chunk store, opened read-only and never written, the same as -BaseImagePath.'
            BaseImagePath    = 'The base image (shuru''s rootfs) at the bottom of the chain, opened read-only and never written; the same as -ImagePath with -CasPath. Needed in lazy mode; when booting from an index, the index names its own base.'
            CasPath          = 'The chunk-store directory. Chunks live in its chunks/ folder, one file per chunk named by its BLAKE3 hash. Created if missing.'
            IndexPath        = 'An index to boot from, or a published checkpoint s3://BUCKET/PREFIX/indexes/NAME.idx (no base image then: the published chain carries it). Given as an argument, an existing file becomes the live index (its parent chain and base image are used) and a missing one means lazy mode, as in shuru. From the pipeline (strings, FullName, or IndexPath from Get-ShuruChunkIndex) the file must exist, and each one starts a server. It is never overwritten: save checkpoints with Save-ShuruCheckpoint.'
            SocketPath       = 'The Unix socket to listen on (at most 107 bytes), or a directory written with a trailing / (/tmp/vms/, TestDrive:/): the socket is then <directory>/<name>.sock, one per server. Without the trailing /, a directory at the path is refused like any other thing that is not a socket. A stale socket is replaced; a socket a live server listens on is refused (SocketInUse); a path that is not a socket is never deleted (SocketPathNotSocket). The socket is owner-only.'
            DiskSize         = 'Grow the disk to this many bytes; PowerShell size literals such as 4GB work. The disk never shrinks: a smaller size is ignored.'
            StatePath        = 'Keep the live disk map durable in this file at every FLUSH and FUA write. Starting again with the same file resumes the live disk exactly, even after the process was killed.'
            DirtyMemoryLimit = 'Memory allowed for written but not yet stored chunks. Past it, chunks are hashed and stored early.'
            MaxRequestMemory = 'Payload memory the server may hold for requests in flight across all its clients (WRITE payloads received, READ replies being sent). A client whose next request would pass it waits, while the server keeps answering; each client has a 2 MiB allowance of its own, so a client with small requests is served even while stalled clients hold the rest. 0 or omitted: an eighth of the machine memory, between 64 MiB and 256 MiB. A client that does not read its replies for 60 seconds is disconnected.'
            ReadOnly         = 'Refuse writes: clients get EPERM. Guests must mount the disk read-only.'
            Name             = 'A name for the server in this session.'
            AllowMissingParent = 'Serve an index whose chain stops at a parent index that does not exist, as shuru does: chunks set only in the missing parent read from the base image or as zeros, so the disk may not be the one that was checkpointed. The cmdlet warns with the missing path. Without it such an index is refused (ParentIndexMissing).'
            RemoteTimeoutSec = 'For a published checkpoint (-IndexPath s3://...): the seconds a read of data not cached locally may take, retries with backoff included, before the client gets EIO. Booting also fails after it when the store is away and the chain was never mirrored here.'
            CacheLimit       = 'For a published checkpoint: the most bytes of fetched chunks the local store keeps (PowerShell size literals such as 2GB work). Past it, fetched chunks the remote still has are evicted, least recently used first; chunks only this host has (written here) are never evicted. 0 or omitted: no limit.'
        }
        Defaults    = @{
            Name     = 'shuru1, shuru2, ... (the first free one)'
            DiskSize = 'The size of the index or the base image'
        }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Checkpoints (-IndexPath): paths by value, FullName from Get-ChildItem, IndexPath from Get-ShuruChunkIndex. One server per checkpoint.' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'The server handle: name, URI, socket, disk size, booted index, state, clients, bytes read and written, start time.' })
        Examples    = @(
            @{ Code = "`$vm = Start-ShuruNbdServer -BaseImagePath ./rootfs.ext4 -CasPath ./cas -SocketPath /tmp/vm.sock`nqemu-system-x86_64 -drive file=`$(`$vm.Uri),format=raw,if=virtio ..."; Remarks = 'Serves a base image lazily through the chunk store and hands the URI to qemu.' }
            @{ Code = 'Start-ShuruNbdServer ./disk.raw /tmp/flat.sock -ReadOnly'; Remarks = 'Serves a raw image as it is, read-only.' }
            @{ Code = 'Get-ChildItem ./checkpoints/*.idx | Start-ShuruNbdServer -CasPath ./cas -SocketPath /tmp/vms/'; Remarks = 'Starts one server per checkpoint, each on its own socket in /tmp/vms (which must exist), or none if one of them cannot start.' }
            @{ Code = "Start-ShuruNbdServer -IndexPath s3://images/golden/indexes/base.idx -CasPath ./cache -SocketPath /tmp/vm.sock -RemoteTimeoutSec 10"; Remarks = 'Boots a checkpoint published elsewhere: chunks are fetched from the object store on demand and kept in ./cache; a read the store cannot answer within 10 s fails with EIO.' }
            @{ Code = 'Start-ShuruNbdServer ./rootfs.ext4 ./cas -IndexPath ./vm.idx -SocketPath /tmp/vm.sock -DiskSize 4GB -StatePath ./vm.state -Name vm1'; Remarks = 'shuru''s start(rootfs, cas, index, socket, size): boots from vm.idx if it exists, grows the disk to 4 GiB and keeps the live map durable in vm.state.' }
            @{ Code = "Set-Location ~/shuru`nStart-ShuruNbdServer -CasPath data/cas -IndexPath data/checkpoints/work.idx -SocketPath /tmp/work.sock -AllowMissingParent -ReadOnly"; Remarks = 'Serves a checkpoint of a shuru data directory from the folder shuru ran in (its relative paths resolve there) although its parent checkpoint was deleted, read-only, to copy off what is left.' }
        )
        Links       = @('Stop-ShuruNbdServer', 'Wait-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Publish-ShuruCheckpoint', 'about_ShuruStore')
    }
    'Get-ShuruNbdServer' = @{
        Synopsis    = 'Gets the NBD servers running in this session.'
        Description = @('Returns the handles of the servers started by Start-ShuruNbdServer in this session (runspace), optionally filtered by name with wildcards. With -Verbose it also writes what the servers did since the last look: connections opened and closed, protocol and device errors.')
        Parameters  = @{ Name = 'Names of servers to get. Wildcards are permitted. A name without wildcards that matches nothing is a ServerNotFound error.' }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Server names.' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'Server handles.' })
        Examples    = @(
            @{ Code = 'Get-ShuruNbdServer'; Remarks = 'Lists every server of this session with its state, clients, traffic and URI.' }
            @{ Code = 'Get-ShuruNbdServer -Name vm* -Verbose | Format-List'; Remarks = 'Shows the servers whose names start with vm, in detail, and their recent activity.' }
        )
        Links       = @('Start-ShuruNbdServer', 'Stop-ShuruNbdServer')
    }
    'Stop-ShuruNbdServer' = @{
        Synopsis    = 'Stops NBD servers of this session cleanly.'
        Description = @(
            'Stops accepting clients, lets requests in flight finish (requests arriving meanwhile get ESHUTDOWN), closes the connections, removes the socket file, then flushes the disk and closes it. A stopped server is forgotten by the session.'
            'A chunk-store disk started without -StatePath keeps its live map in memory only, as shuru does: save a checkpoint with Save-ShuruCheckpoint before stopping it, or the writes since the last checkpoint are gone.'
        )
        Parameters  = @{
            Server   = 'Server handles to stop, typically from the pipeline.'
            Name     = 'Names of servers to stop, by position as Stop-Service takes them. Wildcards are permitted.'
            All      = 'Stop every server of this session.'
            PassThru = 'Return the stopped handles.'
        }
        Inputs      = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'Server handles.' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'With -PassThru, the stopped handles.' })
        Examples    = @(
            @{ Code = '$vm | Stop-ShuruNbdServer'; Remarks = 'Stops one server by its handle.' }
            @{ Code = 'Stop-ShuruNbdServer fork-*'; Remarks = 'Stops the servers whose names start with fork-.' }
            @{ Code = 'Stop-ShuruNbdServer -All -WhatIf'; Remarks = 'Shows which servers would be stopped.' }
        )
        Links       = @('Start-ShuruNbdServer', 'Get-ShuruNbdServer', 'Wait-ShuruNbdServer')
    }
    'Wait-ShuruNbdServer' = @{
        Synopsis    = 'Waits until NBD servers of this session stop.'
        Description = @(
            'Blocks until every given server has stopped (with -Any, until one has), as Wait-Process waits for processes. A server stops when Stop-ShuruNbdServer stops it from another session or thread, when its session ends, or when pwsh gets SIGTERM or SIGHUP. For a script that runs a server as a service: start it, wait, and stop it in a finally block, which also runs on Ctrl+C.'
            'Ctrl+C ends the wait and leaves the servers running. With -Timeout, a server still running when the time is up is a non-terminating WaitTimeout error (OperationTimeout) and keeps serving.'
        )
        Parameters  = @{
            Server   = 'Server handles to wait for, typically from the pipeline.'
            Name     = 'Names of servers to wait for. Wildcards are permitted.'
            Timeout  = 'Seconds to wait at most. -1 waits as long as it takes.'
            Any      = 'Return as soon as one of the servers has stopped.'
            PassThru = 'Return the servers that have stopped.'
        }
        Inputs      = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'Server handles.' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'With -PassThru, the servers that stopped.' })
        Examples    = @(
            @{ Code = "`$vm = Start-ShuruNbdServer ./disk.raw /tmp/vm.sock`ntry { `$vm | Wait-ShuruNbdServer } finally { `$vm | Stop-ShuruNbdServer }"; Remarks = 'Serves a disk until Ctrl+C, SIGTERM or SIGHUP, then stops it cleanly.' }
            @{ Code = "Start-ThreadJob { Start-ShuruNbdServer ./disk.raw /tmp/job.sock | Wait-ShuruNbdServer }"; Remarks = 'Keeps a server started in a thread job serving until it is stopped (Stop-Job ends the wait, and the job''s end stops the server).' }
            @{ Code = 'Get-ShuruNbdServer | Wait-ShuruNbdServer -Any -Timeout 60 -PassThru'; Remarks = 'Waits at most a minute for the first server to stop and returns it.' }
        )
        Links       = @('Start-ShuruNbdServer', 'Stop-ShuruNbdServer')
    }
    'Save-ShuruCheckpoint' = @{
        Synopsis    = 'Saves a checkpoint of a running chunk-store disk to an index file.'
        Description = @(
            'Takes a consistent cut of the live disk while clients keep writing: every write answered before the checkpoint is in it, none is half in. Unsaved chunks are written to the store, then the whole live index is written atomically to -Path, with the index the server booted from as its parent and the base image as its fallback, exactly as shuru does.'
            'A folder in -Path that does not exist is created, with its missing parents, as shuru does; the new folders are made durable before the checkpoint is. The parent and fallback paths written are absolute, whatever the server was started with.'
            'The checkpoint can be booted (Start-ShuruNbdServer -IndexPath), forked (several servers from one checkpoint) and compared (Compare-ShuruChunkIndex). It never overwrites the booted index or an index of its chain (CheckpointOverwritesChain), and never an existing file without -Force (CheckpointExists).'
            'On a server booted from a published checkpoint (Start-ShuruNbdServer -IndexPath s3://...) the checkpoint is saved locally, with the local mirror of the published index as its parent: it boots on this host like any local checkpoint (chunks still missing locally are fetched), and Publish-ShuruCheckpoint publishes it as a child of the published one, uploading only its new chunks.'
        )
        Parameters  = @{
            Server = 'The server whose disk to checkpoint, typically from the pipeline.'
            Name   = 'The name of the server whose disk to checkpoint.'
            Path   = 'The index file to write. Missing folders are created.'
            Force  = 'Replace an existing file (never the booted index or its chain).'
        }
        Inputs      = @(@{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'A server handle.' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruChunkIndex'; Description = 'The saved index.' })
        Examples    = @(
            @{ Code = '$vm | Save-ShuruCheckpoint -Path ./after-install.idx'; Remarks = 'Checkpoints a running VM''s disk.' }
            @{ Code = "`$cp = Save-ShuruCheckpoint -Name vm1 ./golden.idx`nStart-ShuruNbdServer -CasPath ./cas -IndexPath `$cp.Path -SocketPath /tmp/fork.sock"; Remarks = 'Checkpoints the server named vm1 and boots a fork from the checkpoint.' }
        )
        Links       = @('Get-ShuruChunkIndex', 'Compare-ShuruChunkIndex', 'about_ShuruStore')
    }
    'Get-ShuruChunkIndex' = @{
        Synopsis    = 'Reads a chunk index (checkpoint) and its chain.'
        Description = @(
            'Reads index files in shuru''s format and validates them (entry count, hash syntax, parent chain). For each index it returns the disk size, the chunk count, how many chunks the index sets itself, how many it inherits from parents or the base image, how many no layer provides (zeros), the parent and fallback paths and the whole chain.'
            'With -Chunk or -AllChunks it enumerates entries instead: chunk number, offset, hash and the layer that provides it (the index, a parent, the base image, or zeros).'
            'A chain that names a parent index that does not exist (shuru''s checkpoint delete leaves such children) is read as far as it goes: the counts and entries are what the rest of the chain provides, MissingParentPath names the missing index (MissingParentNamedBy the index that names it, IsChainComplete is $false), and a warning says so. ParentPath and BaseImagePath are absolute: relative paths stored in the file are resolved against the current location first, as shuru resolves them against its working directory, then against the index''s folder.'
        )
        Parameters  = @{
            Path        = 'Index files to read. Wildcards are permitted. Accepts FullName from Get-ChildItem. A published index, s3://BUCKET/PREFIX/indexes/NAME.idx, is mirrored (indexes and chunk maps, no chunks) into $XDG_CACHE_HOME/shurustore (default ~/.cache/shurustore) and read from there; the result shows the published URIs (Path, ParentPath, Chain, an entry''s Source and IndexPath), and MirrorPath names the local mirror it was read from.'
            LiteralPath = 'Index files to read, with no wildcard interpretation.'
            Chunk       = 'Chunk numbers to enumerate, for example 0, 5 or 0..15.'
            AllChunks   = 'Enumerate every entry of the index.'
        }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Paths, by value or by the FullName property.' })
        Outputs     = @(
            @{ Type = 'ShuruStore.Commands.ShuruChunkIndex'; Description = 'Without -Chunk or -AllChunks.' }
            @{ Type = 'ShuruStore.Commands.ShuruChunkEntry'; Description = 'With -Chunk or -AllChunks.' }
        )
        Examples    = @(
            @{ Code = 'Get-ChildItem ./checkpoints/*.idx | Get-ShuruChunkIndex'; Remarks = 'Summarises every checkpoint in a folder.' }
            @{ Code = 'Get-ShuruChunkIndex ./vm.idx -Chunk (0..15) | Where-Object Layer -ne Zero'; Remarks = 'Shows which layer provides each of the first 16 chunks (the first MiB).' }
            @{ Code = 'Get-ShuruChunkIndex s3://images/golden/indexes/base.idx'; Remarks = 'Summarises a published checkpoint (endpoint and credentials from the AWS environment).' }
            @{ Code = '(Get-ShuruChunkIndex ./vm.idx).Chain'; Remarks = 'Lists the chain: the index, then its parents nearest first.' }
            @{ Code = 'Get-ChildItem ./data -Recurse -Filter *.idx | Get-ShuruChunkIndex -WarningAction SilentlyContinue | Where-Object { -not $_.IsChainComplete } | Select-Object Name, MissingParentPath'; Remarks = 'Lists the checkpoints of a data directory whose parent was deleted.' }
        )
        Links       = @('Compare-ShuruChunkIndex', 'Save-ShuruCheckpoint')
    }
    'Compare-ShuruChunkIndex' = @{
        Synopsis    = 'Shows where two checkpoints differ, as contiguous byte ranges.'
        Description = @(
            'Resolves both indexes through their chains and compares what each chunk resolves to. Returns one object per contiguous range of differing chunks (offset, length, first chunk, chunk count), or with -Summary one object with the totals and the ranges.'
            'A chain that stops at a parent index that does not exist is compared as the rest of it reads, with a warning that names the missing parent.'
        )
        Parameters  = @{
            ReferencePath  = 'The first index: a file, or a published index s3://BUCKET/PREFIX/indexes/NAME.idx (mirrored locally as Get-ShuruChunkIndex does).'
            DifferencePath = 'The second index: a file or a published index s3://....'
            Summary        = 'Return one comparison object with totals (differing chunks and bytes, range count) and the ranges.'
        }
        Inputs      = @(@{ Type = 'None'; Description = 'This cmdlet takes no pipeline input.' })
        Outputs     = @(
            @{ Type = 'ShuruStore.Commands.ShuruIndexDifference'; Description = 'Without -Summary: each differing range.' }
            @{ Type = 'ShuruStore.Commands.ShuruIndexComparison'; Description = 'With -Summary.' }
        )
        Examples    = @(
            @{ Code = 'Compare-ShuruChunkIndex ./before.idx ./after.idx'; Remarks = 'Lists the byte ranges an install changed.' }
            @{ Code = 'Compare-ShuruChunkIndex s3://images/golden/indexes/base.idx ./vm.idx -Summary'; Remarks = 'Shows how much a local checkpoint diverged from the published one it started from.' }
            @{ Code = 'Compare-ShuruChunkIndex ./fork-a.idx ./fork-b.idx -Summary | Select-Object DifferentChunks, DifferentBytes'; Remarks = 'Shows how far two forks diverged.' }
        )
        Links       = @('Get-ShuruChunkIndex')
    }
    'Get-ShuruChunkStore' = @{
        Synopsis    = 'Describes a chunk store: chunk count, bytes, zero chunk, leftovers.'
        Description = @('Counts the chunk files of a store and their bytes, tells whether the well-known all-zero chunk is present, and counts temporary files left by interrupted writes (never valid chunks), and lists its Users: every server and import, in any process, that registered in the store (kind, name, process, socket, state file, since when, alive or ended). Takes store paths, or server handles: the store behind each chunk-store server, once, however many servers share it; a flat-image server has no store and is skipped (-Verbose says so).')
        Parameters  = @{
            CasPath = 'The chunk-store directory (the one holding chunks/). Accepts strings, and CasPath, Path or FullName by property name.'
            Server  = 'Servers whose chunk stores to describe, typically from Get-ShuruNbdServer.'
        }
        Inputs      = @(
            @{ Type = 'System.String'; Description = 'Store paths, by value or by property name.' }
            @{ Type = 'ShuruStore.Commands.ShuruNbdServer'; Description = 'Servers.' }
        )
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruChunkStore'; Description = 'The store summary.' })
        Examples    = @(
            @{ Code = 'Get-ShuruChunkStore ./cas'; Remarks = 'Shows how many chunks the store holds and how much space they take.' }
            @{ Code = 'Get-ShuruNbdServer | Get-ShuruChunkStore'; Remarks = 'Describes the store behind every running chunk-store server.' }
            @{ Code = 'Get-ShuruChunkStore ./cas | Test-ShuruChunkStore -Quiet'; Remarks = 'Passes the store on to another store cmdlet.' }
        )
        Links       = @('Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk', 'Start-ShuruNbdServer')
    }
    'Import-ShuruDisk' = @{
        Synopsis    = 'Ingests a raw image into a chunk store and writes an index for it.'
        Description = @(
            'Reads the image (or the byte range -Offset/-Length of it) in 64 KiB pieces, stores every non-zero piece as a chunk named by its BLAKE3 hash (each chunk written once, atomically; chunks already in the store are shared) and writes a shuru-compatible index naming them. All-zero pieces store nothing. The result boots with Start-ShuruNbdServer -IndexPath without touching the image again.'
            'With -ParentIndexPath the index is a child of that index: pieces equal to what the parent chain provides are inherited, not stored, and zero pieces over data become the well-known zero chunk. With -BaseImagePath (alias -FallbackPath, the index file''s name for it) pieces equal to that image are left to it (a delta against a base image).'
            'The index is written last, atomically, after every chunk is durable. Ctrl+C stops between chunks: the store keeps only whole chunks (Remove-ShuruUnusedChunk collects them) and no index is written. Progress is shown with Write-Progress.'
        )
        Parameters  = @{
            Path            = 'The raw image to read (a file: a directory is refused as ImageNotFound, with a message that says it is a directory). Accepts FullName from the pipeline, so Get-ChildItem *.img | Import-ShuruDisk -CasPath ./cas imports several images.'
            CasPath         = 'The chunk-store directory to write chunks to. Created if missing.'
            IndexPath       = 'The index file to write. Default: the image''s name with the extension .idx, in the image''s directory. Refused if it exists, unless -Force.'
            Offset          = 'The first byte of the image to import; it becomes byte 0 of the disk (for example a partition''s start).'
            Length          = 'How many bytes to import from -Offset. Default: to the end of the image.'
            ParentIndexPath = 'Write the index as a child of this index: chunks the parent chain already provides are inherited and the index names it as its parent, as a checkpoint would.'
            BaseImagePath   = 'Name this raw image as the index''s base image (its fallback): pieces equal to it are not stored but read from it.'
            Force           = 'Replace an existing index file (never the parent chain, the fallback or the image itself).'
        }
        Defaults    = @{
            IndexPath     = '<image name>.idx next to the image'
            Length        = 'To the end of the image'
            BaseImagePath = 'The parent''s base image, if any'
        }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Image paths, by value or by property name (FullName).' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruImportResult'; Description = 'The index written and the counts: chunks new, already present, zero and inherited, bytes stored, time.' })
        Examples    = @(
            @{ Code = 'Import-ShuruDisk -Path ./rootfs.ext4 -CasPath ./cas -IndexPath ./rootfs.idx'; Remarks = 'Ingests a root file system eagerly and writes rootfs.idx, ready to boot with Start-ShuruNbdServer -CasPath ./cas -IndexPath ./rootfs.idx.' }
            @{ Code = 'Get-ChildItem ./images/*.raw | Import-ShuruDisk -CasPath ./cas'; Remarks = 'Imports several images into one store (identical chunks are stored once), each with an index next to it.' }
            @{ Code = 'Import-ShuruDisk ./disk.img ./cas ./part1.idx -Offset 1MB -Length 512MB'; Remarks = 'Imports one partition of a partitioned image.' }
            @{ Code = 'Import-ShuruDisk ./updated.ext4 ./cas ./updated.idx -ParentIndexPath ./golden.idx'; Remarks = 'Stores only what changed since golden.idx; the new index is its child.' }
        )
        Links       = @('Export-ShuruDisk', 'Start-ShuruNbdServer', 'Remove-ShuruUnusedChunk')
    }
    'Export-ShuruDisk' = @{
        Synopsis    = 'Writes the disk an index describes to a raw image file.'
        Description = @(
            'Resolves every chunk of the index through its chain exactly as a server started on the index reads it (the index, its parents nearest first, the base image, zeros) and writes the result to a raw image: qemu-img compare finds it identical to what clients read from the server. Chunks are verified against their names; a missing or corrupt chunk is an error, never zeros.'
            'An index whose chain names a parent index that does not exist is refused (ParentIndexMissing): the image would not be the disk that was checkpointed. -AllowMissingParent exports what the rest of the chain holds, as shuru would serve it, with a warning.'
            'Ranges that read as zeros are left as holes, so the image is sparse. The image is built in a temporary file next to the destination and renamed into place at the end; Ctrl+C or a failure leaves no partial image.'
        )
        Parameters  = @{
            IndexPath   = 'The index files (checkpoints) to export, or published indexes s3://BUCKET/PREFIX/indexes/NAME.idx (then -Destination is needed). Accepts FullName from the pipeline.'
            CasPath     = 'The chunk-store directory the indexes name chunks in. For a published index it is the local cache: the chunks it lacks are fetched into it (verified) before the image is written.'
            Destination = 'The raw image to write, or an existing directory to write <index name>.raw into. Default: <index name>.raw next to the index.'
            Force       = 'Replace an existing destination file (never an index of the chain or the base image).'
            AllowMissingParent = 'Export an index whose chain stops at a parent index that does not exist: chunks set only in the missing parent come from the base image or are zeros, as shuru would serve them. Without it such an index is refused (ParentIndexMissing).'
            CacheLimit  = 'For a published index only: the bytes of fetched chunks the chunk store keeps at most while the image is written (evicted again past it, so an image larger than the room for a cache can be exported). 0 (the default): every chunk of the chain is fetched into the store first and kept. With a local index it is an error (NotForLocalIndex).'
        }
        Defaults    = @{ Destination = '<index name>.raw next to the index' }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Index paths, by value or by property name (FullName).' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruExportResult'; Description = 'The image written: size, chunks from the store, from the base and zero, data bytes, time.' })
        Examples    = @(
            @{ Code = 'Export-ShuruDisk -IndexPath ./installed.idx -CasPath ./cas -Destination ./installed.raw'; Remarks = 'Turns a checkpoint back into a flat image, for example to hand it to another hypervisor.' }
            @{ Code = 'Export-ShuruDisk s3://images/golden/indexes/base.idx ./cache -Destination ./base.raw'; Remarks = 'Fetches a published checkpoint into ./cache and writes it out as a raw image.' }
            @{ Code = 'Export-ShuruDisk s3://images/golden/indexes/base.idx ./cache -Destination ./base.raw -CacheLimit 256MB'; Remarks = 'Writes a published checkpoint out while ./cache keeps at most 256 MiB of what was fetched.' }
            @{ Code = 'Get-ChildItem ./checkpoints/*.idx | Export-ShuruDisk -CasPath ./cas -Destination ./images'; Remarks = 'Exports every checkpoint into the images directory, one .raw file per index.' }
        )
        Links       = @('Import-ShuruDisk', 'Save-ShuruCheckpoint')
    }
    'Test-ShuruChunkStore' = @{
        Synopsis    = 'Verifies a chunk store: missing and corrupt chunks, leftover files.'
        Description = @(
            'Re-hashes every chunk of the store (or, with -IndexPath, every chunk the indexes and their chains name) and returns one result per store: IsHealthy (no missing and no corrupt chunk), the counts, and Problems, one object per problem: Missing (an index names a chunk the store lacks), Corrupt (the content does not hash to the name, or is longer than 64 KiB), TempFile (a leftover of an interrupted write), QuarantinedChunk (set aside by an interrupted Remove-ShuruUnusedChunk) and UnknownFile, EndedRegistration (a server or import that registered in the store and whose process ended: killed, or stopped with a -StatePath that keeps its disk resumable), and ParentIndexMissing (a given index, or one of its parents, names a parent index that does not exist: Path is the missing index, ReferencedBy the one naming it; the chunks of the rest of the chain are still checked, and the store is not healthy, since that checkpoint has lost what only the missing parent held). With -Quiet it returns only $true (healthy) or $false, as Test-Path and Test-Connection -Quiet do. -Verbose lists each problem as it is found.'
            'Stores can come down the pipeline (CasPath from Get-ShuruChunkStore), and so can indexes (strings, FullName or PSPath from Get-ChildItem, IndexPath from Get-ShuruChunkIndex): all indexes of one store are verified together, after the pipeline ends, so every chunk is hashed once. -IndexPath takes wildcards; -LiteralIndexPath takes names as they are. An index name that matches no file stops the command (IndexNotFound).'
            'With -CasPath s3://BUCKET/PREFIX it checks a remote store published to with Publish-ShuruCheckpoint: every published index parses and has its chunk map and published parent, every chunk of every chain is located, every pack exists and is long enough, and (unless -Structure) every chunk is downloaded and hashed. It returns a ShuruRemoteStoreTestResult whose Problems name each object at fault (s3://...): ChunkDamaged, PackMissing, PackInvalid, MapMissing, MapInvalid, IndexInvalid, ParentMissing, ChunkNotLocated; unreferenced packs and abandoned uploads are notes, not faults. Faults are also written as warnings. -IndexPath and -Repair do not apply: a damaged remote is repaired by publishing again from a host that has the chunks.'
            'The store is not touched unless -Repair is given: then corrupt chunks are deleted (a server then reports them missing instead of reading wrong data; lazy ingestion or Import-ShuruDisk can store them again), temporary files older than -GracePeriod are deleted, set-aside chunks are put back, and ended registrations that keep nothing any more (their state file is gone) are removed. Each repair asks ShouldProcess, so -WhatIf shows what would be done and -Confirm asks for each file.'
        )
        Parameters  = @{
            CasPath          = 'The chunk-store directory to verify, or a remote store s3://BUCKET/PREFIX (endpoint and credentials from the AWS environment). Accepts CasPath by property name (Get-ShuruChunkStore).'
            Structure        = 'For a remote store: check indexes, maps and packs (present, long enough) without downloading and hashing every chunk.'
            RemoteTimeoutSec = 'For a remote store: the seconds one object-store request may take, retries with backoff included.'
            IndexPath        = 'Verify only the chunks these indexes and their chains name, and report those missing. Wildcards are permitted. Accepts strings and IndexPath from the pipeline.'
            LiteralIndexPath = 'Like -IndexPath, with no wildcard interpretation. Accepts FullName and PSPath from the pipeline: Get-ChildItem *.idx | Test-ShuruChunkStore -CasPath ./cas.'
            Repair           = 'Delete corrupt chunks and stale temporary files, restore set-aside chunks, remove ended registrations that keep nothing (with ShouldProcess).'
            GracePeriod      = 'Temporary files younger than this may belong to a write in progress: reported, never removed.'
            Quiet            = 'Return one [bool] per store: $true when it has no missing and no corrupt chunk and no given chain misses a parent index.'
        }
        Inputs      = @(
            @{ Type = 'ShuruStore.Commands.ShuruChunkStore'; Description = 'Stores, by the CasPath property.' }
            @{ Type = 'System.String'; Description = 'Index paths, by value or by property name (IndexPath, FullName, PSPath).' }
        )
        Outputs     = @(
            @{ Type = 'ShuruStore.Commands.ShuruStoreTestResult'; Description = 'One per store: IsHealthy, the counts and the problems (kind, hash, path, size, the index naming it, detail, whether repaired).' }
            @{ Type = 'ShuruStore.Commands.ShuruRemoteStoreTestResult'; Description = 'One per remote store: IsHealthy, indexes, packs and chunks checked, faults, notes and the problems (kind, object URI, chunk, detail).' }
            @{ Type = 'System.Boolean'; Description = 'With -Quiet: one per store.' }
        )
        Examples    = @(
            @{ Code = 'if (-not (Test-ShuruChunkStore ./cas -Quiet)) { throw ''the store is damaged'' }'; Remarks = 'Re-hashes every chunk of the store and stops a script when something is wrong.' }
            @{ Code = '(Test-ShuruChunkStore ./cas).Problems | Format-Table Kind, Hash, Detail'; Remarks = 'Lists what is wrong.' }
            @{ Code = 'Get-ChildItem ./*.idx | Test-ShuruChunkStore -CasPath ./cas'; Remarks = 'Checks that every chunk the checkpoints need is present and sound.' }
            @{ Code = '(Test-ShuruChunkStore s3://images/golden).Problems | Where-Object IsFault'; Remarks = 'Downloads and hashes every chunk of a remote store and lists the objects at fault.' }
            @{ Code = 'Test-ShuruChunkStore ./cas -Repair -WhatIf'; Remarks = 'Shows which corrupt chunks and stale temporary files a repair would delete.' }
        )
        Links       = @('Get-ShuruChunkStore', 'Remove-ShuruUnusedChunk')
    }
    'Publish-ShuruCheckpoint' = @{
        Synopsis    = 'Publishes a checkpoint to S3-compatible object storage, so that any host can boot it.'
        Description = @(
            'Uploads everything the checkpoint''s chain needs that the destination lacks: its chunks (in packs of about 4 MiB, each with a chunk map per index), parent checkpoints, and the pieces of a base image that were never ingested (published as an index of their own at the bottom of the chain). Each index goes last, after its map and packs, so a published index never names data the destination does not have. Returns a ShuruPublishResult whose Uri (s3://BUCKET/PREFIX/indexes/NAME.idx) is what Start-ShuruNbdServer -IndexPath boots on another host.'
            'Idempotent and resumable: a second run uploads nothing (AlreadyPublished), and a run interrupted by Ctrl+C, a failure or a crash is finished by running it again (packs already there are skipped). A published name never changes content: publishing another checkpoint under a name in use is refused. A checkpoint saved over a booted published checkpoint is published as a child of it, uploading only its new chunks.'
            '-WhatIf shows the plan (indexes to upload, packs and bytes, packs reused) and returns the counts without uploading anything; -Verbose lists the chain. Progress shows the bytes uploaded. Endpoint and credentials come from the AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, path-style addressing for custom endpoints) or the AWS profile; they never appear in messages or in the result.'
        )
        Parameters  = @{
            IndexPath        = 'The local checkpoint (.idx) to publish, with its whole chain. Accepts FullName and IndexPath from the pipeline.'
            CasPath          = 'The local chunk store holding the checkpoint''s chunks.'
            Destination      = 'The remote store: s3://BUCKET/PREFIX. Indexes go to PREFIX/indexes/, chunk maps to PREFIX/maps/, packs to PREFIX/packs/.'
            Name             = 'The published name (PREFIX/indexes/NAME.idx): letters, digits, dot, dash and underscore.'
            Parallelism      = 'Packs uploaded at once (each held in memory while it is sent).'
            RemoteTimeoutSec = 'The seconds one object-store request may take, retries with backoff included; past it the publish fails (ConnectionError) and a later run finishes it.'
        }
        Defaults    = @{ Name = 'The index file''s name without its extension' }
        Inputs      = @(@{ Type = 'System.String'; Description = 'Index paths, by value or by property name (FullName, IndexPath).' })
        Outputs     = @(@{ Type = 'ShuruStore.Commands.ShuruPublishResult'; Description = 'The published Uri, indexes, packs, chunks and bytes uploaded, packs and bytes skipped (already there), the chain, time.' })
        Examples    = @(
            @{ Code = "`$env:AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:7480'`n(Publish-ShuruCheckpoint ./golden.idx ./cas -Destination s3://images/fleet).Uri"; Remarks = 'Publishes a golden image to a Ceph RGW bucket and shows the URI hosts boot from.' }
            @{ Code = 'Publish-ShuruCheckpoint ./vm.idx ./cache -Destination s3://images/fleet -Name vm-42 -WhatIf'; Remarks = 'Shows what publishing a checkpoint saved on a host that booted from the remote would upload: only its new chunks.' }
        )
        Links       = @('Start-ShuruNbdServer', 'Save-ShuruCheckpoint', 'Test-ShuruChunkStore', 'Remove-ShuruUnusedChunk')
    }
    'Remove-ShuruUnusedChunk' = @{
        Synopsis    = 'Removes chunks no index, state file or running server uses (garbage collection).'
        Description = @(
            'Marks every chunk named by the given indexes and their parent chains, by the given live-state files, by every running server of this session on the store (its live disk, including chunks flushed but not yet in any checkpoint), and by every user registered in the store by any process (Get-ShuruChunkStore shows them as Users): a running server or import keeps its booted chain, its state file and every chunk it stored or reused; a server that was killed, or stopped with a -StatePath, keeps its state file''s chunks while that file exists. Then it removes every other chunk file older than -GracePeriod. The well-known zero chunk is always kept. The grace period is for writers that do not register (other tools); ShuruStore servers and imports in any process are protected whatever it is.'
            'Each chunk to remove is first set aside, every running server (of this and other processes) is asked again, and only then is it deleted, so a chunk a server starts to use during the collection stays; a server that reuses it after that finds it gone and writes it again. A reused chunk''s modification time is renewed, and a set-aside chunk whose file changed since the plan is put back. An index that cannot be read (invalid, cycle) or an index name that matches no file (IndexNotFound) stops the collection before anything is removed. An index whose chain names a parent index that does not exist (shuru''s checkpoint delete leaves such children) does not: everything the rest of its chain names is kept, a warning names the missing parent, and the result lists it in MissingParents. Without any index, state file or running server the cmdlet refuses to run unless -Force.'
            'Its ConfirmImpact is High, as for Remove-VM: it asks before removing anything unless -Confirm:$false is given, also with -Force. With -WhatIf nothing is removed; the result object reports how many chunks and bytes would go. Ctrl+C stops between batches and leaves every remaining chunk in place.'
            'With -CasPath s3://BUCKET/PREFIX it collects a remote store with the same rules: every published index is a root (its chunk map names the packs kept; an index whose map cannot be read stops the collection before anything is removed), objects younger than -GracePeriod (by the store''s clock) are spared, and packs named by an upload in progress (its marker) are never removed. Markers and indexes are listed again just before removing, and packs they came to need are kept. Packs no index needs, maps without an index and abandoned upload markers are removed. Progress shows the marking, the packs scanned and the objects removed. -IndexPath and -StatePath do not apply; with no published index at all it refuses unless -Force.'
            'Stores can come down the pipeline (CasPath from Get-ShuruChunkStore), and so can indexes (strings, FullName or PSPath from Get-ChildItem, IndexPath from Get-ShuruChunkIndex): all indexes of one store are kept together in one collection after the pipeline ends. -IndexPath takes wildcards; -LiteralIndexPath takes names as they are.'
        )
        Parameters  = @{
            CasPath          = 'The chunk-store directory to collect, or a remote store s3://BUCKET/PREFIX (endpoint and credentials from the AWS environment). Accepts CasPath by property name (Get-ShuruChunkStore).'
            RemoteTimeoutSec = 'For a remote store: the seconds one object-store request may take, retries with backoff included.'
            IndexPath        = 'Indexes whose chunks (and their chains'' chunks) are kept. Wildcards are permitted: -IndexPath ./checkpoints/*.idx. Accepts strings and IndexPath from the pipeline.'
            LiteralIndexPath = 'Like -IndexPath, with no wildcard interpretation. Accepts FullName and PSPath from the pipeline: Get-ChildItem *.idx | Remove-ShuruUnusedChunk -CasPath ./cas.'
            StatePath        = 'Live-state files (Start-ShuruNbdServer -StatePath) of servers that are not running: their live disks and booted indexes are kept.'
            GracePeriod      = 'Chunk files written more recently than this are kept. Use 0 only when no server in another process uses the store.'
            Force            = 'Collect even when nothing is kept (no index, state file or running server): removes every chunk but the zero chunk. It does not skip the confirmation.'
        }
        Inputs      = @(
            @{ Type = 'ShuruStore.Commands.ShuruChunkStore'; Description = 'Stores, by the CasPath property.' }
            @{ Type = 'System.String'; Description = 'Index paths, by value or by property name (IndexPath, FullName, PSPath).' }
        )
        Outputs     = @(
            @{ Type = 'ShuruStore.Commands.ShuruCollectionResult'; Description = 'Chunks scanned, kept, spared by the grace period, unused, removed and bytes freed; WhatIf when nothing was removed.' }
            @{ Type = 'ShuruStore.Commands.ShuruRemoteCollectionResult'; Description = 'For a remote store: indexes, packs scanned, referenced, spared, kept for uploads, objects unused and removed, bytes freed; WhatIf when nothing was removed.' }
        )
        Examples    = @(
            @{ Code = 'Remove-ShuruUnusedChunk ./cas ./checkpoints/*.idx -WhatIf'; Remarks = 'Reports how many chunks and bytes a collection keeping every checkpoint would free.' }
            @{ Code = 'Get-ChildItem ./checkpoints/*.idx | Remove-ShuruUnusedChunk -CasPath ./cas -GracePeriod 00:10:00 -Confirm:$false -Verbose'; Remarks = 'Keeps every checkpoint and whatever running servers of this session use; removes the rest older than ten minutes without asking, listing each chunk.' }
            @{ Code = 'Remove-ShuruUnusedChunk -CasPath s3://images/golden -WhatIf'; Remarks = 'Reports which packs of a remote store no published checkpoint needs any more.' }
        )
        Links       = @('Test-ShuruChunkStore', 'Get-ShuruChunkStore', 'Save-ShuruCheckpoint')
    }
}
