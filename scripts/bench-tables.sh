#!/usr/bin/env bash
# The tables over the generator's mix: `export` to Parquet (events/s, peak RSS) and `stats` against
# `replay` on the same capture (seconds, and their ratio), median of RUNS runs (the machines are
# shared: read medians, not single runs).
#   scripts/bench-tables.sh                     # 10,000,000 events, 3 runs
#   EVENTS=2000000 RUNS=5 scripts/bench-tables.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-10000000}"
RUNS="${RUNS:-3}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" generate -o "$tmp/bench.tapio" --events "$EVENTS" --incident 2>/dev/null
python3 - "$bin" "$tmp" "$EVENTS" "$RUNS" <<'PY'
import os, statistics, subprocess, sys, time
bin, tmp, events, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
capture = f"{tmp}/bench.tapio"

def measure(args):
    """Seconds and peak RSS (MiB) of one run."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate()
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{args[1]} failed ({p.returncode}): {err.decode()[-500:]}")
    return dt

def peak(args):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=True).stderr.decode().strip().splitlines()
    return int(out[-1]) / 1024

cases = {
    "export (all event tables, Parquet)": [bin, "export", capture, "-q", "-o", f"{tmp}/out/",
                                           "--table", "kernel,spans,logs,k8s_events,objects"],
    "export (with incidents, findings)": [bin, "export", capture, "-q", "-o", f"{tmp}/out/"],
    "stats": [bin, "stats", capture, "-q"],
    "replay": [bin, "replay", capture, "-o", "json"],
}
times = {}
for name, args in cases.items():
    ts = [measure(args) for _ in range(runs)]
    times[name] = statistics.median(ts)
    rss = peak(args)
    print(f"{name:38s} median {times[name]:6.2f} s  {events / times[name] / 1e6:5.2f} M events/s  peak RSS {rss:6.0f} MiB")
size = sum(os.path.getsize(f"{tmp}/out/{f}") for f in os.listdir(f"{tmp}/out"))
print(f"capture {os.path.getsize(capture) / 1e6:.0f} MB, its Parquet tables {size / 1e6:.0f} MB")
print(f"stats / replay: {times['stats'] / times['replay']:.2f}x")
PY
