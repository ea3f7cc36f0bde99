#!/bin/bash
# time to first byte (bench/ttfb.py: connect + opt_go + pread 4 KiB, median of $CONNECTS, default 20) of a flat server over img.raw:
# nbdkit (nk), qemu-nbd (qn), ShuruStore with the module staged in $SR/MOD (sh:MOD), alternating, fresh server per run
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR"
for i in $(seq 1 ${N:-3}); do for s in ${SERVERS:-nk sh:modCur}; do
  rm -f tt.sock
  case $s in
    sh:*) m=${s#sh:}; ( cd "$REPO" && exec setsid env ${XENV:-X=1} dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/tt.sock -ImagePath $SR/img.raw -ReadOnly; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > tt.log 2>&1 &
        until grep -q READY tt.log; do sleep 0.2; done; sleep ${SETTLE:-6}; PID=$(pgrep -n -f "pwsh.dll.*tt.sock") ;;
    nk) setsid nbdkit -f -r -U $SR/tt.sock file img.raw & sleep 1; PID=$(pgrep -n -f "nbdkit -f -r -U $SR/tt.sock") ;;
    qn) setsid qemu-nbd -k $SR/tt.sock -x export -r -f raw -t -e 16 img.raw & sleep 1; PID=$(pgrep -n -f "qemu-nbd -k $SR/tt.sock") ;;
  esac
  echo "$s $(/usr/bin/python3 "$REPO/bench/ttfb.py" "nbd+unix:///export?socket=$SR/tt.sock" ${CONNECTS:-20})"
  kill $PID; sleep 1; kill -9 $PID 2>/dev/null
done; done
