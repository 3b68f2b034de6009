#!/usr/bin/env bash
# End to end: the Linux virtio-blk driver, in a VM booted by
# ../shared/tools/kernel-initiator with a vhost-user-blk-pci disk, against
# the ioengine daemon's vhost-user-blk export (--vhost-blk). Boots:
#   1-3. a file device (uring://, O_DIRECT) exported with 1, 2 (without
#        EVENT_IDX) and 4 queues (of 256 descriptors; 4 vCPUs: Linux uses
#        min(queues, CPUs) queues): the
#        queue count in /sys/block/vda/mq; fio with crc32c verify (4 KiB
#        random writes, 128 KiB sequential writes, randrw 70/30 with 2
#        jobs); blkdiscard and blkdiscard -z read back as zeros; mkfs.ext4
#        and a clean e2fsck.
#   4.   a malloc device, 1 queue, fio verify, then the guest idles: the
#        engine's CPU use must stay near 0 % (adaptive polling sleeps).
#   5.   the engine killed (-9) and restarted during fio (QEMU's chardev
#        reconnect=1, INFLIGHT_SHMFD): fio finishes with 0 verify errors.
#   6.   the same guest script against qemu-storage-daemon's
#        vhost-user-blk export: a check of the test itself.
# The daemon must stop on SIGTERM with 0, remove its socket and have
# logged no error and no ring fault.
# Usage: vhost_user_blk_test.sh IOENGINE_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when kernel-initiator is not beside the project.
set -u
bin=$1
ki=$2
. "$(dirname "$0")/lib.sh"
e2e_need_ki "$ki"
qsd=$(command -v qemu-storage-daemon || true)
qsd_pid=
e2e_cleanup_more() { [ -n "$qsd_pid" ] && kill -9 "$qsd_pid" 2>/dev/null; }
e2e_work /var/tmp
e2e_prepare_ki "$ki"

# Under a loaded TCG host the guest's IO-APIC timer check can fail and
# panic the kernel (more often with 4 vCPUs): skip it, as VMs usually do.
export KI_APPEND="${KI_APPEND:-} no_timer_check"
sock=$work/vb.sock
img=$work/disk.img
truncate -s 32M "$img"
fail=0
t0=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - t0 )) s)"; }
check() {  # check LOG WANTED...: every WANTED line is in LOG
  local log=$1; shift
  for want in "$@"; do
    grep -qF -- "$want" "$log" || { echo "FAIL: '$want' missing from $(basename "$log")"; fail=1; }
  done
}
start_engine() {  # start_engine DEVICE QUEUES LOG
  "$bin" --cores 0-1 --dma-mb 64 --data-dir "$work/data" --default-pool-mb 0 --rpc "unix:$work/rpc.sock" \
    --metrics off --nvmf-listen 127.0.0.1:0 --vhost-blk "vb=$sock,device=$1,queues=$2" >> "$3" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "running (pid $pid)" "$3" && break; sleep 0.1; done
  grep -q "running (pid $pid)" "$3" || { echo "FAIL: the engine did not start"; tail -20 "$3"; fail=1; }
}
stop_engine() {  # stop_engine LOG: SIGTERM, exit 0, socket removed
  kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=
  [ $rc -eq 0 ] || { echo "FAIL: the engine exited with $rc after SIGTERM"; fail=1; }
  [ -e "$sock" ] && { echo "FAIL: $sock left behind"; fail=1; }
  if grep -E " error |ring fault|not started" "$1"; then echo "FAIL: the engine logged errors"; fail=1; fi
}
bins=(--bin "$(command -v blkdiscard || echo /usr/sbin/blkdiscard)" --bin "$(command -v mkfs.ext4 || echo /usr/sbin/mkfs.ext4)"
      --bin "$(command -v e2fsck || echo /usr/sbin/e2fsck)")

