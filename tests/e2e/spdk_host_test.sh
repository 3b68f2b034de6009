#!/usr/bin/env bash
# End to end: SPDK's NVMe/TCP host (spdk_nvme_identify, spdk_nvme_perf from
# ../shared/anchors/spdk-v24.09) against the ioengine daemon's target on
# loopback, one 4 GiB null namespace. Each tool must exit 0 on its own within
# its time limit (a tool still running at the limit has hung, usually at
# detach) and print its whole output:
#   1. spdk_nvme_identify of our subsystem: the namespace section, and Get
#      Features Arbitration / Power Management / Temperature Threshold answered
#   2. spdk_nvme_identify of our discovery subsystem: the discovery log entry
#      naming our subsystem and port
#   3. spdk_nvme_perf: 4 KiB randread QD32 2 s, 4 KiB randwrite QD32 2 s,
#      128 KiB read QD16 2 s, each with a Total line of IOPS > 0
#   4. the daemon is still alive and serves one more identify
# The target must log no C2HTermReq, and the daemon must stop on SIGTERM with 0.
# SPDK's tools run on core 1 and the daemon on core 0 (when there are two
# cores), so that host and target really run at the same time.
# Usage: spdk_host_test.sh [IOENGINE_BIN [SPDK_DIR]]
#   IOENGINE_BIN default: build/{release,debug,sanitize}/tools/ioengine of this tree
#   SPDK_DIR     default: ../shared/anchors/spdk-v24.09 beside this tree
# Exit 77 (skipped) without SPDK, without root, or when `spdk setup` (runtime
# packages, huge pages) fails or takes over 20 s. The whole test takes < 120 s
# even when every tool hangs (12 s per tool, 14 s with spdk_nvme_perf's SIGKILL).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-}
spdk_dir=${2:-$root/../shared/anchors/spdk-v24.09}
if [ -z "$bin" ]; then
  for t in release debug sanitize; do
    [ -x "$root/build/$t/tools/ioengine" ] && { bin=$root/build/$t/tools/ioengine; break; }
  done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "FAIL: no ioengine binary (give it as the first argument or build it: scripts/build.sh)"; exit 1
fi
spdk=$spdk_dir/spdk
if [ ! -x "$spdk" ] || [ ! -x "$spdk_dir/bin/spdk_nvme_perf" ] || [ ! -x "$spdk_dir/bin/spdk_nvme_identify" ]; then
  echo "SKIP: no SPDK host tools at $spdk_dir (../shared/anchors/spdk-v24.09)"; exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: SPDK's tools need root (huge pages, hugetlbfs)"; exit 77
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if ! timeout 20 "$spdk" setup > "$work/setup.log" 2>&1; then
  echo "SKIP: '$spdk setup' failed or took over 20 s (runtime packages, huge pages; run it once by hand):"
  tail -5 "$work/setup.log"; exit 77
fi

