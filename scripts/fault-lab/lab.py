#!/usr/bin/env python3
"""The fault lab: a small shop of real services, real load, one injected fault, recorded by tapio.

    scripts/fault-lab/lab.py --fault cpu --target catalog --out /tmp/run-1 [--kernel]

Starts nine Python services (service.py: real HTTP between them, the OpenTelemetry SDK exporting
spans and logs to `tapio record --otlp`), each behind a delaying TCP proxy of the lab's own (this
kernel has no netem) and, as root, in its own CPU and memory cgroup laid out as the kubelet does
(`kubepods/burstable/pod<uid>/<container id>`), with its Pod and Service written as
`kubectl get -o json` would. A load generator sends a steady mix of requests with the shop's
background noise (a service that always logs and fails a little, a cache timeout that is retried,
an endpoint that is always slow). After a baseline, one fault is injected into one service:

  error      the service answers 500 for a share of its requests
  exception  it throws and swallows: HTTP 200 with an error body, an ERROR log line
  cpu        a CPU hog in its cgroup under a CPU quota: real throttling (root)
  delay      its proxy delays every connection into it (the network between caller and server)
  down       the service and its proxy stop: connections are refused
  leak       it allocates on every request until its memory cgroup OOM-kills it (root)
  none       nothing: a fault-free run

As root every service runs in its cgroups and the kernel is recorded too (`--no-kernel`,
`--no-cgroups` to leave them out). The run directory gets `capture.tapio` (what tapio recorded), `pods.json` (the topology), and
`label.json` (fault, target, when). `bench.py` runs many and scores tapio's verdicts.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "shop"
NODE = "lab-node"

# The shop: who calls whom on which route, and each service's own habits.
SERVICES = {
    "frontend": {"work_ms": 1, "timeout": 4.0, "routes": {
        "/home": [["catalog", "/list"], ["recommend", "/get"], ["cart", "/view"]],
        "/buy": [["checkout", "/place"]]}},
    "checkout": {"work_ms": 3, "timeout": 3.0, "optional": ["email"], "routes": {
        "/place": [["cart", "/view"], ["currency", "/convert"], ["payment", "/charge"],
                   ["shipping", "/quote"], ["email", "/send"]]}},
    "cart": {"work_ms": 1, "cache_timeouts": 0.02},
    "catalog": {"work_ms": 2, "routes": {"/list": [["currency", "/convert"]]}},
    "recommend": {"work_ms": 3, "routes": {"/get": [["catalog", "/list"]]}},
    "currency": {"work_ms": 1},
    "payment": {"work_ms": 2},
    "shipping": {"work_ms": 1, "sleep_ms": 120, "routes": {"/quote": [["currency", "/convert"]]}},
    "email": {"work_ms": 1, "background_errors": 0.04},
}
FAULTS = ["error", "exception", "cpu", "delay", "down", "leak", "none"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ns():
    return time.time_ns()


class Proxy:
    """A TCP proxy in front of one service: a delay per connection, or down (refusing)."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.delay = 0.0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(256)
        threading.Thread(target=self.accept, daemon=True).start()

    def down(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            first = c.recv(65536)
            if self.delay:
                time.sleep(self.delay)
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
        except OSError:
            c.close()
            return
        u.sendall(first)

        def pump(src, dst):
            try:
                while True:
                    b = src.recv(65536)
                    if not b:
                        break
                    dst.sendall(b)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(u, c), daemon=True).start()
        pump(c, u)


