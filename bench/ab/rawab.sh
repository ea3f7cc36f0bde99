#!/bin/bash
# read-after-write: a fresh target written whole from img.raw (nbdcopy -C $C --flush), then read back (nbdcopy -C $C
# to null:), the read timed; nbdkit (nk) on a fresh sparse image, ShuruStore chunk store over img.raw with a new empty
# CAS (sh:MOD, the module staged in $SR/MOD), alternating
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
cpu() { awk '{print ($14+$15)*10}' /proc/$1/stat; }
for i in $(seq 1 ${N:-3}); do for s in ${SERVERS:-nk sh:modCur}; do
  rm -rf ra.sock ra-cas ra.raw
  case $s in
    sh:*) m=${s#sh:}; ( cd "$REPO" && exec setsid env ${XENV:-X=1} dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/ra.sock -CasPath $SR/ra-cas -RootfsPath $SR/img.raw -WarningAction SilentlyContinue; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > ra.log 2>&1 &
        until grep -q READY ra.log; do sleep 0.2; done; sleep ${SETTLE:-6}; PID=$(pgrep -n -f "pwsh.dll.*ra.sock") ;;
    nk) truncate -s 1G ra.raw; setsid nbdkit -f -U $SR/ra.sock file ra.raw & sleep 1; PID=$(pgrep -n -f "nbdkit -f -U $SR/ra.sock") ;;
  esac
  sync
  nbdcopy -C ${C:-4} --flush img.raw "nbd+unix:///?socket=$SR/ra.sock"
  c0=$(cpu $PID); t0=$(date +%s%N); nbdcopy -C ${C:-4} "nbd+unix:///?socket=$SR/ra.sock" null:; t1=$(date +%s%N); c1=$(cpu $PID)
  echo "$s read-after-write c${C:-4} read $(( (t1-t0)/1000000 )) ms server cpu $((c1-c0)) ms"
  kill $PID; sleep 1; kill -9 $PID 2>/dev/null
done; done
rm -rf ra-cas ra.raw
