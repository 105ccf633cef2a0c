#!/usr/bin/env bash
# Replay with correlation over the generator's kernel-heavy mix: events/s and peak RSS, median of
# RUNS runs (the machines are shared: read medians, not single runs).
#   scripts/bench-replay.sh                  # 10,000,000 events, 3 runs
#   EVENTS=2000000 RUNS=5 scripts/bench-replay.sh
#   EVENTS=30000000 RATE=2000 scripts/bench-replay.sh   # 4 hours of event time: memory stays flat
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-10000000}"
RUNS="${RUNS:-3}"
RATE="${RATE:-20000}"   # mean events/s of the generated capture: lower spans more event time
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" generate -o "$tmp/bench.tapio" --events "$EVENTS" --rate "$RATE" --incident 2>/dev/null
python3 - "$bin" "$tmp/bench.tapio" "$EVENTS" "$RUNS" <<'PY'
import resource, statistics, subprocess, sys, time
bin, capture, events, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rates, rss = [], []
for _ in range(runs):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    out = subprocess.run([bin, "replay", capture, "-o", "json"], capture_output=True, check=True)
    dt = time.monotonic() - t0
    rates.append(events / dt)
    rss.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, the max over children so far
print(f"events            {events}")
print(f"replay events/s   {statistics.median(rates) / 1e6:.2f} M (median of {runs}; runs: {', '.join(f'{r / 1e6:.2f}' for r in rates)})")
print(f"peak RSS          {max(rss) / 1024:.0f} MiB")
PY
