#!/usr/bin/env bash
# End to end: the Linux kernel NVMe/TCP initiator, booted in a small VM by
# ../shared/tools/kernel-initiator, against the ioengine daemon's target on
# loopback. The subsystem has two namespaces (a malloc device and a uring
# file) and an allow-list of one host NQN. Boots:
#   1. discovery, connect; nvme id-ctrl / id-ns / list show our serial, model
#      and sizes; on both namespaces fio with crc32c verify (4 KiB random
#      write, 128 KiB sequential write, mixed randrw 70/30 at iodepth 32 with
#      2 jobs); blkdiscard and blkdiscard -z read back as zeros; a dd round
#      trip; nvme flush; a clean disconnect (the target logs it).
#   2. header and data digests, 2 I/O queues on 2 shards, 64 KiB and
#      4-128 KiB writes with verify (the R2T / H2CData path).
#   3. a host NQN not on the allow-list: Connect is refused.
#   4. the VM frozen (SIGSTOP) mid-I/O, then killed: the target expires the
#      controller (no Keep Alive within KATO) and tears it down ...
#   5. ... and serves a second connection: fio with verify passes.
# The daemon must then stop on SIGTERM with 0 and have logged no error.
# Usage: kernel_initiator_test.sh IOENGINE_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when the kernel-initiator tool is not beside the project.
set -u
bin=$1
ki=$2
. "$(dirname "$0")/lib.sh"
e2e_need_ki "$ki"
vm_sid=
e2e_cleanup_more() { [ -n "$vm_sid" ] && pkill -9 -s "$vm_sid" 2>/dev/null; }
e2e_work
e2e_prepare_ki "$ki"
port=$(e2e_port)
nqn=nqn.2026-11.io.ioengine:e2e
host=nqn.2014-08.org.nvmexpress:uuid:0e2e0000-0000-4000-8000-000000000001
truncate -s 64M "$work/ns2.img"
# Its own data dir, RPC socket and no metrics port: nothing shared with an
# engine that may already run on this machine.
"$bin" --cores 0-1 --dma-mb 64 --data-dir "$work/data" --default-pool-mb 0 --rpc "unix:$work/rpc.sock" \
  --metrics off --nvmf-listen 127.0.0.1:$port --nqn $nqn --allow-host $host \
  --namespace 'malloc:///e2e?size_mb=64&blk_size=512' --namespace "uring://$work/ns2.img" \
  > "$work/target.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running (pid" "$work/target.log" && break; sleep 0.2; done
if ! grep -q "listening on 127.0.0.1:$port" "$work/target.log"; then
  echo "the target did not start:"; cat "$work/target.log"; exit 1
fi

fail=0
check() {  # check LOG WANTED...: every WANTED line is in LOG
  local log=$1; shift
  for want in "$@"; do
    grep -qF -- "$want" "$log" || { echo "FAIL: '$want' missing from $(basename "$log")"; fail=1; }
  done
}
t0=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - t0 )) s)"; }

cat > "$work/boot1.sh" <<'SCRIPT'
set -e
nvme id-ctrl $KI_CTRL | grep -E "^(sn|mn|subnqn) "
# Both namespaces (KI_DEVS may list only the first to appear).
for _ in $(seq 50); do [ -b ${KI_CTRL}n2 ] && break; sleep 0.2; done
devs="${KI_CTRL}n1 ${KI_CTRL}n2"
for d in $devs; do nvme id-ns $d | grep -E "^(nsze|lbaf  0)"; done
nvme list | grep -c "ioengine" | sed 's/^/nvme list rows: /'
i=0
for d in $devs; do
  i=$((i + 1))
  common="--filename=$d --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never --group_reporting"
  fio --name=rand4k $common --rw=randwrite --bs=4k --iodepth=32 --size=8M | grep -q "err= 0" && echo "ns$i 4k randwrite verify OK"
  fio --name=seq128k $common --rw=write --bs=128k --iodepth=32 --size=16M --offset=16M | grep -q "err= 0" && echo "ns$i 128k write verify OK"
  fio --name=mixed $common --rw=randrw --rwmixread=70 --bs=4k --iodepth=32 --numjobs=2 --size=4M --offset=40M \
      --offset_increment=4M --verify_backlog=64 | grep -q "err= 0" && echo "ns$i randrw 70/30 verify OK"
  # Discard and write-zeroes read back as zeros.
  dd if=/dev/urandom of=$d bs=1M count=2 seek=60 oflag=direct 2>/dev/null
  # util-linux blkdiscard (--bin): busybox's has no -z (BLKZEROOUT).
  /ki/bin/blkdiscard -o $((60 << 20)) -l $((1 << 20)) $d
  /ki/bin/blkdiscard -z -o $((61 << 20)) -l $((1 << 20)) $d
  n=$(dd if=$d bs=1M count=2 skip=60 iflag=direct 2>/dev/null | tr -d '\000' | wc -c)
  [ "$n" -eq 0 ] && echo "ns$i discard zeros OK"
  dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
  dd if=/tmp/pattern of=$d bs=1M count=4 seek=50 oflag=direct 2>/dev/null
  dd if=$d of=/tmp/back bs=1M count=4 skip=50 iflag=direct 2>/dev/null
  cmp /tmp/pattern /tmp/back && echo "ns$i dd round trip OK"
  nvme flush $d && echo "ns$i flush OK"
