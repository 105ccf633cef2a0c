//! Faults the recorder survives: `kill -9` under load loses at most the last second, SIGTERM under
//! load loses nothing, a full disk is a clear error that keeps what was written, and a read-only
//! or full file system is an error before anything starts.

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
        Load::with_errors(port, run, false)
    }

    /// With `errors`, one span of each request is a client span that failed to connect (a
    /// dependency down), so the load makes an incident of its own.
    fn with_errors(port: u16, run: u32, errors: bool) -> Load {
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
                    .enumerate()
                    .map(|(i, id)| {
                        let status = if errors && i == 0 {
                            r#","kind":3,"status":{"code":2,"message":"dial tcp 10.96.0.12:8080: connect: connection refused"},"attributes":[{"key":"server.address","value":{"stringValue":"cart.shop.svc.cluster.local"}}]"#
                        } else {
                            r#","kind":2"#
                        };
                        format!(
                            r#"{{"traceId":"{:032x}","spanId":"{id}","name":"load"{status},"startTimeUnixNano":"{now}","endTimeUnixNano":"{now}"}}"#,
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

#[test]
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

/// The resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_flood_of_logs_and_spans_keeps_memory_bounded_counts_the_excess_and_still_gives_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir
        .path()
        .join("pods/shop_cart-0_11111111-2222-3333-4444-555555555555/cart");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("0.log");
    std::fs::write(&log_file, "").unwrap();
    let http = free_port();
    let rec = record_to(
        &dir.path().join("flood.tapio"),
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
    // The log flood: as many lines as one thread writes, for 8 s.
    let stop = Arc::new(AtomicBool::new(false));
    let (s, path) = (Arc::clone(&stop), log_file.clone());
    let writer = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut lines = 0u64;
        while !s.load(Ordering::Relaxed) {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            for _ in 0..1000 {
                writeln!(
                    w,
                    "{now} stdout F GET /cart 200 served in 3 ms (request {lines})"
                )
                .unwrap();
                lines += 1;
            }
        }
        w.flush().unwrap();
        lines
    });
    let load = Load::with_errors(http, 42, true);
    let started = Instant::now();
    let mut peak = 0u64;
    while started.elapsed() < Duration::from_secs(8) {
        peak = peak.max(rss(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let acked = load.finish();
    let out = rec.stdout_handle();
    let (events, info, stderr) = rec.stop();
    let stdout: Vec<String> = out.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
    // The verdict comes: on two busy cores it may come late, but it comes.
    let opened = out
        .lock()
        .unwrap()
        .iter()
        .find(|(_, l)| l.starts_with("OPEN") && l.contains("dependency unreachable"))
        .map(|(at, _)| at.saturating_duration_since(started));
    let kept_lines = events.iter().filter(|e| e["kind"] == "log").count() as u64;
    let spans = events.iter().filter(|e| e["kind"] == "span").count();
    let dropped = info["drops"].as_u64().unwrap();
    eprintln!(
        "flood for 8 s: {written} log lines written ({}/s), {kept_lines} kept, {dropped} in drop markers; \
         {} spans acknowledged ({}/s), {spans} kept; peak RSS {} MiB; the incident opened {opened:?} after the flood began",
        written / 8,
        acked.len(),
        acked.len() / 8,
        peak >> 20
    );
    assert!(written > 1_000_000, "a flood: {written} lines");
    // The excess of the log flood is counted, not silently lost: the follower reads behind, the
    // rest of what it read is over the rate and in drop markers.
    assert!(dropped > 0 && kept_lines > 0, "{stderr}");
    assert!(kept_lines + dropped <= written);
    assert_eq!(spans, acked.len(), "every acknowledged span is kept");
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
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