t0=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - t0 )) s)"; }
if [ "$(nproc)" -ge 2 ]; then engine_cores=0; tool_core=1; else engine_cores=0; tool_core=0; fi
nqn=nqn.2026-11.io.ioengine:spdk-e2e
# Its own data dir, RPC socket, a free port and no metrics port: nothing shared
# with an engine that may already run on this machine.
"$bin" --cores $engine_cores --poll adaptive --data-dir "$work/data" --default-pool-mb 0 \
  --rpc "unix:$work/rpc.sock" --metrics off --nvmf-listen 127.0.0.1:0 --nqn $nqn \
  --namespace 'null:///spdk-e2e?size_mb=4096&blk_size=4096' > "$work/target.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "running (pid" "$work/target.log" && break; sleep 0.2; done
port=$(sed -n 's/.*NVMe\/TCP target listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/target.log" | head -1)
if [ -z "$port" ] || ! kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: the target did not start:"; cat "$work/target.log"; exit 1
fi
echo "target on 127.0.0.1:$port ($bin)"
trid() { echo "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$1"; }

fail=0
check() {  # check LOG WANTED...: every WANTED line is in LOG
  local log=$1; shift
  for want in "$@"; do
    grep -qF -- "$want" "$log" || { echo "FAIL: '$want' missing from $(basename "$log")"; fail=1; }
  done
}
# run LIMIT NAME CMD...: CMD must exit 0 within LIMIT seconds; stdout in
# $work/NAME.out (line buffered, so a hang shows how far it got), stderr in
# $work/NAME.err. spdk_nvme_perf ignores SIGTERM: SIGKILL 2 s later.
run() {
  local limit=$1 name=$2; shift 2
  local start rc ms
  start=$(date +%s%N)
  # (In a subshell whose stderr is dropped: no "Killed" job notice from bash.)
  (timeout -k 2 "$limit" stdbuf -oL "$@" > "$work/$name.out" 2> "$work/$name.err") 2> /dev/null
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%s: exit %d after %d.%01d s\n' "$name" $rc $((ms / 1000)) $((ms % 1000 / 100))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "FAIL: $name did not exit within $limit s (hung); its last lines:"; tail -5 "$work/$name.out"
    head -5 "$work/$name.err"; fail=1; return 1
  elif [ $rc -ne 0 ]; then
    echo "FAIL: $name exited $rc:"; tail -5 "$work/$name.out"; head -5 "$work/$name.err"; fail=1; return 1
  fi
  return 0
}
identify() {  # identify NAME SUBNQN
  run 12 "$1" "$spdk_dir/spdk" identify -p $tool_core -r "$(trid "$2")"
}
perf() {  # perf NAME PERF-ARGS...: a 2 s run, its Total line must show IOPS > 0
  local name=$1; shift
  run 12 "$name" "$spdk_dir/spdk" perf -c $((1 << tool_core)) -t 2 "$@" -r "$(trid $nqn)"
  local total iops
  total=$(grep -E '^Total +:' "$work/$name.out" | tail -1)
  iops=$(echo "$total" | awk -F: '{ split($2, f, " "); print f[1] }')
  if awk -v x="${iops:-0}" 'BEGIN { exit !(x > 0) }'; then
    echo "   $name: $iops IOPS"
  else
    echo "FAIL: $name reported no IOPS > 0: '${total:-no Total line}'"; fail=1
  fi
}

echo "== 1. spdk_nvme_identify of $nqn"
identify identify $nqn
check "$work/identify.out" "Serial Number:" "Active Namespaces" "Namespace ID:1" "1048576 (4GiB)" \
  "LBA Format #00: Data Size:  4096"
for f in 01 02 04; do
  grep -q "get_feature(0x$f) failed" "$work/identify.out" && { echo "FAIL: Get Features $f failed"; fail=1; }
done
grep "get_feature(0x" "$work/identify.out" | sed 's/^/   note: /'
stamp

echo "== 2. spdk_nvme_identify of the discovery subsystem"
identify discovery nqn.2014-08.org.nvmexpress.discovery
check "$work/discovery.out" "Discovery Log Entry 0" "NVM Subsystem Qualified Name:          $nqn" \
  "Transport Service Identifier:          $port"
stamp

echo "== 3. spdk_nvme_perf"
perf randread4k -q 32 -o 4096 -w randread
perf randwrite4k -q 32 -o 4096 -w randwrite
perf read128k -q 16 -o 131072 -w read
stamp

echo "== 4. the daemon is alive and serves a new host"
if kill -0 "$pid" 2>/dev/null; then
  identify identify-again $nqn && check "$work/identify-again.out" "Namespace ID:1"
else
  echo "FAIL: the daemon is gone"; fail=1; pid=
fi
stamp

if grep -q "C2HTermReq" "$work/target.log"; then
  echo "FAIL: the target ended connections with a C2HTermReq:"; grep "C2HTermReq" "$work/target.log" | head -5; fail=1
fi
if [ -n "$pid" ]; then
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: the daemon did not stop within 10 s of SIGTERM"; fail=1
  else
    wait "$pid"; rc=$?
    [ $rc -eq 0 ] || { echo "FAIL: the daemon exited with $rc after SIGTERM"; fail=1; }
    pid=
  fi
fi
stamp
[ $fail -eq 0 ] && echo "SPDK host e2e: PASS" || { echo "--- target log"; tail -30 "$work/target.log"; }
exit $fail
