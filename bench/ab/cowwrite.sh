#!/bin/bash
# fresh-layer seq-write (nbdcopy -C ${C:-1} --flush of 1 GiB random data) into a new chunk store over img.raw vs nbdkit on
# a fresh sparse image; server CPU (user/sys), perf profile of ours when PERF=1
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); mkdir -p "$SR"; cd "$SR"
[ -f img.raw ] || head -c 1G /dev/urandom > img.raw
[ -f src.raw ] || head -c 1G /dev/urandom > src.raw
cat src.raw > /dev/null
for i in $(seq 1 ${N:-2}); do for s in ${SERVERS:-nk sh}; do
  rm -rf w.sock w-cas w.raw w.log; sync
  case $s in
    sh) ( cd $REPO && exec setsid env DOTNET_PerfMapEnabled=${PERF:-0} dotnet pwsh -NoProfile -File bench/serve.ps1 -SocketPath $SR/w.sock -RootfsPath $SR/img.raw -CasPath $SR/w-cas ) > w.log 2>&1 &
        until grep -q READY w.log; do sleep 0.2; done; sleep 6; P=$(pgrep -n -f "pwsh.dll.*w.sock") ;;
    nk) truncate -s 1G w.raw; setsid nbdkit -f -U $SR/w.sock file w.raw & sleep 1; P=$(pgrep -n -f "nbdkit -f -U $SR/w.sock") ;;
  esac
  sync; sleep 1
  read u0 s0 < <(awk '{print $14, $15}' /proc/$P/stat)
  [ "${PERF:-0}" = 1 ] && [ $s = sh ] && { perf record -F 1999 -g -p $P -o $SR/perf-$s-$i.data > /dev/null 2>&1 & PP=$!; sleep 0.5; }
  t0=$(date +%s%N); nbdcopy -C ${C:-1} --flush src.raw "nbd+unix:///?socket=$SR/w.sock"; t1=$(date +%s%N)
  read u1 s1 < <(awk '{print $14, $15}' /proc/$P/stat)
  [ -n "$PP" ] && { kill -INT $PP; wait $PP 2>/dev/null; PP=; }
  echo "$s seq-write c${C:-1}: $(( 1024*1000 / ((t1-t0)/1000000) )) MiB/s, $(( (t1-t0)/1000000 )) ms; server user $(( (u1-u0)*10 )) ms sys $(( (s1-s0)*10 )) ms; files $(find w-cas -type f 2>/dev/null | wc -l)"
  kill $P; sleep 1; kill -9 $P 2>/dev/null
done; done
rm -rf w-cas w.raw
