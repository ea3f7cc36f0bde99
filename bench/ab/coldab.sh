#!/bin/bash
# cold read A/B: fresh empty CAS (new dir; the previous one truncated), fresh server, settle, nbdcopy -C 4 of the whole base
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
PREV=
for i in $(seq 1 ${N:-3}); do for m in ${MODS:-modBase modCur}; do
  [ -n "$PREV" ] && find "$PREV" -type f -exec truncate -s 0 {} +
  PREV=$SR/ccas-$m-$RANDOM$RANDOM; rm -f c.sock c.log
  ( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/c.sock -RootfsPath $SR/img.raw -CasPath $PREV; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > c.log 2>&1 &
  until grep -q READY c.log; do sleep 0.2; done; sleep 6; sync; sleep 1
  P=$(pgrep -n -f 'pwsh.dll.*c.sock'); c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
  t0=$(date +%s%N); nbdcopy -C 4 "nbd+unix:///?socket=$SR/c.sock" null:; t1=$(date +%s%N)
  echo "$m cold $(( (t1-t0)/1000000 )) ms cpu $(( $(awk '{print ($14+$15)*10}' /proc/$P/stat) - c0 ))"
  kill -9 $P; sleep 1
done; done
[ -n "$PREV" ] && find "$PREV" -type f -exec truncate -s 0 {} +
