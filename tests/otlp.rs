//! `tapio record --otlp` with real clients: the OpenTelemetry Python SDK over OTLP/HTTP and
//! OTLP/gRPC (with and without gzip), and hand-made bad requests. The capture must hold exactly
//! what the SDK sent; bad requests get their error codes and the receiver keeps serving.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::free_port;
use crate::support::recorder::{record, Recording};

fn python_sdk(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped {test}: the OpenTelemetry Python SDK is not installed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc)");
    }
    ok
}

fn receiver(dir: &std::path::Path) -> (Recording, u16, u16) {
    receiver_with(dir, &[])
}

fn receiver_with(dir: &std::path::Path, extra: &[&str]) -> (Recording, u16, u16) {
    let (grpc, http) = (free_port(), free_port());
    let (g, h) = (grpc.to_string(), http.to_string());
    let mut args = vec![
        "--no-kernel",
        "--no-kube",
        "--otlp-grpc-port",
        &g,
        "--otlp-http-port",
        &h,
    ];
    args.extend_from_slice(extra);
    let rec = record(dir, &args);
    (rec, grpc, http)
}

/// Runs tests/otlp/send.py; returns the spans it sent and how many log records.
fn send(transport: &str, port: u16, spans: usize, extra: &[&str]) -> (Vec<Value>, u64) {
    let mut cmd = Command::new("python3");
    cmd.args(["tests/otlp/send.py", "--transport", transport, "--endpoint"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--spans", &spans.to_string()])
        .args(extra);
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = crate::support::recorder::json_lines(&out.stdout);
    let (last, sent) = lines.split_last().unwrap();
    assert_eq!(last["done"], true);
    (sent.to_vec(), last["logs"].as_u64().unwrap())
}

#[test]
fn the_python_sdk_over_http_and_grpc_lands_span_for_span() {
    if !python_sdk("the_python_sdk_over_http_and_grpc_lands_span_for_span") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rec, grpc, http) = receiver(dir.path());
    let mut sent = Vec::new();
    let mut logs = 0;
    for (transport, port, gzip) in [
        ("http", http, false),
        ("http", http, true),
        ("grpc", grpc, false),
        ("grpc", grpc, true),
    ] {
        let (s, l) = send(transport, port, 10, if gzip { &["--gzip"] } else { &[] });
        sent.extend(s);
        logs += l;
    }
    let (events, _, stderr) = rec.stop();
    let spans: Vec<&Value> = events.iter().filter(|e| e["kind"] == "span").collect();
    let got: BTreeSet<(String, String)> = spans
        .iter()
        .map(|e| {
            (
                e["data"]["trace_id"].as_str().unwrap().into(),
                e["data"]["span_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = sent
        .iter()
        .map(|s| {
            (
                s["trace_id"].as_str().unwrap().into(),
                s["span_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(spans.len(), 80, "{stderr}");
    assert_eq!(got, want, "exactly the spans sent");
    let errors = spans
        .iter()
        .filter(|e| e["data"]["status"] == "error")
        .count();
    let sent_errors = sent.iter().filter(|s| s["error"] == true).count();
    assert_eq!(errors, sent_errors);
    // What the correlation reads: service, resource, node, status message, HTTP status, exceptions.
    let failed = spans
        .iter()
        .find(|e| e["data"]["name"] == "GET /cart" && e["data"]["status"] == "error")
        .unwrap();
    let d = &failed["data"];
    assert_eq!(failed["node"], "node-7");
    assert_eq!(d["service"], "checkout");
    assert_eq!(d["kind"], "client");
    assert!(d["status_message"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
    let resource = d["resource"].to_string();
    assert!(
        resource.contains("checkout-5c6d7-abcde") && resource.contains("k8s.namespace.name"),
        "{resource}"
    );
    let exception = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "exception")
        .unwrap();
    assert!(exception["attributes"]
        .to_string()
        .contains("ConnectionRefusedError"));
    let root = spans
        .iter()
        .find(|e| e["data"]["name"] == "POST /checkout" && e["data"]["status"] == "error")
        .unwrap();
    assert!(root["data"]["attributes"].to_string().contains("503"));
    // Logs: as many as sent, at error severity, tied to their traces and pods.
    let log_events: Vec<&Value> = events.iter().filter(|e| e["kind"] == "log").collect();
    assert_eq!(log_events.len() as u64, logs);
    for l in &log_events {
        assert_eq!(l["data"]["severity"], "error", "{l}");
        assert!(l["data"]["trace_id"].is_string(), "{l}");
        assert!(l["data"]["body"]
            .as_str()
            .unwrap()
            .starts_with("could not reach cart"));
        assert!(want
            .iter()
            .any(|(t, _)| t == l["data"]["trace_id"].as_str().unwrap()));
    }
    // Filters reach them by pod and by trace.
    let out = crate::support::recorder::tapio()
        .args(["cat", "--pod", "shop/checkout-5c6d7-abcde", "--kind", "log"])
        .arg(dir.path().join("rec.tapio"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count() as u64,
        logs
    );
}

/// A raw HTTP/1.1 POST; returns (status, headers, body).
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A body over the limit may be refused before it is all sent.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn bad_requests_get_their_codes_and_the_receiver_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, grpc, http) = receiver(dir.path());
    let proto = [("Content-Type", "application/x-protobuf")];
    let json = [("Content-Type", "application/json")];

    // Garbage protobuf: 400 with a google.rpc.Status saying INVALID_ARGUMENT.
    let (status, head, body) = post(
        http,
        "/v1/traces",
        &proto,
        b"\x0a\xff\xff\xff\xff\x0f garbage",
    );
    assert_eq!(status, 400, "{head}");
    assert!(head.to_lowercase().contains("application/x-protobuf"));
    assert_eq!(body[0], 0x08, "field 1 (code) first");
    assert_eq!(body[1], 3, "INVALID_ARGUMENT");
    // Malformed JSON: 400 with a JSON Status.
    let (status, _, body) = post(http, "/v1/logs", &json, b"{\"resourceLogs\": [");
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("not a valid OTLP JSON"),
        "{v}"
    );
    // Not OTLP's content types; a broken gzip stream; an unknown path.
    assert_eq!(
        post(http, "/v1/traces", &[("Content-Type", "text/plain")], b"hi").0,
        415
    );
    let (status, _, body) = post(
        http,
        "/v1/traces",
        &[proto[0], ("Content-Encoding", "gzip")],
        b"not gzip at all",
    );
    assert_eq!((status, body[1]), (400, 3));
    assert_eq!(post(http, "/v1/metrics", &proto, b"").0, 404);
    // Too large: over 16 MiB, as sent and once decompressed.
    assert_eq!(
        post(http, "/v1/traces", &proto, &vec![0u8; 17 << 20]).0,
        413
    );
    let bomb = gzip(&vec![0u8; 20 << 20]);
    assert!(bomb.len() < 1 << 20);
    let (status, _, body) = post(
        http,
        "/v1/traces",
        &[proto[0], ("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!((status, body[1]), (413, 8), "RESOURCE_EXHAUSTED");

    // Still serving: a JSON request with one good span and one with a bad trace id is taken in
    // part, and says so.
    let span = |trace: &str| {
        format!(
            r#"{{"traceId":"{trace}","spanId":"00f067aa0ba902b7","name":"GET /cart","kind":2,"startTimeUnixNano":"1773482400000000000","endTimeUnixNano":"1773482400100000000","status":{{"code":2,"message":"boom"}}}}"#
        )
    };
    let req = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},"scopeSpans":[{{"spans":[{},{}]}}]}}]}}"#,
        span("4bf92f3577b34da6a3ce929d0e0e4736"),
        span("00000000000000000000000000000000")
    );
    let (status, _, body) = post(http, "/v1/traces", &json, req.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1, "{v}");
    assert!(v["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("invalid trace id"));
    // The same with gzip and protobuf from the SDK's own types.
    use prost::Message;
    let pb = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
            scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                spans: vec![opentelemetry_proto::tonic::trace::v1::Span {
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    name: "gzip".into(),
                    start_time_unix_nano: 1_773_482_400_000_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, _, body) = post(
        http,
        "/v1/traces",
        &[proto[0], ("Content-Encoding", "gzip")],
        &gzip(&pb.encode_to_vec()),
    );
    assert_eq!(
        (status, body.len()),
        (200, 0),
        "a full success is an empty response"
    );

    // gRPC: garbage gets INVALID_ARGUMENT from the real grpcio client, and the server goes on.
    if python_sdk("bad_requests_get_their_codes_and_the_receiver_keeps_serving (gRPC part)") {
        let script = format!(
            "import grpc\nch = grpc.insecure_channel('127.0.0.1:{grpc}')\ncall = ch.unary_unary('/opentelemetry.proto.collector.trace.v1.TraceService/Export')\ntry:\n    call(b'\\x0a\\xff\\xff\\xff\\xff\\x0f', timeout=10)\n    print('OK')\nexcept grpc.RpcError as e:\n    print(e.code().name)\nprint(len(call(b'', timeout=10)))\n"
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["INVALID_ARGUMENT", "0"],
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (events, _, stderr) = rec.stop();
    let spans: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "span")
        .map(|e| e["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(spans, ["GET /cart", "gzip"], "{stderr}");
    assert!(stderr.contains("malformed requests"), "{stderr}");
}

/// The fault lab end to end: nine real services with the SDK, recorded by `tapio record --otlp`,
/// one of them failing half its requests in its own code; the verdict names it, not its callers.
#[test]
fn a_fault_lab_run_is_recorded_and_blamed_on_the_service_where_errors_originate() {
    let test = "a_fault_lab_run_is_recorded_and_blamed_on_the_service_where_errors_originate";
    if !python_sdk(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let lab = Command::new("python3")
        .args([
            "scripts/fault-lab/lab.py",
            "--fault",
            "error",
            "--target",
            "payment",
        ])
        .args([
            "--baseline",
            "25",
            "--duration",
            "15",
            "--rate",
            "15",
            "--rate-fault",
            "0.5",
        ])
        .args(["--no-cgroups", "--no-kernel", "--seed", "11"])
        .arg("--out")
        .arg(&out)
        .args(["--tapio", env!("CARGO_BIN_EXE_tapio")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        lab.status.success(),
        "{}",
        String::from_utf8_lossy(&lab.stderr)
    );
    let replay = crate::support::recorder::tapio()
        .args(["replay", "-o", "json"])
        .arg(out.join("capture.tapio"))
        .arg(out.join("pods.tapio"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&replay.stdout).unwrap();
    let first = &v["incidents"][0];
    assert_eq!(first["root_cause"]["kind"], "service_errors", "{v:#}");
    assert_eq!(
        first["root_cause"]["entity"], "service/shop/payment",
        "{v:#}"
    );
    // The callers that failed after it are its impact, not other incidents.
    let services = first["impact"]["services"].to_string();
    assert!(services.contains("service/shop/checkout"), "{services}");
    // The recorder kept its verdict beside the capture: what a whole read answers, so
    // `correlate` answers from it at once, the same to the byte.
    let capture = out.join("capture.tapio");
    let kept = out.join("capture.tapio.verdict");
    assert!(
        kept.exists(),
        "{}",
        std::fs::read_to_string(out.join("record.log")).unwrap_or_default()
    );
    let failed = crate::support::recorder::events_of(&capture)
        .into_iter()
        .find(|e| {
            e["kind"] == "span"
                && e["data"]["status"] == "error"
                && e["data"]["service"] == "payment"
        })
        .map(|e| e["data"]["trace_id"].as_str().unwrap().to_string())
        .expect("a failed span");
    let questions: [&[&str]; 4] = [
        &["--service", "shop/payment", "-o", "json"],
        &["--service", "shop/checkout", "--explain"],
        &["--trace-id", &failed, "-o", "json"],
        &["--trace-id", &failed, "--explain"],
    ];
    let ask = |q: &[&str], read: bool| {
        let out = crate::support::recorder::tapio()
            .arg("correlate")
            .arg(&capture)
            .args(q)
            .args(read.then_some("--no-index"))
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    for q in questions {
        let read = ask(q, true);
        assert!(read.1.contains("shop/payment"), "{q:?}: {}", read.1);
        assert_eq!(ask(q, false), read, "{q:?}");
    }
    // It is the kept verdict that answers: a word changed in it shows.
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.contains("errors originate in"));
    std::fs::write(
        &kept,
        text.replace("errors originate in", "errors 0riginate in"),
    )
    .unwrap();
    let (_, answer) = ask(questions[0], false);
    assert!(answer.contains("errors 0riginate in"), "{answer}");
}

#[test]
fn a_request_that_declares_a_terabyte_is_refused_before_its_body() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (rec, _, http) = receiver(dir.path());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n",
    )
    .unwrap();
    let mut got = vec![0u8; 512];
    let n = s.read(&mut got).expect("an answer without the body");
    let got = String::from_utf8_lossy(&got[..n]);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("declares 1000000000000 bytes"), "{got}");
    rec.stop_only();
}

/// A self-signed certificate for 127.0.0.1 (openssl), in `dir`: (cert, key).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=tapio-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian's openssl package) makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn over_tls_with_a_token_the_sdk_lands_and_others_are_refused() {
    if !python_sdk("over_tls_with_a_token_the_sdk_lands_and_others_are_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // Every address, protected: TLS and a bearer token.
    let (rec, grpc, http) = receiver_with(
        dir.path(),
        &[
            "--otlp-listen",
            "0.0.0.0",
            "--otlp-tls-cert",
            c,
            "--otlp-tls-key",
            k,
            "--otlp-token",
            "t0k3n-for-tests",
        ],
    );
    let auth = ["--tls", c, "--token", "t0k3n-for-tests"];
    let (h, _) = send("http", http, 5, &auth);
    let (g, _) = send("grpc", grpc, 5, &auth);
    // Without the token (over TLS), and in plain text: nothing is taken.
    let (refused, _) = send("http", http, 3, &["--tls", c, "--token", "wrong"]);
    let (refused_grpc, _) = send("grpc", grpc, 3, &["--tls", c]);
    let mut plain = TcpStream::connect(("127.0.0.1", http)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "plain HTTP is not served over the TLS port"
    );

    let (events, _, stderr) = rec.stop();
    let spans: BTreeSet<String> = events
        .iter()
        .filter(|e| e["kind"] == "span")
        .map(|e| e["data"]["span_id"].as_str().unwrap().to_string())
        .collect();
    let sent: BTreeSet<String> = h
        .iter()
        .chain(&g)
        .map(|s| s["span_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(spans, sent, "exactly the authorised spans: {stderr}");
    for s in refused.iter().chain(&refused_grpc) {
        assert!(!spans.contains(s["span_id"].as_str().unwrap()));
    }
    assert!(stderr.contains("https://"), "{stderr}");
}

#[test]
fn another_address_than_loopback_needs_tls_or_a_token() {
    let out = crate::support::recorder::tapio()
        .args([
            "record",
            "--no-kernel",
            "--no-kube",
            "--otlp-listen",
            "0.0.0.0",
        ])
        .args(["--otlp-grpc-port", &free_port().to_string()])
        .args(["--otlp-http-port", &free_port().to_string()])
        .arg("-o")
        .arg(tempfile::tempdir().unwrap().path().join("x.tapio"))
        .env_remove("TAPIO_OTLP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--otlp-tls-cert")
            && err.contains("--otlp-token")
            && err.contains("--otlp-insecure"),
        "{err}"
    );
}

#[test]
fn slow_clients_do_not_hold_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _, http) = receiver(dir.path());
    // 50 clients that start a request and never finish its headers (slowloris).
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
            s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // Meanwhile a real client is served.
    let (status, _, _) = post(
        http,
        "/v1/traces",
        &[("Content-Type", "application/json")],
        b"{\"resourceSpans\":[]}",
    );
    assert_eq!(status, 200);
    // And the slow ones are cut off once the header timeout (10 s) has passed.
    let started = std::time::Instant::now();
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf); // a 408 answer, or the end of the stream
        let _ = s.read(&mut buf);
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(18),
        "the slow connections were closed after {waited:?}"
    );
    rec.stop_only();
}
