#!/usr/bin/env bash
# The cluster transport against a local nats-server -js (Debian's nats-server): medians of RUNS
# runs of
#   1. publish: the events/s one publisher (`tapio publish` of a generated capture) pushes into
#      the stream with every batch acknowledged, and the count read back from the stream (loss);
#   2. consume: three publishers at once (three generated "clusters" of nodes), then the events/s
#      of the consumer reading all of it (`tapio replay nats://`: dedupe, clock check, reorder
#      window, the whole pipeline), and of `replay --follow` until its /metrics count them all;
#   3. latency (root only: real OOM kills in a memory cgroup): from the kernel's OOM kill on the
#      "node" (`tapio record --publish`) to the OPEN line of `replay --follow`, median and p99,
#      with the default --max-lateness 5s and with 1s.
#   scripts/bench-cluster.sh
#   EVENTS=2000000 RUNS=3 OOMS=20 scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
EVENTS="${EVENTS:-2000000}"
RUNS="${RUNS:-3}"
OOMS="${OOMS:-20}"
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install nats-server)" >&2; exit 2; }
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'pkill -f "nats-server -js -a 127.0.0.1 -p $port" 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$tmp/store" >/dev/null 2>&1 &
sleep 1
url="nats://127.0.0.1:$port"
for p in a b c; do
  "$bin" generate --events "$EVENTS" --nodes 3 --node-prefix "$p" --seed "$(printf %d "'$p")" --incident -o "$tmp/$p.tapio" >/dev/null 2>&1
done
python3 - "$bin" "$tmp" "$url" "$EVENTS" "$RUNS" "$OOMS" <<'PY'
import json, os, re, signal, statistics, subprocess, sys, time, urllib.request
bin, tmp, url, events, runs, ooms = sys.argv[1:]
events, runs, ooms = int(events), int(runs), int(ooms)

def run(args, **kw):
    return subprocess.run([bin] + args, capture_output=True, text=True, **kw)

def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

if os.environ.get("ONLY_LATENCY"):
    runs = 0
# 1. One publisher.
rates, counts = [], []
for i in range(runs):
    cluster = f"pub{i}"
    t = time.monotonic()
    r = run(["publish", f"{tmp}/a.tapio", url, "--cluster", cluster, "--timeout", "120s"])
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(r.stderr)
    n = int(re.search(r"published (\d+) events", r.stderr).group(1))
    rates.append(n / dt)
    p = run(["pull", url, "--cluster", cluster, "-o", f"{tmp}/pulled.tapio"])
    counts.append(int(re.search(r"pulled (\d+) events", p.stderr).group(1)))
if runs: print(f"publish: {statistics.median(rates)/1e6:.2f} M events/s (median of {runs}; "
      f"{events} events each, all acknowledged; read back {counts[0]} of {events}: "
      f"{events - counts[0]} lost)")

# 2. Three publishers at once, one consumer.
rates, follow_rates = [], []
for i in range(runs):
    cluster = f"three{i}"
    t = time.monotonic()
    ps = [subprocess.Popen([bin, "publish", f"{tmp}/{p}.tapio", url, "--cluster", cluster, "--timeout", "300s"],
                           stderr=subprocess.PIPE, text=True) for p in "abc"]
    for p in ps:
        if p.wait() != 0:
            sys.exit(p.stderr.read())
    pub_dt = time.monotonic() - t
    t = time.monotonic()
    r = run(["replay", url, "--cluster", cluster, "-o", "json"])
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(r.stderr)
    rates.append(3 * events / dt)
    port = free_port()
    t = time.monotonic()
    f = subprocess.Popen([bin, "replay", "--follow", url, "--cluster", cluster, "--consumer", f"bench{i}",
                          "--serve", f"127.0.0.1:{port}", "-o", "json"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = 0
    while seen < 3 * events and time.monotonic() - t < 600:
        time.sleep(0.2)
        try:
            m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            seen = sum(int(l.rsplit(" ", 1)[1]) for l in m.splitlines() if l.startswith("tapio_events_total{"))
        except Exception:
            pass
    follow_rates.append(seen / (time.monotonic() - t))
    f.send_signal(signal.SIGTERM); f.wait()
if runs: print(f"consume, 3 publishers at once ({3*events} events, published in {pub_dt:.1f} s): "
      f"replay of the stream {statistics.median(rates)/1e6:.2f} M events/s, "
      f"replay --follow {statistics.median(follow_rates)/1e6:.2f} M events/s (medians of {runs})")

# 3. Latency from an OOM kill to the OPEN line (root).
if os.geteuid() != 0:
    print("latency: skipped (needs root: real OOM kills)")
    sys.exit(0)
v1 = "/sys/fs/cgroup/memory"
if not os.path.exists(f"{v1}/memory.limit_in_bytes"):
    print("latency: skipped (needs cgroup v1 memory here)")
    sys.exit(0)
def one_oom(lateness, i):
    """A fresh node recorder and consumer (a cluster of their own, so that OOM kills close
    together are not one incident), one OOM kill, the seconds until the consumer names it."""
    cluster = f"lat-{lateness}-{i}"
    err = open(f"{tmp}/rec.err", "w+")
    rec = subprocess.Popen([bin, "record", "--no-kube", "--no-logs", "--kind", "oom,exit,signal", "--verdicts", "none",
                            "--node", "bench-node", "--publish", url, "--cluster", cluster, "--spool-dir", f"{tmp}/spool-{i}"],
                           stderr=err, stdout=subprocess.DEVNULL)
    while "recording" not in open(f"{tmp}/rec.err").read():
        if rec.poll() is not None:
            sys.exit("tapio record failed:\n" + open(f"{tmp}/rec.err").read())
        time.sleep(0.05)
    con = subprocess.Popen([bin, "replay", "--follow", url, "--cluster", cluster, "--consumer", cluster,
                            "--max-lateness", lateness, "-o", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fd = con.stdout.fileno()
    os.set_blocking(fd, False)
    time.sleep(1)
    name = f"tapio-bench-{os.getpid()}-{cluster}"
    cg = f"{v1}/{name}"
    os.mkdir(cg)
    open(f"{cg}/memory.limit_in_bytes", "w").write(str(32 << 20))
    subprocess.run(["sh", "-c", f"echo $$ > {cg}/cgroup.procs && exec python3 -c \"x = b'x' * (256 << 20)\""],
                   stderr=subprocess.DEVNULL)
    t, buf, got, start = time.time(), "", None, None
    while got is None and time.time() - t < 60:
        time.sleep(0.01)
        try:
            buf += os.read(fd, 1 << 20).decode()
        except BlockingIOError:
            pass
        lines = buf.split("\n")
        buf = lines.pop()
        for l in lines:
            c = json.loads(l)
            if c["state"] == "open" and name in json.dumps(c):
                got, start = time.time(), c["incident"]["start"]
                break
    for p in (rec, con):
        p.send_signal(signal.SIGTERM)
        p.wait()
    try:
        os.rmdir(cg)
    except OSError:
        pass
    if got is None:
        print(f"latency: OOM {cluster} never opened an incident", file=sys.stderr)
        return None
    from datetime import datetime
    return got - datetime.fromisoformat(start[:26] + "+00:00").timestamp()

for lateness in ["5s", "1s"]:
    lat = sorted(x for x in (one_oom(lateness, i) for i in range(ooms)) if x is not None)
    if lat:
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        print(f"latency, OOM kill on the node to OPEN at the consumer, --max-lateness {lateness}: "
              f"median {statistics.median(lat):.2f} s, p99 {p99:.2f} s ({len(lat)} OOM kills)")
PY
