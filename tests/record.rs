//! `tapio record` against the real kernel: a real OOM kill in a memory cgroup, a real refused
//! connection, real exits and signals, the kubelet's cgroup layout, and an overload. These need
//! root (CI runs them as root); elsewhere each test prints why it skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::support::recorder::{needs_root, record, tapio};

/// One recording at a time: the machine has few cores, and each test reads only its own events.
static SERIAL: Mutex<()> = Mutex::new(());

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// A memory cgroup with a small limit, removed again at the end.
struct Memcg {
    dirs: Vec<PathBuf>,
    /// The cgroup's path inside the memory hierarchy, as the kernel names it.
    rel: String,
}

impl Memcg {
    fn new(rel: &str, limit: u64) -> Memcg {
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (root, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.to_path_buf(), false)
        } else {
            (PathBuf::from("/sys/fs/cgroup"), true)
        };
        let mut dirs = Vec::new();
        let mut dir = root.clone();
        for part in rel.trim_start_matches('/').split('/') {
            if v2 {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory");
            }
            dir = dir.join(part);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap();
                dirs.push(dir.clone());
            }
        }
        if v2 {
            std::fs::write(dir.join("memory.max"), limit.to_string()).unwrap();
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        } else {
            std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit.to_string());
        }
        Memcg {
            dirs,
            rel: rel.to_string(),
        }
    }

    fn procs(&self) -> PathBuf {
        self.dirs.last().unwrap().join("cgroup.procs")
    }

    /// Runs a Python process in the cgroup that allocates far past the limit; returns its pid once
    /// it has been killed.
    fn run_hog(&self) -> u32 {
        let script = format!(
            "echo $$ > {} && exec python3 -c \"x = b'x' * (256 << 20); print('survived')\"",
            self.procs().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the hog was not OOM-killed: {status}"
        );
        pid
    }
}

impl Drop for Memcg {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_real_oom_kill_is_recorded_once_with_the_victims_cgroup() {
    needs_root("a_real_oom_kill_is_recorded_once_with_the_victims_cgroup");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let memcg = Memcg::new(&format!("/tapio-test-oom-{}", std::process::id()), 32 << 20);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), &["--no-kube", "--kind", "oom,exit,signal"]);
    let pid = memcg.run_hog();
    let (events, _, stderr) = rec.stop();
    let ooms: Vec<_> = of_kind(&events, "oom")
        .into_iter()
        .filter(|e| e["data"]["task_memcg"] == memcg.rel.as_str())
        .collect();
    assert_eq!(ooms.len(), 1, "{ooms:#?}\n{stderr}");
    let oom = &ooms[0]["data"];
    assert_eq!(oom["victim_pid"], pid);
    assert_eq!(oom["victim_comm"], "python3");
    assert_eq!(oom["constraint"], "memcg");
    assert_eq!(oom["oom_memcg"], memcg.rel.as_str());
    assert_eq!(oom["memcg_limit_kib"], 32 * 1024);
    assert!(oom["rss_kib"].as_u64().unwrap() > 16 * 1024, "{oom}");
    // The kill is also seen as the SIGKILL it is and as the victim's end.
    let exit = of_kind(&events, "exit")
        .into_iter()
        .find(|e| e["data"]["pid"] == pid)
        .expect("the victim's exit");
    assert_eq!(exit["data"]["signal"], 9);
    assert_eq!(exit["data"]["cgroup"], memcg.rel.as_str());
}

#[test]
#[ignore = "needs root"]
fn a_refused_connection_names_its_ports() {
    needs_root("a_refused_connection_names_its_ports");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A port with nothing listening: bound once, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), &["--no-kube", "--kind", "tcp"]);
    let client = format!(
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\nprint(s.getsockname()[1], flush=True)\ntry:\n    s.connect(('127.0.0.1', {port}))\nexcept ConnectionRefusedError:\n    print('refused')\n"
    );
    let out = Command::new("python3")
        .args(["-c", &client])
        .output()
        .unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    let mut lines = out.lines();
    let sport: u16 = lines.next().unwrap().parse().unwrap();
    assert_eq!(lines.next(), Some("refused"));
    let (events, _, _) = rec.stop();
    let refused: Vec<_> = of_kind(&events, "tcp")
        .into_iter()
        .filter(|e| e["data"]["dport"] == port)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let t = &refused[0]["data"];
    assert_eq!(t["meaning"], "refused");
    assert_eq!(t["sport"], sport);
    assert_eq!(
        (t["saddr"].as_str(), t["daddr"].as_str()),
        (Some("127.0.0.1"), Some("127.0.0.1"))
    );
    assert_eq!(
        (t["old"].as_str(), t["new"].as_str()),
        (Some("SYN_SENT"), Some("CLOSE"))
    );
}

