//! `tapio record` watching Kubernetes: the real kube-rs client, through a kubeconfig, against a
//! local API server (`tests/support/apiserver.rs`) serving the kspan stream recorded from a real
//! cluster and fixture objects. No root needed; the kernel is off.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::apiserver::ApiServer;
use crate::support::recorder::{needs_root, record};

/// The kspan stream: (style, document) in order. The first documents are the cluster's state when
/// the recorder starts; the rest arrive while it watches.
fn kspan() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string("../shared/data/kspan/deployment-2-pods.yaml")
        .expect("../shared/data/kspan: the real watch stream");
    let mut out = Vec::new();
    let mut style = String::new();
    let mut doc = String::new();
    let flush = |style: &str, doc: &mut String, out: &mut Vec<(String, Value)>| {
        if !doc.trim().is_empty() {
            let v: Value = serde_yaml::from_str(doc).unwrap();
            out.push((style.to_string(), v));
        }
        doc.clear();
    };
    for line in text.lines() {
        if line == "---" {
            flush(&style, &mut doc, &mut out);
        } else if let Some(meta) = line.strip_prefix("# ") {
            let m: Value = serde_json::from_str(meta).unwrap();
            style = m["style"].as_str().unwrap().to_string();
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    flush(&style, &mut doc, &mut out);
    out
}

fn pod(name: &str, uid: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "labels": {"app": "cart"}},
        "spec": {"nodeName": node, "containers": [{"name": "cart", "image": "shop/cart:1.9.3"}]},
        "status": {"phase": "Running"}
    })
}

/// The Kubernetes events of a recording: (kind, action, uid, resourceVersion).
fn kube_events(events: &[Value]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .filter(|e| e["source"] == "kube")
        .map(|e| {
            let d = &e["data"];
            if e["kind"] == "k8s.event" {
                (
                    "Event".to_string(),
                    "seen".to_string(),
                    d["uid"].as_str().unwrap_or("").to_string(),
                    d["count"].to_string(),
                )
            } else {
                (
                    d["kind"].as_str().unwrap().to_string(),
                    d["action"].as_str().unwrap().to_string(),
                    d["uid"].as_str().unwrap().to_string(),
                    d["resource_version"].as_str().unwrap().to_string(),
                )
            }
        })
        .collect()
}

fn no_repeats(events: &[(String, String, String, String)]) {
    let mut seen = std::collections::HashSet::new();
    for e in events {
        if e.0 != "Event" {
            assert!(
                seen.insert((&e.1, &e.2, &e.3)),
                "written twice: {e:?}\n{events:#?}"
            );
        }
    }
}

fn kube_args(kubeconfig: &std::path::Path) -> Vec<String> {
    vec![
        "--no-kernel".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]
}

fn start(
    dir: &std::path::Path,
    server: &ApiServer,
    extra: &[&str],
) -> crate::support::recorder::Recording {
    let mut args = kube_args(&server.kubeconfig(dir));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rec = record(dir, &args);
    // The initial lists.
    std::thread::sleep(Duration::from_millis(1500));
    rec
}

