"""One service of the fault lab's shop: real HTTP, real OpenTelemetry traces and logs.

    python3 service.py --name checkout --port 8101 --topology topology.json --otlp 127.0.0.1:4318

Serves its endpoints on 127.0.0.1; each request does some work of its own (CPU, so that a CPU
quota or a hog in its cgroup really slows it) and calls its downstream services through the
addresses the topology gives (the lab's delaying proxies), propagating W3C trace context. Spans
and logs go to an OTLP/HTTP endpoint with the resource attributes a Kubernetes pod would have.

The lab switches faults on and off with `POST /__fault` ({"mode": "error" | "exception" | "leak" |
null, "rate": 0.0–1.0}); `GET /__ready` answers once the service serves.
"""
import argparse
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--topology", required=True)
p.add_argument("--otlp", required=True)
p.add_argument("--pod", required=True)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

topo = json.load(open(a.topology))
me = topo["services"][a.name]
rng = random.Random(a.seed ^ hash(a.name) & 0xFFFF)

resource = Resource.create({
    "service.name": a.name,
    "k8s.namespace.name": topo["namespace"],
    "k8s.pod.name": a.pod,
    "k8s.container.name": a.name,
    "k8s.node.name": topo["node"],
})
tp = TracerProvider(resource=resource)
tp.add_span_processor(BatchSpanProcessor(
    OTLPSpanExporter(endpoint=f"http://{a.otlp}/v1/traces"), schedule_delay_millis=500, max_export_batch_size=256))
trace.set_tracer_provider(tp)
tracer = trace.get_tracer("fault-lab")
lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"http://{a.otlp}/v1/logs"), schedule_delay_millis=500))
set_logger_provider(lp)
log = logging.getLogger(a.name)
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
log.propagate = False

fault = {"mode": None, "rate": 0.0}
leak = []
fault_lock = threading.Lock()


def burn(ms):
    """Real CPU work for about `ms` milliseconds of one core."""
    end = time.thread_time() + ms / 1000.0
    x = 0
    while time.thread_time() < end:
        for i in range(500):
            x += i * i
    return x


def call(target, path):
    """One client call through the lab's proxy to a downstream service, with its client span."""
    host, port = topo["addresses"][target]
    url = f"http://{host}:{port}{path}"
    with tracer.start_as_current_span(f"GET {path}", kind=SpanKind.CLIENT) as span:
        span.set_attribute("http.request.method", "GET")
        span.set_attribute("server.address", f"{target}.{topo['namespace']}.svc.cluster.local")
        span.set_attribute("server.port", port)
        span.set_attribute("url.full", url)
        headers = {}
        propagate.inject(headers)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=me.get("timeout", 2.0)) as r:
                body = r.read()
                span.set_attribute("http.response.status_code", r.status)
                return True, body
        except urllib.error.HTTPError as e:
            span.set_attribute("http.response.status_code", e.code)
            span.set_status(Status(StatusCode.ERROR, f"{target} answered {e.code}"))
            return False, b""
        except Exception as e:  # refused, timed out, reset
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))
            return False, b""


def cache_lookup():
    """The retried timeout of the background: a cache call that sometimes times out once."""
    for attempt in range(2):
        with tracer.start_as_current_span("redis GET", kind=SpanKind.CLIENT) as span:
            span.set_attribute("db.system", "redis")
            span.set_attribute("server.address", "redis")
            if attempt == 0 and rng.random() < me.get("cache_timeouts", 0.0):
                time.sleep(0.02)
                span.set_status(Status(StatusCode.ERROR, "redis timeout"))
                log.warning("redis timeout, retrying")
                continue
            time.sleep(0.001)
            return


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path == "/__fault":
            n = int(self.headers.get("Content-Length", "0"))
            with fault_lock:
                fault.update(json.loads(self.rfile.read(n) or b"{}"))
            self.reply(200, fault)
        else:
            self.reply(404, {"error": "not found"})

    def do_GET(self):
        if self.path == "/__ready":
            return self.reply(200, {"ready": True})
        ctx = propagate.extract({k.lower(): v for k, v in self.headers.items()})
        endpoint = self.path.split("?")[0]
        with tracer.start_as_current_span(f"GET {endpoint}", context=ctx, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.route", endpoint)
            code, body = self.serve(endpoint, span)
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        self.reply(code, body)

    def serve(self, endpoint, span):
        with fault_lock:
            mode, rate = fault["mode"], fault["rate"]
        burn(me.get("work_ms", 2) * (0.7 + 0.6 * rng.random()))
        if me.get("sleep_ms"):
            time.sleep(me["sleep_ms"] / 1000.0 * (0.8 + 0.4 * rng.random()))
        if me.get("cache_timeouts"):
            cache_lookup()
        if mode == "leak":
            leak.append(bytearray(4 << 20))
        failed_calls = 0
        for target, path in me.get("routes", {}).get(endpoint, []):
            ok, _ = call(target, path)
            if not ok and target not in me.get("optional", []):
                failed_calls += 1
        # Background: some services always log and fail a little.
        if rng.random() < me.get("background_errors", 0.0):
            log.error("upstream quota check failed: limit exceeded for tenant %d", rng.randint(1, 9999))
            return 500, {"error": "quota check failed"}
        if failed_calls:
            log.error("request failed: %d downstream call(s) failed", failed_calls)
            return 502, {"error": "downstream failed"}
        if mode == "error" and rng.random() < rate:
            log.error("internal error: could not process %s (order %d)", endpoint, rng.randint(1, 10 ** 6))
            return 500, {"error": "internal error"}
        if mode == "exception" and rng.random() < rate:
            try:
                raise KeyError(f"sku-{rng.randint(1, 10 ** 5)}")
            except KeyError as e:
                # Swallowed: the caller gets 200 with an error body, only the log says so.
                log.error("exception while pricing cart: KeyError %s", e)
                return 200, {"ok": False, "error": "pricing unavailable"}
        return 200, {"ok": True, "service": a.name}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


srv = Server(("127.0.0.1", a.port), Handler)
try:
    srv.serve_forever()
finally:
    tp.shutdown()
    lp.shutdown()
