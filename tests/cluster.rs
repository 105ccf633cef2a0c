//! The cluster transport through the real commands and a real `nats-server -js`: nodes publish,
//! one consumer gives the verdict of their captures merged, survives being killed, a NATS that
//! goes away, a node whose clock is off and garbage on the subjects.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tapio::capture::{ReadOptions, Reader, WriteOptions, Writer};

use crate::support::nats::{available, free_port, http_get, Server};
use crate::support::recorder::{events_of, logs_of, record_to, tapio};

/// Splits a fixture's captures into one capture per node (the events keep their numbers), as
/// the nodes' recorders would have written them; events of no node go to `cluster.tapio` (the
/// Kubernetes recorder). In node-name order, the order `replay` is given them in.
fn split_by_node(fixture: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut events = Vec::new();
    for p in tapio::pipeline::captures_in(fixture) {
        events.extend(
            Reader::open(&p, ReadOptions::default())
                .unwrap()
                .read_all()
                .unwrap(),
        );
    }
    let mut by: std::collections::BTreeMap<String, Vec<tapio::event::Event>> = Default::default();
    for e in events {
        by.entry(e.node.as_str().to_string()).or_default().push(e);
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut out = Vec::new();
    for (node, mut evs) in by {
        evs.sort_by_key(|e| (e.ts, e.seq));
        let name = if node.is_empty() {
            "cluster".to_string()
        } else {
            node.clone()
        };
        let path = dir.join(format!("{name}.tapio"));
        let mut w = Writer::create(
            &path,
            &tapio::capture::Header::new(node),
            WriteOptions::default(),
        )
        .unwrap();
        let mut seq = 0;
        for mut e in evs {
            // Numbers must grow within a capture.
            seq = seq.max(e.seq);
            e.seq = seq;
            seq += 1;
            w.append_numbered(&e).unwrap();
        }
        w.finish().unwrap();
        out.push(path);
    }
    out
}

/// A NATS server with its store in a fresh directory, and oom-cascade split per node in it.
fn oom_cascade_cluster() -> (tempfile::TempDir, Server, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let nats = Server::start(&dir.path().join("store"));
    let nodes = split_by_node(&fixture("oom-cascade"), &dir.path().join("split"));
    (dir, nats, nodes)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents")
        .join(name)
}

fn publish(url: &str, cluster: &str, captures: &[PathBuf], extra: &[&str]) -> String {
    let out = tapio()
        .arg("publish")
        .args(captures)
        .arg(url)
        .args(["--cluster", cluster])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "tapio publish failed: {err}");
    err
}

fn replay_json(args: &[&str], paths: &[PathBuf]) -> (Value, String, i32) {
    let out = tapio()
        .arg("replay")
        .args(paths)
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("replay printed no JSON ({e}): {err}"));
    (v, err, out.status.code().unwrap_or(-1))
}

fn without_notes(mut v: Value) -> Value {
    for inc in v["incidents"].as_array_mut().unwrap() {
        inc.as_object_mut().unwrap().remove("notes");
    }
    v
}

#[test]
fn nodes_published_apart_give_the_verdict_of_their_captures_merged() {
    let test = "nodes_published_apart_give_the_verdict_of_their_captures_merged";
    if !available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = Server::start(&dir.path().join("store"));
    for name in ["oom-cascade", "node-not-ready", "dependency-unreachable"] {
        let nodes = split_by_node(&fixture(name), &dir.path().join(name));
        assert!(nodes.len() >= 3, "{name} is a cluster of several nodes");
        // Each node publishes on its own, as the nodes of a cluster do.
        for n in &nodes {
            publish(&nats.url(), name, std::slice::from_ref(n), &[]);
        }
        let (want, _, _) = replay_json(&[], &nodes);
        let (got, err, code) = replay_json(&["--cluster", name], &[PathBuf::from(nats.url())]);
        assert_eq!(code, 0, "{err}");
        assert!(!want["incidents"].as_array().unwrap().is_empty());
        assert_eq!(
            got, want,
            "{name}: the stream's verdict is the captures' verdict"
        );
        // Published again (the same command): JetStream keeps one copy, the verdict is the same.
        for n in &nodes {
            let again = publish(&nats.url(), name, std::slice::from_ref(n), &[]);
            assert!(again.contains("already there"), "{again}");
        }
        let (got, _, _) = replay_json(&["--cluster", name], &[PathBuf::from(nats.url())]);
        assert_eq!(got, want, "{name}: a second upload changes nothing");
    }
}