#[test]
#[ignore = "needs root"]
fn exits_and_signals_carry_their_codes() {
    needs_root("exits_and_signals_carry_their_codes");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), &["--no-kube", "--kind", "exec,exit,signal"]);
    let mut three = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let three_pid = three.id();
    assert_eq!(three.wait().unwrap().code(), Some(3));
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let sleeper_pid = sleeper.id();
    std::thread::sleep(Duration::from_millis(100));
    sleeper.kill().unwrap(); // SIGKILL from this test
    sleeper.wait().unwrap();
    let (events, _, _) = rec.stop();
    let exit_of = |pid: u32| {
        of_kind(&events, "exit")
            .into_iter()
            .find(|e| e["data"]["pid"] == pid)
            .unwrap_or_else(|| panic!("no exit of pid {pid}"))
            .clone()
    };
    let e3 = exit_of(three_pid);
    assert_eq!(
        (e3["data"]["code"].as_i64(), e3["data"]["signal"].as_i64()),
        (Some(3), Some(0))
    );
    let killed = exit_of(sleeper_pid);
    assert_eq!(killed["data"]["signal"], 9);
    assert_eq!(killed["data"]["comm"], "sleep");
    let sig = of_kind(&events, "signal")
        .into_iter()
        .find(|e| e["data"]["target_pid"] == sleeper_pid)
        .expect("the SIGKILL");
    assert_eq!(sig["data"]["signal"], 9);
    assert_eq!(sig["data"]["sender_pid"], std::process::id());
    assert_eq!(sig["data"]["target_comm"], "sleep");
    let exec = of_kind(&events, "exec")
        .into_iter()
        .find(|e| e["data"]["pid"] == sleeper_pid)
        .expect("the sleeper's exec");
    assert!(exec["data"]["filename"]
        .as_str()
        .unwrap()
        .ends_with("sleep"));
    assert_eq!(exec["data"]["ppid"], std::process::id());
}

#[test]
#[ignore = "needs root"]
fn an_oom_in_the_kubelet_layout_is_named_by_its_pod() {
    needs_root("an_oom_in_the_kubelet_layout_is_named_by_its_pod");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let uid = format!("5e0c4a1e-7d3b-4f8e-9a65-{:012x}", std::process::id());
    let cid = "3f1d9c8e2b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a";
    let memcg = Memcg::new(&format!("/kubepods/burstable/pod{uid}/{cid}"), 32 << 20);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(
        dir.path(),
        &["--kind", "oom,exit,signal", "--node", "node-7"],
    );
    let pid = memcg.run_hog();
    let rec_path = rec.path().to_path_buf();
    let (events, _, _) = rec.stop();
    assert!(of_kind(&events, "oom")
        .iter()
        .any(|e| e["data"]["victim_pid"] == pid));

    // The Pod as `kubectl get pod -o json` shows it, a minute old, on this node.
    let started = chrono::Utc::now() - chrono::Duration::seconds(60);
    let t = started.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "cart-7d8f9-x2x4k", "namespace": "shop", "uid": uid,
            "creationTimestamp": t, "labels": {"app": "cart", "pod-template-hash": "7d8f9"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "cart-7d8f9", "uid": "0b7c1b54-5f51-4a0e-8f0e-2f0a4f1b9c11", "controller": true}]},
        "spec": {"nodeName": "node-7", "containers": [{"name": "cart", "image": "shop/cart:1.9.3",
            "resources": {"limits": {"memory": "32Mi"}}}]},
        "status": {"phase": "Running", "podIP": "10.244.1.14", "startTime": t, "qosClass": "Burstable",
            "containerStatuses": [{"name": "cart", "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{cid}"),
                "state": {"running": {"startedAt": t}}}]}
    });
    let pod_json = dir.path().join("pod.json");
    std::fs::write(&pod_json, serde_json::to_vec_pretty(&pod).unwrap()).unwrap();
    let pod_capture = dir.path().join("pod.tapio");
    let out = tapio()
        .args(["import", "-o"])
        .arg(&pod_capture)
        .arg(&pod_json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The kernel's view alone is attributed to the pod: `cat --pod` finds the kill.
    let out = tapio()
        .args(["cat", "--kind", "oom", "--pod", "shop/cart-7d8f9-x2x4k"])
        .arg(&rec_path)
        .arg(&pod_capture)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("victim pid {pid} (python3)")),
        "{text}"
    );

    let out = tapio()
        .args(["correlate", "--pod", "shop/cart-7d8f9-x2x4k", "-o", "json"])
        .arg(&rec_path)
        .arg(&pod_capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let incident = &v["incidents"][0];
    assert_eq!(
        incident["root_cause"]["kind"], "oom_container_limit",
        "{v:#}"
    );
    assert_eq!(
        incident["root_cause"]["entity"], "pod/shop/cart-7d8f9-x2x4k",
        "{v:#}"
    );
    // The ReplicaSet is not in the capture; the pod's template hash names its Deployment.
    assert!(
        incident["actions"]
            .to_string()
            .contains("deployment/shop/cart "),
        "{:#}",
        incident["actions"]
    );
}

