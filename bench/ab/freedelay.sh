#!/bin/bash
# Does the time between freeing page cache and writing decide a write's speed (virtio-balloon
# free page reporting)? nbdkit writes 1 GiB into a fresh sparse image DELAY seconds after 1 GiB
# of page cache was freed (a deleted, fully cached file); delays alternate.
SR=${SR:-/var/tmp/sr}; cd "$SR"
cpu() { awk '{print ($14+$15)*10}' /proc/$1/stat; }
for i in $(seq 1 ${N:-3}); do for delay in ${DELAYS:-0.3 8}; do
  head -c 1G /dev/urandom > fd-junk.raw; sync
  rm -f fd.raw fd.sock; truncate -s 1G fd.raw
  setsid nbdkit -f -U $SR/fd.sock file fd.raw & sleep 0.5; PID=$(pgrep -n -f "nbdkit -f -U $SR/fd.sock")
  rm -f fd-junk.raw; sleep $delay
  c0=$(cpu $PID); t0=$(date +%s%N); nbdcopy -C 4 img.raw "nbd+unix:///?socket=$SR/fd.sock"; t1=$(date +%s%N); c1=$(cpu $PID)
  echo "delay ${delay}s: write $(( (t1-t0)/1000000 )) ms, nbdkit cpu $((c1-c0)) ms"
  kill $PID; sleep 0.5; rm -f fd.raw
done; done
