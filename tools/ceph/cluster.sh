#!/usr/bin/env bash
# A throwaway one-node Ceph cluster with an S3 endpoint (radosgw) on 127.0.0.1, for the tests and
# benchmarks of the remote tier. Debian 12, root (or sudo for the install).
#
#   cluster.sh install     install the Debian packages when missing
#   cluster.sh start       install if needed, start mon + osd + radosgw, create the test user and
#                          bucket, wait until S3 answers; a no-op when already running
#   cluster.sh status      "running", "rgw-stopped", "rgw-paused" or "stopped" (exit 0 only when running)
#   cluster.sh env         export lines for the AWS SDKs (credentials, region, endpoint), the bucket,
#                          the https endpoint and a CA bundle that trusts it (for AWS_CA_BUNDLE)
#   cluster.sh stop        kill every daemon this script started and remove the state directory
#   cluster.sh rgw-stop    stop only radosgw (the object store goes away; mon and osd keep the data)
#   cluster.sh rgw-start   start radosgw again and wait until S3 answers
#   cluster.sh rgw-pause   SIGSTOP radosgw: connections are still accepted but never answered
#   cluster.sh rgw-resume  SIGCONT radosgw
#
# Environment (all optional):
#   SHURU_CEPH_DIR       state directory, everything lives under it   (/var/tmp/shurustore-ceph)
#   SHURU_CEPH_RGW_PORT  S3 port on 127.0.0.1 (http)                    (7480)
#   SHURU_CEPH_TLS_PORT  S3 port on 127.0.0.1 (https, self-signed)      (7443)
#   SHURU_CEPH_MON_PORT  monitor port (msgr2) on 127.0.0.1              (3300)
#   SHURU_CEPH_OBJECTSTORE  bluestore (a sparse 20 GiB file) or memstore (bluestore)
#
# Why it is built this way:
# - cephx is off (auth ... = none): no keyrings to create or distribute. With auth none, a client
#   that talks msgr2 to the monitor must use crc mode ("ms mon client mode = crc"), otherwise
#   radosgw fails with "get_initial_auth_request returned -13".
# - the OSD is bluestore on a sparse file under $DIR (see store_conf for why not memstore), with
#   a small fixed cache so the cluster stays a few hundred MiB.
# - one OSD, so pools have size 1 and CRUSH places replicas across OSDs (type 0), and pools are
#   created with few placement groups so radosgw's pools stay under the per-OSD PG limit.
# - no ceph-mgr: radosgw and rados do not need one; it only costs memory and start time.
# - radosgw also serves https with a self-signed certificate for 127.0.0.1 (tls/ca.crt; tls/bundle.crt
#   is it plus the system's CAs, for AWS_CA_BUNDLE): clients sign and checksum requests
#   differently over https, and that path has to be tested too.
# - daemons fork themselves; their pids are in $DIR/run and only those are ever signalled,
#   after checking that the process is the one started with this directory's config.
set -euo pipefail

DIR=${SHURU_CEPH_DIR:-/var/tmp/shurustore-ceph}
RGW_PORT=${SHURU_CEPH_RGW_PORT:-7480}
TLS_PORT=${SHURU_CEPH_TLS_PORT:-7443}
OBJECTSTORE=${SHURU_CEPH_OBJECTSTORE:-bluestore}
MON_PORT=${SHURU_CEPH_MON_PORT:-3300}
CONF=$DIR/ceph.conf
RGW_NAME=client.rgw.shuru
PKGS=(ceph-mon ceph-osd radosgw ceph-common openssl python3)
# Fixed credentials of the local test user: they only open this throwaway cluster on 127.0.0.1.
ACCESS_KEY=SHURUSTORETESTKEY000
SECRET_KEY=shurustore-local-test-secret-0000000000
BUCKET=shurustore-test
REGION=us-east-1
PY=/usr/bin/python3

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "needs root (or sudo) for $1"
    SUDO=sudo
  fi
}

installed() {
  local p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done
  command -v ceph-mon >/dev/null && command -v radosgw >/dev/null && [ -x "$PY" ]
}

cmd_install() {
  installed && return 0
  need_root "apt-get install"
  log "installing ${PKGS[*]} (a few minutes)"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run on the machine holds the lock for a while: wait for it instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
  installed || die "packages ${PKGS[*]} did not install"
}

