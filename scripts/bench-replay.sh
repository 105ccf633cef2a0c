#!/usr/bin/env bash
# Replay with correlation over the generator's kernel-heavy mix: events/s per pipeline stage
# (criterion, benches/stages.rs: decode, merge, attribute, detect, link, one core each), then the
# end-to-end rate and peak RSS of `tapio replay`, median of RUNS runs (the machines are shared:
# read medians, not single runs); then `info` and `cat --kind … -o json | wc -l`, to hold
# against the decode stage's rate.
#   STAGES=0 scripts/bench-replay.sh         # without the per-stage benchmarks
#   scripts/bench-replay.sh                  # 10,000,000 events, 3 runs
#   EVENTS=2000000 RUNS=5 scripts/bench-replay.sh
#   EVENTS=30000000 RATE=2000 scripts/bench-replay.sh   # 4 hours of event time: memory stays flat
#   LIVE=1 EVENTS=144000000 RUNS=1 scripts/bench-replay.sh  # the live path (incidents as they open,
#                                   # change, close) over 2 hours at 20k events/s: RSS sampled as it goes
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-10000000}"
RUNS="${RUNS:-3}"
RATE="${RATE:-20000}"   # mean events/s of the generated capture: lower spans more event time
LIVE="${LIVE:-0}"
STAGES="${STAGES:-1}"
if [ "$STAGES" = 1 ]; then
  echo "per stage (events/s on one core, criterion median):"
  cargo bench --quiet --bench stages -- --noplot 2>/dev/null | python3 -c '
import re, sys
group = None
for line in sys.stdin:
    m = re.match(r"^(\w+)/\S+", line)
    if m:
        group = m.group(1)
    t = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)", line)
    if t and group:
        print(f"  {group:<10} {t.group(1)} {t.group(2)}")
'
fi
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" generate -o "$tmp/bench.tapio" --events "$EVENTS" --rate "$RATE" --incident 2>/dev/null
python3 - "$bin" "$tmp/bench.tapio" "$EVENTS" "$RUNS" "$LIVE" <<'PY'
import resource, statistics, subprocess, sys, threading, time
bin, capture, events, runs, live = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
args = [bin, "replay", capture, "-o", "json"] + (["--live-output"] if live else [])
rates, rss, samples = [], [], []
for _ in range(runs):
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # RSS sampled beside the run; the time is taken when the process ends, not at a sample.
    done = threading.Event()
    def sample():
        while not done.is_set():
            try:
                for line in open(f"/proc/{p.pid}/status"):
                    if line.startswith("VmRSS:"):
                        samples.append((time.monotonic() - t0, int(line.split()[1])))
            except OSError:
                pass
            done.wait(0.25)
    sampler = threading.Thread(target=sample)
    sampler.start()
    p.wait()
    dt = time.monotonic() - t0
    done.set()
    sampler.join()
    if p.returncode != 0:
        sys.exit(f"replay failed ({p.returncode})")
    rates.append(events / dt)
    rss.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, the max over children so far
print(f"events            {events}{' (live output: incidents as they open, change and close)' if live else ''}")
print(f"replay events/s   {statistics.median(rates) / 1e6:.2f} M (median of {runs}; runs: {', '.join(f'{r / 1e6:.2f}' for r in rates)})")
print(f"peak RSS          {max(rss) / 1024:.0f} MiB")
if samples:
    last = samples[-1][0]
    quarters = [max((k for t, k in samples if q * last / 4 <= t <= (q + 1) * last / 4), default=0) for q in range(4)]
    print(f"RSS by quarter    {', '.join(f'{k / 1024:.0f}' for k in quarters)} MiB (the last run: flat means no growth)")
PY
python3 - "$bin" "$tmp/bench.tapio" "$EVENTS" "$RUNS" <<'PY'
import os, statistics, subprocess, sys, time
bin, capture, events, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
size = os.path.getsize(capture)
def median(cmd, shell=False):
    times = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.monotonic() - t)
    return statistics.median(times)
for name, cmd, shell in [
    ("info", [bin, "info", capture], False),
    ("cat --kind exec json", f"{bin} cat {capture} --kind exec -o json | wc -l", True),
]:
    t = median(cmd, shell)
    print(f"{name:<22} {t:.2f} s: {events / t / 1e6:.1f} M events/s, {size / t / 1e9:.2f} GB/s of capture")
PY
