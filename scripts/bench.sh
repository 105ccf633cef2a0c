#!/usr/bin/env bash
# Prints the capture figures: bytes per event, and write (encode) and read (decode) events/s on
# one core, for the generator's kernel-heavy mix. Medians of criterion's samples; run it on a quiet
# machine and more than once (the machines are shared).
#   scripts/bench.sh            # 1M-event criterion bench + a 10M-event capture via the CLI
#   EVENTS=2000000 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-10000000}"

cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== capture size and CLI timings ($EVENTS events, generator's kernel-heavy mix)"
start=$(date +%s.%N)
"$bin" generate -o "$tmp/bench.tapio" --events "$EVENTS" --incident 2>/dev/null
mid=$(date +%s.%N)
"$bin" info -q -o json "$tmp/bench.tapio" > "$tmp/info.json"
end=$(date +%s.%N)
python3 - "$tmp/info.json" "$start" "$mid" "$end" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
start, mid, end = map(float, sys.argv[2:5])
n = info["events"]
print(f"events          {n}")
print(f"bytes           {info['bytes']}")
print(f"bytes/event     {info['bytes'] / n:.2f}")
print(f"generate+write  {n / (mid - start) / 1e6:.2f} M events/s (whole command, generator included)")
print(f"info (read all) {n / (end - mid) / 1e6:.2f} M events/s (whole command, counters included)")
PY

echo
echo "== criterion: capture_encode / capture_decode (1M events, one core)"
cargo bench --bench capture -- --noplot 2>&1 | grep -E "bytes/event|^capture_|time:|thrpt:" || true