done
SCRIPT
echo "== boot 1: discovery, identify, fio verify on malloc and uring namespaces, discard, dd, flush"
if ! timeout 900 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --script "$work/boot1.sh" \
     --bin "$(command -v blkdiscard || echo /usr/sbin/blkdiscard)" \
     > "$work/run1.log" 2>&1; then
  echo "FAIL: boot 1"; tail -40 "$work/run1.log"; fail=1
fi
grep -E "KI-RESULT|OK$|^(sn|mn|nsze)" "$work/run1.log" | head -30; stamp
check "$work/run1.log" "Discovery Log Number of Records 1" "ioengine0000" "nvme list rows: 2" \
  "nsze    : 0x20000" "nsze    : 0x4000"
for i in 1 2; do
  check "$work/run1.log" "ns$i 4k randwrite verify OK" "ns$i 128k write verify OK" "ns$i randrw 70/30 verify OK" \
    "ns$i discard zeros OK" "ns$i dd round trip OK" "ns$i flush OK"
done
grep -qE "controller [0-9]+ of host $host disconnected" "$work/target.log" || { echo "FAIL: no clean disconnect logged"; fail=1; }

cat > "$work/boot2.sh" <<'SCRIPT'
set -e
common="--filename=$KI_DEV --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never"
fio --name=big $common --rw=randwrite --bs=64k --iodepth=8 --size=16M | grep -q "err= 0" && echo "64k verify OK"
fio --name=mixed $common --rw=randwrite --bsrange=4k-128k --iodepth=16 --size=16M --offset=32M | grep -q "err= 0" \
  && echo "4k-128k verify OK"
SCRIPT
echo "== boot 2: header and data digests, 2 I/O queues, R2T writes"
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --connect-args '-g -G -i 2' \
     --script "$work/boot2.sh" > "$work/run2.log" 2>&1; then
  echo "FAIL: boot 2"; tail -40 "$work/run2.log"; fail=1
fi
grep -E "KI-RESULT|OK$" "$work/run2.log" | head -8; stamp
check "$work/run2.log" "64k verify OK" "4k-128k verify OK" "queues=3"

echo "== boot 3: a host NQN not on the allow-list is refused"
timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn nqn.2014-08.org.nvmexpress:uuid:not-allowed \
  --no-discover --connect-timeout 30 --cmd 'true' > "$work/run3.log" 2>&1
rc=$?
stamp
[ $rc -eq 1 ] || { echo "FAIL: boot 3 exited $rc, want 1 (connect failed)"; tail -20 "$work/run3.log"; fail=1; }
check "$work/target.log" "host nqn.2014-08.org.nvmexpress:uuid:not-allowed is not allowed on $nqn"

echo "== boot 4: the VM frozen mid-I/O, then killed"
cat > "$work/boot4.sh" <<'SCRIPT'
echo "fio started"
fio --name=long --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randrw --bs=4k --iodepth=16 --size=32M \
    --time_based --runtime=600 --eta=never > /dev/null 2>&1
SCRIPT
before=$(grep -c "connected to $nqn as controller" "$work/target.log")
setsid "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --no-discover --connect-args '-k 5' \
  --script "$work/boot4.sh" > "$work/run4.log" 2>&1 &
vm_sid=$!
for _ in $(seq 600); do grep -q "fio started" "$work/run4.log" && break; sleep 0.5; done
sleep 3  # I/O in flight
ctrl=$(grep "connected to $nqn as controller" "$work/target.log" | tail -1 | sed 's/.*as controller //')
if [ "$(grep -c "connected to $nqn as controller" "$work/target.log")" -le "$before" ] || \
   ! grep -q "fio started" "$work/run4.log"; then
  echo "FAIL: boot 4 did not connect and start I/O"; tail -30 "$work/run4.log"; fail=1
else
  pkill -STOP -s "$vm_sid" qemu-system 2>/dev/null || pkill -STOP -s "$vm_sid"
  expired=0
  for _ in $(seq 60); do
    grep -q "controller $ctrl of host $host: no Keep Alive" "$work/target.log" && { expired=1; break; }
    sleep 0.5
  done
  [ $expired -eq 1 ] && echo "controller $ctrl expired (no Keep Alive)" || { echo "FAIL: controller $ctrl did not expire"; fail=1; }
  check "$work/target.log" "controller $ctrl of host $host disconnected"
fi
pkill -9 -s "$vm_sid" 2>/dev/null
wait $vm_sid 2>/dev/null
vm_sid=
stamp

echo "== boot 5: a second connection is served"
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --hostnqn $host --no-discover --fio-verify 8M \
     > "$work/run5.log" 2>&1; then
  echo "FAIL: boot 5"; tail -40 "$work/run5.log"; fail=1
fi
grep -E "KI-RESULT|err=" "$work/run5.log" | head -3; stamp
check "$work/run5.log" "err= 0"

kill -TERM $pid
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || { echo "FAIL: the daemon exited with $rc after SIGTERM"; fail=1; }
if grep -E "error|C2HTermReq" "$work/target.log"; then echo "FAIL: the target logged errors"; fail=1; fi
[ $fail -eq 0 ] && echo "kernel initiator e2e: PASS" || { echo "--- target log"; tail -60 "$work/target.log"; }
exit $fail