#[test]
#[ignore = "needs root"]
fn an_overloaded_ring_buffer_counts_its_drops_and_keeps_the_rest() {
    needs_root("an_overloaded_ring_buffer_counts_its_drops_and_keeps_the_rest");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A process that ignores SIGTERM, and far more SIGTERMs than a one-page ring buffer holds.
    let mut target = Command::new("sh")
        .args(["-c", "trap '' TERM; exec sleep 60"])
        .spawn()
        .unwrap();
    let pid = target.id();
    std::thread::sleep(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let rec = record(
        dir.path(),
        &["--no-kube", "--kind", "signal", "--ring-buffer", "4K"],
    );
    const SENT: u64 = 300_000;
    for _ in 0..SENT {
        // SAFETY: signalling our own child, which ignores SIGTERM.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let (events, info, stderr) = rec.stop();
    target.kill().unwrap();
    target.wait().unwrap();
    let kept = events
        .iter()
        .filter(|e| e["kind"] == "signal" && e["data"]["target_pid"] == pid)
        .count() as u64;
    let dropped = info["drops"].as_u64().unwrap();
    assert!(dropped > 0, "nothing dropped: {info}");
    assert!(kept > 0);
    assert!(
        kept + dropped >= SENT,
        "kept {kept} + dropped {dropped} < sent {SENT}"
    );
    assert!(!of_kind(&events, "drop").is_empty());
    assert_eq!(info["closed_cleanly"], true);
    assert_eq!(info["events"].as_u64().unwrap(), events.len() as u64);
    assert!(stderr.contains("dropped"), "{stderr}");
}

#[test]
#[ignore = "needs root"]
fn tracefs_is_mounted_when_missing() {
    needs_root("tracefs_is_mounted_when_missing");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tracing = Path::new("/sys/kernel/tracing");
    // Unmounting fails when something else is tracing; then there is nothing to show here.
    let unmounted = Command::new("umount")
        .arg(tracing)
        .status()
        .is_ok_and(|s| s.success());
    if !unmounted || Path::new("/sys/kernel/debug/tracing/events").exists() {
        eprintln!("skipped tracefs_is_mounted_when_missing: tracefs could not be unmounted here");
        return;
    }
    assert!(!tracing.join("events").exists());
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path(), &["--no-kube", "--kind", "exit"]);
    assert!(tracing.join("events/sched").is_dir());
    let (_, info, _) = rec.stop();
    assert_eq!(info["closed_cleanly"], true);
}

#[test]
#[ignore = "needs root"]
fn without_privileges_the_error_says_what_is_needed_and_no_file_is_made() {
    needs_root("without_privileges_the_error_says_what_is_needed_and_no_file_is_made");
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    // A copy of the binary that an unprivileged user may run.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.path().join("tapio");
    std::fs::copy(env!("CARGO_BIN_EXE_tapio"), &bin).unwrap();
    let out_file = dir.path().join("never.tapio");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["record", "-o"])
        .arg(&out_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("needs root") && stderr.contains("sudo tapio record"),
        "{stderr}"
    );
    assert!(!out_file.exists());
}

