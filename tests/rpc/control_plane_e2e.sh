#!/usr/bin/env bash
# End to end through the control plane: the daemon on its defaults (its own
# data directory and free ports so that it runs beside anything else),
# ioengine-ctl creates a replica in the default pool and shares it with one
# allowed host, the Linux kernel initiator (../shared/tools/kernel-initiator,
# in a VM) connects with that host NQN and runs fio with verify, and
# /metrics then shows the replica's writes and reads. The daemon must stop on
# SIGTERM with 0.
# Usage: control_plane_e2e.sh IOENGINE_BIN IOENGINE_CTL_BIN KERNEL_INITIATOR
# Exit 77 (skipped) when the kernel-initiator tool is not beside the project.
set -u
bin=$1
ctl=$2
ki=$3
if [ ! -x "$ki" ]; then
  echo "SKIP: no kernel-initiator at $ki"
  exit 77
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if ! "$ki" prepare > "$work/prepare.log" 2>&1; then
  echo "kernel-initiator prepare failed:"; tail -20 "$work/prepare.log"; exit 1
fi
port=$((20000 + RANDOM % 20000))
mport=$((port + 1))
host=nqn.2014-08.org.nvmexpress:uuid:0e2e0000-0000-4000-8000-0000000000c5
"$bin" --data-dir "$work/data" --rpc "unix:$work/rpc.sock" --nvmf-listen 127.0.0.1:$port \
  --metrics 127.0.0.1:$mport --default-pool-mb 256 > "$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running (pid" "$work/daemon.log" && break; sleep 0.1; done
grep -q "running (pid" "$work/daemon.log" || { echo "daemon did not start:"; cat "$work/daemon.log"; exit 1; }
c() { "$ctl" --rpc "unix:$work/rpc.sock" "$@"; }
c replica create --pool default --size 64MiB r1 || exit 1
c replica share r1 --allow-host $host || exit 1
if ! timeout 900 "$ki" run --target 127.0.0.1:$port --nqn nqn.2019-05.io.ioengine:r1 --hostnqn $host \
     --fio-verify 16M > "$work/run.log" 2>&1; then
  echo "kernel initiator run failed:"; tail -40 "$work/run.log"; tail -20 "$work/daemon.log"; exit 1
fi
c stats replica r1
metrics=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$mport/metrics').read().decode())")
writes=$(echo "$metrics" | sed -n 's/^ioengine_io_ops_total{kind="replica",name="r1",op="write"} //p')
reads=$(echo "$metrics" | sed -n 's/^ioengine_io_ops_total{kind="replica",name="r1",op="read"} //p')
wbytes=$(echo "$metrics" | sed -n 's/^ioengine_io_bytes_total{kind="replica",name="r1",op="write"} //p')
echo "metrics: r1 writes=$writes reads=$reads write_bytes=$wbytes"
[ "${writes:-0}" -gt 0 ] && [ "${reads:-0}" -gt 0 ] && [ "${wbytes:-0}" -ge $((16 << 20)) ] || {
  echo "FAIL: /metrics does not show the initiator's I/O"; echo "$metrics" | grep r1; exit 1; }
kill -TERM $pid
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || { echo "FAIL: daemon exited $rc"; tail -20 "$work/daemon.log"; exit 1; }
echo PASS
