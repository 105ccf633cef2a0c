//! `tapio export`: tables that DuckDB and polars (their own Python packages) read back as `tapio
//! cat` tells the events.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use serde_json::Value;

/// Whether DuckDB's and polars' Python packages are installed (`.ci/run` installs them and sets
/// TAPIO_REQUIRE_PY_READERS; elsewhere a test without them says it is skipped).
fn readers(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb, polars"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("TAPIO_REQUIRE_PY_READERS").is_some() {
            panic!("{test}: duckdb and polars (Python) are not installed");
        }
        eprintln!("skipped {test}: DuckDB's and polars' Python packages are not installed (pip install duckdb polars)");
    }
    ok
}

fn fixture(name: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tapio"))
        .collect();
    files.sort();
    files
}

/// Runs Python, which prints one JSON document.
fn python(script: &str) -> Value {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How many events of each table `tapio cat -o json` shows.
fn counts_by_cat(files: &[PathBuf]) -> Value {
    let out = Command::cargo_bin("tapio")
        .unwrap()
        .args(["cat", "-o", "json"])
        .args(files)
        .output()
        .unwrap();
    let mut n =
        serde_json::json!({"kernel": 0, "spans": 0, "logs": 0, "k8s_events": 0, "objects": 0});
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let table = match e["kind"].as_str().unwrap() {
            "span" => "spans",
            "log" => "logs",
            "k8s.event" => "k8s_events",
            "k8s.object" => "objects",
            "drop" | "gap" | "annotation" => continue,
            _ => "kernel",
        };
        n[table] = (n[table].as_u64().unwrap() + 1).into();
    }
    n
}

fn export(files: &[PathBuf], out: &Path, args: &[&str]) -> String {
    let o = Command::cargo_bin("tapio")
        .unwrap()
        .arg("export")
        .args(files)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    stderr
}

