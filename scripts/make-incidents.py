#!/usr/bin/env python3
"""Writes the readable inputs of the incident fixtures under fixtures/incidents/<name>/.

Each incident is what an SRE would have dumped after the fact: `kubectl get … -o json` of the
pods, nodes, services, endpoint slices and workloads; `kubectl get events -o json`; the node's
`dmesg`; an OTLP/JSON trace export; and, where only the recorder could have seen them, kernel
network events as tapio JSON lines. Message texts are the real ones (see FIELD-GUIDE.md); healthy
pods around the broken one give the background. `scripts/build-incidents.sh` turns each directory
into its capture and expected verdict.

Deterministic: run it again and the files are byte-identical.
"""
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "incidents")
BASE = datetime(2026, 3, 14, 10, 0, 0, tzinfo=timezone.utc)


def t(sec, ms=0):
    return (BASE + timedelta(seconds=sec, milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def tn(sec, ms=0):
    d = BASE + timedelta(seconds=sec, milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond * 1000:09d}Z"


def h(*parts, n=32):
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def uid(*parts):
    x = h(*parts)
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def cid(*parts):
    return h("container", *parts, n=64)


class Cluster:
    """A small cluster: nodes, deployments with pods behind services, and what happened."""

    def __init__(self, name):
        self.name = name
        self.nodes, self.pods, self.services, self.slices, self.workloads, self.events = [], [], [], [], [], []
        self.spans = []
        self.kernel = []
        self.dmesg = []
        self.boot = None
        self.files = {}          # extra inputs: relative path -> text (container logs)
        self.extra_args = []     # extra import arguments

    def node(self, name, ready=True, conditions=None, heartbeat=0):
        conds = {"MemoryPressure": ("False", "KubeletHasSufficientMemory"), "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
                 "PIDPressure": ("False", "KubeletHasSufficientPID"), "Ready": ("True", "KubeletReady")}
        conds.update(conditions or {})
        self.nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": uid(self.name, "node", name), "resourceVersion": "4811",
                         "creationTimestamp": "2026-03-01T08:00:00Z", "labels": {"kubernetes.io/hostname": name}},
            "spec": {"podCIDR": "10.244.%d.0/24" % (len(self.nodes) + 1)},
            "status": {"capacity": {"cpu": "4", "memory": "16374756Ki", "pods": "110"},
                       "conditions": [{"type": k, "status": s, "reason": r, "message": m if len(v) > 2 else "",
                                       "lastHeartbeatTime": t(heartbeat), "lastTransitionTime": t(v[2] if len(v) > 2 else -86400)}
                                      for k, v in conds.items() for s, r, m in [(v[0], v[1], v[3] if len(v) > 3 else "")]],
                       "nodeInfo": {"kubeletVersion": "v1.29.4", "kernelVersion": "6.1.0-28-amd64", "containerRuntimeVersion": "containerd://1.7.13"}},
        })

    def deployment(self, ns, app, replicas, node_of, port=8080, image=None, limit="512Mi", available=None, changed=-3600):
        rs = f"{app}-{h(self.name, app, n=10)}"
        dep_uid, rs_uid = uid(self.name, "dep", app), uid(self.name, "rs", app)
        image = image or f"registry.example.com/{ns}/{app}:1.9.3"
        self.workloads.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "uid": dep_uid, "resourceVersion": "9121", "generation": 3,
                         "creationTimestamp": "2026-03-01T09:00:00Z", "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}}},
            "status": {"replicas": replicas, "readyReplicas": replicas if available is None else available,
                       "availableReplicas": replicas if available is None else available, "observedGeneration": 3,
                       **({"unavailableReplicas": replicas - available} if available is not None and available < replicas else {}),
                       "conditions": [
                           {"type": "Available", "status": "True" if available is None or available > 0 else "False",
                            "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
                            "lastUpdateTime": t(changed), "lastTransitionTime": t(changed)},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" if available is None else "ReplicaSetUpdated",
                            "message": f"ReplicaSet \"{rs}\" has successfully progressed." if available is None else f"ReplicaSet \"{rs}\" is progressing.",
                            "lastUpdateTime": t(changed), "lastTransitionTime": t(changed)}]},
        })
        self.workloads.append({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs, "namespace": ns, "uid": rs_uid, "resourceVersion": "9120", "creationTimestamp": "2026-03-10T09:00:00Z",
                         "labels": {"app": app}, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": dep_uid, "controller": True}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}}},
            "status": {"replicas": replicas, "readyReplicas": replicas if available is None else available,
                       "availableReplicas": replicas if available is None else available},
        })
        ip = "10.96.%d.%d" % (len(self.services) // 200, 10 + len(self.services) % 200)
        self.services.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": app, "namespace": ns, "uid": uid(self.name, "svc", app), "resourceVersion": "812", "creationTimestamp": "2026-03-01T09:00:00Z"},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "selector": {"app": app}, "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}], "type": "ClusterIP"},
        })
        pods = []
        for i in range(replicas):
            name = f"{rs}-{h(self.name, app, i, n=5)}"
            pods.append(self.pod(ns, name, app, rs, rs_uid, node_of(i), port, image, limit))
        return pods

    def pod(self, ns, name, app, rs, rs_uid, node, port, image, limit):
        n = len(self.pods)
        p = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": uid(self.name, "pod", name), "resourceVersion": str(10200 + n),
                         "creationTimestamp": "2026-03-13T22:00:00Z", "labels": {"app": app, "pod-template-hash": rs.rsplit("-", 1)[1]},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rs_uid, "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"nodeName": node, "restartPolicy": "Always",
                     "containers": [{"name": app, "image": image, "ports": [{"containerPort": port, "protocol": "TCP"}],
                                     "resources": {"limits": {"memory": limit, "cpu": "1"}, "requests": {"memory": limit, "cpu": "250m"}},
                                     "livenessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}}]},
            "status": {"phase": "Running", "podIP": "10.244.%d.%d" % (1 + n // 200, 10 + n % 200), "hostIP": "192.168.10.%d" % (11 + int(node.rsplit("-", 1)[1])),
                       "startTime": "2026-03-13T22:00:01Z", "qosClass": "Guaranteed",
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-13T22:00:09Z"},
                                      {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-03-13T22:00:00Z"}],
                       "containerStatuses": [{"name": app, "image": image, "imageID": image.split(":")[0] + "@sha256:" + h(image, n=64),
                                              "containerID": "containerd://" + cid(self.name, name), "ready": True, "started": True, "restartCount": 0,
                                              "state": {"running": {"startedAt": "2026-03-13T22:00:05Z"}}, "lastState": {}}]},
        }
        self.pods.append(p)
        return p

    def endpoints(self, ns, app, not_ready=(), changed=-3600):
        pods = [p for p in self.pods if p["metadata"]["namespace"] == ns and p["metadata"]["labels"].get("app") == app
                and "podIP" in p["status"]]
        svc = next(s for s in self.services if s["metadata"]["name"] == app and s["metadata"]["namespace"] == ns)
        self.slices.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{app}-{h(self.name, 'eps', app, n=5)}", "namespace": ns, "uid": uid(self.name, "eps", app), "resourceVersion": "10911",
                         "generateName": f"{app}-", "labels": {"kubernetes.io/service-name": app, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": t(changed)},
                         "creationTimestamp": "2026-03-01T09:00:00Z"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": p["metadata"]["name"] not in not_ready,
                           "serving": p["metadata"]["name"] not in not_ready, "terminating": False},
                           "nodeName": p["spec"]["nodeName"], "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns, "uid": p["metadata"]["uid"]}}
                          for p in pods],
            "ports": [{"name": "", "port": svc["spec"]["ports"][0]["targetPort"], "protocol": "TCP"}],
        })

    def event(self, at, reason, message, obj, kind="Pod", type_="Warning", count=1, first=None, component="kubelet", host="", field=""):
        ns = obj["metadata"].get("namespace", "default")
        name = obj["metadata"]["name"]
        self.events.append({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{h(self.name, reason, at, name, n=16)}", "namespace": ns, "uid": uid(self.name, "ev", reason, at, name),
                         "resourceVersion": str(20000 + len(self.events)), "creationTimestamp": t(first if first is not None else at)},
            "involvedObject": {"apiVersion": "v1" if kind in ("Pod", "Node") else "apps/v1", "kind": kind, "name": name, "namespace": ns if kind != "Node" else "",
                               "uid": obj["metadata"]["uid"], **({"fieldPath": field} if field else {})},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": t(first if first is not None else at), "lastTimestamp": t(at),
            "source": {"component": component, **({"host": host} if host else {})},
            "reportingComponent": component, "reportingInstance": host,
        })

    def span(self, service, ns, pod, node, name, start_ms, dur_ms, trace, span_id, parent=None, error=None, kind=2, http=200, peer=None, exception=None):
        attrs = [{"key": "http.request.method", "value": {"stringValue": name.split()[0]}},
                 {"key": "http.response.status_code", "value": {"intValue": str(http)}}]
        if peer:
            attrs.append({"key": "server.address", "value": {"stringValue": peer}})
        events = []
        if exception:
            events.append({"timeUnixNano": str(int((BASE + timedelta(milliseconds=start_ms + dur_ms)).timestamp() * 1e9)), "name": "exception",
                           "attributes": [{"key": "exception.type", "value": {"stringValue": exception[0]}},
                                          {"key": "exception.message", "value": {"stringValue": exception[1]}}]})
        self.spans.append(((service, ns, pod, node), {
            "traceId": trace, "spanId": span_id, "parentSpanId": parent or "", "name": name, "kind": kind,
            "startTimeUnixNano": str(int((BASE + timedelta(milliseconds=start_ms)).timestamp() * 1e9)),
            "endTimeUnixNano": str(int((BASE + timedelta(milliseconds=start_ms + dur_ms)).timestamp() * 1e9)),
            "attributes": attrs, "events": events,
            "status": {"code": 2, "message": error} if error else {"code": 0},
        }))

    def requests(self, client, server, start_s, count, every_ms, fail_from_ms=None, error="", exception=None, path="/api/items"):
        """`count` requests from client to server; those at or after `fail_from_ms` fail."""
        (cs, cns, cpod, cnode), (ss, sns, spod, snode) = client, server
        for i in range(count):
            at = start_s * 1000 + i * every_ms
            trace = h(self.name, "trace", cs, ss, i)
            root, child, srv = h(trace, "root", n=16), h(trace, "client", n=16), h(trace, "server", n=16)
            fail = fail_from_ms is not None and at >= fail_from_ms
            self.span(cs, cns, cpod, cnode, f"POST /{cs}", at, 40 if not fail else 1005, trace, root, error=error if fail else None, http=503 if fail else 200)
            self.span(cs, cns, cpod, cnode, f"GET {path}", at + 2, 30 if not fail else 1001, trace, child, parent=root, kind=3,
                      error=error if fail else None, http=503 if fail else 200, peer=ss, exception=exception if fail else None)
            if not fail:
                self.span(ss, sns, spod, snode, f"GET {path}", at + 4, 25, trace, srv, parent=child)

    def oom_report(self, uptime, comm, pid, cgroup, limit_kb, rss_kb, memcg=True):
        cg = cgroup
        lines = [
            f"{comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj={-997 if memcg else 0}",
            f"CPU: 1 PID: {pid} Comm: {comm} Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1",
            "Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014",
            "Call Trace:",
            " <TASK>",
            " dump_stack_lvl+0x44/0x5c",
            " dump_header+0x4a/0x211",
            " oom_kill_process.cold+0xb/0x10",
            " out_of_memory+0x1fd/0x4c0",
            " mem_cgroup_out_of_memory+0x134/0x150" if memcg else " __alloc_pages_slowpath.constprop.0+0xc5e/0xe00",
            " </TASK>",
        ]
        if memcg:
            lines += [f"memory: usage {limit_kb}kB, limit {limit_kb}kB, failcnt 1182",
                      "swap: usage 0kB, limit 0kB, failcnt 0",
                      f"Memory cgroup stats for {cg}:"]
        lines += ["Tasks state (memory values in pages):",
                  "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
                  f"[{pid:>7}]  1000 {pid:>5}  1309428 {rss_kb // 4:>8}  4608000        0          -997 {comm}",
                  f"oom-kill:constraint={'CONSTRAINT_MEMCG' if memcg else 'CONSTRAINT_NONE'},nodemask=(null),cpuset={cg.rsplit('/', 1)[-1]},mems_allowed=0,"
                  + (f"oom_memcg={cg},task_memcg={cg}," if memcg else f"global_oom,task_memcg={cg},")
                  + f"task={comm},pid={pid},uid=1000",
                  f"{'Memory cgroup out of memory' if memcg else 'Out of memory'}: Killed process {pid} ({comm}) total-vm:5237712kB, anon-rss:{rss_kb - 7200}kB, file-rss:7200kB, shmem-rss:0kB, UID:1000 pgtables:4500kB oom_score_adj:{-997 if memcg else 0}"]
        step = 0.000021
        for i, l in enumerate(lines):
            self.dmesg.append((uptime + i * step, l))

    def tcp(self, at_ms, node, saddr, sport, daddr, dport, meaning, pid=0):
        old, new = {"refused": ("SYN_SENT", "CLOSE"), "timeout": ("SYN_SENT", "CLOSE"), "reset": ("ESTABLISHED", "CLOSE")}[meaning]
        self.kernel.append({"ts": tn(0, at_ms), "node": node, "source": "ebpf", "seq": 0,
                            "body": {"kernel": {"tcp_state": {"pid": pid, "saddr": saddr, "sport": sport, "daddr": daddr, "dport": dport,
                                                               "old": old, "new": new, "meaning": meaning}}}})

    def retransmits(self, at_ms, node, saddr, sport, daddr, dport, count):
        self.kernel.append({"ts": tn(0, at_ms), "node": node, "source": "ebpf", "seq": 0,
                            "body": {"kernel": {"tcp_retransmit": {"saddr": saddr, "sport": sport, "daddr": daddr, "dport": dport,
                                                                    "state": "SYN_SENT", "count": count, "interval_ms": 1000}}}})

    def write(self, readme):
        d = os.path.join(ROOT, self.name)
        os.makedirs(d, exist_ok=True)
        def dump(name, obj):
            with open(os.path.join(d, name), "w") as f:
                json.dump(obj, f, indent=2, sort_keys=False)
                f.write("\n")
        dump("pods.json", {"apiVersion": "v1", "kind": "List", "items": self.pods, "metadata": {"resourceVersion": ""}})
        dump("cluster.json", {"apiVersion": "v1", "kind": "List", "items": self.nodes + self.workloads + self.services + self.slices,
                              "metadata": {"resourceVersion": ""}})
        if self.events:
            dump("events.json", {"apiVersion": "v1", "kind": "List", "items": self.events, "metadata": {"resourceVersion": ""}})
        if self.spans:
            by_res = {}
            for (svc, ns, pod, node), s in self.spans:
                by_res.setdefault((svc, ns, pod, node), []).append(s)
            dump("traces.json", {"resourceSpans": [{"resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": svc}}, {"key": "k8s.namespace.name", "value": {"stringValue": ns}},
                {"key": "k8s.pod.name", "value": {"stringValue": pod}}, {"key": "k8s.node.name", "value": {"stringValue": node}}]},
                "scopeSpans": [{"scope": {"name": "io.opentelemetry.http"}, "spans": spans}]} for (svc, ns, pod, node), spans in by_res.items()]})
        if self.dmesg:
            with open(os.path.join(d, "dmesg.txt"), "w") as f:
                for up, l in self.dmesg:
                    f.write(f"[{up:>12.6f}] {l}\n")
        if self.kernel:
            with open(os.path.join(d, "kernel-events.jsonl"), "w") as f:
                for k in sorted(self.kernel, key=lambda k: k["ts"]):
                    f.write(json.dumps(k) + "\n")
        for rel, text in self.files.items():
            path = os.path.join(d, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        with open(os.path.join(d, "import.args"), "w") as f:
            f.write(" ".join(self.import_args()) + "\n")
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write(readme.strip() + "\n")

    def import_args(self):
        args = list(self.extra_args)
        if self.dmesg and self.boot:
            args += ["--boot-time", self.boot]
        return args


def spread(nodes):
    return lambda i: nodes[i % len(nodes)]


def background(c, ns="shop"):
    """Healthy neighbours: a frontend and a catalog, and their traffic."""
    fe = c.deployment(ns, "frontend", 2, spread(["node-1", "node-2"]), port=8080, limit="256Mi")
    cat = c.deployment(ns, "catalog", 2, spread(["node-2", "node-3"]), port=8080, limit="256Mi")
    c.endpoints(ns, "frontend")
    c.endpoints(ns, "catalog")
    c.requests(who(fe[0]), who(cat[0]), 0, 40, 3000)
    c.requests(who(fe[1]), who(cat[1]), 1, 40, 3000)
    for p in fe + cat:
        c.event(-3600, "Pulled", f"Container image \"{p['spec']['containers'][0]['image']}\" already present on machine", p, type_="Normal",
                host=p["spec"]["nodeName"], field=f"spec.containers{{{p['metadata']['labels']['app']}}}")
    return fe, cat


def who(p):
    return (p["metadata"]["labels"]["app"], p["metadata"]["namespace"], p["metadata"]["name"], p["spec"]["nodeName"])


def cgroup_of(p):
    u = p["metadata"]["uid"].replace("-", "_")
    return f"/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{p['status']['containerStatuses'][0]['containerID'].split('//')[1]}.scope"


def terminate(p, reason, code, at, restarts=1, message=None, waiting="CrashLoopBackOff", ready=False):
    cs = p["status"]["containerStatuses"][0]
    cs["lastState"] = {"terminated": {"exitCode": code, "reason": reason, "startedAt": "2026-03-13T22:00:05Z", "finishedAt": t(at),
                                      "containerID": cs["containerID"], **({"message": message} if message else {})}}
    cs["restartCount"] = restarts
    cs["ready"] = ready
    cs["started"] = False
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting, "message": f"back-off 10s restarting failed container={cs['name']} pod={p['metadata']['name']}_{p['metadata']['namespace']}({p['metadata']['uid']})"}}
    else:
        cs["state"] = {"running": {"startedAt": t(at + 2)}}
        cs["ready"] = True
    p["status"]["conditions"][0] = {"type": "Ready", "status": "False" if not ready and waiting else "True", "lastTransitionTime": t(at)}


