#!/bin/bash
# flat write (fwc.sh sh:modCur and nk) alone, then with 4 idle ShuruStore flat servers alive
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
run() { SERVERS="nk sh:modCur" C=4 N=2 bash "$REPO/bench/ab/fwc.sh" 2>&1 | grep total | sed "s/^/$1 /"; }
run alone
for k in 1 2 3 4; do rm -f idf$k.raw; truncate -s 256M idf$k.raw
  ( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/modCur/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/idf$k.sock -ImagePath $SR/idf$k.raw; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > idf$k.log 2>&1 &
done
for k in 1 2 3 4; do until grep -q READY idf$k.log; do sleep 0.2; done; done; sleep 15
free -m | head -2 | tail -1
run idle4
pkill -9 -f "pwsh.dll.*$SR/idf"; sleep 1
run alone
