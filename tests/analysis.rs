//! `tapio query` and `tapio stats`: the first questions of an investigation, answered from the
//! tables, as people read them (insta snapshots) and as programs do.

use std::path::PathBuf;
use std::process::{Command, Output};

use assert_cmd::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents")
        .join(name)
}

fn tapio(args: &[&str]) -> Output {
    Command::cargo_bin("tapio")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = tapio(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// (service, requests, errors) of each row, sorted.
fn by_service(rows: &[Value]) -> Vec<(String, u64, u64)> {
    let mut v: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            let service = r["service"].as_str().unwrap().to_string();
            (service, n("requests"), n("errors"))
        })
        .collect();
    v.sort();
    v
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const RESTARTED_NEAR_AN_OOM_KILL: &str = "SELECT r.pod, r.reason, r.ts AS at, o.comm AS killed \
     FROM k8s_events r JOIN kernel o ON r.node = o.node \
     WHERE o.kind = 'oom' AND r.reason IN ('BackOff', 'Killing', 'Started') \
     AND r.ts BETWEEN o.ts - INTERVAL '5 minutes' AND o.ts + INTERVAL '5 minutes' ORDER BY at";

const ERROR_RATE_PER_MINUTE: &str = "SELECT strftime(ts, '%H:%M') AS minute, count(*) AS requests, \
     sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, \
     round(100.0 * sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) / count(*), 1) AS error_pct \
     FROM spans WHERE service = 'checkout' AND span_kind = 'server' GROUP BY minute ORDER BY minute";

#[test]
fn the_readmes_queries_answer_on_the_oom_cascade() {
    // The README shows these two, with this output.
    let f = fixture("oom-cascade");
    let f = f.to_str().unwrap();
    let restarts = ok(&["query", "-q", f, RESTARTED_NEAR_AN_OOM_KILL]);
    let rate = ok(&["query", "-q", f, ERROR_RATE_PER_MINUTE]);
    insta::assert_snapshot!(format!("{restarts}\n{rate}"));
}

#[test]
fn a_query_prints_csv_json_and_parquet_with_the_types_of_the_tables() {
    let f = fixture("oom-cascade");
    let f = f.to_str().unwrap();
    let sql = "SELECT id, root_kind, confidence, evidence_seqs FROM incidents";
    let json = json_lines(&ok(&["query", "-q", "-o", "json", f, sql]));
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["root_kind"], "oom_container_limit");
    assert!(json[0]["evidence_seqs"].as_array().unwrap().len() > 3);
    let csv = ok(&["query", "-q", "-o", "csv", f, sql]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,root_kind,confidence,evidence_seqs"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("1,oom_container_limit,0.98,"));
    // The same count, however it is asked: from the verdict's table and from the events'.
    let o = tapio(&["query", "-q", "-o", "parquet", f, "SELECT * FROM spans"]);
    assert!(o.status.success());
    assert_eq!(&o.stdout[..4], b"PAR1");
    let spans = ok(&[
        "query",
        "-q",
        "-o",
        "json",
        f,
        "SELECT count(*) AS n FROM spans",
    ]);
    assert_eq!(json_lines(&spans)[0]["n"], 392);
}

#[test]
fn a_query_that_cannot_run_says_why_and_lists_the_tables_and_columns() {
    let f = fixture("oom-cascade");
    let f = f.to_str().unwrap();
    for (sql, says) in [
        ("SELECT durration FROM spans", "durration"),
        ("SELEC pod FROM kernel", "not valid SQL"),
        ("SELECT 1 FROM pods", "names no table"),
    ] {
        let o = tapio(&["query", f, sql]);
        assert_eq!(o.status.code(), Some(2), "{sql}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{sql}: {err}");
        assert!(err.contains("  spans: ts, seq, node,"), "{sql}: {err}");
        assert!(err.contains("  findings: id, ts, end,"), "{sql}: {err}");
    }
}

#[test]
fn stats_of_the_fixtures_read_as_they_should() {
    let mut out = String::new();
    for name in [
        "oom-cascade",
        "crash-loop-app-error",
        "network-unreachable",
        "lab-service-errors",
        "node-not-ready",
        "control-quiet-hour",
    ] {
        let f = fixture(name);
        out.push_str(&format!("== {name}\n"));
        out.push_str(&ok(&["stats", "-q", "--top", "5", f.to_str().unwrap()]));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn stats_as_json_and_csv_count_what_query_counts() {
    let f = fixture("lab-service-errors");
    let f = f.to_str().unwrap();
    let stats: Value =
        serde_json::from_str(&ok(&["stats", "-q", "-o", "json", "--by", "30s", f])).unwrap();
    // Per service, the entry spans and their errors, as SQL counts them.
    let sql = "SELECT service, count(*) AS requests, \
               sum(CASE WHEN status = 'error' OR http_status >= 500 THEN 1 ELSE 0 END) AS errors \
               FROM spans WHERE span_kind IN ('server', 'consumer') OR parent_span_id IS NULL \
               GROUP BY service";
    let want = by_service(&json_lines(&ok(&["query", "-q", "-o", "json", f, sql])));
    let got = by_service(stats["services"].as_array().unwrap());
    assert_eq!(got, want);
    // The buckets add up to the totals, and each row's trend sums its errors.
    for s in stats["services"].as_array().unwrap() {
        let name = &s["service"];
        let buckets: u64 = stats["service_buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| &b["service"] == name)
            .map(|b| b["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(buckets, s["requests"].as_u64().unwrap(), "{name}");
        let trend: u64 = s["trend"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum();
        assert_eq!(trend, s["errors"].as_u64().unwrap(), "{name}");
        let (p50, p99) = (s["p50_ms"].as_f64().unwrap(), s["p99_ms"].as_f64().unwrap());
        assert!(p50 <= p99, "{name}");
    }
    let csv = ok(&["stats", "-q", "-o", "csv", "--section", "logs", f]);
    assert!(
        csv.starts_with("namespace,pod,container,errors,warnings,example,trend\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let o = tapio(&["stats", "-o", "csv", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--section"));
}
