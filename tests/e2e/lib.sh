# What every kernel-initiator e2e script starts with, sourced by them:
#   e2e_need_ki KI        exit 77 (skipped) when the kernel-initiator tool is missing
#   e2e_work [DIR]        a work directory ($work, under DIR when given); on exit the
#                         daemon $pid is killed, e2e_cleanup_more runs (define it to
#                         stop more processes) and $work is removed
#   e2e_prepare_ki KI     builds the tool's cached guest, or fails with its log
#   e2e_port              a random port for the daemon's NVMe/TCP listener
e2e_need_ki() {
  if [ ! -x "$1" ]; then
    echo "SKIP: no kernel-initiator at $1"
    exit 77
  fi
}

e2e_cleanup_more() { :; }

e2e_work() {
  if [ -n "${1:-}" ]; then work=$(mktemp -d "$1/ioe-e2e.XXXXXX"); else work=$(mktemp -d); fi
  pid=
  trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; e2e_cleanup_more; rm -rf "$work"' EXIT
}

e2e_prepare_ki() {
  if ! "$1" prepare > "$work/prepare.log" 2>&1; then
    echo "kernel-initiator prepare failed:"; tail -20 "$work/prepare.log"; exit 1
  fi
}

e2e_port() { echo $((20000 + RANDOM % 20000)); }
