//! `tapio import` over the real third-party data in `../shared/data`: every file imports (the
//! Tetragon samples are a format reference, not an import format), and the counts match what the
//! data's README says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tapio::capture::{ReadOptions, Reader};
use tapio::event::{Body, Event, Kernel, Kind, Kube, OomConstraint, OomKill, StatusCode};

use crate::support::shared::shared_data;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(p)
}

/// Imports the files into a fresh capture; returns its events and the command's stderr.
fn import(files: &[PathBuf], extra: &[&str]) -> (Vec<Event>, String, i32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tapio");
    let assert = Command::cargo_bin("tapio")
        .unwrap()
        .arg("import")
        .arg("-o")
        .arg(&out)
        .args(extra)
        .args(files)
        .assert();
    let output = assert.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        out.exists(),
        "tapio import wrote nothing (exit {code}):\n{stderr}"
    );
    let events = read(&out);
    (events, stderr, code)
}

fn read(path: &Path) -> Vec<Event> {
    let mut r = Reader::open(path, ReadOptions::default()).unwrap();
    let events = r.read_all().unwrap();
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    events
}

fn spans(events: &[Event]) -> Vec<&tapio::event::Span> {
    events
        .iter()
        .filter_map(|e| {
            if let Body::Span(s) = &e.body {
                Some(&**s)
            } else {
                None
            }
        })
        .collect()
}

