//! `tapio replay` and `tapio correlate` over the incident fixtures: every verdict as expected, a
//! changed verdict fails with a diff, the output does not depend on threads, batch size or how the
//! evidence is split into captures, and the summaries people read are snapshots.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tapio::capture::{Header, ReadOptions, Reader, WriteOptions, Writer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (String, String, i32) {
    let out = Command::cargo_bin("tapio")
        .unwrap()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn every_incident_fixture_gives_its_expected_verdict() {
    let (out, err, code) = run(&["replay", "fixtures/incidents", "--expect"]);
    assert_eq!(code, 0, "{out}{err}");
    let fixtures = std::fs::read_dir(root().join("fixtures/incidents"))
        .unwrap()
        .count();
    assert!(
        out.contains(&format!("{fixtures} passed, 0 failed")),
        "{out}"
    );
    assert!(
        fixtures >= 33,
        "an incident of each root-cause kind, and the controls"
    );
}

#[test]
fn every_root_cause_kind_has_a_fixture_and_controls_stay_quiet() {
    let mut kinds = std::collections::BTreeSet::new();
    for dir in std::fs::read_dir(root().join("fixtures/incidents")).unwrap() {
        let dir = dir.unwrap().path();
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let incidents = v["incidents"].as_array().unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("control-") {
            assert!(
                incidents.is_empty(),
                "{name} must have no incident of medium severity or more"
            );
        } else {
            assert_eq!(incidents.len(), 1, "{name}: one incident");
            kinds.insert(
                incidents[0]["root_cause"]["kind"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    let all = [
        "oom_container_limit",
        "oom_node",
        "eviction_node_pressure",
        "liveness_probe_kill",
        "crash_loop_app_error",
        "dependency_unreachable",
        "image_pull_failure",
        "scheduling_failure",
        "node_not_ready",
        "dns_failure",
        "network_unreachable",
        "config_error",
        "service_errors",
        "service_latency",
        "network_latency",
    ];
    for k in all {
        assert!(kinds.contains(k), "a fixture for {k}");
    }
}

#[test]
fn a_changed_verdict_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("oom-cascade");
    std::fs::create_dir(&fx).unwrap();
    let src = root().join("fixtures/incidents/oom-cascade");
    std::fs::copy(src.join("capture.tapio"), fx.join("capture.tapio")).unwrap();
    let expected = std::fs::read_to_string(src.join("expected.json"))
        .unwrap()
        .replace("oom_container_limit", "oom_node");
    std::fs::write(fx.join("expected.json"), expected).unwrap();
    let (out, _, code) = run(&["replay", fx.to_str().unwrap(), "--expect"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("CHANGED")
            && out.contains("- oom_node pod/shop/cart")
            && out.contains("+ oom_container_limit pod/shop/cart"),
        "{out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");
    let (_, _, code) = run(&["replay", fx.to_str().unwrap(), "--update-expect"]);
    assert_eq!(code, 0);
    let (_, _, code) = run(&["replay", fx.to_str().unwrap(), "--expect"]);
    assert_eq!(code, 0);
}

#[test]
fn the_summary_of_the_oom_cascade_reads_as_it_should() {
    let (out, err, code) = run(&["replay", "fixtures/incidents/oom-cascade"]);
    assert_eq!((code, err.as_str()), (0, ""));
    insta::assert_snapshot!(out);
}

#[test]
fn the_summaries_of_every_incident() {
    let mut all = String::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("fixtures/incidents"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    dirs.sort();
    for d in dirs {
        let (out, _, _) = run(&["replay", d.to_str().unwrap()]);
        all.push_str(&format!(
            "### {}\n{out}\n",
            d.file_name().unwrap().to_string_lossy()
        ));
    }
    insta::assert_snapshot!(all);
}

#[derive(Clone, Copy)]
enum Split {
    /// One capture per node.
    Node,
    /// Spans and logs of the services in the first half of the alphabet apart from the rest.
    Service,
}

/// Splits a capture into several (events without a node or service go to the first).
fn split(src: &Path, dir: &Path, by: Split) -> Vec<PathBuf> {
    let events = Reader::open(src, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    let part = |e: &tapio::event::Event| -> String {
        match (by, &e.body) {
            (Split::Node, _) => e.node.to_string(),
            (Split::Service, tapio::event::Body::Span(s)) => half(&s.service),
            (Split::Service, tapio::event::Body::AppLog(a)) => half(&a.service),
            (Split::Service, _) => String::new(),
        }
    };
    fn half(service: &str) -> String {
        if service < "d" { "a-c" } else { "d-z" }.to_string()
    }
    let mut nodes: Vec<String> = events.iter().map(part).filter(|n| !n.is_empty()).collect();
    nodes.sort();
    nodes.dedup();
    let paths: Vec<PathBuf> = nodes
        .iter()
        .map(|n| dir.join(format!("{n}.tapio")))
        .collect();
    let opts = WriteOptions {
        block_bytes: 2048,
        ..WriteOptions::default()
    };
    let mut writers: Vec<Writer> = paths
        .iter()
        .zip(&nodes)
        .map(|(p, n)| Writer::create(p, &Header::new(n.as_str()), opts.clone()).unwrap())
        .collect();
    for mut e in events {
        let i = nodes.iter().position(|n| *n == part(&e)).unwrap_or(0);
        writers[i].append(&mut e).unwrap();
    }
    writers.into_iter().for_each(|w| {
        w.finish().unwrap();
    });
    paths
}

#[test]
fn the_verdict_does_not_depend_on_threads_batches_or_how_captures_are_split() {
    for name in [
        "oom-cascade",
        "node-not-ready",
        "network-unreachable",
        "lab-cpu-throttling",
        "lab-swallowed-exception",
    ] {
        // One node in the lab: its services' telemetry split as two nodes' receivers would have it.
        let by = if name.starts_with("lab-") {
            Split::Service
        } else {
            Split::Node
        };
        let capture = root()
            .join("fixtures/incidents")
            .join(name)
            .join("capture.tapio");
        let c = capture.to_str().unwrap();
        let (base, _, code) = run(&[
            "replay",
            c,
            "-o",
            "json",
            "--threads",
            "1",
            "--batch",
            "4096",
        ]);
        assert_eq!(code, 0);
        for (threads, batch) in [("4", "1"), ("2", "7"), ("3", "100000")] {
            let (out, _, _) = run(&[
                "replay",
                c,
                "-o",
                "json",
                "--threads",
                threads,
                "--batch",
                batch,
            ]);
            assert_eq!(out, base, "{name}: --threads {threads} --batch {batch}");
        }
        let dir = tempfile::tempdir().unwrap();
        let parts = split(&capture, dir.path(), by);
        assert!(
            parts.len() >= 2,
            "{name}: split into {} captures",
            parts.len()
        );
        let mut args = vec!["replay".to_string(), "-o".into(), "json".into()];
        args.extend(parts.iter().map(|p| p.to_string_lossy().into_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, _, _) = run(&args);
        let strip = |s: &str| -> serde_json::Value {
            let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
            // Evidence sequence numbers are per capture; everything else must be identical.
            for inc in v["incidents"].as_array_mut().unwrap() {
                for step in inc["chain"].as_array_mut().unwrap() {
                    for ev in step["evidence"].as_array_mut().unwrap() {
                        ev.as_object_mut().unwrap().remove("seq");
                    }
                }
            }
            v
        };
        assert_eq!(
            strip(&out),
            strip(&base),
            "{name}: split by node and merged again"
        );
    }
}

#[test]
fn correlate_explains_a_pod_and_a_failing_request() {
    let (out, _, code) = run(&[
        "correlate",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "--service",
        "shop/checkout",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("root cause: container memory limit"), "{out}");
    let (json, _, _) = run(&[
        "cat",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "--kind",
        "span",
        "-o",
        "json",
    ]);
    let failing = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["data"]["status"] == "error" && v["data"]["service"] == "checkout")
        .expect("a failing checkout span");
    let trace = failing["data"]["trace_id"].as_str().unwrap();
    let (out, _, code) = run(&[
        "correlate",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "--trace-id",
        trace,
        "--explain",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("Request {trace} — FAILED")),
        "{out}"
    );
    assert!(out.contains("← the failure originates here"), "{out}");
    assert!(
        out.contains("← explained by") && out.contains("kernel OOM-killed pid 4711 (java)"),
        "{out}"
    );
    assert!(out.contains("Considered"), "{out}");
    let (out, _, _) = run(&[
        "correlate",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "--node",
        "node-9",
    ]);
    assert_eq!(out.trim(), "no incident");
}

#[test]
fn two_independent_faults_in_one_incident_are_both_named() {
    // The OOM-killed cart and the lost node-2 hit the same checkout: neither explains the other.
    let (out, _, code) = run(&[
        "replay",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "fixtures/incidents/node-not-ready/capture.tapio",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let roots: Vec<String> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            std::iter::once(i["root_cause"]["kind"].as_str().unwrap().to_string()).chain(
                i["other_root_causes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["kind"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    assert!(roots.contains(&"node_not_ready".to_string()), "{roots:?}");
    assert!(
        roots.contains(&"oom_container_limit".to_string()),
        "{roots:?}"
    );
    let (text, _, _) = run(&[
        "replay",
        "fixtures/incidents/oom-cascade/capture.tapio",
        "fixtures/incidents/node-not-ready/capture.tapio",
    ]);
    assert!(
        text.contains("  Also        container memory limit: "),
        "{text}"
    );
    assert!(text.contains("Chain of the other root"), "{text}");
}

#[test]
fn a_request_is_read_as_a_tree_and_a_healthy_one_is_blamed_on_nothing() {
    let dir = "fixtures/incidents/lab-service-errors";
    let (capture, pods) = (format!("{dir}/capture.tapio"), format!("{dir}/pods.tapio"));
    let (json, _, _) = run(&["cat", &capture, "--kind", "span", "-o", "json"]);
    let spans: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let trace_where = |service: &str, status: &str| {
        spans
            .iter()
            .find(|v| v["data"]["service"] == service && v["data"]["status"] == status)
            .map(|v| v["data"]["trace_id"].as_str().unwrap().to_string())
            .unwrap()
    };
    // A request that failed in catalog: the tree marks catalog's own span, the incident follows.
    let bad = trace_where("catalog", "error");
    let (out, _, code) = run(&["correlate", &capture, &pods, "--trace-id", &bad]);
    assert_eq!(code, 0);
    let origin = out
        .lines()
        .find(|l| l.contains("← the failure originates here"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(origin.contains("shop/catalog server"), "{out}");
    assert!(
        out.contains("root cause: errors originating in a service"),
        "{out}"
    );
    // A request that succeeded, at the same service, before the fault: nothing to blame.
    let good = trace_where("catalog", "unset");
    let (out, _, code) = run(&["correlate", &capture, &pods, "--trace-id", &good]);
    assert_eq!(code, 0);
    assert!(out.contains("— succeeded (HTTP 200)"), "{out}");
    assert!(out.contains("no incident touched it"), "{out}");
    assert!(!out.contains("INCIDENT"), "{out}");
}

#[test]
fn incidents_close_as_the_stream_goes_and_the_verdict_is_the_same_as_at_the_end() {
    use std::sync::Mutex;
    use tapio::pipeline::{self, run_events, Options};
    use tapio::source::generate::{generate, Config};

    // Two hours of a quiet cluster at 20 events/s with the cart OOM-killed after 72 minutes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.tapio");
    let cfg = Config {
        events: 144_000,
        rate: 20,
        incident: true,
        ..Config::default()
    };
    let mut w = Writer::create(&path, &Header::new("node-1"), WriteOptions::default()).unwrap();
    let mut events = Vec::new();
    generate(&cfg, |mut e| {
        w.append(&mut e)?;
        events.push(e);
        Ok::<_, tapio::capture::Error>(())
    })
    .unwrap();
    w.finish().unwrap();

    // Fed to the core batch by batch: what closes before the end of the stream.
    let closed = Mutex::new(Vec::new());
    let mut core = pipeline::Core::new(Default::default());
    for batch in events.chunks(4096) {
        core.feed(batch, &mut |c| {
            closed.lock().unwrap().push(c.incident.start)
        });
    }
    let closed = closed.into_inner().unwrap();
    let last = events.last().unwrap().ts;
    assert!(!closed.is_empty(), "incidents closed before the end");
    assert!(
        closed.iter().all(|&t| t.0 + 1800 * 1_000_000_000 < last.0),
        "only long-quiet incidents close early"
    );
    let outcome = pipeline::run(&[path], &Options::default(), &mut |_| {}).unwrap();
    assert!(outcome
        .verdict
        .incidents
        .iter()
        .any(|i| i.root_cause.kind.as_str() == "oom_container_limit"));

    let (at_end, _) = run_events([events], Default::default());
    assert_eq!(
        serde_json::to_string(&outcome.verdict).unwrap(),
        serde_json::to_string(&at_end).unwrap(),
        "closing as it goes changes no verdict"
    );
}

#[test]
fn pacing_changes_when_incidents_appear_never_what_they_say() {
    let c = "fixtures/incidents/control-hotrod/capture.tapio";
    let (fast, _, code) = run(&["replay", c, "-o", "json", "--all"]);
    assert_eq!(code, 0);
    let (paced, _, code) = run(&["replay", c, "-o", "json", "--all", "--speed", "4"]);
    assert_eq!(code, 0);
    assert_eq!(fast, paced);
    let (_, err, code) = run(&["replay", c, "--speed", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("use 1 (as it happened)"), "{err}");
}

/// Incidents as JSON without their ids (live ids count in the order incidents opened; replay
/// numbers its verdict), sorted.
fn without_ids(v: impl IntoIterator<Item = serde_json::Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .into_iter()
        .map(|mut i| {
            i.as_object_mut().unwrap().remove("id");
            i.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The closed incidents of live JSON lines; checks that every incident that opened (or changed)
/// closes under the same id, and that lines of one id go open → update… → closed.
fn closed_of_live(lines: &str) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut state: std::collections::HashMap<u64, String> = Default::default();
    for l in &lines {
        let id = l["id"].as_u64().unwrap();
        let s = l["state"].as_str().unwrap().to_string();
        let before = state.get(&id).map(String::as_str);
        match (before, s.as_str()) {
            (None, "open") | (None, "closed") => {}
            (Some("open") | Some("update"), "update" | "closed") => {}
            other => panic!("incident {id}: {other:?} out of order"),
        }
        assert_eq!(l["incident"]["id"], l["id"]);
        state.insert(id, s);
    }
    assert!(
        state.values().all(|s| s == "closed"),
        "every incident closed: {state:?}"
    );
    // An incident closed as part of another goes on under that one.
    lines
        .into_iter()
        .filter(|l| {
            l["state"] == "closed" && l.get("merged_into").is_none() && l.get("withdrawn").is_none()
        })
        .map(|l| l["incident"].clone())
        .collect()
}

#[test]
fn live_output_closes_every_fixture_as_replay_does() {
    let mut opened = 0;
    for d in std::fs::read_dir(root().join("fixtures/incidents")).unwrap() {
        let dir = d.unwrap().path();
        let dir = dir.to_str().unwrap();
        let (replayed, err, code) = run(&["replay", "-o", "json", dir]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&replayed).unwrap();
        let (live, err, code) = run(&["replay", "--live-output", "-o", "json", dir]);
        assert_eq!(code, 0, "{err}");
        opened += live.matches(r#""state":"open""#).count();
        assert_eq!(
            without_ids(closed_of_live(&live)),
            without_ids(v["incidents"].as_array().unwrap().clone()),
            "{dir}: closed live = replayed"
        );
    }
    assert!(opened >= 20, "incidents open before they close: {opened}");
}

/// Writes the events of `from` into `to` as a recorder would: block by block, with pauses, or
/// into `files` rotated captures.
fn write_slowly(from: &Path, to: &Path, files: usize) {
    let events = Reader::open(from, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap();
    let per_file = events.len().div_ceil(files.max(1));
    let mut seq = 0;
    for (n, chunk) in events.chunks(per_file).enumerate() {
        let path = if files > 1 {
            to.join(format!("rec-{n}.tapio"))
        } else {
            to.to_path_buf()
        };
        // The numbers go on from file to file, as the recorder's rotation does.
        let mut w = Writer::create(&path, &Header::new("node-1"), WriteOptions::default())
            .unwrap()
            .starting_at(seq);
        for (i, e) in chunk.iter().enumerate() {
            let mut e = e.clone();
            w.append(&mut e).unwrap();
            if i % 2000 == 1999 {
                w.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        }
        seq = w.next_seq();
        w.finish().unwrap();
    }
}

#[test]
fn following_a_capture_as_it_is_written_closes_what_replay_does() {
    let fixture = root().join("fixtures/incidents/lab-memory-leak-oom/capture.tapio");
    let (replayed, _, _) = run(&["replay", "-o", "json", fixture.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&replayed).unwrap();
    let expected = without_ids(v["incidents"].as_array().unwrap().clone());

    // One file: the follower ends when the writer closes it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.tapio");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
        .args(["replay", "--follow", "-o", "json"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    write_slowly(&fixture, &file, 1);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let live = String::from_utf8(out.stdout).unwrap();
    assert!(live.contains(r#""state":"open""#), "{live}");
    assert_eq!(without_ids(closed_of_live(&live)), expected, "one file");

    // A directory of rotated files: the follower moves from file to file until Ctrl-C.
    let rotated = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
        .args(["replay", "--follow", "-o", "json"])
        .arg(rotated.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write_slowly(&fixture, rotated.path(), 3);
    std::thread::sleep(std::time::Duration::from_millis(800));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let live = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        without_ids(closed_of_live(&live)),
        expected,
        "rotated files"
    );
}

/// A webhook receiver: answers the first POST with 503 and the rest with 200; hands out the bodies.
fn webhook_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            if n > 0 {
                let _ = tx.send(String::from_utf8(body).unwrap());
            }
        }
    });
    (port, rx)
}

#[test]
fn incidents_are_posted_to_a_webhook_and_given_to_a_command_as_they_change() {
    let (port, bodies) = webhook_server();
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("hook.jsonl");
    let (out, err, code) = run(&[
        "replay",
        "fixtures/incidents/oom-cascade",
        "--webhook",
        &format!("http://127.0.0.1:{port}/tapio"),
        "--on-incident",
        &format!("cat >> {}", got.display()),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("2 incident changes sent, 0 failed, 1 retried, 0 dropped"),
        "{err}"
    );
    let posted: Vec<serde_json::Value> = bodies
        .try_iter()
        .map(|b| serde_json::from_str(&b).unwrap())
        .collect();
    let states: Vec<&str> = posted
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["open", "closed"]);
    assert_eq!(
        posted[1]["incident"]["root_cause"]["kind"],
        "oom_container_limit"
    );
    let lines = std::fs::read_to_string(&got).unwrap();
    assert_eq!(
        lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>(),
        posted,
        "the command gets what the webhook gets"
    );
}

#[test]
fn live_output_reads_as_it_should() {
    let (out, err, code) = run(&[
        "replay",
        "--live-output",
        "fixtures/incidents/lab-memory-leak-oom",
    ]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}