#[test]
#[ignore = "needs root"]
fn a_throttled_pod_is_recorded_from_its_cpu_stat() {
    needs_root("a_throttled_pod_is_recorded_from_its_cpu_stat");
    let cpu = Path::new("/sys/fs/cgroup/cpu");
    if !cpu.join("cpu.cfs_quota_us").exists() {
        eprintln!("skipped a_throttled_pod_is_recorded_from_its_cpu_stat: no cgroup v1 cpu controller here");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let uid = format!("7c0c4a1e-7d3b-4f8e-9a65-{:012x}", std::process::id());
    let cid = "9f1d9c8e2b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a";
    let rel = format!("kubepods/burstable/pod{uid}/{cid}");
    let mut made = Vec::new();
    let mut dir = cpu.to_path_buf();
    for part in rel.split('/') {
        dir = dir.join(part);
        if !dir.exists() {
            std::fs::create_dir(&dir).unwrap();
            made.push(dir.clone());
        }
    }
    // A tenth of a CPU for a process that wants a whole one: real throttling.
    std::fs::write(dir.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(dir.join("cpu.cfs_quota_us"), "10000").unwrap();
    let out = tempfile::tempdir().unwrap();
    let rec = record(
        out.path(),
        &[
            "--kind",
            "pressure",
            "--pressure-interval",
            "1s",
            "--node",
            "node-7",
        ],
    );
    let script = format!(
        "echo $$ > {} && exec python3 -c 'while True: pass'",
        dir.join("cgroup.procs").display()
    );
    let mut hog = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let _ = hog.kill();
    let _ = hog.wait();
    let (events, _, _) = rec.stop();
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
    let throttled: Vec<&Value> = of_kind(&events, "throttle")
        .into_iter()
        .filter(|e| e["data"]["cgroup"] == format!("/{rel}"))
        .collect();
    assert!(
        !throttled.is_empty(),
        "no throttling of /{rel} recorded: {:?}",
        of_kind(&events, "throttle")
            .iter()
            .map(|e| e["data"]["cgroup"].to_string())
            .collect::<Vec<_>>()
    );
    let d = &throttled[0]["data"];
    assert!(
        d["throttled_periods"].as_u64().unwrap() > 0
            && d["throttled_us"].as_u64().unwrap() > 100_000,
        "{d}"
    );
}

/// A memory cgroup laid out as the kubelet does (32 MiB), and an API server that lists its Pod
/// (`shop/NAME` on node-7, started a minute ago).
fn watched_pod(name: &str, uid_prefix: &str) -> (Memcg, crate::support::apiserver::ApiServer) {
    let uid = format!("{uid_prefix}-7d3b-4f8e-9a65-{:012x}", std::process::id());
    let cid = format!(
        "{uid_prefix}{}",
        "9c8e2b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a"
    );
    let memcg = Memcg::new(&format!("/kubepods/burstable/pod{uid}/{cid}"), 32 << 20);
    let server = crate::support::apiserver::ApiServer::start();
    let t = (chrono::Utc::now() - chrono::Duration::seconds(60))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    server.apply(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": uid,
            "creationTimestamp": t, "labels": {"app": "cart"}},
        "spec": {"nodeName": "node-7", "containers": [{"name": "cart", "image": "shop/cart:1.9.3",
            "resources": {"limits": {"memory": "32Mi"}}}]},
        "status": {"phase": "Running", "startTime": t, "qosClass": "Burstable",
            "containerStatuses": [{"name": "cart", "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{cid}"),
                "state": {"running": {"startedAt": t}}}]}
    }));
    (memcg, server)
}

