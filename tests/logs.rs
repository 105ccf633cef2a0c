//! Container logs through the real command: followed live by `tapio record --logs` while files
//! rotate, get compressed and restart; imported from kubelet files and `kubectl logs` output.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::recorder::{events_of, logs_of, record, tapio};

const UID: &str = "5e0c4a1e-7d3b-4f8e-9a65-00000000abcd";

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn record_follows_files_through_rotation_compression_and_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(format!("shop_api-7d8f9-x2x4k_{UID}/api"));
    std::fs::create_dir_all(&dir).unwrap();
    let log0 = dir.join("0.log");
    append(
        &log0,
        "2026-03-14T10:00:00.000000000Z stdout F before the recorder\n",
    );
    let out = tempfile::tempdir().unwrap();
    let rec = record(
        out.path(),
        &[
            "--no-kernel",
            "--no-kube",
            "--logs-dir",
            root.path().to_str().unwrap(),
        ],
    );
    let pause = || std::thread::sleep(Duration::from_millis(400));
    append(&log0, "2026-03-14T10:00:01.000000000Z stdout F started\n2026-03-14T10:00:02.000000000Z stderr F a long ");
    pause();
    append(
        &log0,
        "line\n2026-03-14T10:00:02.100000000Z stderr F rest of it\n",
    );
    append(&log0, "2026-03-14T10:00:03.000000000Z stderr F level=error msg=\"could not connect to prod-db:3333\"\n");
    // The kubelet rotates, and compresses the rotated file before the recorder looks again.
    let rotated = dir.join("0.log.20260314-100003");
    std::fs::rename(&log0, &rotated).unwrap();
    append(
        &log0,
        "2026-03-14T10:00:04.000000000Z stdout F after rotation\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&rotated).unwrap()).unwrap();
    std::fs::write(dir.join("0.log.20260314-100003.gz"), gz.finish().unwrap()).unwrap();
    std::fs::remove_file(&rotated).unwrap();
    pause();
    // The container restarts; a second pod appears.
    append(
        &dir.join("1.log"),
        "2026-03-14T10:00:05.000000000Z stderr F panic: DEPLOY_ENV is not set\n",
    );
    let other = root.path().join(format!("shop_worker-1_{UID}/worker"));
    std::fs::create_dir_all(&other).unwrap();
    append(
        &other.join("0.log"),
        r#"{"log":"worker up\n","stream":"stdout","time":"2026-03-14T10:00:06Z"}"#,
    );
    append(&other.join("0.log"), "\n");
    pause();
    let (events, info, stderr) = rec.stop();
    assert_eq!(
        logs_of(&events),
        [
            "before the recorder", // the recent past of a file that was there at start
            "started",
            "a long line",
            "rest of it",
            "level=error msg=\"could not connect to prod-db:3333\"",
            "after rotation",
            "panic: DEPLOY_ENV is not set",
            "worker up"
        ],
        "{stderr}"
    );
    let panic = events
        .iter()
        .find(|e| e["data"]["body"] == "panic: DEPLOY_ENV is not set")
        .unwrap();
    assert_eq!(panic["source"], "pod-logs");
    assert_eq!(panic["data"]["severity"], "error");
    assert!(panic["data"]["resource"]
        .to_string()
        .contains("k8s.container.restart_count"));
    assert_eq!(info["header"]["sources"], serde_json::json!(["pod-logs"]));
    assert!(stderr.contains("container logs: 8 lines"), "{stderr}");
    // `cat --pod` reaches them.
    let cat = tapio()
        .args(["cat", "--pod", "shop/api-7d8f9-x2x4k", "--kind", "log"])
        .arg(out.path().join("rec.tapio"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(cat.stdout).unwrap().lines().count(), 7);
}

fn import(dir: &Path, args: &[&str]) -> (Vec<Value>, String) {
    let capture = dir.join("imported.tapio");
    let out = tapio()
        .args(["import", "-o"])
        .arg(&capture)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (events_of(&capture), stderr)
}

#[test]
fn kubelet_files_import_with_their_rotated_and_compressed_parts() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(format!("pods/shop_api-1_{UID}/api"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"2026-03-14T10:00:01Z stdout F one\n")
        .unwrap();
    std::fs::write(dir.join("0.log.20260314-100001.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        dir.join("0.log"),
        "2026-03-14T10:00:02Z stdout F two\n2026-03-14T10:00:03Z stderr F three\n",
    )
    .unwrap();
    let files: Vec<String> = ["0.log.20260314-100001.gz", "0.log"]
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (events, _) = import(root.path(), &args);
    assert_eq!(logs_of(&events), ["one", "two", "three"]);
    for e in &events {
        assert!(e["data"]["resource"].to_string().contains("api-1"));
        assert_eq!(e["data"]["approximate_time"], false);
    }
}

#[test]
fn kubectl_logs_are_attributed_by_pod_and_placed_by_the_container_run() {
    let root = tempfile::tempdir().unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "notifier-1", "namespace": "shop", "uid": UID},
        "spec": {"nodeName": "node-3", "containers": [{"name": "notifier"}]},
        "status": {"containerStatuses": [{"name": "notifier", "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2026-03-14T10:00:40Z", "finishedAt": "2026-03-14T10:00:44Z"}}}]}
    });
    std::fs::write(root.path().join("pod.json"), pod.to_string()).unwrap();
    // Plain, from the previous run: placed just before that run ended.
    std::fs::write(
        root.path().join("previous.txt"),
        "starting\nFATAL: environment variable DEPLOY_ENV is not set\n",
    )
    .unwrap();
    let pod_json = root.path().join("pod.json").display().to_string();
    let previous = root.path().join("previous.txt").display().to_string();
    let (events, stderr) = import(
        root.path(),
        &[
            &pod_json,
            "--pod",
            "shop/notifier-1",
            "--container",
            "notifier",
            "--previous",
            &previous,
        ],
    );
    let logs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "log").collect();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[1]["ts"], "2026-03-14T10:00:43.999999000Z");
    assert_eq!(logs[1]["data"]["approximate_time"], true);
    assert!(
        stderr.contains("placed just before its previous run ended"),
        "{stderr}"
    );
    // --timestamps with --prefix (--all-containers): each line says its time and container.
    std::fs::write(
        root.path().join("all.txt"),
        "[pod/notifier-1/notifier] 2026-03-14T10:00:41.5Z loading templates\n[pod/notifier-1/sidecar] 2026-03-14T10:00:42Z proxy ready\n",
    )
    .unwrap();
    let all = root.path().join("all.txt").display().to_string();
    let (events, _) = import(root.path(), &["--pod", "shop/notifier-1", &all]);
    let lines: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let c = e["data"]["resource"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "k8s.container.name")
                .unwrap()["value"]["str"]
                .as_str()
                .unwrap()
                .to_string();
            (c, e["data"]["body"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("notifier".to_string(), "loading templates".to_string()),
            ("sidecar".to_string(), "proxy ready".to_string())
        ]
    );
    assert_eq!(events[0]["ts"], "2026-03-14T10:00:41.500000000Z");
}

