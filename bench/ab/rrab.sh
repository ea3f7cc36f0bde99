#!/bin/bash
# flat randread QD32 A/B: fio nbd engine, 3 s, against nbdkit; servers fresh per run
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
for i in $(seq 1 ${N:-3}); do for m in ${MODS:-nk modBase modCur}; do
  rm -f rr.sock rr.log
  if [ $m = nk ]; then setsid nbdkit -f -U $SR/rr.sock file img.raw & sleep 1; P=$(pgrep -n -f "nbdkit -f -U $SR/rr.sock")
  else ( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/rr.sock -ImagePath $SR/img.raw -ReadOnly; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > rr.log 2>&1 &
    until grep -q READY rr.log; do sleep 0.2; done; sleep 6; P=$(pgrep -n -f 'pwsh.dll.*rr.sock'); fi
  r=$(fio --name=rr --ioengine=nbd --uri="nbd+unix:///?socket=$SR/rr.sock" --rw=randread --iodepth=32 --bs=4k --runtime=3 --time_based --output-format=json 2>/dev/null | python3 -c "import json,sys; s=sys.stdin.read(); print(int(json.loads(s[s.index('{'):])['jobs'][0]['read']['iops']))")
  echo "$m randread-qd32 $r"
  kill -9 $P; sleep 1
done; done