#[test]
fn a_node_whose_clock_is_seven_seconds_ahead_is_corrected_and_said() {
    let test = "a_node_whose_clock_is_seven_seconds_ahead_is_corrected_and_said";
    if !available(test) {
        return;
    }
    let (_dir, nats, nodes) = oom_cascade_cluster();
    let (want, _, _) = replay_json(&[], &nodes);
    for n in &nodes {
        let skewed = n.file_stem().unwrap() == "node-3";
        let extra: &[&str] = if skewed {
            &["--clock-offset", "7s"]
        } else {
            &[]
        };
        publish(&nats.url(), "skew", std::slice::from_ref(n), extra);
    }
    let url = [PathBuf::from(nats.url())];
    let (got, err, _) = replay_json(&["--cluster", "skew"], &url);
    assert!(
        err.contains("the clock of node node-3 is +7.0"),
        "the skew is reported: {err}"
    );
    let noted = got["incidents"].as_array().unwrap().iter().any(|i| {
        i["notes"]
            .to_string()
            .contains("node node-3 were moved by -7.0")
    });
    assert!(noted, "the incidents say it: {got}");
    assert_eq!(
        without_notes(got),
        want,
        "corrected: the verdict without skew"
    );
    // Not corrected, the verdict is not the same: the test can tell.
    let (raw, _, _) = replay_json(&["--cluster", "skew", "--skew-threshold", "off"], &url);
    assert_ne!(
        raw, want,
        "uncorrected, node-3's seven seconds change the verdict"
    );
}

