#!/usr/bin/env bash
# Reads through the block index of a large generated capture: the index's share of the file, and
# the time of `cat --trace-id`, `cat --since T --until T+1m` and `correlate --trace-id` (median of
# RUNS runs, warm page cache), against a whole read (`--no-index`); then `tapio index --verdict`
# once, and `correlate --trace-id` from the kept verdict (checked to answer what the read does).
#   scripts/bench-index.sh                              # about 1 GB: 90 M events
#   EVENTS=930000000 scripts/bench-index.sh             # about 10 GB: a day of a busy node
# RATE (events/s of event time, default 10,500) spreads the events: 930 M at 10,500/s is a day.
# WHOLE=0 skips the whole read; WHOLE_RUNS sets its runs (default RUNS). CAPTURE=FILE keeps the
# generated capture there and, when it exists, measures it instead of generating one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-90000000}"
RATE="${RATE:-10500}"
RUNS="${RUNS:-3}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
if [ -n "${CAPTURE:-}" ]; then
    cap="$CAPTURE"
else
    tmp="${TMPDIR:-/tmp}/tapio-bench-index"
    mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    cap="$tmp/big.tapio"
fi
if [ ! -e "$cap" ]; then
    t0=$(date +%s.%N)
    "$bin" generate -o "$cap" --events "$EVENTS" --rate "$RATE" --incident 2>/dev/null
    echo "generated $EVENTS events in $(python3 -c "import time;print(f'{time.time()-$t0:.0f}')") s"
fi
python3 - "$bin" "$cap" "$RUNS" <<'PY'
import json, os, statistics, struct, subprocess, sys, time
bin, cap, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(cap)
with open(cap, "rb") as f:
    f.seek(size - 24)
    footer = f.read(24)
assert footer[:4] == b"TFTR", "no footer: not a closed capture of format 2"
index_offset, trailer_offset = struct.unpack("<QQ", footer[4:20])
index_bytes = trailer_offset - index_offset
# Format 3: the index's filters, in the frame that ends where the index starts.
filter_bytes = 0
with open(cap, "rb") as f:
    start = max(0, index_offset - (1 << 30))
    f.seek(start)
    before = f.read(index_offset - start)
at = len(before)
while (at := before.rfind(b"TSET", 0, at)) >= 0:
    if at + 16 + struct.unpack("<Q", before[at + 4:at + 12])[0] == len(before):
        filter_bytes = len(before) - at
        break
del before
info = json.loads(subprocess.run([bin, "info", cap, "-o", "json"], capture_output=True, text=True, check=True).stdout)
def ns(t):  # RFC 3339 with ns → ns since the epoch
    import datetime
    d, frac = t.rstrip("Z").split(".")
    return int(datetime.datetime.fromisoformat(d).replace(tzinfo=datetime.timezone.utc).timestamp()) * 10**9 + int(frac.ljust(9, "0"))
def rfc(n):
    import datetime
    return datetime.datetime.fromtimestamp(n // 10**9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{n % 10**9:09d}Z"
first, last = ns(info["first_ts"]), ns(info["last_ts"])
incident = first + (last - first) * 6 // 10
# The request: one that failed just after the generated incident's OOM kill, which explains it.
ooms = subprocess.run([bin, "cat", cap, "--kind", "oom", "--since", rfc(incident - 600 * 10**9), "--until", rfc(incident + 600 * 10**9), "-o", "json"],
                      capture_output=True, text=True, check=True).stdout.splitlines()
if ooms:
    incident = ns(json.loads(ooms[0])["ts"])
spans = subprocess.run([bin, "cat", cap, "--kind", "span", "--since", rfc(incident), "--until", rfc(incident + 30 * 10**9), "-o", "json"],
                       capture_output=True, text=True, check=True).stdout.splitlines()
failed = next(json.loads(l)["data"]["trace_id"] for l in spans if '"status":"error"' in l)
def timed(args, runs=runs):
    times = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run([bin] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.monotonic() - t)
    return statistics.median(times)
kept = cap + ".verdict"
if os.path.exists(kept):
    os.remove(kept)
answer_json = subprocess.run([bin, "correlate", cap, "--trace-id", failed, "-o", "json"],
                             capture_output=True, text=True).stdout
answer = json.loads(answer_json or "{}")
print(f"request           {failed} (failed; its answer names {len(answer.get('incidents', []))} incident(s))")
print(f"capture           {size / 1e9:.2f} GB, {info['events']} events, {(last - first) / 3.6e12:.1f} h of event time")
print(f"index             {(index_bytes + filter_bytes) / 1e6:.1f} MB = {100 * (index_bytes + filter_bytes) / size:.2f} % of the capture "
      f"({index_bytes / 1e6:.1f} MB read by every question, {filter_bytes / 1e6:.1f} MB of filters read as needed)")
minute = ["--since", rfc(incident), "--until", rfc(incident + 60 * 10**9)]
for name, args in [
    ("cat --trace-id", ["cat", cap, "--trace-id", failed]),
    ("cat one minute", ["cat", cap] + minute),
    ("correlate --trace-id", ["correlate", cap, "--trace-id", failed]),
]:
    print(f"{name:<21} {timed(args):.2f} s (median of {runs})")
# A kept verdict: computed once by `tapio index --verdict`, then each question answers from it.
t = time.monotonic()
subprocess.run([bin, "index", cap, "--verdict"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(f"{'index --verdict':<21} {time.monotonic() - t:.1f} s (once; {os.path.getsize(kept) / 1e3:.0f} kB kept)")
print(f"{'correlate, kept':<21} {timed(['correlate', cap, '--trace-id', failed]):.2f} s (median of {runs})")
ask = lambda *more: subprocess.run([bin, "correlate", cap, "--trace-id", failed, "-o", "json", *more], capture_output=True, text=True).stdout
print(f"{'kept answer':<21} {'the same as read' if ask() == answer_json else 'DIFFERS from read'}")
os.remove(kept)
if os.environ.get("WHOLE", "1") == "1":
    whole = int(os.environ.get("WHOLE_RUNS", runs))
    print(f"{'correlate, whole read':<21} {timed(['correlate', cap, '--trace-id', failed, '--no-index'], whole):.2f} s (median of {whole})")
PY
