#!/bin/bash
# warm chunk-store randread QD32 A/B: servers a ($A) and b ($B) over img.raw with kept CAS dirs, warmed by a full read; vs nbdkit
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
A=${A:-modCur}; B=${B:-modPre}
start() { ( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$2/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/$1.sock -RootfsPath $SR/img.raw -CasPath $SR/wrrcas-$1; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > $1.log 2>&1 & }
start wa $A; start wb $B
setsid nbdkit -f -U $SR/wnk.sock file img.raw &
until grep -q READY wa.log && grep -q READY wb.log; do sleep 0.2; done; sleep 4
for s in wa wb; do nbdcopy -C 4 "nbd+unix:///?socket=$SR/$s.sock" null:; done
until [ "$(ls wrrcas-wa/chunks | wc -l)" -ge 16384 ] && [ "$(ls wrrcas-wb/chunks | wc -l)" -ge 16384 ]; do sleep 0.5; done; sleep 3
for s in wa wb; do nbdcopy -C 4 "nbd+unix:///?socket=$SR/$s.sock" null:; done; sleep 2
for i in $(seq 1 ${N:-3}); do for s in wnk wa wb; do
  r=$(fio --name=rr --ioengine=nbd --uri="nbd+unix:///?socket=$SR/$s.sock" --rw=randread --iodepth=${QD:-32} --bs=4k --runtime=3 --time_based --output-format=json 2>/dev/null | python3 -c "import json,sys; s=sys.stdin.read(); j=json.loads(s[s.index('{'):])['jobs'][0]['read']; print(int(j['iops']), round(j['clat_ns']['mean']/1000,1), 'us')")
  echo "$s randread-qd${QD:-32} $r"
done; done
pkill -9 -f "pwsh.dll.*$SR/w(a|b).sock"; pkill -f "nbdkit -f -U $SR/wnk.sock"