fn ooms(events: &[Event]) -> Vec<&OomKill> {
    events
        .iter()
        .filter_map(|e| {
            if let Body::Kernel(Kernel::OomKill(o)) = &e.body {
                Some(&**o)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn hotrod_trace_gives_40_spans_6_services_3_errors() {
    if !shared_data("hotrod_trace_gives_40_spans_6_services_3_errors") {
        return;
    }
    let (events, stderr, code) = import(&[data("jaeger-ui-hotrod/getTrace-response.json")], &[]);
    assert_eq!(code, 0, "{stderr}");
    let s = spans(&events);
    assert_eq!(s.len(), 40);
    assert_eq!(
        s.iter()
            .map(|s| s.service.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        6
    );
    let errors: Vec<_> = s.iter().filter(|s| s.status == StatusCode::Error).collect();
    assert_eq!(errors.len(), 3);
    assert!(errors
        .iter()
        .all(|s| s.service == "redis-manual" && s.name == "GetDriver"));
    assert!(errors.iter().all(|s| s
        .exceptions()
        .any(|x| format!("{:?}", x.attributes).contains("redis timeout"))));
    assert!(
        events.windows(2).all(|w| w[0].ts <= w[1].ts),
        "ordered by time"
    );
    assert!(
        stderr.contains("40 events (otlp-json), 0 rejected"),
        "{stderr}"
    );
}

#[test]
fn zipkin_traces_import_with_their_counts() {
    if !shared_data("zipkin_traces_import_with_their_counts") {
        return;
    }
    let (events, _, code) = import(
        &[data(
            "zipkin-lens-testdata/smartthings-oauth-authorization.json",
        )],
        &[],
    );
    assert_eq!(code, 0);
    let s = spans(&events);
    assert_eq!(s.len(), 175);
    assert_eq!(s.iter().filter(|s| s.http_status() == Some(401)).count(), 2);

    // 1041 span records, of which 84 are timestamp-less halves of spans reported by both sides:
    // they merge into their other half, as Zipkin itself merges them.
    let (events, stderr, code) = import(
        &[data(
            "zipkin-lens-testdata/smartthings-mobile-web-install.json.gz",
        )],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let s = spans(&events);
    assert_eq!(s.len(), 1041 - 84);
    assert!(
        stderr.contains("84 Zipkin span records without a timestamp were merged"),
        "{stderr}"
    );
    assert_eq!(
        s.iter()
            .map(|s| s.service.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        16
    );
    assert_eq!(s.iter().filter(|s| s.http_status() == Some(404)).count(), 2);

    let (events, _, _) = import(&[data("zipkin-lens-testdata/yelp.json")], &[]);
    let s = spans(&events);
    assert_eq!(s.len(), 16);
    assert!(s.iter().all(|s| !s.is_error()));
}

#[test]
fn each_kernel_oom_report_gives_one_oom_kill() {
    if !shared_data("each_kernel_oom_report_gives_one_oom_kill") {
        return;
    }
    let (events, stderr, code) = import(
        &[data("kernel-oom-logs/cadvisor_oomparser_kmsg_blocks.txt")],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let o = ooms(&events);
    let got: Vec<(u32, &str, &str, OomConstraint)> = o
        .iter()
        .map(|o| {
            (
                o.victim_pid,
                o.victim_comm.as_str(),
                o.cgroup().as_str(),
                o.constraint,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (19667, "evil-program2", "", OomConstraint::Unknown),
            (
                966,
                "manager",
                "/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012/ef807430361e6e82b45db92e2e9b6fbec98f419b12c591e655c1a725565e73a8",
                OomConstraint::Memcg
            ),
            (13536, "memorymonster", "/mem2", OomConstraint::Memcg),
            (1532, "badsysprogram", "", OomConstraint::Global),
            (1381, "gunpowder-memho", "/docker/2e088fe462e25e60be1dafafe2c05c47bda1a97978648d10ad2b7484fc0b8f50", OomConstraint::Memcg),
            (1667, "gunpowder-memho", "/docker/6c6fcab8562fd3150854986b78552c732f234fd405b624207b8843528a145e70", OomConstraint::Memcg),
        ]
    );
    assert!(
        stderr.contains("its lines carry no time"),
        "the assumption is said: {stderr}"
    );

    let (events, _, _) = import(
        &[data(
            "kernel-oom-logs/npd_kernel_log_generator_oom_kill.txt",
        )],
        &[],
    );
    let o = ooms(&events);
    assert_eq!(
        (o.len(), o[0].victim_pid, o[0].victim_comm.as_str()),
        (1, 1012, "heapster")
    );

    let (events, stderr, _) = import(
        &[data("kernel-oom-logs/bcc_oomkill_example.txt")],
        &["--date", "2019-03-02", "--tz", "UTC"],
    );
    let o = ooms(&events);
    assert_eq!(o.len(), 2, "{stderr}");
    assert_eq!(
        (o[0].victim_pid, o[0].victim_comm.as_str(), o[0].killer_pid),
        (22516, "perl", 3297)
    );
    let oom_ts: Vec<String> = events
        .iter()
        .filter(|e| e.kind() == Kind::Oom)
        .map(|e| e.ts.rfc3339())
        .collect();
    assert_eq!(oom_ts[0], "2019-03-02T21:03:39.000000000Z");
}

#[test]
fn kubernetes_dumps_import_and_a_journal_takes_its_year_from_them() {
    if !shared_data("kubernetes_dumps_import_and_a_journal_takes_its_year_from_them") {
        return;
    }
    let files = [
        data("kspan/deployment-2-pods.yaml"),
        data("insights-operator-archive-sample/config__pod__di-288312__vsystem-867f4b77cc-pqcns.json"),
        data("insights-operator-archive-sample/config__pod__openshift-monitoring__prometheus-k8s-0.json"),
        data("insights-operator-archive-sample/config__node__worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com.json"),
        data("insights-operator-archive-sample/events__openshift-machine-api.json"),
        data("insights-operator-archive-sample/config__node__logs__ip-10-0-135-228.us-east-2.compute.internal.log"),
    ];
    let (events, stderr, code) = import(&files, &[]);
    assert_eq!(code, 0, "{stderr}");
    let count = |k: Kind| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!(
        count(Kind::K8sObject),
        7 + 3,
        "kspan's 7 objects, 2 pods and a node"
    );
    assert_eq!(count(Kind::K8sEvent), 19 + 2);
    assert_eq!(count(Kind::Log), 50);
    let pod = events.iter().find_map(|e| match &e.body {
        Body::Kube(Kube::Object(o)) if o.name == "vsystem-867f4b77cc-pqcns" => Some(o),
        _ => None,
    });
    assert!(pod.is_some_and(|p| p.json.0.contains("connect timeout expired")));
    // The journal has no year; the other inputs span 2021-2024, and November 10 is nearest 2022's middle.
    assert!(stderr.contains("times have no year: assumed"), "{stderr}");
    assert!(stderr.contains("(from the other inputs)"), "{stderr}");
    assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn bad_input_names_the_file_and_line_and_the_rest_still_imports() {
    if !shared_data("bad_input_names_the_file_and_line_and_the_rest_still_imports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("watch.jsonl");
    std::fs::write(
        &bad,
        "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\",\"creationTimestamp\":\"2024-01-01T00:00:00Z\"}}}\n{\"type\":\"ADDED\",\"object\":{\"kind\":\n",
    )
    .unwrap();
    let garbage = dir.path().join("core.bin");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 0, 1, 2, 255, 254]).unwrap();
    let (events, stderr, code) = import(
        &[
            bad.clone(),
            garbage,
            data("jaeger-ui-hotrod/getTrace-response.json"),
        ],
        &[],
    );
    assert_eq!(code, 1, "a rejected record is a problem worth an exit code");
    assert!(
        stderr.contains(&format!(
            "{}: line 2: rejected: invalid JSON",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("core.bin: format not recognised"),
        "{stderr}"
    );
    assert!(
        stderr.contains("imported 41 events from 2 of 3 files"),
        "{stderr}"
    );
    assert_eq!(events.len(), 41);
}

#[test]
fn a_raw_dmesg_is_pinned_to_the_timeline_by_the_pod_that_reports_its_oom_kill() {
    let dir = tempfile::tempdir().unwrap();
    let id = "190482e8d196bfe10f673299c63b888fa4e16549ee6566c7b60d1c1c613b682d";
    let cgroup = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod53325dff_4646_00b7_0613_d59effb48705.slice/cri-containerd-{id}.scope"
    );
    let dmesg = dir.path().join("dmesg.txt");
    std::fs::write(
        &dmesg,
        format!(
            "[12340.000000] eth0: renamed from veth1\n\
             [12345.678000] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=983\n\
             [12345.678100] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={cgroup},task_memcg={cgroup},task=java,pid=4711,uid=0\n\
             [12345.678200] Memory cgroup out of memory: Killed process 4711 (java) total-vm:5237712kB, anon-rss:2090000kB, file-rss:7000kB, shmem-rss:0kB, UID:0 pgtables:4500kB oom_score_adj:983\n"
        ),
    )
    .unwrap();
    let pod = dir.path().join("pod.json");
    std::fs::write(
        &pod,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "cart-7d8f9", "namespace": "shop", "uid": "53325dff-4646-00b7-0613-d59effb48705",
                         "creationTimestamp": "2024-05-01T09:00:00Z"},
            "spec": {"nodeName": "node-7", "containers": [{"name": "cart"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "cart", "restartCount": 1, "containerID": format!("containerd://{id}"),
                "state": {"running": {"startedAt": "2024-05-01T10:02:13Z"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                              "startedAt": "2024-05-01T09:00:05Z", "finishedAt": "2024-05-01T10:02:11Z"}}}]}
        })
        .to_string(),
    )
    .unwrap();
    let (events, stderr, code) = import(&[dmesg, pod], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("pinned by the OOM kill of container 190482e8d196"),
        "{stderr}"
    );
    let at = |k: Kind| events.iter().find(|e| e.kind() == k).unwrap().ts.rfc3339();
    assert_eq!(at(Kind::Oom), "2024-05-01T10:02:11.000000000Z");
    assert_eq!(
        at(Kind::Log),
        "2024-05-01T10:02:05.321800000Z",
        "5.6782 s before the kill"
    );
    assert_eq!(ooms(&events)[0].rss_kib, 2_097_000);
}

/// Real OOM-killer reports (tests/data/kernel/SOURCES.md says where each comes from and what a
/// correct reading is): every victim once, memcg or global as the report says.
#[test]
fn real_oom_reports_from_many_kernels_give_each_victim_once() {
    const MEMCG: &str = "memcg";
    const GLOBAL: &str = "global";
    let test1: &[u32] = &[
        1, 9182, 9183, 9184, 9185, 9186, 9187, 9188, 9189, 9190, 9191, 9192,
    ];
    let aks: &[u32] = &[7620, 7656, 7657, 7712, 7788];
    let cases: &[(&str, &[u32], &str)] = &[
        ("oom-group-test1-5.0-next.txt", test1, MEMCG),
        (
            "oom-group-k8s-guaranteed-already-exiting.txt",
            &[
                3803554, 3803846, 3804873, 3804874, 3804875, 3804876, 3804879, 3804880, 3804881,
                3804883,
            ],
            MEMCG,
        ),
        (
            "oom-group-4.19-dev-global-A1.txt",
            &[1217, 1218, 1219, 1220, 1221, 1222],
            GLOBAL,
        ),
        ("syslog-oom.txt", aks, MEMCG),
        ("oom-k8s-aks-stress-kubepods-slice.txt", &[68061], MEMCG),
        ("oom-k8s-cgroupfs-pod-limit-4.15.txt", &[32308], MEMCG),
        ("oom-k8s-cgroupfs-cdi-importer.txt", &[18524], MEMCG),
        (
            "oom-k8s-debian61-global-cgroupfs-group.txt",
            &[10843, 115727],
            GLOBAL,
        ),
        ("oom-k8s-k3s-global-besteffort.txt", &[19227], GLOBAL),
        (
            "oom-k8s-rhel8-docker-scope.txt",
            &[7093, 281482, 321688],
            MEMCG,
        ),
        ("oom-old-centos7-docker-memcg.txt", &[14728], MEMCG),
        ("oom-old-centos7-docker-memcg-nodump.txt", &[14806], MEMCG),
        ("oom-old-centos7-sysrq-global.txt", &[1065], GLOBAL),
        ("oom-old-k8s-runc-3.10-backport.txt", &[12788], MEMCG),
        (
            "syslog-oom-rfc3339-paren-comm.txt",
            &[198991, 3963629],
            MEMCG,
        ),
        ("journal-oom.txt", &[2664087, 2684673], MEMCG),
        ("dmesg-T-fr.txt", &[3499662], GLOBAL),
        ("dmesg-T-zh.txt", &[50624], MEMCG),
        ("dmesg-T-zh-3.10.txt", &[789343], MEMCG),
        ("dmesg-T-de-real-nonoom.txt", &[], ""),
        ("dmesg-T-ru-real-nonoom.txt", &[], ""),
        ("dmesg-T-de.txt", aks, MEMCG),
        ("dmesg-T-de-untranslated.txt", &[14728], MEMCG),
        ("dmesg-T-fr-translated.txt", &[18524], MEMCG),
        ("dmesg-T-es.txt", test1, MEMCG),
        ("dmesg-T-ru.txt", &[7093], MEMCG),
        ("dmesg-T-ja.txt", &[10843, 115727], GLOBAL),
    ];
    let mut wrong = Vec::new();
    for (file, want, constraint) in cases {
        let path = PathBuf::from("tests/data/kernel").join(file);
        let (events, stderr, code) = import(&[path], &[]);
        assert_eq!(code, 0, "{file}: {stderr}");
        let kills = ooms(&events);
        let mut pids: Vec<u32> = kills.iter().map(|k| k.victim_pid).collect();
        pids.sort_unstable();
        let constraints: std::collections::BTreeSet<&str> =
            kills.iter().map(|k| k.constraint.as_str()).collect();
        let want_constraints: std::collections::BTreeSet<&str> = [*constraint]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect();
        if pids != *want || constraints != want_constraints {
            wrong.push(format!(
                "{file}: victims {pids:?} ({constraints:?}), expected {want:?} ({constraint})"
            ));
        }
        // No report is read as anything but a kernel log.
        assert!(
            !stderr.contains("rejected: invalid JSON"),
            "{file}: {stderr}"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A group kill names the group's cgroup for the tasks it kills after the victim.
    let (events, _, _) = import(
        &[PathBuf::from(
            "tests/data/kernel/oom-group-test1-5.0-next.txt",
        )],
        &[],
    );
    assert!(ooms(&events).iter().all(|k| &*k.task_memcg == "/test1"));
    // `dmesg -T` in German word order: 12:44:22 local on 4 December 2026, taken as UTC.
    let (events, _, _) = import(&[PathBuf::from("tests/data/kernel/dmesg-T-de.txt")], &[]);
    assert_eq!(ooms(&events).len(), 5);
    assert_eq!(events[0].ts.rfc3339(), "2026-12-04T12:44:22.000000000Z");
}

/// What people paste into tickets, in kubectl's layouts (tests/data/paste-made: written after
/// kubectl's describe.go and table printers, not copied): objects and Events with the times the
/// text states, ages counted back from --now.
#[test]
fn pasted_kubectl_describe_and_get_output_becomes_objects_and_events() {
    let dir = PathBuf::from("tests/data/paste-made");
    let (events, stderr, code) = import(
        &[
            dir.join("describe-pod-crashloop.txt"),
            dir.join("get-pods-wide.txt"),
            dir.join("get-events.txt"),
        ],
        &["--now", "2026-03-14T10:03:00Z"],
    );
    assert_eq!(code, 0, "{stderr}");
    let objects: Vec<&tapio::event::Object> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Kube(tapio::event::Kube::Object(o)) => Some(&**o),
            _ => None,
        })
        .collect();
    // The described pod (the table's row of the same pod says less, and is dropped), and the
    // other pod of the table, in the namespace the describe names.
    let names: Vec<String> = objects
        .iter()
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect();
    assert_eq!(
        names,
        ["shop/cart-7d8f9c6b5-x2x9k", "default/web-5c9f8d7b6-abcde"],
        "{stderr}"
    );
    let pod: serde_json::Value = objects[0].json.parse().unwrap();
    let c = &pod["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(
        c["lastState"]["terminated"]["finishedAt"],
        "2026-03-14T10:01:44.000000000Z"
    );
    assert_eq!(c["restartCount"], 5);
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["name"],
        "cart-7d8f9c6b5"
    );
    // Events: `2s (x20 over 4m50s)` → 20 times, the last 2 s before --now.
    let backoff = events
        .iter()
        .find_map(|e| match &e.body {
            Body::Kube(tapio::event::Kube::Event(k)) if k.reason == "BackOff" => Some((e.ts, k)),
            _ => None,
        })
        .unwrap();
    assert_eq!(backoff.1.count, 20);
    assert_eq!(backoff.0.rfc3339(), "2026-03-14T10:02:58.000000000Z");
    assert!(stderr.contains("counted back from --now"), "{stderr}");
    // `kubectl get all`: the pods are read, the other tables are said to be skipped.
    let (events, stderr, code) = import(
        &[dir.join("get-all.txt")],
        &["--now", "2026-03-14T10:03:00Z"],
    );
    assert_eq!(code, 1, "{stderr}");
    // The pod of the table, and the pod the describe at the end names.
    assert_eq!(events.len(), 2, "{stderr}");
    assert!(
        stderr.contains("line 5: rejected: a kubectl get table of a kind tapio does not read"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("line 11"),
        "No resources found is no error: {stderr}"
    );
}

/// Real `kubectl describe` and `kubectl get` output that people pasted into public issue threads
/// (tests/data/paste/SOURCES.md): every file reads without an error, and what they show is read
/// back — the old and new Events tables, indented pastes, prompts, several commands in one file.
#[test]
fn real_pasted_kubectl_output_reads_back_what_it_shows() {
    let dir = PathBuf::from("tests/data/paste");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let now = ["--now", "2026-01-01T00:00:00Z"];
    for f in &files {
        let (_, stderr, code) = import(std::slice::from_ref(f), &now);
        assert!(
            code == 0 || code == 1,
            "{}: exit {code}\n{stderr}",
            f.display()
        );
    }
    let pod = |file: &str, ns: &str, name: &str| -> serde_json::Value {
        let (events, stderr, _) = import(&[dir.join(file)], &now);
        events
            .iter()
            .find_map(|e| match &e.body {
                Body::Kube(tapio::event::Kube::Object(o))
                    if o.namespace == ns && o.name == name =>
                {
                    o.json.parse().ok()
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{file}: no pod {ns}/{name}\n{stderr}"))
    };
    let blue = pod("describe-pod-crashloop.txt", "default", "blue");
    let c = &blue["status"]["containerStatuses"][0];
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(c["restartCount"], 3);
    let loki = pod(
        "describe-pod-oomkilled-unhealthy-probes.txt",
        "logging",
        "loki-6d6c946fb5-8vvld",
    );
    let c = &loki["status"]["containerStatuses"][0];
    assert_eq!(c["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 137);
    // An indented paste of a describe from before Kubernetes 1.14 (FirstSeen LastSeen Count …).
    let (events, stderr, _) = import(
        &[dir.join("describe-pod-pending-failedscheduling-old.txt")],
        &now,
    );
    let failed = events.iter().find_map(|e| match &e.body {
        Body::Kube(tapio::event::Kube::Event(k)) if k.reason == "FailedScheduling" => Some(k),
        _ => None,
    });
    assert_eq!(failed.map(|k| k.count), Some(7), "{stderr}");
    // A quota that refuses the ReplicaSet's pods.
    let (events, _, _) = import(
        &[dir.join("describe-replicaset-failedcreate-exceeded-quota.txt")],
        &now,
    );
    assert!(events.iter().any(|e| matches!(&e.body,
        Body::Kube(tapio::event::Kube::Event(k)) if k.reason == "FailedCreate" && k.message.contains("exceeded quota"))));
    // `kubectl get pods -A -w`: every row in the namespace its row says.
    let (events, _, _) = import(&[dir.join("get-pods-all-namespaces-watch.txt")], &now);
    let namespaces: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Kube(tapio::event::Kube::Object(o)) => Some(o.namespace.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        namespaces.into_iter().collect::<Vec<_>>(),
        ["haproxy-controller", "kube-system"]
    );
}

#[test]
fn structured_application_logs_with_pod_are_that_pods_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("cart.jsonl");
    std::fs::write(
        &logs,
        concat!(
            r#"{"level":"info","ts":"2026-03-14T10:00:00.100Z","caller":"main.go:42","msg":"listening on :8080"}"#, "\n",
            r#"{"level":"error","ts":"2026-03-14T10:00:01.200Z","msg":"could not connect to redis: connection refused"}"#, "\n",
            r#"{"level":"warn","time":1773482402.3,"msg":"retrying"}"#, "\n",
            r#"{"severity":"ERROR","timestamp":"2026-03-14T10:00:03Z","message":"giving up"}"#, "\n",
        ),
    )
    .unwrap();
    let (events, stderr, code) = import(std::slice::from_ref(&logs), &["--pod", "shop/cart-0"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("4 events (container-log), 0 rejected"),
        "{stderr}"
    );
    let logs_of: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::AppLog(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(logs_of.len(), 4);
    assert_eq!(logs_of[0].pod(), Some(("shop", "cart-0")));
    let errors = logs_of
        .iter()
        .filter(|a| a.log.severity == tapio::event::Severity::Error)
        .count();
    assert_eq!(errors, 2, "level and severity keys say it");
    assert_eq!(
        events[2].ts,
        tapio::event::Ts::parse_rfc3339("2026-03-14T10:00:02.300Z").unwrap(),
        "an epoch time in the JSON"
    );
    // Without --pod, whose they are is unknown: each line says how to tell.
    let (_, stderr, code) = import(&[logs], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("pass --pod NS/NAME"), "{stderr}");
}

#[test]
fn kilobytes_of_twenty_digits_in_a_kernel_log_neither_panic_nor_wrap() {
    // The regex takes up to 20 digits; times 1024 is past u64.
    let dir = tempfile::tempdir().unwrap();
    let dmesg = dir.path().join("dmesg.txt");
    std::fs::write(
        &dmesg,
        "[  812.000100] postgres invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999\n\
         [  812.000200] memory: usage 18446744073709551615kB, limit 99999999999999999999kB, failcnt 1\n\
         [  812.000600] Memory cgroup out of memory: Killed process 4101 (postgres) total-vm:18446744073709551615kB, anon-rss:18014398509481984kB, file-rss:1000kB, shmem-rss:0kB, UID:999 pgtables:1500kB oom_score_adj:999\n",
    )
    .unwrap();
    let capture = dir.path().join("c.tapio");
    let import = Command::cargo_bin("tapio")
        .unwrap()
        .args(["import", "--boot-time", "2026-03-14T10:00:00Z", "-o"])
        .arg(&capture)
        .arg(&dmesg)
        .output()
        .unwrap();
    assert!(
        import.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let replay = Command::cargo_bin("tapio")
        .unwrap()
        .args(["replay", "--all", "-o", "json"])
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}

/// The inputs of an incident fixture, as `scripts/build-incidents.sh` gathers them, and its
/// import arguments; `None` for the fixtures that are not imports.
fn fixture_inputs(dir: &Path) -> Option<(Vec<PathBuf>, Vec<String>)> {
    if ["label.json", "generate.args", "sources"]
        .iter()
        .any(|f| dir.join(f).exists())
    {
        return None;
    }
    let mut inputs: Vec<PathBuf> = [
        "pods.json",
        "cluster.json",
        "events.json",
        "traces.json",
        "dmesg.txt",
        "kernel-events.jsonl",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.exists())
    .collect();
    let mut logs: Vec<PathBuf> = walk(&dir.join("logs"));
    logs.sort();
    inputs.extend(logs);
    let mut pasted: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubectl-logs") && n.ends_with(".txt"))
        })
        .collect();
    pasted.sort();
    inputs.extend(pasted);
    let args = std::fs::read_to_string(dir.join("import.args"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (!inputs.is_empty()).then_some((inputs, args))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|p| if p.is_dir() { walk(&p) } else { vec![p] })
        .collect()
}

/// `tapio import` with `extra`, in a directory of its own: the events as `cat -o json` prints
/// them (ConfigMap values are keyed hashes, with a key of each import: masked), what it said,
/// and what else it left in the directory.
fn import_in_own_dir(
    inputs: &[PathBuf],
    args: &[String],
    extra: &[&str],
) -> (String, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("tapio")
        .unwrap()
        .current_dir(dir.path())
        .args(["import", "-q", "-o", "out.tapio"])
        .args(extra)
        .args(args)
        .args(inputs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let cat = Command::cargo_bin("tapio")
        .unwrap()
        .args(["cat", "-o", "json"])
        .arg(dir.path().join("out.tapio"))
        .output()
        .unwrap();
    let hmac = regex::Regex::new("hmac-sha256:[0-9a-f]+:[0-9a-f]+").unwrap();
    let events = hmac
        .replace_all(&String::from_utf8_lossy(&cat.stdout), "hmac")
        .into_owned();
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "out.tapio")
        .collect();
    (events, stderr, left)
}

#[test]
fn an_import_through_scratch_files_equals_the_import_in_memory_on_every_fixture() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut compared = 0;
    for dir in dirs {
        let Some((inputs, args)) = fixture_inputs(&dir) else {
            continue;
        };
        // A batch of two: every log input goes to disk, and the sort is a merge of many runs.
        let (memory, said, _) = import_in_own_dir(&inputs, &args, &[]);
        let (spilled, said_spilled, left) = import_in_own_dir(&inputs, &args, &["--batch", "2"]);
        assert!(!memory.is_empty(), "{}: {said}", dir.display());
        assert_eq!(memory, spilled, "{}", dir.display());
        assert_eq!(said, said_spilled, "{}", dir.display());
        assert!(left.is_empty(), "scratch files left: {left:?}");
        compared += 1;
    }
    assert!(compared >= 25, "{compared} fixtures compared");
}

#[test]
fn lines_without_times_and_times_to_complete_place_the_same_from_scratch_files() {
    // What only placement completes: container log lines without times (placed by their
    // container's run, counted across two files), a syslog without a year, a dmesg in seconds
    // since boot whose first lines have no time.
    let dir = tempfile::tempdir().unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "api-1", "namespace": "shop", "uid": "7d1c2a34-0000-4000-8000-000000000001"},
        "spec": {"nodeName": "node-3", "containers": [{"name": "api"}]},
        "status": {"containerStatuses": [{"name": "api", "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2026-03-14T10:20:40Z", "finishedAt": "2026-03-14T10:20:44Z"}}}]}
    });
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let lines =
        |n: usize, what: &str| -> String { (0..n).map(|i| format!("{what} line {i}\n")).collect() };
    let mut dmesg = String::from("Call Trace:\n dump_stack+0x5c/0x80\n");
    for i in 0..9 {
        dmesg.push_str(&format!("[ 1200.{i:06}] eth0: link up {i}\n"));
    }
    let mut syslog = String::new();
    for i in 0..9 {
        syslog.push_str(&format!(
            "Mar 14 10:20:{:02} node-3 kubelet[812]: sync {i}\n",
            40 + i / 3
        ));
    }
    let pod = write("pod.json", pod.to_string());
    let logs = vec![
        pod.clone(),
        write("api-a.txt", lines(7, "first file")),
        write("api-b.txt", lines(5, "second file")),
    ];
    let kernel = vec![pod, write("dmesg.txt", dmesg), write("syslog.txt", syslog)];
    let pod_args: Vec<String> = ["--pod", "shop/api-1"].map(String::from).to_vec();
    for (inputs, args) in [(logs, pod_args), (kernel, Vec::new())] {
        let (memory, said, _) = import_in_own_dir(&inputs, &args, &[]);
        let placed = said.contains("12 log lines of shop/api-1  without times placed")
            || said.contains("times have no year: assumed 2026");
        assert!(placed, "{said}");
        assert!(memory.contains("2026-03-14T10:20:4"), "{memory}");
        for batch in ["1", "2", "3"] {
            let (spilled, said_spilled, left) =
                import_in_own_dir(&inputs, &args, &["--batch", batch]);
            assert_eq!(memory, spilled, "batch {batch}");
            assert_eq!(said, said_spilled, "batch {batch}");
            assert!(left.is_empty(), "scratch files left: {left:?}");
        }
    }
}

#[test]
fn an_interrupted_big_import_leaves_no_scratch_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dmesg.txt");
    let mut text = String::new();
    for i in 0..400_000u64 {
        text.push_str(&format!(
            "[{:>5}.{:06}] eth0: link up, 1000 Mbps, full duplex (line {i})\n",
            5 + i / 1000,
            i % 1000 * 1000
        ));
    }
    std::fs::write(&log, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
        .current_dir(dir.path())
        .args(["import", "-q", "--batch", "1000", "-o", "out.tapio"])
        .args(["--boot-time", "2026-03-14T00:00:00Z"])
        .arg(&log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".tapio-import-")
            })
    };
    let started = std::time::Instant::now();
    while !scratch() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it wrote scratch files"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!scratch(), "scratch files left behind");
}
