"""Sends traces and logs to tapio's OTLP receiver with the real OpenTelemetry Python SDK.

    python3 tests/otlp/send.py --transport http|grpc --endpoint HOST:PORT --spans N
        [--gzip] [--tls CERT.pem] [--token TOKEN]

Prints one JSON line per span and log record sent (ids, status, attributes) for the test to
compare with the capture, then a last line {"done": true}.
"""
import argparse
import json
import logging
import os
import sys

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

p = argparse.ArgumentParser()
p.add_argument("--transport", choices=["http", "grpc"], required=True)
p.add_argument("--endpoint", required=True)
p.add_argument("--spans", type=int, default=20)
p.add_argument("--gzip", action="store_true")
p.add_argument("--tls", metavar="CERT", help="TLS, trusting this certificate")
p.add_argument("--token", help="send Authorization: Bearer TOKEN")
a = p.parse_args()
headers = {"authorization": f"Bearer {a.token}"} if a.token else None
if a.tls:
    # requests prefers these to the exporter's own certificate_file.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)

if a.transport == "http":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    comp = Compression.Gzip if a.gzip else Compression.NoCompression
    scheme = "https" if a.tls else "http"
    tls = {"certificate_file": a.tls} if a.tls else {}
    spans_out = OTLPSpanExporter(endpoint=f"{scheme}://{a.endpoint}/v1/traces", compression=comp,
                                 headers=headers, **tls)
    logs_out = OTLPLogExporter(endpoint=f"{scheme}://{a.endpoint}/v1/logs", compression=comp,
                               headers=headers, **tls)
else:
    from grpc import Compression
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    import grpc

    comp = Compression.Gzip if a.gzip else Compression.NoCompression
    if a.tls:
        with open(a.tls, "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read())
        tls = {"insecure": False, "credentials": creds}
    else:
        tls = {"insecure": True}
    spans_out = OTLPSpanExporter(endpoint=a.endpoint, compression=comp, headers=headers, **tls)
    logs_out = OTLPLogExporter(endpoint=a.endpoint, compression=comp, headers=headers, **tls)

resource = Resource.create({
    "service.name": "checkout",
    "k8s.namespace.name": "shop",
    "k8s.pod.name": "checkout-5c6d7-abcde",
    "k8s.node.name": "node-7",
    "k8s.container.name": "checkout",
})
tp = TracerProvider(resource=resource)
tp.add_span_processor(BatchSpanProcessor(spans_out, max_export_batch_size=64))
lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(BatchLogRecordProcessor(logs_out))
set_logger_provider(lp)
log = logging.getLogger("checkout")
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
tracer = tp.get_tracer("tests.otlp")

out = []
for i in range(a.spans):
    with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "POST")
        with tracer.start_as_current_span("GET /cart", kind=trace.SpanKind.CLIENT) as child:
            child.set_attribute("server.address", "cart.shop.svc.cluster.local")
            if i % 5 == 0:
                try:
                    raise ConnectionRefusedError("dial tcp 10.96.0.12:8080: connect: connection refused")
                except ConnectionRefusedError as e:
                    child.record_exception(e)
                    child.set_status(Status(StatusCode.ERROR, str(e)))
                    root.set_status(Status(StatusCode.ERROR, "cart unavailable"))
                    root.set_attribute("http.response.status_code", 503)
                    log.error("could not reach cart: %s", e)
            else:
                root.set_attribute("http.response.status_code", 200)
        for s in (child, root):
            ctx = s.get_span_context()
            out.append({
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "name": s.name,
                "error": s.status.status_code == StatusCode.ERROR,
            })
tp.force_flush()
lp.force_flush()
tp.shutdown()
lp.shutdown()
for o in out:
    print(json.dumps(o))
print(json.dumps({"done": True, "logs": (a.spans + 4) // 5}))
sys.stdout.flush()
