#!/usr/bin/env bash
# Builds each incident fixture's capture from its readable inputs, then shows its verdict.
#   scripts/make-incidents.py && scripts/build-incidents.sh            # rebuild the captures
#   scripts/build-incidents.sh --update-expect                         # and rewrite expected.json
# Review every changed verdict (git diff fixtures/incidents) before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
cargo build --quiet
tapio="$CARGO_TARGET_DIR/debug/tapio"
# Reproducible captures: the same inputs give the same bytes.
export SOURCE_DATE_EPOCH=1773482400
export TAPIO_VALUE_KEY=tapio-fixtures   # ConfigMap value hashes: the same key each build

for dir in fixtures/incidents/*/; do
  dir="${dir%/}"
  # Fault-lab recordings (scripts/fault-lab/) are frozen as they were recorded.
  [ -f "$dir/label.json" ] && continue
  inputs=()
  for f in pods.json cluster.json events.json traces.json dmesg.txt kernel-events.jsonl; do
    [ -f "$dir/$f" ] && inputs+=("$dir/$f")
  done
  if [ -d "$dir/logs" ]; then              # container logs in the kubelet's layout
    while IFS= read -r f; do inputs+=("$f"); done < <(find "$dir/logs" -type f | sort)
  fi
  for f in "$dir"/kubectl-logs*.txt; do     # `kubectl logs` output, attributed by import.args
    [ -f "$f" ] && inputs+=("$f")
  done
  if [ -f "$dir/sources" ]; then          # controls built from ../shared/data
    while read -r src; do inputs+=("$src"); done < "$dir/sources"
  fi
  if [ -f "$dir/generate.args" ]; then    # controls made by the generator
    read -r -a args < "$dir/generate.args"
    "$tapio" generate -o "$dir/capture.tapio" "${args[@]}" 2>/dev/null
    continue
  fi
  [ ${#inputs[@]} -gt 0 ] || continue
  args=()
  [ -f "$dir/import.args" ] && read -r -a args < "$dir/import.args"
  "$tapio" import -q -o "$dir/capture.tapio" "${args[@]}" "${inputs[@]}"
done
if [ "${1:-}" = "--update-expect" ]; then
  "$tapio" replay fixtures/incidents --update-expect
fi
"$tapio" replay fixtures/incidents --expect || true
