#!/usr/bin/env bash
# End to end: NVMe reservations from the Linux host's nvme-cli (the kernel
# NVMe/TCP initiator in a VM by ../shared/tools/kernel-initiator) against the
# ioengine daemon's target on loopback, one boot: resv-register (with CPTPL
# "persist"), resv-report (extended), resv-acquire Write Exclusive, a write
# by the holder, a second register with another key refused (conflict),
# resv-release, unregister. Then the daemon is restarted over the same data
# dir and a uring namespace: the registration persisted through the restart
# (PTPL) shows in a second boot's report. The daemon must log no error.
# Usage: kernel_reservations_test.sh IOENGINE_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when the kernel-initiator tool is not beside the project.
set -u
bin=$1
ki=$2
. "$(dirname "$0")/lib.sh"
e2e_need_ki "$ki"
e2e_work
e2e_prepare_ki "$ki"
port=$(e2e_port)
nqn=nqn.2026-12.io.ioengine:resv
host=nqn.2014-08.org.nvmexpress:uuid:0e2e0000-0000-4000-8000-0000000000a1
hostid=0e2e0000-0000-4000-8000-0000000000a1
truncate -s 64M "$work/ns.img"
start_daemon() {
  "$bin" --cores 0-1 --dma-mb 64 --data-dir "$work/data" --default-pool-mb 0 --rpc "unix:$work/rpc.sock" \
    --metrics off --nvmf-listen 127.0.0.1:$port --nqn $nqn --namespace "uring://$work/ns.img" \
    >> "$work/target.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "running (pid" "$work/target.log" && break; sleep 0.2; done
}
start_daemon
fail=0
check() {  # check LOG WANTED...: every WANTED extended regex matches a line of LOG
  local log=$1; shift
  for want in "$@"; do
    grep -qE -- "$want" "$log" || { echo "FAIL: '$want' missing from $(basename "$log")"; fail=1; }
  done
}

cat > "$work/boot1.sh" <<'SCRIPT'
d=$KI_DEV
nvme id-ns $d | grep -E "^(nmic|rescap) "
nvme resv-register $d --nrkey=0xabc --rrega=0 --cptpl=3 && echo "register OK"
nvme resv-register $d --nrkey=0xdef --rrega=0 || echo "register with another key refused"
nvme resv-acquire $d --crkey=0xabc --rtype=1 --racqa=0 && echo "acquire OK"
nvme resv-report $d --eds | sed 's/^/report1: /'
dd if=/dev/urandom of=$d bs=4096 count=4 oflag=direct 2>/dev/null && echo "holder write OK"
nvme resv-release $d --crkey=0xabc --rtype=1 --rrela=0 && echo "release OK"
nvme resv-report $d --eds | sed 's/^/report2: /'
SCRIPT
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --hostid $hostid --no-discover \
     --script "$work/boot1.sh" > "$work/run1.log" 2>&1; then
  echo "boot 1 failed:"; tail -30 "$work/run1.log"; fail=1
fi
check "$work/run1.log" "^nmic +: (0x)?1" "^rescap +: 0xff" "register OK" "register with another key refused" \
  "acquire OK" "report1: .*rtype +: 1" "report1: .*regctl +: 1" "report1: .*ptpls +: 1" "report1: .*rkey +: (0x)?abc" \
  "holder write OK" "release OK" "report2: .*rtype +: 0"

# Power loss: kill -9, restart over the same data dir; the registration is back.
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
start_daemon
cat > "$work/boot2.sh" <<'SCRIPT'
nvme resv-report $KI_DEV --eds | sed 's/^/report3: /'
nvme resv-register $KI_DEV --crkey=0xabc --rrega=1 && echo "unregister OK"
SCRIPT
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --hostid $hostid --no-discover \
     --script "$work/boot2.sh" > "$work/run2.log" 2>&1; then
  echo "boot 2 failed:"; tail -30 "$work/run2.log"; fail=1
fi
check "$work/run2.log" "report3: .*regctl +: 1" "report3: .*rkey +: (0x)?abc" "unregister OK"
check "$work/target.log" "reservation restored"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] || { echo "FAIL: the daemon exited with $rc"; fail=1; }
if grep -E "\berror\b" "$work/target.log"; then echo "FAIL: the daemon logged errors"; fail=1; fi
if [ $fail -ne 0 ]; then
  echo "--- target log"; cat "$work/target.log"; echo "--- run1"; cat "$work/run1.log"; echo "--- run2"; cat "$work/run2.log"
  exit 1
fi
echo "PASS"
