#!/bin/bash
# Methods compiled during the first 20 connections (bench/ttfb.py) to a fresh flat server, after the
# process's rehearsal; with the time to first byte. usage: bash bench/ab/jitttfb.sh STAGED_MODULE_NAME
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); M=$1; cd "$SR"; rm -f jt.sock jt.log
( cd "$REPO" && DOTNET_PerfMapEnabled=1 exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$M/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/jt.sock -ImagePath $SR/img.raw -ReadOnly; \$r = [ShuruStore.Core.Hosting.ProcessWarmUp]::Completion.GetAwaiter().GetResult(); [Console]::Out.WriteLine(('WARM {0} {1} {2}' -f \$r.Completed, \$r.Rounds, \$r.Elapsed)); while (\$true) { Start-Sleep 1 }" ) > jt.log 2>&1 &
until grep -q WARM jt.log 2>/dev/null; do sleep 0.2; done; sleep 3
P=$(pgrep -f 'unix/pwsh.dll.*jt.sock' | tail -1); MAP=/tmp/perf-$P.map; n0=$(wc -l < $MAP)
R=$(/usr/bin/python3 "$REPO/bench/ttfb.py" "nbd+unix:///export?socket=$SR/jt.sock" 20 | sed 's/"p90.*//')
n1=$(wc -l < $MAP); d=$(tail -n +$((n0+1)) $MAP | head -$((n1-n0)))
echo "$M $(grep WARM jt.log) $R compiled during 20 connects: $(grep -c 'ShuruStore.Core' <<< "$d") engine / $((n1-n0)) all"
kill -9 $P; rm -f $MAP
