#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, and nothing when
# they are all there already (quick and idempotent). Run as root.
set -euo pipefail
packages=(
  build-essential clang-14 libclang-rt-14-dev cmake ninja-build pkg-config
  liburing-dev libboost-dev libnuma-dev
  libfmt-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  capnproto libcapnp-dev libisal-dev
  util-linux procps
  fio
  qemu-system-common e2fsprogs  # qemu-storage-daemon: vhost-user-blk reference back-end (vhost tests, vhost_bench)
  etcd-server
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
fi
# SPDK's host and target beside the tree (../shared/anchors): its runtime
# packages and huge pages, so that tests/e2e/spdk_host_test.sh and the
# nvmf_bench baseline run instead of skipping. Best effort: without it those
# skip with a message.
spdk=$(cd "$(dirname "$0")/.." && pwd)/../shared/anchors/spdk-v24.09/spdk
if [ -x "$spdk" ] && [ "$(id -u)" -eq 0 ]; then
  "$spdk" setup >/dev/null 2>&1 || echo "deps: '$spdk setup' failed: the SPDK tests will skip"
fi
