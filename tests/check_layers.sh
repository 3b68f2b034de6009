#!/usr/bin/env bash
# The layer rule of DESIGN.md: a layer includes only the layers below it.
# Order, bottom to top: runtime, actors, storage, nvme, rpc, (tools).
set -u
root=${1:-.}
layers=(runtime actors storage nvme rpc tools)
status=0
for i in "${!layers[@]}"; do
  layer=${layers[$i]}
  [ -d "$root/$layer" ] || continue
  for j in "${!layers[@]}"; do
    ((j > i)) || continue
    above=${layers[$j]}
    hits=$(grep -rnE "#include +\"$above/" "$root/$layer" --include='*.hh' --include='*.cc' --include='*.h' 2>/dev/null)
    if [ -n "$hits" ]; then
      echo "layer rule broken: $layer/ includes $above/ (above it):"
      echo "$hits"
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "layer rule holds: ${layers[*]}"
exit $status