/// A `replay --follow` of the stream, its stdout lines collected as they come.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    fn start(url: &str, cluster: &str, consumer: &str, extra: &[&str]) -> Follower {
        let mut child = tapio()
            .args([
                "replay",
                "--follow",
                url,
                "--cluster",
                cluster,
                "--consumer",
                consumer,
            ])
            .args(["--max-lateness", "1s", "-o", "json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&lines);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let e = Arc::clone(&stderr);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Follower {
            child,
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until no new line came for `quiet` (from the start, or the last line; at most
    /// `within`).
    fn settle(&self, quiet: Duration, within: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut n = self.lines().len();
        let mut since = Instant::now();
        while start.elapsed() < within {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.lines().len();
            if now != n {
                n = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        self.lines()
    }

    fn wait_for(&self, within: Duration, want: impl Fn(&[String]) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if want(&self.lines()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM; its stderr.
    fn stop(mut self) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        assert!(
            status.code().is_some_and(|c| c <= 1),
            "the consumer failed: {status}\n{err}"
        );
        err
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A printed change, as the test compares them: state, id, what changed, the root cause.
fn change_key(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    format!(
        "{} {} {} {} {}",
        v["state"],
        v["id"],
        v["changed"],
        v["incident"]["root_cause"]["kind"],
        v["incident"]["root_cause"]["entity"]
    )
}

#[test]
fn a_consumer_killed_mid_stream_and_restarted_prints_every_change_once() {
    let test = "a_consumer_killed_mid_stream_and_restarted_prints_every_change_once";
    if !available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = Server::start(&dir.path().join("store"));
    let gen = dir.path().join("gen.tapio");
    let g = tapio()
        .args(["generate", "--events", "40000", "--incident", "-o"])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(g.status.success());
    let nodes = split_by_node(&gen, &dir.path().join("split"));
    // The first nodes publish; a consumer starts, says something, and is killed; the last node
    // publishes (the stream goes on without it), and the consumer is started again.
    let (early, late) = nodes.split_at(nodes.len() - 1);
    for n in early {
        publish(&nats.url(), "k", std::slice::from_ref(n), &[]);
    }
    let first = Follower::start(&nats.url(), "k", "interrupted", &[]);
    assert!(first.wait_for(Duration::from_secs(120), |l| !l.is_empty()));
    let before = first.lines();
    first.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    for n in late {
        publish(&nats.url(), "k", std::slice::from_ref(n), &[]);
    }
    let second = Follower::start(&nats.url(), "k", "interrupted", &[]);
    let after = second.settle(Duration::from_secs(6), Duration::from_secs(120));
    let err = second.stop();
    assert!(err.contains("again to rebuild the state"), "{err}");
    // Uninterrupted, over the same stream, for reference.
    let reference = Follower::start(&nats.url(), "k", "reference", &[]);
    assert!(reference.wait_for(Duration::from_secs(120), |l| !l.is_empty()));
    let want: Vec<String> = reference
        .settle(Duration::from_secs(4), Duration::from_secs(120))
        .iter()
        .map(|l| change_key(l))
        .collect();
    reference.stop();
    assert!(
        want.iter().any(|k| k.starts_with("\"open\"")),
        "the reference opened incidents: {want:?}"
    );
    let got: Vec<String> = before.iter().chain(&after).map(|l| change_key(l)).collect();
    let mut dedup = got.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "a change printed twice: {got:?}");
    // Every incident opened and closed once, with the ids an uninterrupted consumer gives. (What
    // it said in between may differ: the interrupted one saw the last node's events later.)
    let opened_closed = |keys: &[String]| {
        let mut v: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("\"open\"") || k.starts_with("\"closed\""))
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        opened_closed(&got),
        opened_closed(&want),
        "killed and restarted, it opens and closes what an uninterrupted one does: {got:?}"
    );
}

#[test]
fn garbage_on_the_subjects_is_counted_and_skipped_and_the_api_serves_what_is_open() {
    let test = "garbage_on_the_subjects_is_counted_and_skipped_and_the_api_serves_what_is_open";
    if !available(test) {
        return;
    }
    let (_dir, nats, nodes) = oom_cascade_cluster();
    publish(&nats.url(), "g", &nodes[..1], &[]);
    nats.publish_raw("tapio.g.node-9.ebpf", None, b"hello");
    nats.publish_raw(
        "tapio.g.node-9.ebpf",
        Some("Tapio-Batch: 1\r\nTapio-Node: node-9"),
        b"TBLK not a frame",
    );
    nats.publish_raw(
        "tapio.g.node-9.ebpf",
        Some("Tapio-Batch: 9"),
        b"from the future",
    );
    publish(&nats.url(), "g", &nodes[1..], &[]);
    let (want, _, _) = replay_json(&[], &nodes);
    let (got, err, code) = replay_json(&["--cluster", "g"], &[PathBuf::from(nats.url())]);
    assert_eq!(code, 1, "skipped messages make exit 1: {err}");
    assert!(err.contains("not a tapio batch"), "{err}");
    assert!(err.contains("wire version \"9\""), "{err}");
    assert!(
        err.contains("3 messages that were not tapio batches skipped"),
        "{err}"
    );
    assert_eq!(got, want);

    let addr = format!("127.0.0.1:{}", free_port());
    let f = Follower::start(&nats.url(), "g", "api", &["--serve", &addr]);
    assert!(f.wait_for(Duration::from_secs(60), |l| l
        .iter()
        .any(|l| l.contains("\"open\""))));
    f.settle(Duration::from_secs(2), Duration::from_secs(60));
    let (code, health) = http_get(&addr, "/healthz");
    assert_eq!((code, health.trim()), (200, "ok"));
    let (code, open) = http_get(&addr, "/incidents?state=open");
    assert_eq!(code, 200);
    let open: Value = serde_json::from_str(&open).unwrap();
    let first = &open.as_array().unwrap()[0];
    assert_eq!(first["state"], "open");
    let id = first["id"].as_u64().unwrap();
    let (code, one) = http_get(&addr, &format!("/incidents/{id}"));
    assert_eq!(code, 200);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["root_cause"], first["root_cause"]);
    assert_eq!(http_get(&addr, "/incidents/999").0, 404);
    assert_eq!(http_get(&addr, "/incidents?state=maybe").0, 400);
    let (code, metrics) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    for want in [
        "tapio_garbage_messages_total 3",
        "tapio_events_total{node=\"node-1\",source=\"import\"}",
        "tapio_incidents_open{kind=",
        "tapio_consumer_lag_messages 0",
        "tapio_nats_connected 1",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    f.stop();
}

const UID: &str = "5e0c4a1e-7d3b-4f8e-9a65-00000000abcd";

#[test]
fn nats_away_for_ten_seconds_loses_nothing_and_keeps_the_order() {
    let test = "nats_away_for_ten_seconds_loses_nothing_and_keeps_the_order";
    if !available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Server::start(&dir.path().join("store"));
    let logs = dir.path().join("pods");
    let cdir = logs.join(format!("shop_api-7d8f9-x2x4k_{UID}/api"));
    std::fs::create_dir_all(&cdir).unwrap();
    let log = cdir.join("0.log");
    std::fs::write(&log, "").unwrap();
    let capture = dir.path().join("node.tapio");
    let rec = record_to(
        &capture,
        &[
            "--no-kernel",
            "--no-kube",
            "--logs-dir",
            logs.to_str().unwrap(),
            "--verdicts",
            "none",
            "--node",
            "node-a",
            "--cluster",
            "away",
            "--publish",
            &nats.url(),
            "--spool-dir",
            dir.path().join("spool").to_str().unwrap(),
        ],
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let consumer = Follower::start(&nats.url(), "away", "c", &["--serve", &addr]);
    let mut n = 0u32;
    let mut write = |count: u32| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for _ in 0..count {
            let t = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.9fZ");
            writeln!(f, "{t} stdout F line {n}").unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    write(50);
    nats.down();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(10) {
        write(10);
    }
    let spooled = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(spooled > 0, "batches wait in the spool while NATS is away");
    nats.up();
    write(50);
    let stderr = rec.stop_only();
    assert!(stderr.contains("published"), "{stderr}");
    assert!(
        !stderr.contains("wait in the spool"),
        "everything was sent: {stderr}"
    );
    let local = logs_of(&events_of(&capture));
    assert_eq!(local.len(), n as usize, "the local capture has every line");
    // The stream has every line, once, in order.
    let pulled = dir.path().join("pulled.tapio");
    let out = tapio()
        .args(["pull", &nats.url(), "--cluster", "away", "-o"])
        .arg(&pulled)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let streamed = logs_of(&events_of(&pulled));
    assert_eq!(streamed, local, "every line once, in order");
    // The consumer that was following went on after NATS came back.
    let start = Instant::now();
    let want = format!("tapio_events_total{{node=\"node-a\",source=\"pod-logs\"}} {n}");
    let mut metrics = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(&addr).is_err() {
            panic!("the consumer is gone: {}", consumer.stop());
        }
        let (code, m) = http_get(&addr, "/metrics");
        metrics = m;
        if code == 200 && metrics.contains(&want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(metrics.contains(&want), "{want} in\n{metrics}");
    consumer.stop();
}

#[test]
fn pull_writes_a_window_of_the_stream_that_replays_as_the_captures_do() {
    let test = "pull_writes_a_window_of_the_stream_that_replays_as_the_captures_do";
    if !available(test) {
        return;
    }
    let (dir, nats, nodes) = oom_cascade_cluster();
    for n in &nodes {
        publish(&nats.url(), "p", std::slice::from_ref(n), &[]);
    }
    let (want, _, _) = replay_json(&[], &nodes);
    let all = dir.path().join("all.tapio");
    let out = tapio()
        .args(["pull", &nats.url(), "--cluster", "p", "-o"])
        .arg(&all)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (got, _, _) = replay_json(&[], std::slice::from_ref(&all));
    assert_eq!(
        got["incidents"].as_array().unwrap().len(),
        want["incidents"].as_array().unwrap().len()
    );
    for (g, w) in got["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["incidents"].as_array().unwrap())
    {
        assert_eq!(g["root_cause"], w["root_cause"]);
        assert_eq!(g["severity"], w["severity"]);
    }
    // A window from the middle: the objects from before it come along, so the pods are known.
    let window = dir.path().join("window.tapio");
    let out = tapio()
        .args([
            "pull",
            &nats.url(),
            "--cluster",
            "p",
            "--node",
            "node-3,cluster",
            "--since",
            "2026-03-14T10:00:30Z",
            "--until",
            "+1m",
            "-o",
        ])
        .arg(&window)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Kubernetes objects from before the window"),
        "{err}"
    );
    let events = events_of(&window);
    assert!(
        events.iter().any(|e| e["kind"] == "oom"),
        "node-3's OOM kill is in the window"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "k8s.object"),
        "with the objects that explain it"
    );
}

#[test]
fn a_server_that_wants_a_token_gets_it_and_one_without_it_is_a_clear_error() {
    let test = "a_server_that_wants_a_token_gets_it_and_one_without_it_is_a_clear_error";
    if !available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = Server::start_with(&dir.path().join("store"), &["--auth", "s3cret"]);
    let out = tapio()
        .args([
            "publish",
            "fixtures/incidents/oom-cascade",
            &nats.url(),
            "--timeout",
            "2s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("took 0 of 449 events") && err.contains("authorization violation"),
        "{err}"
    );
    let out = tapio()
        .args(["publish", "fixtures/incidents/oom-cascade", &nats.url()])
        .env("NATS_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tapio()
        .args(["replay", &nats.url(), "--nats-token", "wrong"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("authorization"), "{err}");
}

#[test]
fn bad_urls_and_missing_streams_are_clear_errors() {
    let out = tapio()
        .args([
            "publish",
            "fixtures/incidents/oom-cascade",
            "nats://127.0.0.1:1",
            "--timeout",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NATS at nats://127.0.0.1:1 took 0 of 449 events"),
        "{err}"
    );
    let out = tapio()
        .args(["replay", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NATS at nats://127.0.0.1:1"), "{err}");
}

#[test]
fn the_cluster_manifests_run_commands_tapio_accepts() {
    let mut seen = Vec::new();
    for f in ["nats", "daemonset", "kube-recorder", "consumer"] {
        let path = format!("{}/deploy/cluster/{f}.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde_yaml::with::singleton_map_recursive::deserialize(doc)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let containers = &v["spec"]["template"]["spec"]["containers"];
            for c in containers.as_array().into_iter().flatten() {
                if !c["image"].as_str().unwrap_or("").starts_with("tapio") {
                    continue;
                }
                let args: Vec<String> = c["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect();
                // clap refuses an unknown flag or a bad value even with --help.
                let out = tapio().args(&args).arg("--help").output().unwrap();
                assert!(
                    out.status.success(),
                    "{path}: tapio {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                seen.push((f, args.join(" ")));
            }
        }
    }
    let has = |f: &str, want: &[&str]| {
        seen.iter()
            .any(|(g, a)| *g == f && want.iter().all(|w| a.contains(w)))
    };
    assert!(has(
        "daemonset",
        &["record", "--no-kube", "--publish=nats://"]
    ));
    assert!(has(
        "kube-recorder",
        &["record", "--kube", "--no-kernel", "--publish=nats://"]
    ));
    assert!(has("consumer", &["replay --follow nats://", "--serve="]));
}

#[test]
fn a_restart_rebuilds_from_its_window_and_the_objects_from_before_it() {
    let test = "a_restart_rebuilds_from_its_window_and_the_objects_from_before_it";
    if !available(test) {
        return;
    }
    let (_dir, nats, nodes) = oom_cascade_cluster();
    // The cluster-wide objects first, the nodes well after.
    let (cluster, rest) = nodes.split_first().unwrap();
    assert!(cluster.ends_with("cluster.tapio"));
    publish(&nats.url(), "w", std::slice::from_ref(cluster), &[]);
    std::thread::sleep(Duration::from_millis(2500));
    for n in rest {
        publish(&nats.url(), "w", std::slice::from_ref(n), &[]);
    }
    let first = Follower::start(&nats.url(), "w", "windowed", &[]);
    let before = first.settle(Duration::from_secs(3), Duration::from_secs(60));
    assert!(!before.is_empty());
    first.kill9();
    let second = Follower::start(&nats.url(), "w", "windowed", &["--rebuild-window", "1s"]);
    let after = second.settle(Duration::from_secs(4), Duration::from_secs(60));
    let err = second.stop();
    let rebuilt = |err: &str| -> (u64, u64) {
        let (_, rest) = err.split_once(" messages (").expect(err);
        let total: u64 = err
            .split(" messages (")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let again: u64 = rest
            .split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect(err);
        (total, again)
    };
    let (_, again) = rebuilt(&err);
    // The same, with the whole stream rebuilt.
    let full = Follower::start(&nats.url(), "w", "full", &[]);
    full.settle(Duration::from_secs(3), Duration::from_secs(60));
    full.kill9();
    let full = Follower::start(&nats.url(), "w", "full", &["--rebuild-window", "all"]);
    full.settle(Duration::from_secs(3), Duration::from_secs(60));
    let (_, all) = rebuilt(&full.stop());
    assert!(
        0 < again && again < all,
        "the window rebuilt {again} of the {all} messages: {err}"
    );
    let objects: u64 = err
        .split("(with ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        objects > 0,
        "the objects from before the window come along: {err}"
    );
    // Nothing said twice, whatever the window left out.
    let mut keys: Vec<String> = before.iter().chain(&after).map(|l| change_key(l)).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "{before:?}\n{after:?}");
}
