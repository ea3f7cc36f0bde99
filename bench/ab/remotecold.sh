#!/bin/bash
# Remote cold read A/B: one published 1 GiB disk of random data (published once, by the first
# module, and reused: its URI is kept in $SR/remote-uri); per round, for each module a fresh server
# on an empty cache boots the s3:// index and nbdcopy -C 4 reads the whole disk; then boto3's raw
# parallel GET of the same bytes in 4 MiB objects (raw_rate.py get-4m), so every round has its own
# yardstick. Prints time, server CPU and the rate against the round's raw GET.
# No deletes during the run: each cache is a new directory and the previous one's files are only
# truncated (this VM's journal-less ext4 makes creating files right after deleting thousands of
# them cost several times more; docs/performance.md step 22).
SR=${SR:-/var/tmp/sr}; REPO=$(cd "$(dirname "$0")/../.." && pwd); cd "$SR" || exit 1
MODS=${MODS:-modBase modCur}
bash "$REPO/tools/ceph/cluster.sh" start >/dev/null
eval "$(bash "$REPO/tools/ceph/cluster.sh" env)"
first=${MODS%% *}
if [ ! -s remote-uri ]; then
  rm -rf pubcas; [ -f img.raw ] || head -c 1G /dev/urandom > img.raw
  ( cd "$REPO" && dotnet pwsh -NoProfile -Command "Import-Module $SR/$first/ShuruStore.psd1; \$null = Import-ShuruDisk -Path $SR/img.raw -CasPath $SR/pubcas -IndexPath $SR/pub.idx; (Publish-ShuruCheckpoint $SR/pub.idx $SR/pubcas -Destination s3://\$env:SHURU_TEST_BUCKET/remotecold-$RANDOM -Name disk -ProgressAction SilentlyContinue).Uri" ) | tail -n 1 > remote-uri
  rm -rf pubcas
fi
URI=$(cat remote-uri); echo "index $URI"
PREV=
for i in $(seq 1 "${N:-3}"); do
  for m in $MODS; do
    [ -n "$PREV" ] && find "$PREV" -type f -exec truncate -s 0 {} +
    PREV=$SR/rcache-$m-$RANDOM$RANDOM; rm -f r.sock r.log
    ( cd "$REPO" && exec setsid dotnet pwsh -NoProfile -Command "Import-Module $SR/$m/ShuruStore.psd1; \$s = Start-ShuruNbdServer -SocketPath $SR/r.sock -IndexPath '$URI' -CasPath $PREV -WarningAction SilentlyContinue; [Console]::Out.WriteLine('READY'); while (\$true) { Start-Sleep 1 }" ) > r.log 2>&1 &
    until grep -q READY r.log; do sleep 0.2; grep -q -i error r.log && { cat r.log; exit 1; }; done; sleep 4
    P=$(pgrep -n -f 'pwsh.dll.*r.sock'); c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
    t0=$(date +%s%N); nbdcopy -C 4 "nbd+unix:///?socket=$SR/r.sock" null:; t1=$(date +%s%N)
    ms=$(( (t1-t0)/1000000 ))
    echo "$m cold $ms ms $(( 1024000 / ms )) MiB/s cpu $(( $(awk '{print ($14+$15)*10}' /proc/$P/stat) - c0 )) ms"
    kill -9 "$P"; sleep 1
  done
  /usr/bin/python3 "$REPO/bench/remote/raw_rate.py" --phases put-4m,get-4m --large-count 256 --reps 1 --out "$SR/raw.json" >/dev/null 2>&1
  /usr/bin/python3 -c "import json; m=json.load(open('$SR/raw.json'))['median']; print('raw get-4m %.0f MiB/s' % m['get-4m']['mib_per_s'])"
done
[ -n "$PREV" ] && find "$PREV" -type f -exec truncate -s 0 {} +
