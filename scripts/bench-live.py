#!/usr/bin/env python3
"""Live latency: from a real kernel OOM kill to the OPEN line of `tapio record`.

Each round makes a memory cgroup laid out as the kubelet does
(/kubepods/burstable/pod<uid>/<container-id>, a 32 MiB limit), runs a Python process in it that
allocates far past the limit, and times, for the incident the recorder then opens on stdout:

  kernel -> OPEN   from the OOM kill as the kernel dated it (the event in the incident) to the
                   moment the OPEN line reached this script;
  reaped -> OPEN   from the moment this script saw its child die to the OPEN line.

Prints every round, then the median and p99 of both. Needs root, cgroup v1 or v2, and a built
tapio (target/release/tapio, or $TAPIO).

    sudo scripts/bench-live.py [--rounds 21] [--tapio PATH]
"""

import argparse
import datetime
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid


def memcg_root():
    v1 = "/sys/fs/cgroup/memory"
    if os.path.exists(os.path.join(v1, "memory.limit_in_bytes")):
        return v1, False
    return "/sys/fs/cgroup", True


def make_memcg(rel, limit):
    root, v2 = memcg_root()
    made, d = [], root
    for part in rel.strip("/").split("/"):
        if v2:
            try:
                with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            except OSError:
                pass
        d = os.path.join(d, part)
        if not os.path.exists(d):
            os.mkdir(d)
            made.append(d)
    name = "memory.max" if v2 else "memory.limit_in_bytes"
    with open(os.path.join(d, name), "w") as f:
        f.write(str(limit))
    if not v2:
        try:
            with open(os.path.join(d, "memory.memsw.limit_in_bytes"), "w") as f:
                f.write(str(limit))
        except OSError:
            pass
    return d, made


def parse_ts(s):
    # RFC 3339 with nanoseconds: keep microseconds for datetime.
    s = s.rstrip("Z")
    base, _, frac = s.partition(".")
    dt = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--tapio", default=os.environ.get("TAPIO", "target/release/tapio"))
    ap.add_argument("--out", default="/tmp/tapio-bench-live.tapio")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-live: needs root (eBPF and memory cgroups)")

    rec = subprocess.Popen(
        [args.tapio, "record", "-o", args.out, "--kind", "oom,exit,signal", "--no-kube",
         "--no-logs", "--verdicts", "json", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = queue.Queue()

    def read():
        for line in rec.stdout:
            lines.put((time.time(), time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    time.sleep(2)  # probes attached
    kernel, reaped = [], []
    try:
        for i in range(args.rounds):
            uid = str(uuid.uuid4())
            cid = uuid.uuid4().hex + uuid.uuid4().hex
            d, made = make_memcg(f"/kubepods/burstable/pod{uid}/{cid}", 32 << 20)
            child = subprocess.Popen(
                ["sh", "-c", f"echo $$ > {d}/cgroup.procs && exec python3 -c "
                 "\"x = b'x' * (256 << 20)\""],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            child.wait()
            died = time.monotonic()
            got = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and got is None:
                try:
                    wall, mono, line = lines.get(timeout=0.1)
                except queue.Empty:
                    continue
                v = json.loads(line)
                if v["state"] == "open" and uid in json.dumps(v["incident"]["root_cause"]):
                    got = (wall, mono, v)
            for m in reversed(made):
                try:
                    os.rmdir(m)
                except OSError:
                    pass
            if got is None:
                print(f"round {i + 1}: no OPEN within 10 s", flush=True)
                continue
            wall, mono, v = got
            oom = [s for s in v["incident"]["chain"] if s["kind"].startswith("oom_kill")]
            k = wall - parse_ts(oom[0]["ts"]) if oom else float("nan")
            r = mono - died
            kernel.append(k)
            reaped.append(r)
            print(f"round {i + 1}: kernel -> OPEN {k * 1000:.0f} ms, reaped -> OPEN {r * 1000:.0f} ms",
                  flush=True)
            time.sleep(0.5)
    finally:
        rec.terminate()
        rec.wait()
        try:
            os.remove(args.out)
        except OSError:
            pass
    if kernel:
        print(f"\n{len(kernel)} of {args.rounds} kills opened an incident")
        print(f"kernel -> OPEN: median {statistics.median(kernel) * 1000:.0f} ms, "
              f"p99 {pct(kernel, 99) * 1000:.0f} ms")
        print(f"reaped -> OPEN: median {statistics.median(reaped) * 1000:.0f} ms, "
              f"p99 {pct(reaped, 99) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
