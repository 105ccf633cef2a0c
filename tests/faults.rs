//! Faults the recorder survives: `kill -9` under load loses at most the last second, SIGTERM under
//! load loses nothing, a full disk is a clear error that keeps what was written, and a read-only
//! or full file system is an error before anything starts, and a minute of a million log lines and
//! 100 k spans a second keeps memory flat, counts the excess and still gives the verdict.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::free_port;
use crate::support::recorder::{events_of, needs_root, record_to, tapio, Recording};

/// A recorder that takes OTLP/HTTP on a free port.
fn otlp_recorder(output: &Path) -> (Recording, u16) {
    let http = free_port();
    let rec = record_to(
        output,
        &[
            "--no-kernel",
            "--no-kube",
            "--verdicts",
            "none",
            "--otlp-grpc-port",
            &free_port().to_string(),
            "--otlp-http-port",
            &http.to_string(),
        ],
    );
    (rec, http)
}

/// Sends OTLP/HTTP requests of 20 spans each, timed now, until the receiver goes away or `stop`;
/// each span id with when its request was acknowledged.
struct Load {
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(port: u16, run: u32) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (Arc::clone(&acked), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                let ids: Vec<String> = (0..20)
                    // Never all zeros: that is no span id.
                    .map(|i| format!("{:08x}{:08x}", run + 1, n * 20 + i + 1))
                    .collect();
                n += 1;
                let spans: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        format!(
                            r#"{{"traceId":"{:032x}","spanId":"{id}","name":"load","kind":2,"startTimeUnixNano":"{now}","endTimeUnixNano":"{now}"}}"#,
                            n
                        )
                    })
                    .collect();
                let body = format!(
                    r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}},{{"key":"k8s.namespace.name","value":{{"stringValue":"shop"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
                    spans.join(",")
                );
                let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
                    break;
                };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "POST /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if c.write_all(req.as_bytes()).is_err() {
                    break;
                }
                let mut resp = Vec::new();
                let _ = c.read_to_end(&mut resp);
                if resp.starts_with(b"HTTP/1.1 200") {
                    let at = Instant::now();
                    a.lock().unwrap().extend(ids.into_iter().map(|id| (id, at)));
                } else if resp.is_empty() {
                    break;
                }
            }
        });
        Load {
            acked,
            stop,
            thread,
        }
    }

    fn finish(self) -> Vec<(String, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// The span ids a capture holds (a capture cut short reads up to its last complete block).
fn spans_in(capture: &Path) -> HashSet<String> {
    events_of(capture)
        .iter()
        .filter(|e| e["kind"] == "span")
        .map(|e| e["data"]["span_id"].as_str().unwrap().to_string())
        .collect()
}

/// A small deterministic generator for the moments of the kills (its seed is printed).
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Its bound holds on the recorder's own timing (events wait 0.5 s to be put in order, then a
/// write every 0.25 s ends its block: 0.75 s at worst); the tests beside it on two cores can
/// starve the recorder past it, so `.ci/run` runs it alone.
#[test]
#[ignore = "a bound on time under load; .ci/run runs it alone"]
fn kill_9_under_load_loses_at_most_the_last_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 moments: seed {seed}");
    let mut worst = Duration::ZERO;
    let mut received = 0usize;
    for run in 0..20u32 {
        let capture = dir.path().join(format!("run-{run}.tapio"));
        let (rec, port) = otlp_recorder(&capture);
        let load = Load::start(port, run);
        // A random moment between 0.3 and 2.3 s into the load.
        std::thread::sleep(Duration::from_millis(300 + next(&mut seed) % 2000));
        let (killed, _) = rec.kill9();
        let acked = load.finish();
        let kept = spans_in(&capture);
        received += acked.len();
        // Every span acknowledged more than a second before the kill is in the capture.
        let mut lost_early = Vec::new();
        for (id, at) in &acked {
            if kept.contains(id) {
                continue;
            }
            let before_kill = killed.saturating_duration_since(*at);
            worst = worst.max(before_kill);
            if before_kill > Duration::from_secs(1) {
                lost_early.push((id.clone(), before_kill));
            }
        }
        assert!(
            lost_early.is_empty(),
            "run {run}: {} spans acknowledged more than 1 s before kill -9 are missing, e.g. {:?}",
            lost_early.len(),
            &lost_early[..lost_early.len().min(3)]
        );
    }
    assert!(received > 1000, "the load was real: {received} spans");
    eprintln!(
        "kill -9 at 20 moments: {received} spans acknowledged; the oldest one missing was acknowledged {worst:?} before the kill"
    );
}