NODES3 = ["node-1", "node-2", "node-3"]


def oom_cascade():
    c = Cluster("oom-cascade")
    for n in NODES3:
        c.node(n)
    background(c)
    cart = c.deployment("shop", "cart", 1, spread(["node-3"]), limit="2Gi")[0]
    co = c.deployment("shop", "checkout", 2, spread(["node-1", "node-2"]), limit="512Mi")
    c.requests(who(co[0]), who(cart), 0, 60, 1000, fail_from_ms=31_500, error="upstream connect error or disconnect/reset before headers",
               exception=("ConnectionRefusedError", "dial tcp 10.96.0.12:8080: connect: connection refused"), path="/cart/items")
    c.boot = "2026-03-14T06:12:03.500000Z"
    up = (BASE + timedelta(seconds=31) - datetime(2026, 3, 14, 6, 12, 3, 500000, tzinfo=timezone.utc)).total_seconds()
    c.oom_report(up, "java", 4711, cgroup_of(cart), 2097152, 2093904)
    terminate(cart, "OOMKilled", 137, 31)
    c.endpoints("shop", "cart", not_ready=[cart["metadata"]["name"]], changed=31)
    for i in range(25):
        src = co[i % 2]
        c.tcp(31_600 + i * 180, src["spec"]["nodeName"], src["status"]["podIP"], 40100 + i, cart["status"]["podIP"], 8080, "refused", 5120 + i % 2)
    c.event(41, "BackOff", f"Back-off restarting failed container cart in pod {cart['metadata']['name']}_shop({cart['metadata']['uid']})", cart,
            count=3, first=33, host="node-3", field="spec.containers{cart}")
    c.event(31, "Killing", "Stopping container cart", cart, type_="Normal", host="node-3", field="spec.containers{cart}")
    c.write("""
# oom-cascade — oom_container_limit

Deployment `shop/cart` (one replica, 2 GiB limit) grows to its memory limit; the kernel's memcg OOM
killer kills its JVM (dmesg, `CONSTRAINT_MEMCG`, systemd cgroup path of the pod); Kubernetes reports
`OOMKilled` (137) and back-off; the service loses its only endpoint; `checkout`'s connections to the
pod are refused and its requests fail with 503. Healthy `frontend` and `catalog` traffic around it.
""")


