#!/bin/bash
# fresh-layer random write: a chunk-store disk over img.raw with a new empty chunk store per run, fio 4 KiB randwrite at
# QD $QD for $T s (as the benchmark's randwrite-qd32), alternating nbdkit on a fresh copy-less sparse image (nk) and
# ShuruStore modules staged in $SR/MOD (sh:MOD)
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
for i in $(seq 1 ${N:-3}); do for s in ${SERVERS:-nk sh:modCur}; do
  rm -rf rw.sock rw-cas rw.raw
  case $s in
    sh:*) m=${s#sh:}; ( cd "$REPO" && exec setsid env ${XENV:-X=1} dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/rw.sock -CasPath $SR/rw-cas -RootfsPath $SR/img.raw -WarningAction SilentlyContinue; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > rw.log 2>&1 &
        until grep -q READY rw.log; do sleep 0.2; done; sleep ${SETTLE:-6}; PID=$(pgrep -n -f "pwsh.dll.*rw.sock") ;;
    nk) truncate -s 1G rw.raw; setsid nbdkit -f -U $SR/rw.sock file rw.raw & sleep 1; PID=$(pgrep -n -f "nbdkit -f -U $SR/rw.sock") ;;
  esac
  sync
  iops=$(fio --name=rw --ioengine=nbd --uri="nbd+unix:///export?socket=$SR/rw.sock" --rw=randwrite --iodepth=${QD:-32} --bs=4k --size=1g --time_based --runtime=${T:-3} --output-format=json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; s=sys.stdin.read(); j=json.loads(s[s.index("{"):]); print(round(j["jobs"][0]["write"]["iops"]))')
  echo "$s randwrite qd${QD:-32} ${iops} IOPS"
  kill $PID; sleep 1; kill -9 $PID 2>/dev/null
done; done
rm -rf rw-cas rw.raw
