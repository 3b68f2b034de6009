#!/usr/bin/env bash
# End to end: a shared device's subsystem torn down while the Linux host
# (the kernel NVMe/TCP initiator in a VM, ../shared/tools/kernel-initiator)
# reads from it. The share uses a caller-chosen NQN (`device share --nqn`).
# The host must never get an NVMe error status with Do Not Retry (the
# issue's `I/O Error (sct 0x0 / sc 0xb) DNR`): the connection ends first
# (the kernel then retries until its ctrl-loss timeout), or a command gets a
# path status. The daemon must log no error and stop cleanly.
# Usage: kernel_teardown_test.sh IOENGINE_BIN IOENGINE_CTL_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when the kernel-initiator tool is not beside the project.
set -u
bin=$1
ctl=$2
ki=$3
. "$(dirname "$0")/lib.sh"
e2e_need_ki "$ki"
e2e_work
e2e_prepare_ki "$ki"
port=$(e2e_port)
nqn=nqn.2026-12.io.example:teardown-volume
"$bin" --cores 0-1 --dma-mb 64 --data-dir "$work/data" --default-pool-mb 0 --rpc "unix:$work/rpc.sock" \
  --metrics off --nvmf-listen 127.0.0.1:$port > "$work/target.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running (pid" "$work/target.log" && break; sleep 0.2; done
c() { "$ctl" --rpc "unix:$work/rpc.sock" "$@"; }
fail=0
c device create 'malloc:///t0?size_mb=64' > /dev/null || fail=1
c device share t0 --nqn $nqn > "$work/share.log" 2>&1 || { cat "$work/share.log"; fail=1; }
grep -qF "$nqn" "$work/share.log" || { echo "FAIL: share does not show $nqn"; fail=1; }
grep -q "added (1 namespace(s))" "$work/target.log" || { echo "FAIL: the subsystem appeared without its namespace"; fail=1; }

cat > "$work/boot.sh" <<'SCRIPT'
fio --name=teardown --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=16 \
    --time_based --runtime=40 --eta=never > /tmp/fio.log 2>&1
echo "fio done"
dmesg | grep -E "nvme" | grep -E "DNR|sct 0x|I/O Error" | sed 's/^/dmesg: /'
echo "script done"
SCRIPT
# Tear the share down once the host's I/O queue is connected and busy.
(
  for _ in $(seq 600); do grep -q "connected to $nqn" "$work/target.log" && break; sleep 0.2; done
  sleep 6
  c device unshare t0 > "$work/unshare.log" 2>&1
) &
teardown=$!
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --no-discover --no-disconnect \
     --connect-args '-l 5' --script "$work/boot.sh" > "$work/run.log" 2>&1; then
  echo "(the VM run reported a failure; checking its output)"
fi
wait $teardown
grep -q "script done" "$work/run.log" || { echo "FAIL: the guest script did not finish"; fail=1; }
if grep -E "^dmesg: .*(DNR|sc 0xb)" "$work/run.log"; then echo "FAIL: the host saw a DNR / Invalid Namespace error"; fail=1; fi
grep -q "subsystem $nqn removed" "$work/target.log" || { echo "FAIL: the subsystem was not removed"; fail=1; }
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] || { echo "FAIL: the daemon exited with $rc"; fail=1; }
if grep -E "\berror\b" "$work/target.log"; then echo "FAIL: the daemon logged errors"; fail=1; fi
if [ $fail -ne 0 ]; then
  echo "--- target log"; cat "$work/target.log"; echo "--- run"; cat "$work/run.log"; exit 1
fi
grep "^dmesg:" "$work/run.log" || true
echo "PASS"