# The pid of a daemon of this cluster, if it is alive and really ours (pid files can go stale
# and pids are reused).
pid_of() {
  local f=$DIR/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -d "/proc/$pid" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF" || return 1
  echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

# "R", "S", "T" (stopped by a signal) ... from /proc/PID/stat.
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }

# Sends the signal (TERM by default), then SIGKILL when the daemon has not gone after 5 s.
kill_daemon() {
  local name=$1 sig=${2:-TERM} pid i
  pid=$(pid_of "$name") || { rm -f "$DIR/run/$name.pid"; return 0; }
  kill -"$sig" "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$DIR/run/$name.pid"
}

# True when something answers HTTP on the S3 port (any status: anonymous requests get 200 or 403).
s3_answers() {
  timeout 3 "$PY" - "$RGW_PORT" <<'EOF' >/dev/null 2>&1
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
c.request("GET", "/")
sys.exit(0 if c.getresponse().status in (200, 403) else 1)
EOF
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The OSD's object store. bluestore on a sparse file is what a real cluster runs. memstore (in
# the OSD's memory) starts faster but its used-bytes counter can wrap below zero under
# overwrites, after which the OSD reports itself full and blocks every write.
store_conf() {
  case "$OBJECTSTORE" in
    bluestore) cat <<EOF
osd objectstore = bluestore
bluestore block path = $DIR/osd/block
bluestore block create = true
bluestore block size = 21474836480
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
EOF
    ;;
    memstore) cat <<EOF
osd objectstore = memstore
memstore device bytes = 8589934592
EOF
    ;;
    *) die "SHURU_CEPH_OBJECTSTORE must be bluestore or memstore" ;;
  esac
}