def node_oom():
    c = Cluster("node-oom")
    for n in NODES3:
        c.node(n)
    background(c)
    rep = c.deployment("shop", "reports", 2, spread(["node-2", "node-3"]), limit="8Gi")
    c.boot = "2026-03-13T21:40:00.000000Z"
    up = (BASE + timedelta(seconds=75) - datetime(2026, 3, 13, 21, 40, tzinfo=timezone.utc)).total_seconds()
    c.oom_report(up, "python3", 9120, cgroup_of(rep[0]), 0, 15052612, memcg=False)
    terminate(rep[0], "OOMKilled", 137, 75, waiting=None)
    c.event(75, "SystemOOM", "System OOM encountered, victim process: python3, pid: 9120", {"metadata": {"name": "node-2", "uid": uid("node-oom", "node", "node-2")}},
            kind="Node", host="node-2")
    c.write("""
# node-oom — oom_node

Node `node-2` runs out of memory: a `reports` pod without a tight limit (8 GiB on a 16 GiB node)
grows, and the global OOM killer (`CONSTRAINT_NONE`, "Out of memory: Killed process") kills its
python3. kubelet reports `SystemOOM` on the node; the container restarts `OOMKilled`. Not the
container's own limit: the node's.
""")


def eviction():
    c = Cluster("eviction-memory-pressure")
    c.node("node-1")
    c.node("node-2", conditions={"MemoryPressure": ("True", "KubeletHasInsufficientMemory", 58, "kubelet has insufficient memory available")})
    c.node("node-3")
    background(c)
    batch = c.deployment("shop", "indexer", 2, spread(["node-2", "node-3"]), limit="4Gi")
    p = batch[0]
    node2 = {"metadata": {"name": "node-2", "uid": uid("eviction-memory-pressure", "node", "node-2")}}
    c.event(58, "EvictionThresholdMet", "Attempting to reclaim memory", node2, kind="Node", host="node-2")
    msg = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 81232Ki. Container indexer was using 3203944Ki, "
           "request is 256Mi, has larger consumption of memory.")
    p["status"] = {"phase": "Failed", "reason": "Evicted", "message": msg, "startTime": "2026-03-13T22:00:01Z",
                   "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet", "lastTransitionTime": t(61)}],
                   "containerStatuses": [{"name": "indexer", "ready": False, "restartCount": 0, "image": p["spec"]["containers"][0]["image"],
                                          "imageID": "", "containerID": p["status"]["containerStatuses"][0]["containerID"],
                                          "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "finishedAt": t(62)}}, "lastState": {}}]}
    c.event(61, "Evicted", msg, p, host="node-2")
    c.event(61, "Killing", "Stopping container indexer", p, type_="Normal", host="node-2", field="spec.containers{indexer}")
    c.endpoints("shop", "indexer", not_ready=[p["metadata"]["name"]], changed=61)
    c.write("""
# eviction-memory-pressure — eviction_node_pressure

`node-2` reports `MemoryPressure`; kubelet's eviction manager evicts the `indexer` pod that uses far
more than it requests (real `Evicted` message), status `Failed`/`Evicted`, container
`ContainerStatusUnknown` 137 — not OOMKilled, and no kernel OOM kill.
""")


def liveness():
    c = Cluster("liveness-kill")
    for n in NODES3:
        c.node(n)
    background(c)
    pay = c.deployment("payments", "payments", 1, spread(["node-1"]), port=8443, limit="1Gi")[0]
    for k, at in enumerate([20, 30, 40]):
        c.event(at, "Unhealthy", f"Liveness probe failed: Get \"http://{pay['status']['podIP']}:8443/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                pay, count=k + 1, first=20, host="node-1", field="spec.containers{payments}")
    c.event(40, "Killing", "Container payments failed liveness probe, will be restarted", pay, type_="Normal", host="node-1", field="spec.containers{payments}")
    terminate(pay, "Error", 137, 41, waiting=None)
    c.endpoints("payments", "payments", not_ready=[pay["metadata"]["name"]], changed=41)
    c.write("""
# liveness-kill — liveness_probe_kill

The `payments` container stops answering `/healthz` in time (`context deadline exceeded`) three
times; kubelet kills it ("failed liveness probe, will be restarted"), it exits `Error` 137 — the same
exit code as an OOM kill, but no kernel OOM kill and no `OOMKilled`.
""")


def crash_loop():
    c = Cluster("crash-loop-app-error")
    for n in NODES3:
        c.node(n)
    background(c)
    api = c.deployment("shop", "recommender", 1, spread(["node-2"]), limit="512Mi")[0]
    terminate(api, "Error", 2, 50, restarts=4, message="panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x8a6d4f]\n\ngoroutine 1 [running]:\nmain.(*Ranker).Score(...)")
    c.event(52, "BackOff", f"Back-off restarting failed container recommender in pod {api['metadata']['name']}_shop({api['metadata']['uid']})", api,
            count=6, first=12, host="node-2", field="spec.containers{recommender}")
    c.endpoints("shop", "recommender", not_ready=[api["metadata"]["name"]], changed=12)
    c.write("""
# crash-loop-app-error — crash_loop_app_error

`recommender` panics on start (Go nil pointer dereference, exit 2) and loops in `CrashLoopBackOff`;
its termination message has the panic. Nothing outside it is broken.
""")


def dependency():
    c = Cluster("dependency-unreachable")
    for n in NODES3:
        c.node(n)
    background(c)
    pg = c.deployment("shop", "postgres", 1, spread(["node-3"]), port=5432, limit="2Gi")[0]
    orders = c.deployment("shop", "orders", 2, spread(["node-1", "node-2"]), limit="512Mi")
    pg_ip = next(s for s in c.services if s["metadata"]["name"] == "postgres")["spec"]["clusterIP"]
    # postgres was scaled away for maintenance: the service has no ready endpoint.
    pg["status"]["containerStatuses"][0]["ready"] = False
    c.endpoints("shop", "postgres", not_ready=[pg["metadata"]["name"]], changed=15)
    for i, o in enumerate(orders):
        terminate(o, "Error", 1, 30 + i * 4, restarts=3,
                  message=f"2026/03/14 10:00:{29 + i * 4:02d} FATAL: could not connect to database: dial tcp {pg_ip}:5432: connect: connection refused")
        c.event(40 + i, "BackOff", f"Back-off restarting failed container orders in pod {o['metadata']['name']}_shop({o['metadata']['uid']})", o,
                count=3, first=31, host=o["spec"]["nodeName"], field="spec.containers{orders}")
        for k in range(4):
            c.tcp(29_000 + i * 4000 + k * 50, o["spec"]["nodeName"], o["status"]["podIP"], 41000 + k, pg_ip, 5432, "refused", 6100 + i)
    c.endpoints("shop", "orders", not_ready=[o["metadata"]["name"] for o in orders], changed=30)
    c.write("""
# dependency-unreachable — dependency_unreachable

Both `orders` pods exit 1 with "dial tcp 10.96.…:5432: connect: connection refused": `postgres` has no
ready endpoint. The crash is caused by the unreachable dependency, named in the termination message
and seen by the kernel as refused connections to the service IP.
""")


def image_pull():
    c = Cluster("image-pull-failure")
    for n in NODES3:
        c.node(n)
    background(c)
    web = c.deployment("shop", "storefront", 3, spread(NODES3), limit="256Mi", image="registry.example.com/shop/storefront:2.4.0", available=2, changed=10)
    bad = web[2]
    img = "registry.example.com/shop/storefront:2.4.1"
    bad["spec"]["containers"][0]["image"] = img
    cs = bad["status"]["containerStatuses"][0]
    cs.update({"image": img, "imageID": "", "containerID": "", "ready": False, "started": False,
               "state": {"waiting": {"reason": "ImagePullBackOff", "message": f"Back-off pulling image \"{img}\""}}})
    bad["status"]["phase"] = "Pending"
    bad["status"]["conditions"][0] = {"type": "Ready", "status": "False", "lastTransitionTime": t(10)}
    msg = (f"Failed to pull image \"{img}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{img}\": "
           f"failed to resolve reference \"{img}\": {img}: not found")
    c.event(12, "Failed", msg, bad, count=4, first=10, host="node-3", field="spec.containers{storefront}")
    c.event(12, "Failed", "Error: ErrImagePull", bad, count=4, first=10, host="node-3", field="spec.containers{storefront}")
    c.event(40, "BackOff", f"Back-off pulling image \"{img}\"", bad, type_="Normal", count=9, first=14, host="node-3", field="spec.containers{storefront}")
    c.event(40, "Failed", "Error: ImagePullBackOff", bad, count=9, first=14, host="node-3", field="spec.containers{storefront}")
    c.endpoints("shop", "storefront", not_ready=[bad["metadata"]["name"]], changed=10)
    c.write("""
# image-pull-failure — image_pull_failure

A rollout of `storefront` to tag 2.4.1 that was never pushed: `ErrImagePull` → `ImagePullBackOff`
with containerd's real NotFound message; the deployment has 2 of 3 replicas available.
""")


def scheduling():
    c = Cluster("scheduling-failure")
    for n in NODES3:
        c.node(n)
    background(c)
    ml = c.deployment("shop", "search", 3, spread(NODES3), limit="12Gi", available=2, changed=5)
    p = ml[2]
    p["spec"].pop("nodeName")
    msg = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. "
           "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")
    p["status"] = {"phase": "Pending", "qosClass": "Guaranteed",
                   "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg, "lastTransitionTime": t(5)}]}
    c.event(65, "FailedScheduling", msg, p, count=7, first=5, component="default-scheduler")
    c.endpoints("shop", "search")
    c.write("""
# scheduling-failure — scheduling_failure

A third `search` replica asking for 12 Gi fits on no node: `PodScheduled=False`/`Unschedulable` and
`FailedScheduling` from default-scheduler with the real message; the deployment stays at 2 of 3.
""")


def node_not_ready():
    c = Cluster("node-not-ready")
    c.node("node-1")
    c.node("node-2", conditions={"Ready": ("Unknown", "NodeStatusUnknown", 20, "Kubelet stopped posting node status."),
                                 "MemoryPressure": ("Unknown", "NodeStatusUnknown", 20, "Kubelet stopped posting node status.")}, heartbeat=-20)
    c.node("node-3")
    background(c)
    inv = c.deployment("shop", "inventory", 1, spread(["node-2"]), limit="512Mi")[0]
    gw = c.deployment("shop", "gateway", 1, spread(["node-1"]), limit="256Mi")[0]
    n2 = {"metadata": {"name": "node-2", "uid": uid("node-not-ready", "node", "node-2")}}
    c.event(20, "NodeNotReady", "Node node-2 status is now: NodeNotReady", n2, kind="Node", type_="Normal", component="node-controller")
    c.event(21, "NodeNotReady", "Node is not ready", inv, component="node-controller")
    c.endpoints("shop", "inventory", not_ready=[inv["metadata"]["name"]], changed=21)
    inv_ip = inv["status"]["podIP"]
    for k in range(6):
        c.tcp(26_000 + k * 2000, "node-1", gw["status"]["podIP"], 42000 + k, inv_ip, 8080, "timeout", 3301)
    c.requests(who(gw), who(inv), 10, 30, 1000, fail_from_ms=21_000, error="context deadline exceeded", path="/inventory")
    c.write("""
# node-not-ready — node_not_ready

`node-2` stops posting status (`Ready=Unknown`, "Kubelet stopped posting node status."); the node
controller marks it NotReady and its `inventory` endpoint not ready; the gateway's connections to
the pod time out and its requests fail with `context deadline exceeded`.
""")


def dns():
    c = Cluster("dns-failure")
    for n in NODES3:
        c.node(n)
    background(c)
    notif = c.deployment("shop", "notifier", 1, spread(["node-1"]), limit="256Mi")[0]
    terminate(notif, "Error", 1, 35, restarts=2,
              message="Error: dial tcp: lookup smtp-relay.mail.svc.cluster.local on 10.96.0.10:53: no such host")
    c.event(45, "BackOff", f"Back-off restarting failed container notifier in pod {notif['metadata']['name']}_shop({notif['metadata']['uid']})", notif,
            count=2, first=37, host="node-1", field="spec.containers{notifier}")
    c.endpoints("shop", "notifier", not_ready=[notif["metadata"]["name"]], changed=35)
    c.write("""
# dns-failure — dns_failure

`notifier` exits because the name of its SMTP relay does not resolve ("lookup … on 10.96.0.10:53:
no such host", the cluster DNS answering NXDOMAIN for a service that was renamed).
""")


def network():
    c = Cluster("network-unreachable")
    for n in NODES3:
        c.node(n)
    background(c)
    api = c.deployment("shop", "billing", 2, spread(["node-1", "node-2"]), limit="512Mi")
    bank = c.deployment("payments", "ledger", 1, spread(["node-3"]), port=9090, limit="1Gi")[0]
    c.endpoints("shop", "billing")
    c.endpoints("payments", "ledger")
    ledger_ip = next(s for s in c.services if s["metadata"]["name"] == "ledger")["spec"]["clusterIP"]
    for k in range(12):
        src = api[k % 2]
        c.retransmits(20_000 + k * 900, src["spec"]["nodeName"], src["status"]["podIP"], 43000 + k, ledger_ip, 9090, 12)
        c.tcp(27_000 + k * 900, src["spec"]["nodeName"], src["status"]["podIP"], 43000 + k, ledger_ip, 9090, "timeout", 7001 + k % 2)
    c.requests(who(api[0]), who(bank), 0, 40, 1000, fail_from_ms=20_000, error="connect: connection timed out",
               exception=("ConnectTimeoutError", f"dial tcp {ledger_ip}:9090: connect: connection timed out"), path="/ledger/entries")
    c.write("""
# network-unreachable — network_unreachable

`billing` cannot reach `payments/ledger` after a NetworkPolicy change: its SYNs are retransmitted and
the connections time out (`SYN_SENT → CLOSE` after retransmits, not refused); its requests fail with
"connection timed out". The ledger pod itself is healthy and ready.
""")


def config():
    c = Cluster("config-error")
    for n in NODES3:
        c.node(n)
    background(c)
    acc = c.deployment("shop", "accounts", 2, spread(["node-1", "node-3"]), limit="512Mi", available=1, changed=8)
    bad = acc[1]
    cs = bad["status"]["containerStatuses"][0]
    cs.update({"ready": False, "started": False, "containerID": "",
               "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"db-creds\" not found"}}})
    bad["status"]["conditions"][0] = {"type": "Ready", "status": "False", "lastTransitionTime": t(8)}
    c.event(70, "Failed", "Error: secret \"db-creds\" not found", bad, count=8, first=8, host="node-3", field="spec.containers{accounts}")
    c.endpoints("shop", "accounts", not_ready=[bad["metadata"]["name"]], changed=8)
    c.write("""
# config-error — config_error

A new `accounts` pod cannot start: `CreateContainerConfigError`, `secret "db-creds" not found` (the
secret was not created in this namespace); the deployment has 1 of 2 replicas available.
""")


def cri(at, stream, text, ms=0):
    """One line of a kubelet CRI log file."""
    return f"{tn(at, ms)} {stream} F {text}\n"


def kubelet_log_path(p, restart):
    m = p["metadata"]
    return f"logs/{m['namespace']}_{m['name']}_{m['uid']}/{m['labels']['app']}/{restart}.log"


def log_dependency():
    c = Cluster("log-dependency-unreachable")
    for n in NODES3:
        c.node(n)
    background(c)
    pay = c.deployment("shop", "payments", 1, spread(["node-1"]), limit="512Mi")[0]
    checkout = c.deployment("shop", "checkout", 1, spread(["node-2"]), limit="512Mi")[0]
    c.endpoints("shop", "checkout")
    # No termination message: the cause is only in the container's own log.
    terminate(pay, "Error", 1, 31, restarts=2)
    c.event(40, "BackOff", f"Back-off restarting failed container payments in pod {pay['metadata']['name']}_shop({pay['metadata']['uid']})", pay,
            count=3, first=13, host="node-1", field="spec.containers{payments}")
    c.endpoints("shop", "payments", not_ready=[pay["metadata"]["name"]], changed=12)
    c.requests(who(checkout), who(pay), 14, 12, 2500, fail_from_ms=0, error="503 Service Unavailable: no healthy upstream", path="/api/charge")
    for restart, at in [(1, 5), (2, 25)]:
        c.files[kubelet_log_path(pay, restart)] = "".join([
            cri(at, "stdout", '{"level":"info","msg":"payments 3.2.0 starting","pid":1}'),
            cri(at, "stdout", '{"level":"info","msg":"loaded 14 merchant profiles"}', 40),
            cri(at + 4, "stderr", '{"level":"warn","msg":"ledger connection attempt 1 failed, retrying in 2s"}'),
            cri(at + 5, "stderr", '{"level":"error","msg":"could not connect to prod-db:3333: dial tcp 10.20.0.40:3333: connect: connection refused"}'),
            cri(at + 5, "stderr", '{"level":"fatal","msg":"giving up: ledger database unavailable"}', 2),
        ])
    c.write("""
# log-dependency-unreachable — dependency_unreachable (from the container's log)

`payments` exits 1 and loops in `CrashLoopBackOff`; its termination message is empty. Only its own
log (kubelet CRI files `logs/<ns>_<pod>_<uid>/payments/{1,2}.log`) says why: "could not connect to
prod-db:3333: … connection refused" — a database outside the cluster. `checkout`'s calls fail with
503. Without the log the verdict could only be "the app crashes".
""")


def log_missing_variable():
    c = Cluster("log-missing-variable")
    for n in NODES3:
        c.node(n)
    background(c)
    notifier = c.deployment("shop", "notifier", 1, spread(["node-3"]), limit="256Mi")[0]
    terminate(notifier, "Error", 1, 44, restarts=5)
    c.event(50, "BackOff", f"Back-off restarting failed container notifier in pod {notifier['metadata']['name']}_shop({notifier['metadata']['uid']})", notifier,
            count=5, first=5, host="node-3", field="spec.containers{notifier}")
    c.endpoints("shop", "notifier", not_ready=[notifier["metadata"]["name"]], changed=5)
    # `kubectl logs --previous` as someone saved it: no times, no prefix.
    c.files["kubectl-logs-previous.txt"] = "\n".join([
        "notifier 2.4.1 (go1.22.1) starting",
        "reading configuration from the environment",
        "SMTP_HOST=smtp.internal.example.com SMTP_PORT=587",
        "FATAL: environment variable DEPLOY_ENV is not set",
        "exit status 1",
    ]) + "\n"
    c.extra_args = ["--pod", f"shop/{notifier['metadata']['name']}", "--container", "notifier", "--previous"]
    c.write("""
# log-missing-variable — config_error (from `kubectl logs --previous`)

`notifier` exits 1 at start, five times; the Pod says only "Error". The output of
`kubectl logs --previous` (saved without `--timestamps`, imported with `--pod … --container notifier
--previous`) says "FATAL: environment variable DEPLOY_ENV is not set": a missing variable, a
configuration error. Its lines have no times; tapio places them just before the run ended, as the
Pod's `lastState` states it, and marks them approximate.
""")


def quoted_errors():
    c = Cluster("control-quoted-errors")
    for n in NODES3:
        c.node(n)
    background(c)
    ledger = c.deployment("shop", "ledger", 1, spread(["node-1"]), limit="512Mi")[0]
    c.endpoints("shop", "ledger")
    # Running, ready, never restarted; its log quotes errors it recovered from or only reports.
    c.files[kubelet_log_path(ledger, 0)] = "".join([
        cri(0, "stdout", '{"level":"info","msg":"ledger 5.1.2 starting","pid":1}'),
        cri(2, "stderr", '{"level":"warn","msg":"could not connect to ledger-db:5432: dial tcp 10.20.0.41:5432: connect: connection refused; retrying in 1s"}'),
        cri(3, "stdout", '{"level":"info","msg":"connected to ledger-db:5432"}'),
        cri(20, "stderr", '{"level":"warn","msg":"environment variable TRACING_ENDPOINT is not set: tracing disabled"}'),
        cri(21, "stdout", '{"level":"info","msg":"self-test passed (12 checks)"}'),
        cri(40, "stdout", '{"level":"info","msg":"serving on :8080"}'),
    ])
    c.write("""
# control-quoted-errors — no incident

`ledger` runs, ready, with no restart and no failed request; its log quotes a refused connection
it retried at start (and then connected) and an optional variable that is not set. A cause a
log line names is not an incident until something fails with it: at most low severity.
""")


def volume():
    c = Cluster("volume-failure")
    for n in NODES3:
        c.node(n)
    background(c)
    db = c.deployment("shop", "orders-db", 1, spread(["node-2"]), limit="2Gi")[0]
    # The pod was rescheduled from node-1 to node-2; its ReadWriteOnce disk is still attached to
    # node-1, so it waits in ContainerCreating.
    cs = db["status"]["containerStatuses"][0]
    cs.update({"ready": False, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}, "containerID": ""})
    db["status"]["phase"] = "Pending"
    db["status"].pop("podIP", None)
    db["status"]["conditions"][0] = {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": t(0)}
    db["metadata"]["creationTimestamp"] = t(0)
    db["status"]["startTime"] = t(0)
    db["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "orders-db-data"}}]
    pv = "pvc-6f1c3b2a-9d4e-4c1b-8a7f-2e5d9c0b1a44"
    c.event(2, "FailedAttachVolume", f"Multi-Attach error for volume \"{pv}\" Volume is already exclusively attached to one node and can't be attached to another",
            db, count=1, first=2, component="attachdetach-controller")
    c.event(122, "FailedMount", "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-8xk2p]: "
            "timed out waiting for the condition", db, count=1, first=122, host="node-2")
    c.endpoints("shop", "orders-db")
    c.write("""
# volume-failure — volume_failure

`orders-db` was rescheduled to node-2, but its ReadWriteOnce disk is still attached to node-1: the
attach/detach controller reports `Multi-Attach error`, the kubelet times out mounting it, and the
pod waits in `ContainerCreating` with no endpoint.
""")


def admission():
    c = Cluster("admission-denied")
    for n in NODES3:
        c.node(n)
    background(c)
    c.deployment("shop", "cart", 3, spread(NODES3), limit="512Mi", available=2, changed=0)
    rs = next(w for w in c.workloads if w["kind"] == "ReplicaSet" and w["metadata"]["name"].startswith("cart-"))
    rs_name = rs["metadata"]["name"]
    # Scaled from 2 to 3: the third pod would take the namespace over its memory quota.
    c.pods[:] = [p for p in c.pods if not (p["metadata"]["labels"].get("app") == "cart" and p["metadata"]["name"].endswith(h(c.name, "cart", 2, n=5)))]
    c.endpoints("shop", "cart")
    msg = (f"Error creating: pods \"{rs_name}-x7k2p\" is forbidden: exceeded quota: shop-compute, requested: limits.memory=512Mi, "
           "used: limits.memory=7680Mi, limited: limits.memory=8Gi")
    c.event(30, "FailedCreate", msg, rs, kind="ReplicaSet", count=9, first=1, component="replicaset-controller")
    c.write("""
# admission-denied — admission_denied

`shop/cart` is scaled to 3 replicas, but its ReplicaSet cannot create the third pod: the
namespace's ResourceQuota `shop-compute` has no memory left (`FailedCreate … exceeded quota`).
Two pods serve; the third never exists, so no pod-level symptom shows it.
""")


def init_container():
    c = Cluster("init-container-failure")
    for n in NODES3:
        c.node(n)
    background(c)
    api = c.deployment("shop", "accounts", 1, spread(["node-1"]), limit="512Mi")[0]
    # Its init container runs the schema migration, which fails; the app container never starts.
    api["spec"]["initContainers"] = [{"name": "migrate", "image": "registry.example.com/shop/accounts-migrate:4.2.0",
                                      "command": ["/app/migrate", "up"]}]
    cs = api["status"]["containerStatuses"][0]
    cs.update({"ready": False, "started": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}, "containerID": ""})
    api["status"]["phase"] = "Pending"
    api["status"]["conditions"][0] = {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": t(0)}
    api["status"]["conditions"].append({"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                                        "message": "containers with incomplete status: [migrate]", "lastTransitionTime": t(0)})
    mid = "containerd://" + cid(c.name, "migrate")
    api["status"]["initContainerStatuses"] = [{
        "name": "migrate", "image": "registry.example.com/shop/accounts-migrate:4.2.0", "imageID": "", "containerID": mid,
        "ready": False, "started": False, "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": f"back-off 1m20s restarting failed container=migrate pod={api['metadata']['name']}_shop({api['metadata']['uid']})"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t(38), "finishedAt": t(40), "containerID": mid,
                                     "message": "error: migration 0042_add_invoice_index failed: ERROR: relation \"invoices\" does not exist (SQLSTATE 42P01)"}}}]
    c.event(55, "BackOff", f"Back-off restarting failed container migrate in pod {api['metadata']['name']}_shop({api['metadata']['uid']})", api,
            count=4, first=6, host="node-1", field="spec.initContainers{migrate}")
    c.endpoints("shop", "accounts", not_ready=[api["metadata"]["name"]], changed=0)
    c.write("""
# init-container-failure — crash_loop_app_error (in an init container)

`accounts` cannot start: its init container `migrate` fails the schema migration (exit 1, `relation
"invoices" does not exist`) and loops in back-off (`Init:CrashLoopBackOff`); the app container never
runs and the Service has no endpoint.
""")


def certificate():
    c = Cluster("certificate-expired")
    for n in NODES3:
        c.node(n)
    fe, _ = background(c)
    pay = c.deployment("shop", "payments", 2, spread(["node-1", "node-3"]), limit="512Mi")
    c.endpoints("shop", "payments")
    # The payments service's serving certificate expired at midnight; frontend's calls over TLS fail
    # at the handshake from then on.
    err = ('Post "https://payments.shop.svc:8443/api/charge": tls: failed to verify certificate: x509: certificate has expired '
           "or is not yet valid: current time 2026-03-14T10:00:12Z is after 2026-03-14T00:00:00Z")
    c.requests(who(fe[0]), who(pay[0]), 0, 30, 2000, fail_from_ms=12000, error=err, path="/api/charge",
               exception=("*tls.CertificateVerificationError", err))
    c.write("""
# certificate-expired — certificate_expired

The `payments` Service's serving certificate expired; from 10:00:12 every call of `frontend` fails
at the TLS handshake with Go's `x509: certificate has expired or is not yet valid`. The pods run,
ready; only the requests say what is wrong. Renew the certificate.
""")


def readiness():
    c = Cluster("readiness-failure")
    for n in NODES3:
        c.node(n)
    fe, _ = background(c)
    pods = c.deployment("shop", "search", 2, spread(["node-2", "node-3"]), limit="1Gi")
    for p in pods:
        ctr = p["spec"]["containers"][0]
        ctr["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3}
        cs = p["status"]["containerStatuses"][0]
        cs["ready"] = False
        p["status"]["conditions"][0] = {"type": "Ready", "status": "False", "lastTransitionTime": t(6)}
        p["status"]["conditions"].append({"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                                           "message": "containers with unready status: [search]", "lastTransitionTime": t(6)})
        c.event(60, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", p, count=12, first=5,
                host=p["spec"]["nodeName"], field="spec.containers{search}")
    c.endpoints("shop", "search", not_ready=[p["metadata"]["name"] for p in pods], changed=6)
    c.requests(who(fe[0]), who(pods[0]), 8, 16, 3000, fail_from_ms=0, error="503 Service Unavailable: no healthy upstream", path="/api/search")
    c.write("""
# readiness-failure — readiness_failure

Both `search` pods keep running (no restart) but answer their readiness probe with 503, so the
endpoints controller takes them out of the `search` Service: no ready endpoint, and the frontend's
searches fail with 503. Not a liveness kill: nothing is restarted.
""")


def job(failing=True):
    name = "job-failed" if failing else "control-job-complete"
    c = Cluster(name)
    for n in NODES3:
        c.node(n)
    background(c)
    job = "nightly-report-29561400"
    job_uid = uid(c.name, "job", job)
    image = "registry.example.com/shop/reports:3.2.0"
    trace = ("Traceback (most recent call last):\n  File \"/app/report.py\", line 88, in <module>\n    main()\n"
             "  File \"/app/report.py\", line 41, in main\n    day = datetime.strptime(os.environ[\"REPORT_DAY\"], \"%Y-%m-%d\")\n"
             "ValueError: time data '14/03/2026' does not match format '%Y-%m-%d'")
    runs = [(0, 6), (16, 21), (42, 47)] if failing else [(0, 38)]
    pods = []
    for i, (start, end) in enumerate(runs):
        pname = f"{job}-{h(c.name, 'jobpod', i, n=5)}"
        node = NODES3[i % 3]
        n = len(c.pods)
        cs = {"name": "report", "image": image, "imageID": image.split(":")[0] + "@sha256:" + h(image, n=64),
              "containerID": "containerd://" + cid(c.name, pname), "ready": False, "started": False, "restartCount": 0,
              "state": {"terminated": {"exitCode": 1 if failing else 0, "reason": "Error" if failing else "Completed",
                                       "startedAt": t(start + 1), "finishedAt": t(end), "containerID": "containerd://" + cid(c.name, pname),
                                       **({"message": trace} if failing else {})}},
              "lastState": {}}
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": pname, "namespace": "shop", "uid": uid(c.name, "pod", pname), "resourceVersion": str(10200 + n),
                          "creationTimestamp": t(start), "labels": {"batch.kubernetes.io/job-name": job, "job-name": job,
                                                                    "batch.kubernetes.io/controller-uid": job_uid, "controller-uid": job_uid},
                          "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": job_uid, "controller": True,
                                               "blockOwnerDeletion": True}]},
             "spec": {"nodeName": node, "restartPolicy": "Never",
                      "containers": [{"name": "report", "image": image, "env": [{"name": "REPORT_DAY", "value": "14/03/2026"}],
                                      "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi", "cpu": "500m"}}}]},
             "status": {"phase": "Failed" if failing else "Succeeded", "podIP": "10.244.%d.%d" % (1 + n // 200, 10 + n % 200),
                        "hostIP": "192.168.10.%d" % (11 + int(node.rsplit("-", 1)[1])), "startTime": t(start), "qosClass": "Burstable",
                        "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": t(end)}],
                        "containerStatuses": [cs]}}
        c.pods.append(p)
        pods.append(p)
        c.event(start, "SuccessfulCreate", f"Created pod: {pname}", {"metadata": {"name": job, "namespace": "shop", "uid": job_uid}},
                kind="Job", type_="Normal", component="job-controller")
    done = runs[-1][1] + 1
    conditions = ([{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit", "lastProbeTime": t(done), "lastTransitionTime": t(done)},
                   {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit", "lastProbeTime": t(done), "lastTransitionTime": t(done)}]
                  if failing else
                  [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": t(done), "lastTransitionTime": t(done)},
                   {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": t(done), "lastTransitionTime": t(done)}])
    c.workloads.append({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job, "namespace": "shop", "uid": job_uid, "resourceVersion": "9301", "creationTimestamp": t(0),
                     "labels": {"batch.kubernetes.io/job-name": job},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly-report", "uid": uid(c.name, "cronjob"),
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never"}}},
        "status": {"startTime": t(0), **({"failed": 3} if failing else {"succeeded": 1, "completionTime": t(done)}), "ready": 0,
                   "terminating": 0, "uncountedTerminatedPods": {}, "conditions": conditions},
    })
    if failing:
        c.event(done, "BackoffLimitExceeded", "Job has reached the specified backoff limit", {"metadata": {"name": job, "namespace": "shop", "uid": job_uid}},
                kind="Job", component="job-controller")
        c.write("""
# job-failed — job_failed

The CronJob `shop/nightly-report`'s Job runs three pods (`backoffLimit: 2`); each exits 1 with a
Python `ValueError` (`REPORT_DAY` in the wrong date format) and the Job fails with
`BackoffLimitExceeded`. Nothing else is broken, but the report was not made: at least medium.
""")
    else:
        c.event(done, "Completed", "Job completed", {"metadata": {"name": job, "namespace": "shop", "uid": job_uid}},
                kind="Job", type_="Normal", component="job-controller")
        c.write("""
# control-job-complete — no incident

The same Job runs one pod that exits 0; the Job completes. No incident.
""")


def template(image, env, args=None):
    """A ReplicaSet's pod template, as the Deployment controller copies it."""
    c = {"name": "cart", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}],
         "env": [{"name": n, "value": v} for n, v in env],
         "resources": {"limits": {"memory": "512Mi", "cpu": "1"}, "requests": {"memory": "512Mi", "cpu": "250m"}},
         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}}
    if args:
        c["args"] = args
    return {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [c]}}


def bad_rollout(good=False):
    c = Cluster("control-good-rollout" if good else "bad-rollout")
    for n in NODES3:
        c.node(n)
    background(c)
    old = c.deployment("shop", "cart", 3, spread(NODES3), limit="512Mi")
    dep = next(w for w in c.workloads if w["kind"] == "Deployment" and w["metadata"]["name"] == "cart")
    rs1 = next(w for w in c.workloads if w["kind"] == "ReplicaSet" and w["metadata"]["name"].startswith("cart-"))
    env = [("DB_HOST", "cart-db.shop.svc"), ("CACHE_URL", "redis://cart-cache:6379")]
    rs1["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": "3",
                                      "deployment.kubernetes.io/max-replicas": "4"}
    rs1["spec"]["template"] = template("registry.example.com/shop/cart:1.9.3", env)
    # Revision 2: a new image and a flag the new binary does not know.
    rs2_name = f"cart-{h(c.name, 'cart', 'rev2', n=10)}"
    rs2_uid = uid(c.name, "rs", "cart", "rev2")
    image2 = "registry.example.com/shop/cart:1.10.0"
    c.workloads.append({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs2_name, "namespace": "shop", "uid": rs2_uid, "resourceVersion": "9188", "creationTimestamp": t(0),
                     "labels": {"app": "cart", "pod-template-hash": rs2_name.rsplit("-", 1)[1]},
                     "annotations": {"deployment.kubernetes.io/revision": "2", "deployment.kubernetes.io/desired-replicas": "3",
                                     "deployment.kubernetes.io/max-replicas": "4"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart", "uid": dep["metadata"]["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cart", "pod-template-hash": rs2_name.rsplit("-", 1)[1]}},
                 "template": template(image2, env + [("RECS_ENABLED", "true")], args=["--cache-size=512Mi"])},
        "status": {"replicas": 1, "fullyLabeledReplicas": 1, "observedGeneration": 1},
    })
    dep["metadata"]["generation"] = 4
    dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    dep["status"].update({"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 1,
                          "observedGeneration": 4})
    dep["status"]["conditions"][1].update({"reason": "ReplicaSetUpdated", "message": f"ReplicaSet \"{rs2_name}\" is progressing.",
                                           "lastUpdateTime": t(0)})
    new = c.pod("shop", f"{rs2_name}-{h(c.name, 'cart', 'rev2', 0, n=5)}", "cart", rs2_name, rs2_uid, "node-3", 8080, image2, "512Mi")
    new["metadata"]["creationTimestamp"] = t(0)
    new["status"]["startTime"] = t(1)
    new["spec"]["containers"][0]["args"] = ["--cache-size=512Mi"]
    if good:
        # The same change, and the new pod starts and serves: a rollout is no incident.
        new["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": t(4)}}
        new["status"]["conditions"][0] = {"type": "Ready", "status": "True", "lastTransitionTime": t(9)}
        c.event(0, "ScalingReplicaSet", f"Scaled up replica set {rs2_name} from 0 to 1", dep, kind="Deployment", type_="Normal",
                component="deployment-controller")
        c.event(2, "Pulled", f"Successfully pulled image \"{image2}\" in 1.904s (1.904s including waiting). Image size: 48213954 bytes.", new,
                type_="Normal", host="node-3", field="spec.containers{cart}")
        c.endpoints("shop", "cart", changed=9)
        c.write("""
# control-good-rollout — no incident

Deployment `shop/cart` rolls out revision 2 (the same change as `bad-rollout`) and the new pod
starts, becomes ready and serves beside the three of revision 1: a change with no failure after it
is no incident.
""")
        return
    terminate(new, "Error", 1, 48, restarts=3, message="Error: unknown flag: --cache-size\nUsage:\n  cart [flags]\n")
    c.event(0, "ScalingReplicaSet", f"Scaled up replica set {rs2_name} from 0 to 1", dep, kind="Deployment", type_="Normal",
            component="deployment-controller")
    c.event(2, "Pulled", f"Successfully pulled image \"{image2}\" in 1.904s (1.904s including waiting). Image size: 48213954 bytes.", new,
            type_="Normal", host="node-3", field="spec.containers{cart}")
    c.event(50, "BackOff", f"Back-off restarting failed container cart in pod {new['metadata']['name']}_shop({new['metadata']['uid']})", new,
            count=5, first=8, host="node-3", field="spec.containers{cart}")
    c.endpoints("shop", "cart", not_ready=[new["metadata"]["name"]], changed=3)
    c.write("""
# bad-rollout — bad_rollout

Deployment `shop/cart` rolls out revision 2 (image `cart:1.10.0`, a new `--cache-size` flag and
`RECS_ENABLED`): the new ReplicaSet's pod exits 1 on start (`Error: unknown flag: --cache-size`) and
loops in `CrashLoopBackOff`, while the three pods of revision 1 keep serving. The way out is to roll
back to revision 1.
""")


def managed(at, manager="kubectl-edit", op="Update"):
    """`metadata.managedFields` as `kubectl get -o json` shows it: who wrote the object, and when."""
    return [{"manager": manager, "operation": op, "apiVersion": "v1", "time": t(at), "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {}}}]


def config_map(c, ns, name, data, at, rv, created=-86400, manager="kubectl-edit"):
    c.workloads.append({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "uid": uid(c.name, "cm", ns, name), "resourceVersion": str(rv),
                     "creationTimestamp": t(created), "managedFields": managed(at, manager)},
        "data": data,
    })


def reads_config(pods, name):
    """The pods mount a ConfigMap and take their environment from it."""
    for p in pods:
        p["spec"]["volumes"] = [{"name": "config", "configMap": {"name": name, "defaultMode": 420}}]
        ctr = p["spec"]["containers"][0]
        ctr["envFrom"] = [{"configMapRef": {"name": name}}]
        ctr["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app", "readOnly": True}]


def config_change(quiet=False):
    c = Cluster("config-change")
    for n in NODES3:
        c.node(n)
    background(c)
    old = c.deployment("shop", "cart", 3, spread(NODES3), limit="512Mi")
    reads_config(old, "cart-config")
    dep = next(w for w in c.workloads if w["kind"] == "Deployment" and w["metadata"]["name"] == "cart")
    rs1 = next(w for w in c.workloads if w["kind"] == "ReplicaSet" and w["metadata"]["name"].startswith("cart-"))
    env = [("DB_HOST", "cart-db.shop.svc")]
    tmpl = template("registry.example.com/shop/cart:1.9.3", env)
    tmpl["spec"]["volumes"] = old[0]["spec"]["volumes"]
    tmpl["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "cart-config"}}]
    rs1["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    rs1["spec"]["template"] = tmpl
    base = {"FEATURE_FLAGS": "recs=off,wishlist=on", "app.yaml": "server:\n  port: 8080\nlog:\n  level: info\n"}
    config_map(c, "shop", "cart-config", {**base, "DB_POOL_SIZE": "20"}, -86400, 7001)
    # At 0 someone edits the pool size; at 20 `kubectl rollout restart` makes the pods read it.
    config_map(c, "shop", "cart-config", {**base, "DB_POOL_SIZE": "0"}, 0, 7188)
    rs2_name = f"cart-{h(c.name, 'cart', 'rev2', n=10)}"
    rs2_uid = uid(c.name, "rs", "cart", "rev2")
    tmpl2 = json.loads(json.dumps(tmpl))
    tmpl2["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": t(20)}
    image = "registry.example.com/shop/cart:1.9.3"
    c.workloads.append({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs2_name, "namespace": "shop", "uid": rs2_uid, "resourceVersion": "9188", "creationTimestamp": t(20),
                     "labels": {"app": "cart", "pod-template-hash": rs2_name.rsplit("-", 1)[1]},
                     "annotations": {"deployment.kubernetes.io/revision": "2"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart", "uid": dep["metadata"]["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cart", "pod-template-hash": rs2_name.rsplit("-", 1)[1]}},
                 "template": tmpl2},
        "status": {"replicas": 1, "fullyLabeledReplicas": 1, "observedGeneration": 1},
    })
    dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    dep["status"].update({"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 1})
    dep["status"]["conditions"][1].update({"reason": "ReplicaSetUpdated", "message": f"ReplicaSet \"{rs2_name}\" is progressing.",
                                           "lastUpdateTime": t(20)})
    new = c.pod("shop", f"{rs2_name}-{h(c.name, 'cart', 'rev2', 0, n=5)}", "cart", rs2_name, rs2_uid, "node-2", 8080, image, "512Mi")
    reads_config([new], "cart-config")
    new["metadata"]["creationTimestamp"] = t(20)
    new["status"]["startTime"] = t(21)
    terminate(new, "Error", 1, 66, restarts=3,
              message="invalid configuration: DB_POOL_SIZE must be between 1 and 200, got 0")
    c.event(20, "ScalingReplicaSet", f"Scaled up replica set {rs2_name} from 0 to 1", dep, kind="Deployment", type_="Normal",
            component="deployment-controller")
    c.event(68, "BackOff", f"Back-off restarting failed container cart in pod {new['metadata']['name']}_shop({new['metadata']['uid']})", new,
            count=4, first=26, host="node-2", field="spec.containers{cart}")
    c.endpoints("shop", "cart", not_ready=[new["metadata"]["name"]], changed=21)
    c.write("""
# config-change — config_change

At 10:00:00 someone edits ConfigMap `shop/cart-config` (`DB_POOL_SIZE` 20 → 0; tapio keeps only
the keys and a hash of each value); at 10:00:20 `kubectl rollout restart deployment/cart` makes a new
ReplicaSet whose pod template is unchanged — a restart to pick the configuration up. The new pod
exits 1 ("invalid configuration: DB_POOL_SIZE must be between 1 and 200, got 0") and loops in
`CrashLoopBackOff`; the three old pods, started before the change, keep serving. The cause is the
configuration change, not the rollout: rolling back to revision 1 would restart into the same
ConfigMap.
""")


def policy(c, ns, name, selector, types, egress=None, ingress=None, created=0):
    spec = {"podSelector": selector, "policyTypes": types}
    if egress is not None:
        spec["egress"] = egress
    if ingress is not None:
        spec["ingress"] = ingress
    c.workloads.append({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "uid": uid(c.name, "netpol", ns, name), "resourceVersion": str(8800 + len(c.workloads)),
                     "generation": 1, "creationTimestamp": t(created)},
        "spec": spec,
    })


def network_policy():
    c = Cluster("network-policy")
    for n in NODES3:
        c.node(n)
    background(c)
    checkout = c.deployment("shop", "checkout", 1, spread(["node-2"]), limit="512Mi")[0]
    pay = c.deployment("shop", "payments", 1, spread(["node-1"]), limit="512Mi")[0]
    c.endpoints("shop", "checkout")
    c.endpoints("shop", "payments")
    # A default-deny of egress for the whole namespace, with one allow rule — and none for DNS.
    policy(c, "shop", "restrict-egress", {}, ["Egress"],
           egress=[{"to": [{"podSelector": {"matchLabels": {"app": "payments"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}], created=30)
    lookup = ("dial tcp: lookup payments.shop.svc.cluster.local on 10.96.0.10:53: "
              f"read udp {checkout['status']['podIP']}:41873->10.96.0.10:53: i/o timeout")
    c.requests(who(checkout), who(pay), 0, 60, 1000, fail_from_ms=31_000, error="upstream request failed",
               exception=("net.OpError", lookup), path="/api/charge")
    # Its database outside the cluster: the SYNs are dropped now.
    for k in range(10):
        c.tcp(33_000 + k * 1500, "node-2", checkout["status"]["podIP"], 51000 + k, "10.20.0.41", 5432, "timeout", 4100)
    c.files[kubelet_log_path(checkout, 0)] = "".join([
        cri(0, "stdout", '{"level":"info","msg":"checkout 4.2.0 serving on :8080"}'),
        cri(33, "stderr", '{"level":"error","msg":"charge failed","error":"' + lookup + '"}'),
        cri(36, "stderr", '{"level":"error","msg":"orders db: dial tcp 10.20.0.41:5432: connect: connection timed out"}'),
        cri(41, "stderr", '{"level":"error","msg":"charge failed","error":"' + lookup + '"}'),
    ])
    c.write("""
# network-policy — network_policy

At 10:00:30 NetworkPolicy `shop/restrict-egress` is created: every pod of `shop` may now send only
to `app=payments` on TCP 8080 — and not to the cluster DNS. From then on `checkout` cannot resolve
`payments.shop.svc.cluster.local` ("lookup … on 10.96.0.10:53: … i/o timeout"), its requests fail,
and its connections to the orders database (10.20.0.41:5432, outside the cluster) time out. The
policy is the cause; the way out is a rule that lets DNS (UDP/TCP 53 to kube-dns) out, or undoing it.
""")


def quiet_changes():
    c = Cluster("control-quiet-changes")
    for n in NODES3:
        c.node(n)
    fe, cat = background(c)
    reads_config(fe, "frontend-config")
    config_map(c, "shop", "frontend-config", {"BANNER_TEXT": "Spring sale", "THEME": "light"}, -86400, 7001)
    config_map(c, "shop", "frontend-config", {"BANNER_TEXT": "Summer sale", "THEME": "light"}, 10, 7190)
    reports = c.deployment("shop", "reports", 1, spread(["node-3"]), limit="256Mi")
    c.endpoints("shop", "reports")
    # Nothing calls `reports`: a policy that denies all its ingress blocks nothing in use.
    policy(c, "shop", "deny-ingress-reports", {"matchLabels": {"app": "reports"}}, ["Ingress"], ingress=[], created=5)
    # node-3 is cordoned for maintenance; nothing needs to be scheduled.
    n3 = next(n for n in c.nodes if n["metadata"]["name"] == "node-3")
    cordoned = json.loads(json.dumps(n3))
    cordoned["metadata"]["resourceVersion"] = "4902"
    cordoned["spec"]["unschedulable"] = True
    cordoned["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": t(15)}]
    for cond in cordoned["status"]["conditions"]:
        cond["lastHeartbeatTime"] = t(15)
    c.nodes.append(cordoned)
    c.write("""
# control-quiet-changes — no incident

Changes with no failure after them: ConfigMap `shop/frontend-config` edited (the frontend pods read
it and keep serving), NetworkPolicy `shop/deny-ingress-reports` created (it denies all ingress to
`reports`, which nothing calls), `node-3` cordoned for maintenance with nothing waiting to be
scheduled. A change is no incident by itself.
""")


def cordon_scheduling():
    c = Cluster("cordon-scheduling")
    for n in NODES3:
        c.node(n, heartbeat=-30)
    background(c)
    ml = c.deployment("shop", "search", 3, spread(NODES3), limit="12Gi", available=2, changed=12)
    # node-3 is drained for maintenance: cordoned at 0, its `search` pod evicted; the replacement
    # fits on no other node.
    n3 = next(n for n in c.nodes if n["metadata"]["name"] == "node-3")
    cordoned = json.loads(json.dumps(n3))
    cordoned["metadata"]["resourceVersion"] = "4902"
    cordoned["spec"]["unschedulable"] = True
    cordoned["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": t(0)}]
    for cond in cordoned["status"]["conditions"]:
        cond["lastHeartbeatTime"] = t(0)
    c.nodes.append(cordoned)
    p = ml[2]
    p["spec"].pop("nodeName")
    p["metadata"]["creationTimestamp"] = t(12)
    msg = ("0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory. "
           "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")
    p["status"] = {"phase": "Pending", "qosClass": "Guaranteed",
                   "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg, "lastTransitionTime": t(12)}]}
    c.event(72, "FailedScheduling", msg, p, count=7, first=12, component="default-scheduler")
    c.endpoints("shop", "search", changed=12)
    c.write("""
# cordon-scheduling — scheduling_failure, the cordon at the head of the chain

`node-3` is cordoned at 10:00:00 to be drained (`spec.unschedulable`); its `search` replica, asking
for 12 Gi, is evicted and its replacement fits on no other node: `FailedScheduling` "0/3 nodes are
available: 1 node(s) were unschedulable, 2 Insufficient memory". What changed is the cordon: the
way out is to uncordon node-3 once its maintenance is done, or to make room elsewhere.
""")


def hpa(c, ns, name, target, current, desired, at, rv):
    c.workloads.append({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns, "uid": uid(c.name, "hpa", ns, name), "resourceVersion": str(rv),
                     "creationTimestamp": "2026-03-01T09:00:00Z",
                     "managedFields": managed(at, "kube-controller-manager", "Update")},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                 "minReplicas": 2, "maxReplicas": 12,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        "status": {"currentReplicas": current, "desiredReplicas": desired},
    })


def scale_up_scheduling():
    c = Cluster("scale-up-scheduling")
    for n in NODES3:
        c.node(n)
    background(c)
    search = c.deployment("shop", "search", 6, spread(NODES3), limit="2Gi", available=3, changed=2)
    # The autoscaler doubles `search` at 10:00:00 under a traffic peak; the three new replicas
    # ask for more CPU than the nodes have left.
    hpa(c, "shop", "search", "search", 3, 3, -600, 7001)
    hpa(c, "shop", "search", "search", 3, 6, 0, 7190)
    msg = ("0/3 nodes are available: 3 Insufficient cpu. "
           "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")
    for p in search[3:]:
        p["spec"].pop("nodeName")
        p["metadata"]["creationTimestamp"] = t(2)
        p["status"] = {"phase": "Pending", "qosClass": "Burstable",
                       "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg,
                                       "lastTransitionTime": t(2)}]}
        c.event(62, "FailedScheduling", msg, p, count=5, first=2, component="default-scheduler")
    c.endpoints("shop", "search", changed=2)
    c.write("""
# scale-up-scheduling — scheduling_failure, the autoscaler's scale-up at the head of the chain

At 10:00:00 HorizontalPodAutoscaler `shop/search` raises `search` from 3 to 6 replicas; the three
new pods fit on no node (`FailedScheduling` "0/3 nodes are available: 3 Insufficient cpu"). What
changed is the scale-up: the way out is capacity (more nodes, a cluster autoscaler) or a lower
`maxReplicas`.
""")


def main():
    for f in [oom_cascade, node_oom, eviction, liveness, crash_loop, dependency, image_pull, scheduling, node_not_ready, dns, network, config,
              log_dependency, log_missing_variable, bad_rollout, lambda: bad_rollout(good=True), quoted_errors,
              job, lambda: job(failing=False), readiness, certificate, volume, admission, init_container,
              config_change, network_policy, quiet_changes, cordon_scheduling, scale_up_scheduling]:
        f()


if __name__ == "__main__":
    sys.exit(main())