class Cgroups:
    """CPU and memory cgroups (v1) laid out as the kubelet's cgroupfs driver does."""

    ROOT = "/sys/fs/cgroup"

    def __init__(self, enabled, run_id):
        self.enabled = enabled and os.geteuid() == 0 and os.path.isdir(f"{self.ROOT}/cpu")
        self.run_id = run_id
        self.paths = {}

    def make(self, pod_uid, cid):
        if not self.enabled:
            return None
        rel = f"kubepods/burstable/pod{pod_uid}/{cid}"
        paths = {}
        for ctl in ("cpu", "memory"):
            d = f"{self.ROOT}/{ctl}/{rel}"
            os.makedirs(d, exist_ok=True)
            paths[ctl] = d
        with open(f"{paths['memory']}/memory.limit_in_bytes", "w") as f:
            f.write(str(300 << 20))
        self.paths[cid] = paths
        return paths

    def enter(self, cid, pid):
        for d in self.paths.get(cid, {}).values():
            with open(f"{d}/cgroup.procs", "w") as f:
                f.write(str(pid))

    def quota(self, cid, us):
        d = self.paths.get(cid, {}).get("cpu")
        if d:
            with open(f"{d}/cpu.cfs_quota_us", "w") as f:
                f.write(str(us))

    def remove(self):
        for paths in self.paths.values():
            for d in paths.values():
                for _ in range(50):
                    try:
                        os.rmdir(d)
                        break
                    except OSError:
                        time.sleep(0.1)
                parent = os.path.dirname(d)
                try:
                    os.rmdir(parent)
                except OSError:
                    pass


def pod_objects(pods, started):
    """The Pods and Services of the shop, as `kubectl get pods,services -o json` lists them."""
    items = []
    for name, p in sorted(pods.items()):
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p["pod"], "namespace": NS, "uid": p["uid"], "resourceVersion": "1",
                         "labels": {"app": name, "pod-template-hash": p["pod"].split("-")[1]},
                         "creationTimestamp": started,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True,
                                              "name": p["pod"].rsplit("-", 1)[0],
                                              "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "rs-" + p["pod"]))}]},
            "spec": {"nodeName": NODE, "containers": [{"name": name, "image": f"lab/{name}:1.0",
                     "resources": {"limits": {"memory": "300Mi"}}}]},
            "status": {"phase": "Running", "startTime": started,
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
                       "containerStatuses": [{"name": name, "ready": True, "restartCount": 0,
                                              "containerID": f"containerd://{p['cid']}",
                                              "state": {"running": {"startedAt": started}}, "lastState": {}}]},
        })
        items.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "svc-" + name)),
                         "resourceVersion": "1", "creationTimestamp": started},
            "spec": {"selector": {"app": name}, "clusterIP": "None", "ports": [{"port": 80, "targetPort": 8080}]},
        })
    return {"apiVersion": "v1", "kind": "List", "items": items}


