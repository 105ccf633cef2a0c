#!/usr/bin/env python3
"""Scores tapio's root-cause localisation on randomised fault-lab runs.

    sudo scripts/fault-lab/bench.py --runs 40 --out /tmp/fault-bench [--seed 7] [--faults error,cpu,...]
    scripts/fault-lab/bench.py --score-only /tmp/fault-bench     # score runs already made

Each run draws a fault type, a target service, a baseline length and how hard the fault hits
(the share of requests an error or exception fault fails: 20, 50 or 100 %; a delay of 60, 150 or
300 ms), runs `lab.py`, then replays
the capture with `tapio replay -o json --all`. The ranking of candidate services is read from the
verdict: incidents of medium severity or more in the order tapio prints them, each root cause
first, then its alternatives. Top-1: the first candidate is the target; top-3: among the first
three distinct services. The root-cause kind is also checked against the kind the fault should
give. Fault-free runs count the incidents of medium severity or more (false alarms).
"""
import argparse
import json
import os
import random
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from lab import FAULTS, SERVICES  # noqa: E402

EXPECTED_KIND = {
    "error": {"service_errors"},
    "exception": {"service_errors"},
    "cpu": {"service_latency", "cpu_throttling"},
    "delay": {"network_latency"},
    "down": {"dependency_unreachable", "service_errors"},
    "leak": {"oom_container_limit"},
}
SEVERE = {"medium", "high", "critical"}


def service_of(entity):
    """`service/shop/catalog` → catalog; `pod/shop/catalog-ab12cd34e-f5678` → catalog."""
    parts = entity.split("/")
    if parts[0] == "service":
        return parts[-1]
    if parts[0] == "pod":
        return parts[-1].rsplit("-", 2)[0]
    return entity


def ranking(verdict):
    out = []
    for inc in verdict["incidents"]:
        if inc["severity"] not in SEVERE:
            continue
        for e in [inc["root_cause"]["entity"]] + [a["entity"] for a in inc.get("alternatives", [])]:
            s = service_of(e)
            if s not in out:
                out.append(s)
    return out


def score(run_dir, tapio):
    label = json.load(open(f"{run_dir}/label.json"))
    inputs = [f"{run_dir}/capture.tapio", f"{run_dir}/pods.tapio"]
    out = subprocess.run([tapio, "replay", "-o", "json", "--all", *inputs], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"bench: tapio replay failed on {run_dir}: {out.stderr}")
    verdict = json.loads(out.stdout)
    severe = [i for i in verdict["incidents"] if i["severity"] in SEVERE]
    rank = ranking(verdict)
    first_kind = severe[0]["root_cause"]["kind"] if severe else None
    target = label["target"]
    return {
        "dir": run_dir, "fault": label["fault"], "target": target,
        "top1": bool(rank) and rank[0] == target,
        "top3": target in rank[:3],
        "kind_ok": first_kind in EXPECTED_KIND.get(label["fault"], set()),
        "kind": first_kind, "ranking": rank[:3], "severe": len(severe),
    }


def plan(n, seed, faults):
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        fault = faults[i % len(faults)]
        targets = [s for s in SERVICES if s != "frontend"]
        runs.append({"fault": fault, "target": rng.choice(targets), "seed": rng.randrange(1 << 30),
                     "baseline": rng.choice([25, 30, 35, 40]),
                     # How hard the fault hits: a share of requests failing, a delay.
                     "rate_fault": rng.choice([0.2, 0.5, 1.0]), "delay_ms": rng.choice([60, 150, 300])})
    rng.shuffle(runs)
    return runs


def report(results):
    by = defaultdict(list)
    for r in results:
        by[r["fault"]].append(r)
    print(f"{'fault':<10} {'runs':>4} {'top-1':>7} {'top-3':>7} {'kind':>7}   false alarms")
    faulty = [r for r in results if r["fault"] != "none"]
    for fault in FAULTS:
        rs = by.get(fault, [])
        if not rs:
            continue
        if fault == "none":
            alarms = sum(r["severe"] for r in rs)
            print(f"{fault:<10} {len(rs):>4} {'':>7} {'':>7} {'':>7}   {alarms} medium+ incidents in {len(rs)} runs")
            continue
        pct = lambda k: f"{100 * sum(r[k] for r in rs) / len(rs):.0f} %"
        print(f"{fault:<10} {len(rs):>4} {pct('top1'):>7} {pct('top3'):>7} {pct('kind_ok'):>7}")
    if faulty:
        pct = lambda k: f"{100 * sum(r[k] for r in faulty) / len(faulty):.0f} %"
        print(f"{'overall':<10} {len(faulty):>4} {pct('top1'):>7} {pct('top3'):>7} {pct('kind_ok'):>7}")
    misses = [r for r in faulty if not r["top1"]]
    for r in misses:
        print(f"  miss: {r['fault']} on {r['target']}: ranked {r['ranking']}, kind {r['kind']} ({r['dir']})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--out", default="/tmp/fault-bench")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--faults", default=",".join(FAULTS))
    p.add_argument("--duration", type=float, default=25)
    p.add_argument("--tapio", default=os.environ.get("TAPIO", "tapio"))
    p.add_argument("--score-only", metavar="DIR")
    a = p.parse_args()
    if a.score_only:
        dirs = sorted(os.path.join(a.score_only, d) for d in os.listdir(a.score_only)
                      if os.path.exists(os.path.join(a.score_only, d, "label.json")))
        report([score(d, a.tapio) for d in dirs])
        return
    faults = a.faults.split(",")
    if os.geteuid() != 0:
        dropped = [f for f in faults if f in ("cpu", "leak")]
        faults = [f for f in faults if f not in ("cpu", "leak")]
        if dropped:
            print(f"bench: not root: skipping the {', '.join(dropped)} faults (they need cgroups)", file=sys.stderr)
    results = []
    for i, r in enumerate(plan(a.runs, a.seed, faults)):
        d = f"{a.out}/{i:03d}-{r['fault']}-{r['target']}"
        cmd = [sys.executable, f"{HERE}/lab.py", "--fault", r["fault"], "--target", r["target"],
               "--seed", str(r["seed"]), "--baseline", str(r["baseline"]), "--duration", str(a.duration),
               "--rate-fault", str(r["rate_fault"]), "--delay-ms", str(r["delay_ms"]),
               "--out", d, "--tapio", a.tapio]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        res = score(d, a.tapio)
        results.append(res)
        print(f"[{i + 1}/{a.runs}] {r['fault']:<9} {r['target']:<10} top1={res['top1']!s:<5} "
              f"ranked {res['ranking']} kind {res['kind']}", flush=True)
    report(results)


if __name__ == "__main__":
    main()
