#!/usr/bin/env bash
# Peak memory and time of `tapio import` on big logs: a dmesg of 40 MB and of 400 MB (ordinary
# lines with an OOM-killer report every 5,000), and 400 MB of plain `kubectl logs` without times
# placed by their Pod. Prints the median of three runs of each, with the input's size.
#
#   scripts/bench-import.sh [TAPIO]     (default: target/release/tapio, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
tapio=${1:-${CARGO_TARGET_DIR:-target}/release/tapio}
[ -x "$tapio" ] || cargo build --release -q
work=$(mktemp -d "${TMPDIR:-/tmp}/tapio-bench-import.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
report = [l.split("] ", 1)[1] for l in open("fixtures/incidents/node-oom/dmesg.txt") if "] " in l]

def dmesg(path, mb):
    t, n = 1000.0, 0
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            for i in range(5000):
                t += 0.000731
                f.write(f"[{t:12.6f}] eth0: link is up, 1000 Mbps full duplex, flow control rx/tx (line {n + i})\n")
            n += 5000
            for line in report:
                t += 0.000021
                f.write(f"[{t:12.6f}] {line}")

dmesg(f"{work}/dmesg-40.txt", 40)
dmesg(f"{work}/dmesg-400.txt", 400)
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "api-1", "namespace": "shop", "uid": "7d1c2a34-0000-4000-8000-000000000001"},
       "spec": {"nodeName": "node-3", "containers": [{"name": "api"}]},
       "status": {"containerStatuses": [{"name": "api", "restartCount": 7,
           "state": {"waiting": {"reason": "CrashLoopBackOff"}},
           "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
               "startedAt": "2026-03-14T10:20:40Z", "finishedAt": "2026-03-14T10:20:44Z"}}}]}}
json.dump(pod, open(f"{work}/pod.json", "w"))
with open(f"{work}/api.txt", "w") as f:
    n = 0
    while f.tell() < 400 << 20:
        f.write("".join(f"INFO handled GET /api/v1/orders/{n + i} in 12 ms, 200 OK, 512 bytes\n" for i in range(10000)))
        n += 10000
EOF

run() { # name, then the import's arguments
    local name=$1; shift
    local size
    size=$(du -cm "${@: -1}" | tail -1 | cut -f1)
    for i in 1 2 3; do
        /usr/bin/time -f '%e %M' -o "$work/time" "$tapio" import -q -o "$work/out.tapio" "$@" >/dev/null 2>&1
        cat "$work/time"
        rm -f "$work/out.tapio"
    done >"$work/runs"
    local secs kb
    secs=$(cut -d' ' -f1 "$work/runs" | sort -n | sed -n 2p)
    kb=$(cut -d' ' -f2 "$work/runs" | sort -n | sed -n 2p)
    echo "$name ($size MB): $((kb / 1024)) MB peak, $secs s (medians of three)"
}
boot=(--boot-time 2026-03-14T00:00:00Z)
run "dmesg" "${boot[@]}" "$work/dmesg-40.txt"
run "dmesg" "${boot[@]}" "$work/dmesg-400.txt"
run "kubectl logs without times" --pod shop/api-1 "$work/pod.json" "$work/api.txt"