/// Live: an OOM kill in a pod's memory cgroup (laid out as the kubelet does, the Pod watched from
/// an API server) opens an incident on stdout within seconds, and what closes when the recorder
/// stops is what `tapio replay` says of the capture it wrote.
#[test]
#[ignore = "needs root"]
fn a_live_oom_opens_an_incident_and_closes_as_replay_says() {
    needs_root("a_live_oom_opens_an_incident_and_closes_as_replay_says");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (memcg, server) = watched_pod("cart-7d8f9-x2x4k", "9a1c4a1e");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let rec = record(
        dir.path(),
        &[
            "--kind",
            "oom,exit,signal",
            "--node",
            "node-7",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--verdicts",
            "json",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500)); // the initial lists
    memcg.run_hog();
    let killed = std::time::Instant::now();
    let opened = rec.wait_line(Duration::from_secs(10), |l| l.contains(r#""state":"open""#));
    let (at, line) = opened.expect("an incident opened within 10 s of the kill");
    eprintln!("open {:?} after the kill", at.duration_since(killed));
    let open: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        open["incident"]["root_cause"]["kind"],
        "oom_container_limit"
    );
    assert_eq!(
        open["incident"]["root_cause"]["entity"],
        "pod/shop/cart-7d8f9-x2x4k"
    );
    let out = rec.stdout_handle();
    let path = rec.path().to_path_buf();
    rec.stop();
    let lines: Vec<Value> = out
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    let id = &open["id"];
    let closed: Vec<Value> = lines
        .iter()
        .filter(|l| {
            l["state"] == "closed" && l.get("merged_into").is_none() && l.get("withdrawn").is_none()
        })
        .map(|l| l["incident"].clone())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["state"] == "closed" && &l["id"] == id),
        "the incident that opened closes with its id: {lines:#?}"
    );
    let replay = tapio()
        .args(["replay", "-o", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(
        without_ids(closed),
        without_ids(v["incidents"].as_array().unwrap().clone()),
        "closed live = replayed"
    );
}

/// Incidents as JSON without their ids (live ids count in the order incidents opened; replay
/// numbers its verdict), sorted.
fn without_ids(mut v: Vec<Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .iter_mut()
        .map(|i| {
            i.as_object_mut().unwrap().remove("id");
            i.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The flight recorder: three minutes of background activity, then a real OOM kill, with a
/// one-minute ring: one capture is kept, holding the minute before the kill (and the Pod, listed
/// long before, as it stood then) and nothing older, and it replays to the live verdict.
#[test]
#[ignore = "needs root"]
fn the_flight_recorder_keeps_the_minute_before_an_oom() {
    needs_root("the_flight_recorder_keeps_the_minute_before_an_oom");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (memcg, server) = watched_pod("cart-7d8f9-r1ng", "7b2c4a1e");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let ring = dir.path().join("ring");
    let rec = crate::support::recorder::record_to(
        &ring,
        &[
            "--ring",
            "1m",
            "--after",
            "5s",
            "--trigger-on",
            "oom_container_limit",
            "--kind",
            "oom,exec,exit,signal",
            "--node",
            "node-7",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--verdicts",
            "json",
        ],
    );
    // Three minutes of processes starting and ending.
    let until = std::time::Instant::now() + Duration::from_secs(180);
    while std::time::Instant::now() < until {
        Command::new("true").status().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    memcg.run_hog();
    let killed = chrono::Utc::now();
    // The capture is written once --after has passed.
    let kept = (0..300).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_dir(&ring)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tapio"))
    });
    let out = rec.stdout_handle();
    rec.stop_only();
    let kept = kept.expect("the flight recorder kept a capture within 30 s of the kill");
    let name = kept.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.contains("-oom_container_limit-pod-shop-cart-7d8f9-r1ng.tapio"),
        "{name}"
    );
    let files: Vec<_> = std::fs::read_dir(&ring)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        files,
        std::slice::from_ref(&name),
        "one capture, and the ring is gone"
    );

    let events = crate::support::recorder::events_of(&kept);
    let ts = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let first = events.iter().map(ts).min().unwrap();
    let before = (killed - first).num_milliseconds();
    assert!(
        (55_000..=62_000).contains(&before),
        "the capture begins a minute before the kill, not earlier: {before} ms"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "oom"),
        "the kill is in it"
    );
    assert!(
        events
            .iter()
            .any(|e| e["source"] == "kube" && e["data"]["name"] == "cart-7d8f9-r1ng"),
        "the Pod, listed three minutes earlier, is in it"
    );

    // It replays to what the recorder said live.
    let replay = tapio()
        .args(["replay", "-o", "json"])
        .arg(&kept)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&replay.stdout).unwrap();
    let live: Vec<Value> = out
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| {
            l["state"] == "closed" && l.get("merged_into").is_none() && l.get("withdrawn").is_none()
        })
        .map(|l| l["incident"].clone())
        .collect();
    let oom = |v: &Value| {
        v["root_cause"]["kind"] == "oom_container_limit"
            && v["root_cause"]["entity"] == "pod/shop/cart-7d8f9-r1ng"
    };
    let replayed: Vec<&Value> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| oom(i))
        .collect();
    let live: Vec<&Value> = live.iter().filter(|i| oom(i)).collect();
    assert_eq!(replayed.len(), 1, "{v:#}");
    assert_eq!(live.len(), 1);
    for k in ["root_cause", "chain", "severity", "actions"] {
        assert_eq!(replayed[0][k], live[0][k], "{k}");
    }
}
