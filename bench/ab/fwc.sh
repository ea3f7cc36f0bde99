#!/bin/bash
# flat write with server CPU: nbdkit (nk), qemu-nbd (qn), ShuruStore flat (sh: bench/serve.ps1; sh:MOD: the module staged in $SR/MOD); fresh sparse image, sync, nbdcopy -C $C --flush img.raw
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
cpu() { awk '{print ($14+$15)*10}' /proc/$1/stat; }
for i in $(seq 1 ${N:-2}); do for s in ${SERVERS:-nk qn sh}; do
  rm -f fc-$s.raw fc-$s.sock; truncate -s 1G fc-$s.raw
  case $s in
    sh:*) m=${s#sh:}; ( cd "$REPO" && exec setsid env ${XENV:-X=1} dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/fc-$s.sock -ImagePath $SR/fc-$s.raw; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > fc.log 2>&1 &
        until grep -q READY fc.log; do sleep 0.2; done; sleep 4; PID=$(pgrep -n -f "pwsh.dll.*fc-$s.sock") ;;
    nk) setsid nbdkit -f -U $SR/fc-nk.sock file fc-nk.raw & sleep 1; PID=$(pgrep -n -f "nbdkit -f -U $SR/fc-nk.sock") ;;
    qn) setsid qemu-nbd -k $SR/fc-qn.sock -f raw -t -e 16 fc-qn.raw & sleep 1; PID=$(pgrep -n -f "qemu-nbd -k $SR/fc-qn.sock") ;;
    sh) ( cd "$REPO" && exec setsid env ${XENV:-X=1} dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath $SR/fc-sh.sock -ImagePath $SR/fc-sh.raw ) > fc.log 2>&1 &
        until grep -q READY fc.log; do sleep 0.2; done; sleep 4; PID=$(pgrep -n -f 'pwsh.dll.*fc-sh.sock') ;;
  esac
  sync; sleep 2
  c0=$(cpu $PID); t0=$(date +%s%N); nbdcopy -C ${C:-4} --flush img.raw "nbd+unix:///?socket=$SR/fc-$s.sock"; t1=$(date +%s%N); c1=$(cpu $PID)
  echo "$s c${C:-4} total $(( (t1-t0)/1000000 )) ms server cpu $((c1-c0)) ms"
  kill $PID; sleep 1; kill -9 $PID 2>/dev/null
done; done
rm -f fc-*.raw
