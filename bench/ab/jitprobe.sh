#!/bin/bash
# Methods compiled during a cold read: fresh server with the perf map on, wait for the process's
# rehearsal (ProcessWarmUp), then nbdcopy -C 4 of the whole base; prints the rehearsal's result,
# the read's time and server CPU, and how many methods (engine / all) were compiled during it.
# usage: bash bench/ab/jitprobe.sh MODULE_DIR_NAME   (a staged module under $SR, e.g. modCur)
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); M=$1; cd "$SR"
rm -rf jp-cas jp.sock jp.log
( cd "$REPO" && DOTNET_PerfMapEnabled=1 exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$M/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/jp.sock -RootfsPath $SR/img.raw -CasPath $SR/jp-cas; \$r = [ShuruStore.Core.Hosting.ProcessWarmUp]::Completion.GetAwaiter().GetResult(); [Console]::Out.WriteLine(('WARM {0} {1} {2} {3}' -f \$r.Completed, \$r.Rounds, \$r.Elapsed, \$r.Problem)); while (\$true) { Start-Sleep 1 }" ) > jp.log 2>&1 &
until grep -q WARM jp.log 2>/dev/null; do sleep 0.2; done; grep WARM jp.log; sleep "${SETTLE:-3}"
P=$(pgrep -f 'unix/pwsh.dll.*jp.sock' | tail -1); MAP=/tmp/perf-$P.map
n0=$(wc -l < "$MAP"); c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat); t0=$(date +%s%N)
nbdcopy -C 4 "nbd+unix:///?socket=$SR/jp.sock" null:
t1=$(date +%s%N); c1=$(awk '{print ($14+$15)*10}' /proc/$P/stat); n1=$(wc -l < "$MAP")
during=$(tail -n +$((n0+1)) "$MAP" | head -$((n1-n0)))
echo "$M read $(( (t1-t0)/1000000 )) ms cpu $((c1-c0)) ms; compiled during the read: $(grep -c 'ShuruStore.Core' <<< "$during") engine / $((n1-n0)) all"
kill -9 "$P"; rm -f "$MAP"; rm -rf jp-cas
