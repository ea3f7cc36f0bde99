#!/bin/bash
# flat write (fwc.sh: nbdkit and sh:modCur) alone, then with a warm chunk-store server alive
# (kept CAS wrrcas-wa over img.raw, read whole once so it holds its chunk files open)
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
run() { SERVERS="nk sh:modCur" C=4 N=2 bash "$REPO/bench/ab/fwc.sh" 2>&1 | grep total | sed "s/^/$1 /"; }
run alone
rm -f wf.sock wf.log
( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/modCur/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/wf.sock -RootfsPath $SR/img.raw -CasPath $SR/wrrcas-wa; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > wf.log 2>&1 &
until grep -q READY wf.log; do sleep 0.2; done; sleep 3
nbdcopy -C 4 "nbd+unix:///?socket=$SR/wf.sock" null:; sleep 5
echo "warm server open files: $(ls /proc/$(pgrep -n -f "pwsh.dll.*$SR/wf.sock")/fd | wc -l)"
run warm
pkill -9 -f "pwsh.dll.*$SR/wf.sock"; sleep 1
run alone
