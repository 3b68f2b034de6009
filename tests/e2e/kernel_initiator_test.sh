#!/usr/bin/env bash
# End to end: the Linux kernel NVMe/TCP initiator, booted in a small VM by
# ../shared/tools/kernel-initiator, against the ioengine daemon's target on
# loopback. Two boots: plain (discover, connect, fio 4k randwrite with
# crc32c verify), then header + data digests with 2 I/O queues on 2 shards,
# 64 KiB and mixed-size writes (R2T / H2CData), a dd round trip compared by
# checksum, discard and flush. The daemon must then stop on SIGTERM with 0.
# Usage: kernel_initiator_test.sh IOENGINE_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when the kernel-initiator tool is not beside the project.
set -u
bin=$1
ki=$2
if [ ! -x "$ki" ]; then
  echo "SKIP: no kernel-initiator at $ki"
  exit 77
fi
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
if ! "$ki" prepare > "$work/prepare.log" 2>&1; then
  echo "kernel-initiator prepare failed:"; tail -20 "$work/prepare.log"; exit 1
fi
port=$((20000 + RANDOM % 20000))
nqn=nqn.2026-11.io.ioengine:e2e
"$bin" --cores 0-1 --dma-mb 64 --nvmf-listen 127.0.0.1:$port --nqn $nqn \
  --namespace 'malloc:///e2e?size_mb=64&blk_size=512' > "$work/target.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running (pid" "$work/target.log" && break; sleep 0.2; done
if ! grep -q "listening on 127.0.0.1:$port" "$work/target.log"; then
  echo "the target did not start:"; cat "$work/target.log"; exit 1
fi

fail=0
echo "== boot 1: discover, connect, fio 4k randwrite + crc32c verify"
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --fio-verify 8M > "$work/run1.log" 2>&1; then
  echo "FAIL: boot 1"; tail -40 "$work/run1.log"; fail=1
fi
grep -E "KI-RESULT|err=" "$work/run1.log" | head -3
grep -q "Discovery Log Number of Records 1" "$work/run1.log" || { echo "FAIL: discovery log"; fail=1; }

cat > "$work/script.sh" <<'SCRIPT'
set -e
for bs in 64k; do
  fio --name=big --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=$bs --iodepth=8 --size=16M \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never | grep -E "err="
done
fio --name=mixed --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bsrange=4k-128k --iodepth=16 \
    --size=16M --offset=32M --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never | grep -E "err="
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
dd if=/tmp/pattern of=$KI_DEV bs=1M count=4 seek=20 oflag=direct 2>/dev/null
dd if=$KI_DEV of=/tmp/back bs=1M count=4 skip=20 iflag=direct 2>/dev/null
cmp /tmp/pattern /tmp/back && echo "dd round trip OK"
blkdiscard -o 0 -l 1048576 $KI_DEV && echo "discard OK"
nvme flush $KI_DEV && echo "flush OK"
SCRIPT
echo "== boot 2: digests, 2 I/O queues, R2T writes, dd, discard, flush"
if ! timeout 600 "$ki" run --target 127.0.0.1:$port --nqn $nqn --connect-args '-g -G -i 2' \
     --script "$work/script.sh" > "$work/run2.log" 2>&1; then
  echo "FAIL: boot 2"; tail -40 "$work/run2.log"; fail=1
fi
grep -E "KI-RESULT|err=|OK$" "$work/run2.log" | head -8
for want in "dd round trip OK" "discard OK" "flush OK" "queues=3"; do
  grep -q "$want" "$work/run2.log" || { echo "FAIL: missing '$want'"; fail=1; }
done

kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: the daemon exited with $rc after SIGTERM"; fail=1; }
if grep -E "error|C2HTermReq" "$work/target.log"; then echo "FAIL: the target logged errors"; fail=1; fi
[ $fail -eq 0 ] && echo "kernel initiator e2e: PASS"
exit $fail