#[test]
fn sigterm_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("term.tapio");
    let (rec, port) = otlp_recorder(&capture);
    let load = Load::start(port, 99);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, status, stderr) = rec.term_now();
    let acked = load.finish();
    assert!(status.success(), "{stderr}");
    let kept = spans_in(&capture);
    let missing = acked.iter().filter(|(id, _)| !kept.contains(id)).count();
    assert!(acked.len() > 100, "{}", acked.len());
    assert_eq!(missing, 0, "of {} acknowledged spans", acked.len());
}

/// A tmpfs of `size` mounted in a new directory (root); unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t tmpfs -o {options}");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
#[ignore = "needs root"]
fn a_full_disk_is_a_clear_error_and_what_was_written_reads() {
    needs_root("a_full_disk_is_a_clear_error_and_what_was_written_reads");
    let fs = Tmpfs::mount("size=2m");
    let capture = fs.path().join("full.tapio");
    let (rec, port) = otlp_recorder(&capture);
    let load = Load::start(port, 7);
    std::thread::sleep(Duration::from_millis(800));
    // Fill what is left, as another writer on the node would.
    let _ = std::fs::write(fs.path().join("ballast"), vec![0u8; 4 << 20]);
    let (status, stderr) = rec.wait_exit(Duration::from_secs(30));
    let acked = load.finish();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&capture.display().to_string()) && stderr.contains("free"),
        "the error names the file and the free space: {stderr}"
    );
    // Everything before the last complete block reads (`cat` succeeds on it).
    let kept = spans_in(&capture);
    assert!(!kept.is_empty() && !acked.is_empty());
}

