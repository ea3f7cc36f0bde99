#!/usr/bin/env bash
# Installs the Debian packages the tests, the guest boot and the benchmarks use, when missing.
# Idempotent and quiet when everything is present. Needs root (or sudo) on Debian 12.
set -euo pipefail
pkgs=(qemu-utils libnbd-bin python3-libnbd nbdkit fio qemu-system-x86 e2fsprogs b3sum fuse3 libfuse3-dev g++
      busybox-static linux-image-amd64 cpio tmux python3-boto3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
