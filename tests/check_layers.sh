#!/usr/bin/env bash
# The layer rule of DESIGN.md: a layer includes only the layers below it.
# Floors, bottom to top: runtime, actors, storage, {nvme, vhost}, rpc, (tools).
# Folders that share a floor (the front-ends nvme/ and vhost/) stand side by
# side: neither includes the other, and nothing below them includes either.
set -u
root=${1:-.}
floors=(runtime actors storage "nvme vhost" rpc tools)
status=0
for i in "${!floors[@]}"; do
  for layer in ${floors[$i]}; do
    [ -d "$root/$layer" ] || continue
    # Forbidden: every folder on a higher floor, and the neighbours on this one.
    forbidden=()
    for j in "${!floors[@]}"; do
      for other in ${floors[$j]}; do
        if ((j > i)) || { ((j == i)) && [ "$other" != "$layer" ]; }; then forbidden+=("$other"); fi
      done
    done
    for above in "${forbidden[@]}"; do
      hits=$(grep -rnE "#include +\"$above/" "$root/$layer" --include='*.hh' --include='*.cc' --include='*.h' 2>/dev/null)
      if [ -n "$hits" ]; then
        echo "layer rule broken: $layer/ includes $above/ (above it or beside it):"
        echo "$hits"
        status=1
      fi
    done
  done
done
if [ $status -eq 0 ]; then
  order=$(printf '%s\n' "${floors[@]}" | tr ' ' '|' | paste -sd' ' | sed 's/ / < /g')
  echo "layer rule holds: $order"
fi
exit $status