#[test]
#[ignore = "needs root"]
fn a_read_only_or_full_file_system_is_an_error_before_anything_starts() {
    needs_root("a_read_only_or_full_file_system_is_an_error_before_anything_starts");
    for (options, says) in [("size=1m,ro", "Read-only"), ("size=600k", "free")] {
        let fs = Tmpfs::mount(options);
        let capture = fs.path().join("x.tapio");
        let started = Instant::now();
        // With the kernel's probes asked for: the error comes before they are loaded.
        let out = tapio()
            .arg("record")
            .arg("-o")
            .arg(&capture)
            .args(["--no-kube", "--duration", "5s"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{options}: {err}");
        assert!(
            err.contains(says) && err.contains("x.tapio"),
            "{options}: {err}"
        );
        assert!(
            !err.contains("tapio: recording"),
            "{options}: nothing started: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{options}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_rotated_recording_on_a_nearly_full_disk_drops_its_oldest_file_and_says_so() {
    needs_root("a_rotated_recording_on_a_nearly_full_disk_drops_its_oldest_file_and_says_so");
    let fs = Tmpfs::mount("size=8m");
    // Another writer on the node leaves 5 MiB; rotation every 256 KiB.
    std::fs::write(fs.path().join("ballast"), vec![0u8; 3 << 20]).unwrap();
    let base = fs.path().join("rec.tapio");
    let http = free_port();
    let rec = record_to(
        &base,
        &[
            "--no-kernel",
            "--no-kube",
            "--verdicts",
            "none",
            "-C",
            "256K",
            "--otlp-grpc-port",
            &free_port().to_string(),
            "--otlp-http-port",
            &http.to_string(),
        ],
    );
    let load = Load::start(http, 5);
    // Until the set has given up a file (the recorder says so), at most a minute.
    let start = Instant::now();
    loop {
        let files = std::fs::read_dir(fs.path()).unwrap().count();
        let first_gone = !fs.path().join("rec-0.tapio").exists();
        if first_gone && files > 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no file was dropped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    load.finish();
    let (_, status, stderr) = rec.term_now();
    assert!(status.success(), "the recording goes on: {stderr}");
    assert!(stderr.contains("nearly full"), "{stderr}");
    // The files left read, and one of them holds the drop marker.
    let mut markers = 0;
    for f in std::fs::read_dir(fs.path()).unwrap().flatten() {
        let p = f.path();
        if p.extension().is_some_and(|e| e == "tapio") {
            markers += events_of(&p)
                .iter()
                .filter(|e| {
                    e["kind"] == "drop"
                        && e["data"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("nearly full"))
                })
                .count();
        }
    }
    assert!(markers >= 1);
}

#[test]
#[ignore = "needs root"]
fn a_rotated_recording_whose_disk_another_writer_fills_gives_up_its_oldest_file_and_loses_nothing_after(
) {
    needs_root("a_rotated_recording_whose_disk_another_writer_fills_gives_up_its_oldest_file_and_loses_nothing_after");
    let fs = Tmpfs::mount("size=16m");
    let base = fs.path().join("rec.tapio");
    let http = free_port();
    let rec = record_to(
        &base,
        &[
            "--no-kernel",
            "--no-kube",
            "--verdicts",
            "none",
            "-C",
            "256K",
            "--otlp-grpc-port",
            &free_port().to_string(),
            "--otlp-http-port",
            &http.to_string(),
        ],
    );
    let load = Load::start(http, 9);
    // Two files closed, with room to spare; then another writer takes every byte left.
    let start = Instant::now();
    while !fs.path().join("rec-2.tapio").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no rotation");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut ballast = std::fs::File::create(fs.path().join("ballast")).unwrap();
    while ballast.write_all(&[7u8; 64 << 10]).is_ok() {}
    let _ = ballast.write_all(&[7u8; 512]);
    let _ = ballast.flush();
    let filled = Instant::now();
    // The recording gives up its oldest file; then the other writer frees what it took.
    while fs.path().join("rec-0.tapio").exists() {
        assert!(
            filled.elapsed() < Duration::from_secs(20),
            "no file given up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(ballast);
    std::fs::remove_file(fs.path().join("ballast")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let acked = load.finish();
    let (_, status, stderr) = rec.term_now();
    assert!(status.success(), "the recording goes on: {stderr}");
    assert!(
        stderr.contains("the disk filled up") || stderr.contains("the disk is nearly full"),
        "{stderr}"
    );
    // The files left read whole (no block lost on the full disk: their trailers' counts hold),
    // and hold every span acknowledged since the disk filled; the removal is recorded.
    let mut kept = HashSet::new();
    let mut markers = 0;
    for f in std::fs::read_dir(fs.path()).unwrap().flatten() {
        let p = f.path();
        if p.extension().is_some_and(|e| e == "tapio") {
            let info = tapio().args(["info"]).arg(&p).output().unwrap();
            let said = String::from_utf8_lossy(&info.stderr);
            assert!(
                info.status.success() && said.is_empty(),
                "{}: {said}",
                p.display()
            );
            kept.extend(spans_in(&p));
            markers += events_of(&p)
                .iter()
                .filter(|e| {
                    e["kind"] == "drop"
                        && e["data"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("was removed"))
                })
                .count();
        }
    }
    let after: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at > filled)
        .map(|(id, _)| id)
        .collect();
    assert!(
        after.len() > 100,
        "{} spans acknowledged after the fill",
        after.len()
    );
    let lost = after.iter().filter(|id| !kept.contains(**id)).count();
    assert_eq!(
        lost,
        0,
        "of {} acknowledged after the fill: {stderr}",
        after.len()
    );
    assert!(markers >= 1, "the removal is recorded");
}

/// The resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Offers 100 k spans a second for as long as it runs: OTLP/HTTP protobuf requests of 1,000 spans
/// over one kept-alive connection, one span in twenty a client call that failed to connect (a
/// dependency down, so the flood makes an incident of its own: 5 %, well above what a busy
/// service's background is taken to be before its own is known).
struct SpanFlood {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<SpanCounts>,
}

/// What a span flood offered, and what the receiver answered.
#[derive(Debug, Default)]
struct SpanCounts {
    offered: u64,
    acked: u64,
    /// Spans of requests refused with 503 while the writer was behind (a client retries them).
    refused: u64,
}

impl SpanFlood {
    const PER_REQUEST: u64 = 1_000;
    const PER_SECOND: u64 = 100_000;

    fn start(port: u16) -> SpanFlood {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{
            status, ResourceSpans, ScopeSpans, Span, Status,
        };
        use prost::Message;
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        // One request is encoded once, with markers where each span's ids and times go; each
        // request then patches them in place (encoding 100 k spans a second would take half a
        // core of this debug build, which the recorder needs).
        let marker = |i: u64| -> (Vec<u8>, Vec<u8>, u64, u64) {
            let t = [0xA5, 0x5A, 0xA5, 0x5A, 0xC3, 0xC3, 0xC3, 0xC3];
            let mut trace = t.to_vec();
            trace.extend_from_slice(&i.to_be_bytes());
            let mut span = vec![0x5A, 0xA5];
            span.extend_from_slice(&(i as u32).to_be_bytes());
            span.extend_from_slice(&[0x3C, 0x3C]);
            (
                trace,
                span,
                0x1111_1111_0000_0000 + i,
                0x2222_2222_0000_0000 + i,
            )
        };
        let spans = (0..SpanFlood::PER_REQUEST)
            .map(|i| {
                let (trace_id, span_id, start, end) = marker(i);
                let mut span = Span {
                    trace_id,
                    span_id,
                    name: "GET /cart".into(),
                    kind: 2,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    ..Default::default()
                };
                if i % 20 == 0 {
                    span.kind = 3;
                    span.status = Some(Status {
                        code: status::StatusCode::Error as i32,
                        message: "dial tcp 10.96.0.12:8080: connect: connection refused".into(),
                    });
                    span.attributes = vec![kv("server.address", "cart.shop.svc.cluster.local")];
                }
                span
            })
            .collect();
        let body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "checkout"),
                        kv("k8s.namespace.name", "shop"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let mut request = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        let head = request.len();
        request.extend_from_slice(&body);
        // Where each span's trace id, span id, start and end are, in order.
        let mut at = head;
        let mut find = |needle: &[u8]| {
            let found = request[at..]
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("a marker of the encoded request");
            at += found + needle.len();
            at - needle.len()
        };
        let places: Vec<[usize; 4]> = (0..SpanFlood::PER_REQUEST)
            .map(|i| {
                let (trace, span, start, end) = marker(i);
                [
                    find(&trace),
                    find(&span),
                    find(&start.to_le_bytes()),
                    find(&end.to_le_bytes()),
                ]
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut counts = SpanCounts::default();
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut answers = std::io::BufReader::new(conn.try_clone().unwrap());
            let started = Instant::now();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                // Paced: request k leaves at k/100 s, and catches up when it is late.
                let due =
                    Duration::from_secs_f64(counts.offered as f64 / SpanFlood::PER_SECOND as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                for [trace, span, start, end] in &places {
                    n += 1;
                    request[*trace..*trace + 16]
                        .copy_from_slice(&(u128::from(n) << 1 | 1).to_be_bytes());
                    request[*span..*span + 8].copy_from_slice(&n.to_be_bytes());
                    request[*start..*start + 8].copy_from_slice(&(now - 3_000_000).to_le_bytes());
                    request[*end..*end + 8].copy_from_slice(&now.to_le_bytes());
                }
                // One write: a head and a body written apart wait for a delayed ACK (Nagle).
                if conn.write_all(&request).is_err() {
                    break;
                }
                counts.offered += SpanFlood::PER_REQUEST;
                match http_status(&mut answers) {
                    Some(200) => counts.acked += SpanFlood::PER_REQUEST,
                    Some(503) => counts.refused += SpanFlood::PER_REQUEST,
                    other => panic!("the receiver answered {other:?}"),
                }
            }
            counts
        });
        SpanFlood { stop, thread }
    }

    fn finish(self) -> SpanCounts {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Reads one HTTP/1.1 response from a kept-alive connection: its status (the body is skipped).
fn http_status(conn: &mut impl Read) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).ok()?;
    Some(status)
}

#[test]
#[ignore = "floods two cores for a minute; .ci/run runs it alone"]
fn a_flood_of_logs_and_spans_keeps_memory_bounded_counts_the_excess_and_still_gives_verdicts() {
    const SECONDS: u64 = 60;
    const LINES_PER_SECOND: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir
        .path()
        .join("pods/shop_cart-0_11111111-2222-3333-4444-555555555555/cart");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("0.log");
    std::fs::write(&log_file, "").unwrap();
    let http = free_port();
    let capture = dir.path().join("flood.tapio");
    let rec = record_to(
        &capture,
        &[
            "--no-kernel",
            "--no-kube",
            "--logs-dir",
            dir.path().join("pods").to_str().unwrap(),
            "--otlp-grpc-port",
            &free_port().to_string(),
            "--otlp-http-port",
            &http.to_string(),
        ],
    );
    let pid = rec.pid();
    // The recorder yields to the load (nice 10, every thread), as a node agent yields to the
    // workloads: else on two cores the load cannot be offered at the rates asked for.
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        if let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() {
            // SAFETY: setpriority on a thread of our own child.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 10) };
        }
    }
    // The log flood: a million lines a second, paced in steps of 10 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let (s, path) = (Arc::clone(&stop), log_file.clone());
    let writer = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let started = Instant::now();
        let mut lines = 0u64;
        while !s.load(Ordering::Relaxed) {
            let due = Duration::from_secs_f64(lines as f64 / LINES_PER_SECOND as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            // One write of 10,000 lines (a repeat, not 10,000 formats: the test is a debug build).
            let step = format!("{now} stdout F GET /cart 200 served in 3 ms\n")
                .repeat((LINES_PER_SECOND / 100) as usize);
            w.write_all(step.as_bytes()).unwrap();
            lines += LINES_PER_SECOND / 100;
        }
        (lines, started.elapsed())
    });
    let spans = SpanFlood::start(http);
    let started = Instant::now();
    // Peak RSS in each half of the minute: bounded means the second half is no higher than the
    // first by more than noise.
    let mut peak = [0u64; 2];
    while started.elapsed() < Duration::from_secs(SECONDS) {
        let half = usize::from(started.elapsed() >= Duration::from_secs(SECONDS / 2));
        peak[half] = peak[half].max(rss(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let (written, took) = writer.join().unwrap();
    let offered = spans.finish();
    let out = rec.stdout_handle();
    let stderr = rec.stop_only();
    let info = crate::support::recorder::json_of(&["info"], &capture);
    let stdout: Vec<String> = out.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
    // The verdict comes: on two busy cores it may come late, but it comes.
    let opened = out
        .lock()
        .unwrap()
        .iter()
        .find(|(_, l)| l.starts_with("OPEN") && l.contains("dependency unreachable"))
        .map(|(at, _)| at.saturating_duration_since(started));
    let kept_lines = info["by_kind"]["log"].as_u64().unwrap_or(0);
    let kept_spans = info["by_kind"]["span"].as_u64().unwrap_or(0);
    let dropped = info["drops"].as_u64().unwrap();
    let secs = took.as_secs_f64();
    eprintln!(
        "flood for {secs:.1} s: {written} log lines written ({:.0}/s), {kept_lines} kept, {dropped} in drop markers; \
         {} spans offered ({:.0}/s), {} acknowledged, {} refused while the writer was behind, {kept_spans} kept; \
         peak RSS {} MiB in the first half, {} MiB in the second; the incident opened {opened:?} after the flood began",
        written as f64 / secs,
        offered.offered,
        offered.offered as f64 / secs,
        offered.acked,
        offered.refused,
        peak[0] >> 20,
        peak[1] >> 20
    );
    // The load is what the issue asks for: a million lines and 100 k spans a second, for a minute.
    assert!(
        written as f64 / secs >= 0.9 * LINES_PER_SECOND as f64,
        "{written} lines in {secs:.1} s"
    );
    assert!(
        offered.offered as f64 / secs >= 0.9 * SpanFlood::PER_SECOND as f64,
        "{offered:?} in {secs:.1} s"
    );
    // The excess of the log flood is counted, not silently lost: the follower reads behind, the
    // rest of what it read is over the rate and in drop markers.
    assert!(dropped > 0 && kept_lines > 0, "{stderr}");
    assert!(kept_lines + dropped <= written);
    // Spans: every acknowledged one is kept; the rest were refused, and the client was told.
    assert_eq!(kept_spans, offered.acked, "every acknowledged span is kept");
    assert_eq!(offered.acked + offered.refused, offered.offered);
    // Memory: under the DaemonSet's 512 MiB limit with room to spare, and flat: the second half
    // of the minute holds no more than the first (a queue bounded in batches, not in events,
    // once grew 8 MiB a second here).
    assert!(
        peak[0].max(peak[1]) < 448 << 20,
        "peak RSS {} MiB, then {} MiB",
        peak[0] >> 20,
        peak[1] >> 20
    );
    assert!(
        peak[1] < peak[0] + (64 << 20),
        "RSS rose from {} MiB in the first half to {} MiB in the second",
        peak[0] >> 20,
        peak[1] >> 20
    );
    // The losses of the flood are one blind spot of the verdict, not one a second.
    let incomplete = stdout
        .iter()
        .find(|l| l.contains("Evidence    INCOMPLETE"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        incomplete.matches("events lost by pod-logs").count(),
        1,
        "{incomplete}"
    );
    assert!(
        opened.is_some(),
        "the incident of the failing calls opened:\n{stderr}\n{}",
        stdout.join("\n")
    );
}