cat > "$work/guest.sh" <<'SCRIPT'
set -e
d=$KI_DEV
echo "mq queues: $(ls /sys/block/${d#/dev/}/mq | wc -l)"
common="--filename=$d --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never --group_reporting"
fio --name=rand4k $common --rw=randwrite --bs=4k --iodepth=32 --size=8M | grep -q "err= 0" && echo "4k randwrite verify OK"
fio --name=seq128k $common --rw=write --bs=128k --iodepth=16 --size=8M --offset=8M | grep -q "err= 0" && echo "128k write verify OK"
fio --name=mixed $common --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --numjobs=2 --size=4M --offset=16M \
    --offset_increment=4M --verify_backlog=64 | grep -q "err= 0" && echo "randrw 2 jobs verify OK"
dd if=/dev/urandom of=$d bs=1M count=2 seek=28 oflag=direct 2>/dev/null
/ki/bin/blkdiscard -o $((28 << 20)) -l $((1 << 20)) $d
/ki/bin/blkdiscard -z -o $((29 << 20)) -l $((1 << 20)) $d
n=$(dd if=$d bs=1M count=2 skip=28 iflag=direct 2>/dev/null | tr -d '\000' | wc -c)
[ "$n" -eq 0 ] && echo "discard zeros OK"
/ki/bin/mkfs.ext4 -q -F $d && /ki/bin/e2fsck -fn $d > /tmp/fsck.log 2>&1 && echo "mkfs fsck OK"
SCRIPT
guest_checks=("4k randwrite verify OK" "128k write verify OK" "randrw 2 jobs verify OK" "discard zeros OK" "mkfs fsck OK")

n=0
for q in 1 2 4; do
  n=$((n + 1))
  echo "== boot $n: file device, $q queue(s)"
  log=$work/engine$n.log
  start_engine "uring://$img" $q "$log"
  smp=2; [ $q -gt 2 ] && smp=4
  # Ring variants: 2 queues without EVENT_IDX (the NO_INTERRUPT / NO_NOTIFY
  # flags instead), 4 queues of 256 descriptors.
  opts=; [ $q -eq 2 ] && opts=,event_idx=off; [ $q -eq 4 ] && opts=,queue-size=256
  if ! KI_SMP=$smp timeout 900 "$ki" run --vhost-user-blk "$sock,num-queues=$q$opts" --script "$work/guest.sh" "${bins[@]}" \
       > "$work/run$n.log" 2>&1; then
    echo "FAIL: boot $n"; tail -30 "$work/run$n.log"; fail=1
  fi
  grep -E "mq queues|OK$|negotiated" "$work/run$n.log" | head -10; stamp
  check "$work/run$n.log" "mq queues: $q" "${guest_checks[@]}"
  [ $q -eq 2 ] && check "$work/run$n.log" "event_idx=off"
  check "$log" "front-end connected" "front-end disconnected; listening again"
  stop_engine "$log"
done

n=$((n + 1))
echo "== boot $n: malloc device, fio verify, then an idle guest: the engine sleeps"
cat > "$work/idle.sh" <<'SCRIPT'
fio --name=v --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never | grep -E "err="
echo "idle start"
sleep 10
echo "idle end"
SCRIPT
log=$work/engine$n.log
start_engine "malloc:///m0?size_mb=32" 1 "$log"
timeout 600 "$ki" run --vhost-user-blk "$sock" --script "$work/idle.sh" > "$work/run$n.log" 2>&1 &
vm=$!
for _ in $(seq 900); do grep -q "idle start" "$work/run$n.log" && break; sleep 0.2; done
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
a=$(ticks); sleep 4; b=$(ticks)
cpu=$(( (b - a) * 100 / ($(getconf CLK_TCK) * 4) ))
echo "   engine CPU with a connected idle guest: ${cpu}%"
[ "$cpu" -le 5 ] || { echo "FAIL: the engine used ${cpu}% CPU with an idle guest (adaptive polling should sleep)"; fail=1; }
wait $vm || { echo "FAIL: boot $n"; tail -30 "$work/run$n.log"; fail=1; }
grep -E "err=" "$work/run$n.log" | head -2; stamp
check "$work/run$n.log" "err= 0" "idle end"
stop_engine "$log"