#[test]
fn the_kspan_stream_is_listed_then_watched_without_loss_or_repeats() {
    if !crate::support::shared::shared_data(
        "the_kspan_stream_is_listed_then_watched_without_loss_or_repeats",
    ) {
        return;
    }
    let docs = kspan();
    assert_eq!(docs.len(), 26);
    let server = ApiServer::start();
    let (initial, later) = docs.split_at(5);
    for (_, d) in initial {
        server.apply(d.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    for (_, d) in later {
        server.apply(d.clone());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (events, info, stderr) = rec.stop();
    let got = kube_events(&events);
    no_repeats(&got);
    assert_eq!(got.len(), 26, "{got:#?}\n{stderr}");
    assert_eq!(info["by_kind"]["k8s.event"], 19);
    assert_eq!(info["by_kind"]["k8s.object"], 7);
    // Every object document once: `seen` the first time its uid appears, `changed` after. The
    // initial list has no order across resources; what is watched comes in the stream's order.
    let mut first = std::collections::HashSet::new();
    let expected: Vec<(String, String, String)> = docs
        .iter()
        .filter(|(_, d)| d["kind"] != "Event")
        .map(|(_, d)| {
            let uid = d["metadata"]["uid"].as_str().unwrap().to_string();
            let action = if first.insert(uid.clone()) {
                "seen"
            } else {
                "changed"
            };
            (
                d["kind"].as_str().unwrap().to_string(),
                action.to_string(),
                uid,
            )
        })
        .collect();
    let objects: Vec<(String, String, String)> = got
        .iter()
        .filter(|e| e.0 != "Event")
        .map(|e| (e.0.clone(), e.1.clone(), e.2.clone()))
        .collect();
    let listed = initial.iter().filter(|(_, d)| d["kind"] != "Event").count();
    let sorted = |v: &[(String, String, String)]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(sorted(&objects[..listed]), sorted(&expected[..listed]));
    assert_eq!(objects[listed..], expected[listed..]);
    let header = &info["header"]["sources"];
    assert_eq!(header, &json!(["kube"]), "{info}");
    // The Events keep what kubectl shows.
    let scaled = events
        .iter()
        .find(|e| e["kind"] == "k8s.event" && e["data"]["reason"] == "ScalingReplicaSet")
        .expect("the Deployment's ScalingReplicaSet Event");
    assert!(scaled["data"]["message"]
        .as_str()
        .unwrap()
        .contains("Scaled up replica set px-"));
}

#[test]
fn a_watch_that_ends_is_resumed_without_loss() {
    let server = ApiServer::start();
    server.apply(pod("cart-0", "uid-0", "node-1"));
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    for i in 1..=6 {
        server.apply(pod(&format!("cart-{i}"), &format!("uid-{i}"), "node-1"));
        if i % 2 == 0 {
            server.end_watches();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (events, _, stderr) = rec.stop();
    let got = kube_events(&events);
    no_repeats(&got);
    let pods: Vec<&str> = got
        .iter()
        .filter(|e| e.0 == "Pod")
        .map(|e| e.2.as_str())
        .collect();
    assert_eq!(
        pods,
        ["uid-0", "uid-1", "uid-2", "uid-3", "uid-4", "uid-5", "uid-6"],
        "{stderr}"
    );
    assert_eq!(
        server.lists("/pods"),
        1,
        "a resumed watch does not list again"
    );
    assert!(
        !events.iter().any(|e| e["kind"] == "gap"),
        "an ended watch is not a gap"
    );
}

#[test]
fn gone_relists_and_writes_only_what_changed_meanwhile() {
    let server = ApiServer::start();
    let (a, b, c) = (
        pod("cart-a", "uid-a", "node-1"),
        pod("cart-b", "uid-b", "node-1"),
        pod("cart-c", "uid-c", "node-1"),
    );
    for p in [&a, &b, &c] {
        server.apply(p.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    // While nobody watches, b changes and c goes; the history is compacted: resuming gets 410.
    let mut b2 = b.clone();
    b2["status"]["phase"] = json!("Failed");
    server.compact_after(|s| {
        s.apply(b2.clone());
        s.delete(&c);
    });
    std::thread::sleep(Duration::from_secs(3));
    let (events, _, stderr) = rec.stop();
    let got = kube_events(&events);
    no_repeats(&got);
    let pods: Vec<(&str, &str)> = got
        .iter()
        .filter(|e| e.0 == "Pod")
        .map(|e| (e.2.as_str(), e.1.as_str()))
        .collect();
    assert_eq!(
        pods,
        [
            ("uid-a", "seen"),
            ("uid-b", "seen"),
            ("uid-c", "seen"),
            ("uid-b", "changed"),
            ("uid-c", "deleted")
        ],
        "{stderr}"
    );
    assert_eq!(server.lists("/pods"), 2, "410 Gone relists");
    assert!(stderr.contains("410"), "{stderr}");
}

#[test]
fn a_restarting_server_leaves_a_gap_marker_and_no_duplicates() {
    let server = ApiServer::start();
    server.apply(pod("cart-0", "uid-0", "node-1"));
    server.apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "uid": "node-uid-1"}}));
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    server.apply(pod("cart-1", "uid-1", "node-1"));
    std::thread::sleep(Duration::from_millis(500));
    // Down for 3 s; a pod is created meanwhile (the API server's storage outlives it).
    let s2 = &server;
    std::thread::scope(|scope| {
        scope.spawn(|| s2.restart(Duration::from_secs(3)));
        std::thread::sleep(Duration::from_millis(1500));
        s2.apply(pod("cart-2", "uid-2", "node-1"));
    });
    std::thread::sleep(Duration::from_secs(3));
    server.apply(pod("cart-3", "uid-3", "node-1"));
    // The watchers come back with a backoff that a loaded machine stretches: wait (up to 30 s)
    // until the last pod is in the capture, rather than a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline
        && !crate::support::recorder::events_of(rec.path())
            .iter()
            .any(|e| e["data"]["uid"] == "uid-3")
    {
        std::thread::sleep(Duration::from_millis(300));
    }
    let (events, info, stderr) = rec.stop();
    let got = kube_events(&events);
    no_repeats(&got);
    let pods: Vec<&str> = got
        .iter()
        .filter(|e| e.0 == "Pod")
        .map(|e| e.2.as_str())
        .collect();
    assert_eq!(pods, ["uid-0", "uid-1", "uid-2", "uid-3"], "{stderr}");
    let gaps: Vec<&Value> = events.iter().filter(|e| e["kind"] == "gap").collect();
    assert_eq!(gaps.len(), 1, "{gaps:#?}\n{stderr}");
    let range = &gaps[0]["data"]["range"];
    let ms = |t: &Value| {
        chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let lasted = ms(&range["to"]) - ms(&range["from"]);
    assert!(
        (1500..=10_000).contains(&lasted),
        "the gap lasted {lasted} ms: {gaps:#?}"
    );
    assert_eq!(gaps[0]["data"]["source"], "kube");
    assert_eq!(info["gaps"], 1, "{info}");
}

#[test]
fn malformed_objects_are_skipped_and_unknown_fields_kept() {
    let server = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    server.inject_raw(
        "/pods",
        "{\"type\": \"ADDED\", \"object\": {\"metadata\": 42}}",
    );
    server.inject_raw("/pods", "this is not JSON");
    // Each error backs the watcher off (0.8 s, then 1.6 s, with jitter) before it reads on.
    std::thread::sleep(Duration::from_secs(3));
    let mut future = pod("cart-future", "uid-f", "node-1");
    future["spec"]["schedulingHints"] = json!({"preferQuietNodes": true});
    future["status"]["resizeStatus"] = "Proposed".into();
    server.apply(future);
    std::thread::sleep(Duration::from_millis(800));
    server.apply(pod("cart-after", "uid-after", "node-1"));
    std::thread::sleep(Duration::from_millis(800));
    let (events, _, stderr) = rec.stop();
    let pods: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "k8s.object" && e["data"]["kind"] == "Pod")
        .collect();
    assert_eq!(pods.len(), 2, "{pods:#?}\n{stderr}");
    assert_eq!(
        pods[0]["data"]["json"]["spec"]["schedulingHints"]["preferQuietNodes"],
        true
    );
    assert_eq!(pods[1]["data"]["uid"], "uid-after", "the watch went on");
    assert!(stderr.contains("could not be read"), "{stderr}");
}

#[test]
fn configmaps_are_recorded_by_keys_and_hashes_never_values_and_policies_and_autoscalers_too() {
    let server = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &[]);
    let secret = "postgres://cart:hunter2@db.internal:5432/cart";
    let cm = |rv_value: &str| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cart-config", "namespace": "shop", "uid": "uid-cm",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                             format!("{{\"data\":{{\"DATABASE_URL\":\"{secret}\"}}}}")}},
            "data": {"DATABASE_URL": secret, "POOL": rv_value}
        })
    };
    server.apply(cm("20"));
    std::thread::sleep(Duration::from_millis(500));
    server.apply(cm("0"));
    server.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-egress", "namespace": "shop", "uid": "uid-np"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}
    }));
    server.apply(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "cart", "namespace": "shop", "uid": "uid-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart"}, "maxReplicas": 10},
        "status": {"currentReplicas": 3, "desiredReplicas": 6}
    }));
    std::thread::sleep(Duration::from_millis(1000));
    let (events, _, stderr) = rec.stop();
    let mut kinds: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "k8s.object")
        .map(|e| {
            (
                e["data"]["kind"].as_str().unwrap(),
                e["data"]["action"].as_str().unwrap(),
            )
        })
        .filter(|(k, _)| ["ConfigMap", "NetworkPolicy", "HorizontalPodAutoscaler"].contains(k))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("ConfigMap", "changed"),
            ("ConfigMap", "seen"),
            ("HorizontalPodAutoscaler", "seen"),
            ("NetworkPolicy", "seen"),
        ],
        "{stderr}"
    );
    let cms: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["kind"] == "ConfigMap")
        .collect();
    let by = |action: &str| {
        &cms.iter().find(|e| e["data"]["action"] == action).unwrap()["data"]["json"]["data"]
    };
    let (before, after) = (by("seen"), by("changed"));
    assert!(before["POOL"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert_ne!(
        before["POOL"], after["POOL"],
        "a changed value changes its hash"
    );
    assert_eq!(before["DATABASE_URL"], after["DATABASE_URL"]);
    // Nowhere in what was recorded.
    for e in &events {
        let json = e.to_string();
        assert!(
            !json.contains("hunter2") && !json.contains("last-applied"),
            "{json}"
        );
    }
}

#[test]
fn only_this_nodes_pods_with_node_and_only_a_namespace_with_namespace() {
    let server = ApiServer::start();
    server.apply(pod("cart-1", "uid-1", "node-1"));
    server.apply(pod("cart-2", "uid-2", "node-2"));
    let mut other = pod("api-1", "uid-3", "node-1");
    other["metadata"]["namespace"] = json!("payments");
    server.apply(other);
    let dir = tempfile::tempdir().unwrap();
    let rec = start(
        dir.path(),
        &server,
        &["--node", "node-1", "--namespace", "shop"],
    );
    server.apply(pod("cart-4", "uid-4", "node-2"));
    server.apply(pod("cart-5", "uid-5", "node-1"));
    std::thread::sleep(Duration::from_millis(600));
    let (events, _, stderr) = rec.stop();
    let pods: Vec<String> = kube_events(&events)
        .into_iter()
        .filter(|e| e.0 == "Pod")
        .map(|e| e.2)
        .collect();
    assert_eq!(pods, ["uid-1", "uid-5"], "{stderr}");
    assert!(events
        .iter()
        .all(|e| e["node"] == "node-1" || e["source"] != "kube"));
}

#[test]
#[ignore = "needs root"]
fn the_kernel_and_the_watchers_write_one_capture_in_time_order() {
    needs_root("the_kernel_and_the_watchers_write_one_capture_in_time_order");
    let server = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let rec = record(
        dir.path(),
        &[
            "--kind",
            "exec,exit",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1000));
    for i in 0..5 {
        server.apply(pod(&format!("cart-{i}"), &format!("uid-{i}"), "node-1"));
        std::process::Command::new("true").status().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (events, info, _) = rec.stop();
    assert_eq!(info["header"]["sources"], json!(["ebpf", "kube"]));
    assert!(events.iter().any(|e| e["source"] == "kube"));
    assert!(events.iter().any(|e| e["source"] == "ebpf"));
    let times: Vec<&str> = events.iter().map(|e| e["ts"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "events are written in time order");
}

#[test]
fn the_rbac_of_deploy_grants_exactly_what_is_watched() {
    let text = std::fs::read_to_string("deploy/rbac.yaml").unwrap();
    let mut granted = std::collections::BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = <Value as serde::Deserialize>::deserialize(doc).unwrap();
        if v["kind"] != "ClusterRole" {
            continue;
        }
        for rule in v["rules"].as_array().unwrap() {
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(verbs, ["get", "list", "watch"], "read-only: {rule}");
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    granted.insert((
                        g.as_str().unwrap().to_string(),
                        r.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    let watched: std::collections::BTreeSet<(String, String)> = tapio::source::kube::RESOURCES
        .iter()
        .map(|r| (r.group.to_string(), r.plural.to_string()))
        .collect();
    assert_eq!(granted, watched);
}

#[test]
fn a_network_policy_created_live_opens_an_incident_naming_it_when_the_pods_it_selects_fail() {
    let server = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rec = start(dir.path(), &server, &["--verdicts", "json"]);
    server.apply(pod("cart-1", "uid-cart-1", "node-1"));
    std::thread::sleep(Duration::from_millis(300));
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    server.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "lock-down", "namespace": "shop", "uid": "uid-np", "creationTimestamp": now},
        "spec": {"podSelector": {"matchLabels": {"app": "cart"}}, "policyTypes": ["Egress"],
                 "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                             "ports": [{"protocol": "TCP", "port": 5432}]}]}
    }));
    std::thread::sleep(Duration::from_millis(1200));
    let mut crashed = pod("cart-1", "uid-cart-1", "node-1");
    let finished = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    crashed["status"]["containerStatuses"] = json!([{
        "name": "cart", "restartCount": 1, "ready": false,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": finished,
            "message": "dial tcp: lookup cart-db.shop.svc.cluster.local on 10.96.0.10:53: read udp 10.244.1.7:41873->10.96.0.10:53: i/o timeout"}}
    }]);
    server.apply(crashed);
    let opened = rec.wait_line(Duration::from_secs(15), |l| l.contains(r#""state":"open""#));
    let out = rec.stdout_handle();
    let (_, _, stderr) = rec.stop();
    let (_, line) =
        opened.unwrap_or_else(|| panic!("no incident opened: {:?}\n{stderr}", out.lock().unwrap()));
    let open: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        open["incident"]["root_cause"]["kind"], "network_policy",
        "{line}"
    );
    assert_eq!(
        open["incident"]["root_cause"]["entity"],
        "networkpolicy/shop/lock-down"
    );
}
