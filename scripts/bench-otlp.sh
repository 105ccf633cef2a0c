#!/usr/bin/env bash
# The OTLP receiver on loopback: spans/s accepted and recorded without loss, and the latency of
# one export request (a batch) at that rate. The load is OTLP/HTTP protobuf, batches of BATCH
# spans shaped like the SDK's (resource with k8s attributes, 6 attributes per span, an exception
# event on every 10th), sent by WORKERS processes over keep-alive connections at a fixed rate;
# a 503 is retried after its Retry-After, as an exporter does. Medians of RUNS runs.
#   scripts/bench-otlp.sh
#   RATES="50000 100000 200000" SECS=10 RUNS=3 scripts/bench-otlp.sh
# Needs: pip install opentelemetry-proto (it comes with the OTLP exporters).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}"
RATES="${RATES:-50000 100000 150000}"
RUNS="${RUNS:-3}"
SECS="${SECS:-10}"
BATCH="${BATCH:-512}"
WORKERS="${WORKERS:-2}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/tapio"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$bin" "$tmp" "$RATES" "$RUNS" "$SECS" "$BATCH" "$WORKERS" <<'PY'
import http.client, json, multiprocessing as mp, os, random, signal, socket, statistics, subprocess, sys, time
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

bin, tmp, rates, runs, secs, batch, workers = sys.argv[1:]
rates, runs, secs, batch, workers = [int(r) for r in rates.split()], int(runs), float(secs), int(batch), int(workers)
tick = os.sysconf("SC_CLK_TCK")

def kv(k, v):
    return KeyValue(key=k, value=AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v))

def body(seed):
    rnd = random.Random(seed)
    now = time.time_ns()
    spans = []
    for i in range(batch):
        s = Span(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), parent_span_id=rnd.randbytes(8),
                 name="GET /cart", kind=3, start_time_unix_nano=now + i * 1000, end_time_unix_nano=now + i * 1000 + 2_000_000,
                 attributes=[kv("http.request.method", "GET"), kv("http.route", "/cart"), kv("server.address", "cart.shop.svc"),
                             kv("server.port", 8080), kv("http.response.status_code", 200 if i % 10 else 503), kv("net.peer.ip", "10.244.1.14")])
        if i % 10 == 0:
            s.status.CopyFrom(Status(code=2, message="upstream connect error"))
            ev = s.events.add(name="exception", time_unix_nano=now + i * 1000)
            ev.attributes.extend([kv("exception.type", "ConnectionRefusedError"), kv("exception.message", "dial tcp 10.96.0.12:8080: connect: connection refused")])
        spans.append(s)
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    rs.resource.attributes.extend([kv("service.name", "checkout"), kv("k8s.namespace.name", "shop"), kv("k8s.pod.name", "checkout-5c6d7-abcde"),
                                   kv("k8s.node.name", "node-7"), kv("telemetry.sdk.language", "python"), kv("service.version", "1.9.3")])
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()

def worker(port, per_sec, secs, seed, q):
    payloads = [body(seed * 100 + k) for k in range(8)]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lat, sent, refused = [], 0, 0
    t0 = time.monotonic()
    n = 0
    while True:
        due = t0 + n / per_sec
        now = time.monotonic()
        if due - t0 >= secs:
            break
        if due > now:
            time.sleep(due - now)
        p = payloads[n % len(payloads)]
        while True:
            s = time.monotonic()
            conn.request("POST", "/v1/traces", p, {"Content-Type": "application/x-protobuf"})
            r = conn.getresponse(); r.read()
            lat.append(time.monotonic() - s)
            if r.status == 200:
                break
            if r.status != 503:
                raise SystemExit(f"HTTP {r.status}")
            refused += 1
            time.sleep(float(r.getheader("Retry-After", "1")))
        sent += batch
        n += 1
    q.put((sent, refused, lat, time.monotonic() - t0))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run(rate):
    grpc, port = free_port(), free_port()
    cap = f"{tmp}/otlp.tapio"
    err = open(f"{tmp}/rec.err", "w+")
    p = subprocess.Popen([bin, "record", "-o", cap, "--no-kernel", "--no-kube", "--otlp-grpc-port", str(grpc), "--otlp-http-port", str(port)], stderr=err)
    while "tapio: recording" not in open(f"{tmp}/rec.err").read():
        time.sleep(0.05)
    stat = lambda: sum(int(x) for x in open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[11:13]) / tick
    c0 = stat()
    q = mp.Queue()
    per = rate / batch / workers
    ws = [mp.Process(target=worker, args=(port, per, secs, i + 1, q)) for i in range(workers)]
    for w in ws: w.start()
    res = [q.get() for _ in ws]
    for w in ws: w.join()
    c1 = stat()
    took = max(r[3] for r in res)
    p.send_signal(signal.SIGINT); p.wait(timeout=60)
    info = json.loads(subprocess.run([bin, "info", "-o", "json", cap], capture_output=True, check=True).stdout)
    sent = sum(r[0] for r in res)
    lat = sorted(x for r in res for x in r[2])
    return dict(sent=sent, rate=sent / took, recorded=info["by_kind"].get("span", 0), refused=sum(r[1] for r in res),
                p50=lat[len(lat) // 2] * 1000, p99=lat[int(len(lat) * 0.99)] * 1000, cpu=100 * (c1 - c0) / took)

print(f"batches of {batch} spans, {workers} sending processes, {secs:g} s per run, median of {runs} runs")
print(f"{'asked/s':>8} {'sent/s':>8} {'sent':>9} {'recorded':>9} {'lost':>5} {'503s':>5} {'p50 ms':>7} {'p99 ms':>7} {'receiver CPU':>13}")
for rate in rates:
    rs = [run(rate) for _ in range(runs)]
    m = lambda k: statistics.median(r[k] for r in rs)
    lost = max(r["sent"] - r["recorded"] for r in rs)
    print(f"{rate:>8} {m('rate'):>8.0f} {m('sent'):>9.0f} {m('recorded'):>9.0f} {lost:>5} {m('refused'):>5.0f} {m('p50'):>7.2f} {m('p99'):>7.2f} {m('cpu'):>12.1f}%")
PY