#[test]
fn every_table_reads_back_in_duckdb_and_polars_in_every_format_with_the_counts_of_cat() {
    let test = "every_table_reads_back_in_duckdb_and_polars_in_every_format_with_the_counts_of_cat";
    if !readers(test) {
        return;
    }
    let files = fixture("oom-cascade");
    let want = counts_by_cat(&files);
    let dir = tempfile::tempdir().unwrap();
    let mut findings_seen = None;
    // A small batch: every table is written in several batches.
    for format in ["parquet", "csv", "jsonl", "arrow"] {
        let out = dir.path().join(format);
        export(
            &files,
            &out.join(""),
            &["--format", format, "--batch", "7", "-q"],
        );
        let got = python(&format!(
            r#"
import json, os, duckdb, polars as pl
d = "{dir}"
# (Text formats carry no types: the whole file is looked at to infer them.)
read = {{"parquet": pl.read_parquet, "csv": lambda p: pl.read_csv(p, infer_schema_length=None),
        # (An empty table is an empty JSON lines file: no line, no value to infer from.)
        "jsonl": lambda p: pl.read_ndjson(p, infer_schema_length=None) if os.path.getsize(p) else pl.DataFrame(),
        "arrow": pl.read_ipc}}["{format}"]
out = {{}}
for t in ["kernel", "spans", "logs", "k8s_events", "objects", "incidents", "findings"]:
    df = read(f"{{d}}/{{t}}.{format}")
    out[t] = df.height
    if "{format}" == "parquet":
        n = duckdb.sql(f"SELECT count(*) FROM '{{d}}/{{t}}.parquet'").fetchall()[0][0]
        assert n == df.height, (t, n, df.height)
print(json.dumps(out))
"#,
            dir = out.display()
        ));
        // The verdict's tables read back alike in every format: one incident, its findings.
        let mut got = got;
        let verdict = got.as_object_mut().unwrap();
        let incidents = verdict.remove("incidents").unwrap();
        let findings = verdict.remove("findings").unwrap();
        assert_eq!(incidents, 1, "{format}");
        assert_eq!(
            *findings_seen.get_or_insert(findings.clone()),
            findings,
            "{format}"
        );
        assert_eq!(got, want, "{format}");
    }
    assert!(findings_seen.unwrap().as_u64().unwrap() >= 3);
    // Typed columns, as the schema page says, and the topology's attribution: the OOM kill of
    // the cart container names its pod and container, though the kernel saw only a cgroup.
    let d = dir.path().join("parquet");
    let got = python(&format!(
        r#"
import json, duckdb
d = "{d}"
types = dict(duckdb.sql(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{{d}}/kernel.parquet')").fetchall())
oom = duckdb.sql(f"SELECT namespace, pod, container, comm, memcg_limit_bytes, strftime(ts, '%Y-%m-%dT%H:%M:%S') FROM '{{d}}/kernel.parquet' WHERE kind = 'oom'").fetchall()
spans = duckdb.sql(f"SELECT service, count(*) FILTER (WHERE status = 'error'), max(duration_ns) > 0 FROM '{{d}}/spans.parquet' GROUP BY service ORDER BY service").fetchall()
# Labels are dictionaries in the file: text to DuckDB, categorical to polars, the same values.
import polars as pl
k = pl.read_parquet(f"{{d}}/kernel.parquet")
labels = {{c: str(k.schema[c]).split("(")[0] for c in ["pod", "comm", "tcp_outcome"]}}
same = sorted(k.filter(pl.col("kind") == "oom")["pod"].cast(pl.String).to_list()) == sorted(o[1] for o in oom)
print(json.dumps({{"ts": types["ts"], "pid": types["pid"], "rss": types["rss_bytes"], "exit_code": types["exit_code"], "pod": types["pod"], "labels": labels, "same": same, "oom": oom, "spans": spans}}))
"#,
        d = d.display()
    ));
    assert_eq!(got["ts"], "TIMESTAMPTZ_NS");
    assert_eq!(got["pid"], "UBIGINT");
    assert_eq!(got["rss"], "UBIGINT");
    assert_eq!(got["exit_code"], "BIGINT");
    assert_eq!(got["pod"], "VARCHAR");
    for c in ["pod", "comm", "tcp_outcome"] {
        assert_eq!(got["labels"][c], "Categorical", "{got}");
    }
    assert_eq!(got["same"], true, "{got}");
    let oom = &got["oom"][0];
    assert_eq!(oom[0], "shop");
    assert!(oom[1].as_str().unwrap().starts_with("cart-"), "{got}");
    assert_eq!(oom[2], "cart");
    assert_eq!(oom[4], 2_147_483_648u64);
    assert!(got["spans"].as_array().unwrap().len() >= 3, "{got}");
}

#[test]
fn one_table_to_one_file_with_the_filters_of_cat_and_clear_errors() {
    let files = fixture("oom-cascade");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.csv");
    let said = export(&files, &out, &["--table", "spans", "--service", "cart"]);
    assert!(said.contains("spans 32 rows"), "{said}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("ts,seq,node,namespace,pod,container,service,source,trace_id"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 33);
    assert!(csv.lines().skip(1).all(|l| l.contains(",cart,")), "{csv}");
    // A file is one table: without --table, the error says so and what the tables are.
    let o = Command::cargo_bin("tapio")
        .unwrap()
        .arg("export")
        .args(&files)
        .arg("-o")
        .arg(dir.path().join("all.parquet"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--table") && err.contains("k8s_events"),
        "{err}"
    );
    // An unknown table names the known ones.
    let o = Command::cargo_bin("tapio")
        .unwrap()
        .arg("export")
        .args(&files)
        .args(["-o", "x.csv", "--table", "pods"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("kernel"), "{err}");
}

#[test]
fn the_verdict_as_tables_is_the_verdict_of_replay_and_its_evidence_joins_the_events() {
    let test = "the_verdict_as_tables_is_the_verdict_of_replay_and_its_evidence_joins_the_events";
    if !readers(test) {
        return;
    }
    for name in [
        "oom-cascade",
        "bad-rollout",
        "lab-service-errors",
        "control-quiet-hour",
    ] {
        let files = fixture(name);
        let out = Command::cargo_bin("tapio")
            .unwrap()
            .args(["replay", "-o", "json"])
            .args(&files)
            .output()
            .unwrap();
        let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want: Vec<Value> = replay["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                serde_json::json!([
                    i["id"],
                    i["severity"],
                    i["root_cause"]["kind"],
                    i["root_cause"]["entity"],
                    i["start"].as_str().unwrap().trim_end_matches('Z'),
                    i["chain"].as_array().unwrap().len(),
                ])
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("");
        export(&files, &d, &["-q"]);
        let got = python(&format!(
            r#"
import json, duckdb
d = "{d}"
inc = duckdb.sql(f"SELECT id, severity, root_kind, entity, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%n'), (SELECT count(*) FROM '{{d}}/findings.parquet' f WHERE f.incident = i.id AND f.chain_step IS NOT NULL) FROM '{{d}}/incidents.parquet' i ORDER BY id").fetchall()
# Every evidence seq of every finding is an event of the event tables.
events = " UNION ALL ".join(f"SELECT seq FROM '{{d}}/{{t}}.parquet'" for t in ["kernel", "spans", "logs", "k8s_events", "objects"])
missing = duckdb.sql(f"SELECT count(*) FROM (SELECT unnest(evidence_seqs) AS seq FROM '{{d}}/findings.parquet') WHERE seq NOT IN ({{events}})").fetchall()[0][0]
evidence = duckdb.sql(f"SELECT count(*) FROM (SELECT unnest(evidence_seqs) FROM '{{d}}/findings.parquet')").fetchall()[0][0]
orphans = duckdb.sql(f"SELECT count(*) FROM '{{d}}/findings.parquet' WHERE incident IS NOT NULL AND incident NOT IN (SELECT id FROM '{{d}}/incidents.parquet')").fetchall()[0][0]
print(json.dumps({{"incidents": inc, "missing": missing, "evidence": evidence, "orphans": orphans}}))
"#,
            d = d.display()
        ));
        assert_eq!(got["incidents"].as_array().unwrap(), &want, "{name}");
        assert_eq!(got["missing"], 0, "{name}: {got}");
        assert_eq!(got["orphans"], 0, "{name}: {got}");
        if !want.is_empty() {
            assert!(got["evidence"].as_u64().unwrap() > 0, "{name}: {got}");
        }
    }
}

#[test]
fn a_frozen_export_still_reads_column_for_column_and_value_for_value() {
    let test = "a_frozen_export_still_reads_column_for_column_and_value_for_value";
    if !readers(test) {
        return;
    }
    let frozen = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tables/v1-oom-cascade");
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("");
    export(&fixture("oom-cascade"), &fresh, &["-q"]);
    let got = python(&format!(
        r#"
import json, duckdb
frozen, fresh = "{frozen}", "{fresh}"
out = {{}}
for t in ["kernel", "spans", "logs", "k8s_events", "objects", "incidents", "findings"]:
    old = duckdb.sql(f"DESCRIBE SELECT * FROM '{{frozen}}/{{t}}.parquet'").fetchall()
    new = dict((r[0], r[1]) for r in duckdb.sql(f"DESCRIBE SELECT * FROM '{{fresh}}/{{t}}.parquet'").fetchall())
    changed = [(c, ty, new.get(c)) for c, ty, *_ in old if new.get(c) != ty]
    cols = ", ".join(f'"{{c}}"' for c, *_ in old)
    rows = duckdb.sql(f"SELECT count(*) FROM '{{frozen}}/{{t}}.parquet'").fetchall()[0][0]
    differ = duckdb.sql(f"SELECT count(*) FROM ((SELECT {{cols}} FROM '{{frozen}}/{{t}}.parquet' EXCEPT ALL SELECT {{cols}} FROM '{{fresh}}/{{t}}.parquet') UNION ALL (SELECT {{cols}} FROM '{{fresh}}/{{t}}.parquet' EXCEPT ALL SELECT {{cols}} FROM '{{frozen}}/{{t}}.parquet'))").fetchall()[0][0] if not changed else None
    out[t] = {{"columns": len(old), "rows": rows, "changed": changed, "differ": differ}}
print(json.dumps(out))
"#,
        frozen = frozen.display(),
        fresh = fresh.display()
    ));
    for (table, t) in got.as_object().unwrap() {
        assert_eq!(t["changed"], serde_json::json!([]), "{table}: {t}");
        assert_eq!(t["differ"], 0, "{table}: {t}");
        assert!(t["columns"].as_u64().unwrap() >= 8, "{table}: {t}");
    }
    assert!(got["spans"]["rows"].as_u64().unwrap() > 300, "{got}");
    assert_eq!(got["incidents"]["rows"], 1, "{got}");
}