#[test]
fn kubectl_logs_of_a_waiting_container_are_its_last_run_and_lines_that_state_a_time_keep_it() {
    let root = tempfile::tempdir().unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "api-1", "namespace": "shop", "uid": UID},
        "spec": {"nodeName": "node-3", "containers": [{"name": "api"}]},
        "status": {"containerStatuses": [{"name": "api", "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2026-03-14T10:20:40Z", "finishedAt": "2026-03-14T10:20:44Z"}}}]}
    });
    let pod_json = root.path().join("pod.json");
    std::fs::write(&pod_json, pod.to_string()).unwrap();
    // `kubectl logs` (no --previous) of a container in back-off: its last run, not the file's time.
    let plain = root.path().join("logs.txt");
    std::fs::write(&plain, "api 3.1 starting\nKeyError: 'DATABASE_URL'\n").unwrap();
    let (events, stderr) = import(
        root.path(),
        &[
            pod_json.to_str().unwrap(),
            "--pod",
            "shop/api-1",
            plain.to_str().unwrap(),
        ],
    );
    let logs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "log").collect();
    assert_eq!(logs.len(), 2, "{stderr}");
    assert_eq!(logs[1]["ts"], "2026-03-14T10:20:43.999999000Z");
    assert!(stderr.contains("it is waiting to restart"), "{stderr}");
    // Python's logging, colour codes and all: each line placed by the time it states.
    let python = root.path().join("python.txt");
    std::fs::write(
        &python,
        "\x1b[32m2026-03-14 10:20:41,250\x1b[0m INFO api starting\n\
         Traceback (most recent call last):\n\
         \x1b[31m2026-03-14 10:20:43,900\x1b[0m ERROR KeyError: 'DATABASE_URL'\n",
    )
    .unwrap();
    let (events, stderr) = import(
        root.path(),
        &[
            pod_json.to_str().unwrap(),
            "--pod",
            "shop/api-1",
            python.to_str().unwrap(),
        ],
    );
    let logs: Vec<(String, String, bool)> = events
        .iter()
        .filter(|e| e["kind"] == "log")
        .map(|e| {
            (
                e["ts"].as_str().unwrap().to_string(),
                e["data"]["body"].as_str().unwrap().to_string(),
                e["data"]["approximate_time"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        logs[0].1, "2026-03-14 10:20:41,250 INFO api starting",
        "{stderr}"
    );
    assert_eq!(logs[0].0, "2026-03-14T10:20:41.250000000Z", "{stderr}");
    assert!(!logs[0].2);
    let error = logs.iter().find(|l| l.1.contains("ERROR")).unwrap();
    assert_eq!(error.0, "2026-03-14T10:20:43.900000000Z");
    // The traceback's first line states no time: it goes with the line before it.
    let trace = logs.iter().find(|l| l.1.starts_with("Traceback")).unwrap();
    assert_eq!(trace.0, "2026-03-14T10:20:41.250000000Z");
    assert!(trace.2, "approximate");
    assert!(
        stderr.contains("take the time of the line before them"),
        "{stderr}"
    );
}
