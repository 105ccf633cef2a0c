#!/usr/bin/env bash
# tapio record under load (root): the highest event rate recorded with zero drops (verdicts on, the
# default), the recorder's CPU use at a steady rate with verdicts on and off, and bytes per event of
# a mixed real recording. Medians of RUNS runs.
#   sudo scripts/bench-record.sh
#   RATES="100000 200000 300000" SECONDS_PER_RUN=5 RUNS=3 sudo scripts/bench-record.sh
# The load is scripts/sigload.c: SIGTERM to a process that ignores it, one signal_generate event
# per kill(2), at a fixed rate.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
RATES="${RATES:-200000 400000 600000 1000000}"
RUNS="${RUNS:-3}"
SECS="${SECONDS_PER_RUN:-5}"
CPU_RATE="${CPU_RATE:-5000}"
CPU_SECS="${CPU_SECS:-20}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/sigload" scripts/sigload.c
python3 - "$bin" "$tmp" "$RATES" "$RUNS" "$SECS" "$CPU_RATE" "$CPU_SECS" <<'PY'
import json, os, signal, statistics, subprocess, sys, time
bin, tmp, rates, runs, secs, cpu_rate, cpu_secs = sys.argv[1:]
rates, runs, secs = [int(r) for r in rates.split()], int(runs), float(secs)
cpu_rate, cpu_secs = int(cpu_rate), float(cpu_secs)
tick = os.sysconf("SC_CLK_TCK")
cap = f"{tmp}/rec.tapio"

def start(kinds, verdicts="text"):
    err = open(f"{tmp}/rec.err", "w+")
    p = subprocess.Popen([bin, "record", "-o", cap, "--kind", kinds, "--verdicts", verdicts],
                         stderr=err, stdout=subprocess.DEVNULL)
    while "recording the kernel" not in open(f"{tmp}/rec.err").read():
        if p.poll() is not None:
            sys.exit("tapio record failed:\n" + open(f"{tmp}/rec.err").read())
        time.sleep(0.05)
    return p

def cpu(p):
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick  # utime + stime, seconds

def stop(p):
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    return json.loads(subprocess.run([bin, "info", "-o", "json", cap], capture_output=True, check=True).stdout)

def load(rate, seconds):
    out = subprocess.run([f"{tmp}/sigload", str(rate), str(seconds)], capture_output=True, check=True, text=True)
    sent, took = out.stdout.split()
    return int(sent), float(took)

print(f"{'asked/s':>8} {'sent/s':>8} {'sent':>9} {'recorded':>9} {'dropped':>8} {'recorder CPU':>13}   (median of {runs} runs of {secs:g} s)")
best = 0
for rate in rates:
    sent, rec, drops, cpus, achieved = [], [], [], [], []
    for _ in range(runs):
        p = start("signal")
        c0 = cpu(p)
        s, took = load(rate, secs)
        c1 = cpu(p)
        info = stop(p)
        achieved.append(s / took)
        sent.append(s); rec.append(info["by_kind"].get("signal", 0)); drops.append(info["drops"])
        cpus.append(100 * (c1 - c0) / took)
    med = lambda xs: statistics.median(xs)
    print(f"{rate:>8} {med(achieved):>8.0f} {med(sent):>9.0f} {med(rec):>9.0f} {med(drops):>8.0f} {med(cpus):>12.1f}%   drops per run: {drops}")
    if max(drops) == 0:
        best = max(best, min(achieved))
print(f"highest rate recorded with zero drops in every run: {best:.0f} events/s (the load generator's achieved rate)")

for verdicts in ["none", "text"]:
    cpus = []
    for _ in range(runs):
        p = start("oom,exec,exit,signal,tcp,retransmit,pressure", verdicts)
        c0 = cpu(p)
        s, took = load(cpu_rate, cpu_secs)
        c1 = cpu(p)
        stop(p)
        cpus.append(100 * (c1 - c0) / took)
    print(f"recorder CPU at {cpu_rate} events/s, all probes, --verdicts {verdicts}: {statistics.median(cpus):.2f}% of one core (median of {runs}; runs: {', '.join(f'{c:.2f}' for c in cpus)})")

# A mixed recording: processes starting and ending, HTTP on loopback, refused connections.
p = start("oom,exec,exit,signal,tcp,retransmit,pressure")
server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "18573"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
time.sleep(0.5)
subprocess.run(["sh", "-c", "for i in $(seq 300); do ls /proc > /dev/null; cat /proc/loadavg > /dev/null; done"], check=True)
subprocess.run([sys.executable, "-c", """
import socket, urllib.request
for i in range(1000):
    urllib.request.urlopen('http://127.0.0.1:18573/').read()
for i in range(500):
    try: socket.create_connection(('127.0.0.1', 9))
    except OSError: pass
"""], check=True)
server.terminate(); server.wait()
info = stop(p)
print(f"mixed recording: {info['events']} events, {info['bytes']} bytes, {info['bytes'] / max(info['events'], 1):.2f} bytes/event, by kind {json.dumps(info['by_kind'])}")
PY