n=$((n + 1))
echo "== boot $n: the engine killed -9 and restarted during fio (reconnect, inflight resubmission)"
cat > "$work/reconnect.sh" <<'SCRIPT'
echo "fio started"
# Four rounds of write + verify (each a few seconds): the kill lands in one.
ok=0
for i in 1 2 3 4; do
  fio --name=long$i --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --size=24M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never > /tmp/fio$i.log 2>&1 || echo "fio $i failed"
  grep -q "err= 0" /tmp/fio$i.log && ok=$((ok + 1))
  grep -E "verify|err=" /tmp/fio$i.log | head -3
done
echo "fio rounds ok: $ok"
dmesg | grep -c "I/O error" | sed 's/^/guest I\/O errors: /'
SCRIPT
log=$work/engine$n.log
start_engine "uring://$img" 2 "$log"
timeout 900 "$ki" run --vhost-user-blk "$sock,num-queues=2" --vhost-reconnect --script "$work/reconnect.sh" \
  > "$work/run$n.log" 2>&1 &
vm=$!
for _ in $(seq 900); do grep -q "fio started" "$work/run$n.log" && break; sleep 0.2; done
sleep 3  # I/O in flight
cp "$work/run$n.log" "$work/run$n.log.at-kill"
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
echo "   engine killed"
sleep 2
echo "--- restart" >> "$log"
start_engine "uring://$img" 2 "$log"
wait $vm || { echo "FAIL: boot $n"; tail -30 "$work/run$n.log"; fail=1; }
grep -E "fio rounds|guest I/O|failed" "$work/run$n.log" | head -6; stamp
check "$work/run$n.log" "fio rounds ok: 4" "guest I/O errors: 0"
# The kill landed while fio ran (the VM was still in its rounds), and QEMU
# came back to the restarted engine.
sed -n '/^--- restart/,$p' "$log" > "$work/restarted.log"
check "$work/restarted.log" "stale socket" "front-end connected"
grep -q "fio rounds ok" "$work/run$n.log.at-kill" 2>/dev/null && { echo "FAIL: fio had finished before the kill"; fail=1; }
grep -q "resubmitting" "$log" && grep "resubmitting" "$log" | head -2
stop_engine "$log"

n=$((n + 1))
if [ -z "$qsd" ]; then
  echo "== boot $n: no qemu-storage-daemon (package qemu-system-common): reference run skipped"
else
  echo "== boot $n: the same guest script against qemu-storage-daemon (reference back-end)"
  truncate -s 32M "$work/qsd.img"
  "$qsd" --blockdev "driver=file,node-name=d0,filename=$work/qsd.img,discard=unmap" \
    --export "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$work/qsd.sock,writable=on,num-queues=2" \
    > "$work/qsd.log" 2>&1 &
  qsd_pid=$!
  for _ in $(seq 50); do [ -S "$work/qsd.sock" ] && break; sleep 0.1; done
  if ! timeout 900 "$ki" run --vhost-user-blk "$work/qsd.sock,num-queues=2" --script "$work/guest.sh" "${bins[@]}" \
       > "$work/run$n.log" 2>&1; then
    echo "FAIL: boot $n (qemu-storage-daemon)"; tail -30 "$work/run$n.log"; fail=1
  fi
  grep -E "mq queues|OK$" "$work/run$n.log" | head -8; stamp
  check "$work/run$n.log" "mq queues: 2" "${guest_checks[@]}"
  kill "$qsd_pid"; wait "$qsd_pid" 2>/dev/null; qsd_pid=
fi

[ $fail -eq 0 ] && echo "vhost-user-blk e2e: PASS" || { for f in "$work"/engine*.log; do echo "--- $f"; tail -15 "$f"; done; }
exit $fail