def run(a):
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    tapio = a.tapio
    run_id = f"{a.seed:x}"
    cg = Cgroups(not a.no_cgroups, run_id)
    if a.fault in ("cpu", "leak") and not cg.enabled:
        sys.exit(f"lab: fault {a.fault} needs root and cgroup v1 (cpu, memory) to make a real one")

    # As root the kernel is recorded too: OOM kills, exits, CPU throttling of the services' cgroups.
    kernel = cg.enabled and not a.no_kernel
    otlp_http, otlp_grpc = free_port(), free_port()
    rec = subprocess.Popen(
        [tapio, "record", "-q", "-o", f"{a.out}/capture.tapio", "--otlp", "--otlp-http-port", str(otlp_http),
         "--otlp-grpc-port", str(otlp_grpc), "--no-kube", "--no-logs", "--node", NODE]
        + (["--pressure-interval", "2s"] if kernel else ["--no-kernel"]),
        stdout=subprocess.DEVNULL, stderr=open(f"{a.out}/record.log", "w"))

    ports = {n: free_port() for n in SERVICES}
    proxies = {n: Proxy(ports[n]) for n in SERVICES}
    topo = {"namespace": NS, "node": NODE,
            "addresses": {n: ["127.0.0.1", proxies[n].port] for n in SERVICES},
            "services": SERVICES}
    with open(f"{a.out}/topology.json", "w") as f:
        json.dump(topo, f)
    pods, procs = {}, {}
    for n in SERVICES:
        h = uuid.uuid5(uuid.NAMESPACE_DNS, f"{run_id}-{n}")
        pods[n] = {"uid": str(h), "cid": (h.hex * 2)[:64],
                   "pod": f"{n}-{h.hex[:9]}-{h.hex[9:14]}"}
        cg.make(pods[n]["uid"], pods[n]["cid"])

    def start(n):
        proc = subprocess.Popen(
            [sys.executable, f"{HERE}/service.py", "--name", n, "--port", str(ports[n]),
             "--topology", f"{a.out}/topology.json", "--otlp", f"127.0.0.1:{otlp_http}",
             "--pod", pods[n]["pod"], "--seed", str(a.seed)],
            stdout=subprocess.DEVNULL, stderr=open(f"{a.out}/{n}.log", "a"))
        cg.enter(pods[n]["cid"], proc.pid)
        return proc

    for n in SERVICES:
        procs[n] = start(n)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    deadline = time.time() + 60
    for n in SERVICES:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{ports[n]}/__ready", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit(f"lab: service {n} did not start (see {a.out}/{n}.log)")
                time.sleep(0.1)
    with open(f"{a.out}/pods.json", "w") as f:
        json.dump(pod_objects(pods, started), f, indent=1)

    stop = threading.Event()
    sent = {"ok": 0, "failed": 0}
    front = ports["frontend"]

    def one(path):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{front}{path}", timeout=10).read()
            sent["ok"] += 1
        except Exception:
            sent["failed"] += 1

    def load():
        pool = ThreadPoolExecutor(max_workers=48)
        lr = random.Random(a.seed + 1)
        t = time.time()
        while not stop.is_set():
            pool.submit(one, "/buy" if lr.random() < 0.3 else "/home")
            t += lr.expovariate(a.rate)
            time.sleep(max(0.0, t - time.time()))
        pool.shutdown(wait=True)

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(a.baseline)

    target = a.target
    hog = None
    fault_start = now_ns()
    if a.fault == "error":
        post(ports[target], {"mode": "error", "rate": a.rate_fault})
    elif a.fault == "exception":
        post(ports[target], {"mode": "exception", "rate": a.rate_fault})
    elif a.fault == "leak":
        post(ports[target], {"mode": "leak", "rate": 1.0})
    elif a.fault == "cpu":
        cg.quota(pods[target]["cid"], 20000)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        cg.enter(pods[target]["cid"], hog.pid)
    elif a.fault == "delay":
        proxies[target].delay = a.delay_ms / 1000.0
    elif a.fault == "down":
        proxies[target].down()
        procs[target].send_signal(signal.SIGTERM)
    time.sleep(a.duration)
    fault_end = now_ns()
    stop.set()
    loader.join()
    if hog:
        hog.kill()
        hog.wait()
    time.sleep(2)  # the exporters' last batches
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    time.sleep(1)
    rec.send_signal(signal.SIGINT)
    rec.wait(timeout=30)
    cg.remove()
    label = {"fault": a.fault, "target": target if a.fault != "none" else None, "seed": a.seed,
             "fault_start_ns": fault_start, "fault_end_ns": fault_end,
             "baseline_s": a.baseline, "duration_s": a.duration, "rate": a.rate,
             "rate_fault": a.rate_fault, "delay_ms": a.delay_ms,
             "requests_ok": sent["ok"], "requests_failed": sent["failed"], "kernel": kernel}
    with open(f"{a.out}/label.json", "w") as f:
        json.dump(label, f, indent=1)
    subprocess.run([tapio, "import", "-q", "-o", f"{a.out}/pods.tapio", f"{a.out}/pods.json"], check=True)
    return label


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/__fault", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fault", choices=FAULTS, required=True)
    p.add_argument("--target", default="catalog", choices=sorted(SERVICES))
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--baseline", type=float, default=30, help="seconds of normal load before the fault")
    p.add_argument("--duration", type=float, default=25, help="seconds the fault lasts")
    p.add_argument("--rate", type=float, default=12, help="requests per second into the frontend")
    p.add_argument("--rate-fault", type=float, default=0.5, help="share of requests an error fault hits")
    p.add_argument("--delay-ms", type=float, default=150)
    p.add_argument("--no-kernel", action="store_true", help="do not record the kernel (recorded by default as root)")
    p.add_argument("--no-cgroups", action="store_true", help="do not put the services in cgroups (they are, as root)")
    p.add_argument("--tapio", default=os.environ.get("TAPIO") or shutil.which("tapio") or "tapio")
    a = p.parse_args()
    print(json.dumps(run(a)))


if __name__ == "__main__":
    main()