write_conf() {
  local fsid=$1
  mkdir -p "$DIR"/{run,log,mon,osd,rgw,tls}
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=shurustore test radosgw" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$DIR/tls/rgw.key" -out "$DIR/tls/ca.crt" 2>/dev/null \
    || die "openssl could not make the test certificate"
  cat /etc/ssl/certs/ca-certificates.crt "$DIR/tls/ca.crt" >"$DIR/tls/bundle.crt" 2>/dev/null || cp "$DIR/tls/ca.crt" "$DIR/tls/bundle.crt"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
rgw data = $DIR/rgw/\$cluster-\$id
$(store_conf)
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# The monitor shuts itself down when its disk is nearly full; this cluster's data is in memory.
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
osd max object size = 134217728
[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT ssl_endpoint=127.0.0.1:$TLS_PORT ssl_certificate=$DIR/tls/ca.crt ssl_private_key=$DIR/tls/rgw.key
rgw thread pool size = 128
EOF
}

# Runs a daemon in the background with its output in its log; it forks itself and writes its pid file.
launch() {
  local name=$1; shift
  "$@" -c "$CONF" </dev/null >>"$DIR/log/$name.out" 2>&1 || die "$name failed to start; see $DIR/log/$name.out and $DIR/log/"
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "$what not ready after ${seconds}s; logs in $DIR/log/"
    sleep 0.2
  done
}

osd_up() { ceph -c "$CONF" --connect-timeout 5 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

start_rgw() {
  if ! alive radosgw; then
    rm -f "$DIR/run/radosgw.pid"
    port_free "$RGW_PORT" || die "port $RGW_PORT is in use by another program (set SHURU_CEPH_RGW_PORT)"
    port_free "$TLS_PORT" || die "port $TLS_PORT is in use by another program (set SHURU_CEPH_TLS_PORT)"
  fi
  if ! alive radosgw; then
    launch radosgw radosgw -n "$RGW_NAME" --pid-file "$DIR/run/radosgw.pid"
  fi
  local pid; pid=$(pid_of radosgw || true)
  [ -z "$pid" ] || [ "$(proc_state "$pid")" != T ] || kill -CONT "$pid"
  wait_for "radosgw on 127.0.0.1:$RGW_PORT" 90 s3_answers
}

ensure_user_and_bucket() {
  if ! radosgw-admin -c "$CONF" user info --uid shurustore-test >/dev/null 2>&1; then
    radosgw-admin -c "$CONF" user create --uid shurustore-test --display-name "ShuruStore tests" \
      --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null
  fi
  # PUT /bucket signed with AWS signature v2 (stdlib only; radosgw accepts v2 and v4).
  timeout 20 "$PY" - "$RGW_PORT" "$BUCKET" "$ACCESS_KEY" "$SECRET_KEY" <<'EOF' || die "creating bucket $BUCKET failed"
import base64, hashlib, hmac, http.client, sys, email.utils
port, bucket, key, secret = sys.argv[1:5]
date = email.utils.formatdate(usegmt=True)
sig = base64.b64encode(hmac.new(secret.encode(), f"PUT\n\n\n{date}\n/{bucket}".encode(), hashlib.sha1).digest()).decode()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=15)
c.request("PUT", "/" + bucket, headers={"Date": date, "Authorization": f"AWS {key}:{sig}", "Content-Length": "0"})
r = c.getresponse()
body = r.read().decode(errors="replace")
# 409 BucketAlreadyExists/BucketAlreadyOwnedByYou: it is there already.
sys.exit(0 if r.status in (200, 409) else f"status {r.status}: {body}")
EOF
}

cmd_start() {
  cmd_install
  need_root "starting the cluster"
  if alive mon && alive osd; then
    start_rgw
    ensure_user_and_bucket
    log "running (state in $DIR, S3 on http://127.0.0.1:$RGW_PORT)"
    return 0
  fi
  # A half-running cluster is rebuilt from nothing: it is a test cluster, its data is disposable.
  teardown
  port_free "$MON_PORT" || die "port $MON_PORT is in use by another program (set SHURU_CEPH_MON_PORT)"
  port_free "$RGW_PORT" || die "port $RGW_PORT is in use by another program (set SHURU_CEPH_RGW_PORT)"
  port_free "$TLS_PORT" || die "port $TLS_PORT is in use by another program (set SHURU_CEPH_TLS_PORT)"
  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/mon.out" 2>&1 || die "ceph-mon --mkfs failed; see $DIR/log/mon.out"
  launch mon ceph-mon -i a --pid-file "$DIR/run/mon.pid"
  wait_for "monitor" 30 ceph -c "$CONF" --connect-timeout 5 mon stat
  local id
  id=$(ceph -c "$CONF" osd new "$osd_uuid")
  [ "$id" = 0 ] || die "expected osd id 0, got '$id'"
  mkdir -p "$DIR/osd/ceph-0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/osd.out" 2>&1 || die "ceph-osd --mkfs failed; see $DIR/log/osd.out"
  launch osd ceph-osd -i 0 --pid-file "$DIR/run/osd.pid"
  wait_for "osd.0" 60 osd_up
  start_rgw
  ensure_user_and_bucket
  log "running (state in $DIR, S3 on http://127.0.0.1:$RGW_PORT)"
}

teardown() {
  # The state is removed next, so nothing is worth a graceful shutdown.
  kill_daemon radosgw KILL
  kill_daemon osd KILL
  kill_daemon mon KILL
  # Refuse to remove anything that is not a state directory of this script.
  if [ -d "$DIR" ]; then
    if [ -f "$CONF" ] || [ -z "$(ls -A "$DIR")" ]; then rm -rf "$DIR"; else die "$DIR does not look like a cluster state directory; not removing it"; fi
  fi
}

cmd_status() {
  if alive mon && alive osd; then
    if alive radosgw; then
      if [ "$(proc_state "$(pid_of radosgw)")" = T ]; then echo rgw-paused; return 1; fi
      s3_answers && { echo running; return 0; }
      echo rgw-not-answering; return 1
    fi
    echo rgw-stopped; return 1
  fi
  if alive mon || alive osd || alive radosgw; then echo partial; return 1; fi
  echo stopped; return 1
}

cmd_env() {
  cat <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$RGW_PORT
export SHURU_TEST_BUCKET=$BUCKET
export SHURU_TEST_ENDPOINT_TLS=https://127.0.0.1:$TLS_PORT
export SHURU_TEST_CA_BUNDLE=$DIR/tls/bundle.crt
EOF
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) teardown; log "stopped" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  rgw-stop) kill_daemon radosgw ;;
  rgw-start) alive mon && alive osd || die "the cluster is not running (cluster.sh start)"; start_rgw ;;
  rgw-pause) pid=$(pid_of radosgw) || die "radosgw is not running"; kill -STOP "$pid" ;;
  rgw-resume) pid=$(pid_of radosgw) || die "radosgw is not running"; kill -CONT "$pid" ;;
  *) echo "usage: $0 install|start|stop|status|env|rgw-stop|rgw-start|rgw-pause|rgw-resume" >&2; exit 2 ;;
esac
