//! The block index: a read through it prints exactly what a whole read prints, reads only a few
//! blocks, and a capture without one (an older format, a crash) still reads, whole.

use std::path::{Path, PathBuf};

use tapio::capture::index::{self, Set, Want};
use tapio::capture::{Header, ReadOptions, Reader, WriteOptions, Writer};
use tapio::event::{Body, Event};
use tapio::source::generate::{generate, Config};

use crate::support::recorder::tapio;

/// A generated capture of 40 minutes with small blocks and the embedded incident, and the
/// trace ids of its failed requests (around the incident, and before it).
fn long_capture(dir: &Path) -> (PathBuf, Vec<String>) {
    let (path, failed, _) = capture_of(dir, 125);
    (path, failed)
}

/// The same at `rate` events a second, and the requests that failed in the incident.
fn capture_of(dir: &Path, rate: u64) -> (PathBuf, Vec<String>, Vec<String>) {
    let path = dir.join("long.tapio");
    let opts = WriteOptions {
        block_bytes: 64 << 10,
        ..WriteOptions::default()
    };
    let mut w = Writer::create(&path, &Header::new("node-1"), opts).unwrap();
    let mut failed = Vec::new();
    let (mut oom, mut incident) = (false, Vec::new());
    generate(
        &Config {
            events: 300_000,
            rate,
            incident: true,
            ..Config::default()
        },
        |mut e: Event| {
            oom |= e.kind() == tapio::event::Kind::Oom;
            if let Body::Span(s) = &e.body {
                if s.is_error() && failed.len() < 400 {
                    failed.push(s.trace_id.to_string());
                }
                if s.is_error() && oom && incident.len() < 3 {
                    incident.push(s.trace_id.to_string());
                }
            }
            w.append(&mut e)
        },
    )
    .unwrap();
    w.finish().unwrap();
    failed.sort();
    failed.dedup();
    (path, failed, incident)
}

fn run(args: &[&str]) -> (String, String) {
    let out = tapio().args(args).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `tapio ARGS` through the index and with `--no-index` print the same; returns it.
fn same(args: &[&str]) -> String {
    let (indexed, _) = run(args);
    let mut whole = args.to_vec();
    whole.push("--no-index");
    let (all, _) = run(&whole);
    assert_eq!(indexed, all, "{args:?}");
    indexed
}

#[test]
fn cat_through_the_index_prints_what_a_whole_read_prints_and_reads_a_few_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (path, failed) = long_capture(dir.path());
    let p = path.to_str().unwrap();
    let reader = Reader::open(&path, ReadOptions::default()).unwrap();
    let index = reader
        .index()
        .unwrap()
        .expect("a closed capture has an index");
    assert!(index.blocks.len() > 50, "{} blocks", index.blocks.len());
    assert_eq!(index.events(), 300_000);

    let trace = &failed[failed.len() / 2];
    let out = same(&["cat", p, "--trace-id", trace]);
    assert!(
        out.lines().count() >= 1 && out.contains(trace.as_str()),
        "{out}"
    );
    let want = Want {
        traces: vec![index::key(
            Set::Trace,
            &tapio::event::TraceId::from_hex(trace).unwrap().0,
        )],
        ..Want::default()
    };
    let read = reader.plan(&want).unwrap().unwrap().len();
    assert!(
        read <= 3,
        "{read} of {} blocks for one trace",
        index.blocks.len()
    );

    // A trace in no block, and every filter of `cat`, alone and together.
    assert_eq!(
        same(&["cat", p, "--trace-id", "0123456789abcdef0123456789abcdef"]),
        ""
    );
    for args in [
        &["--pod", "shop/cart-741ae30d6f-356ed"][..],
        &["--pod", "cart-741ae30d6f-356ed", "--kind", "exec,oom"],
        &["--namespace", "shop", "--kind", "k8s.event"],
        &["--node", "node-2", "--since", "+10m", "--until", "+11m"],
        &["--service", "cart", "--since", "10:20", "--until", "10:21"],
        &[
            "--since",
            "2026-03-14T10:30:00Z",
            "--until",
            "2026-03-14T10:30:30Z",
        ],
        &["--kind", "oom"],
        &["--kind", "retransmit", "--until", "+2m"],
        &["--trace-id", trace, "-o", "json"],
    ] {
        let mut a = vec!["cat", p];
        a.extend_from_slice(args);
        let out = same(&a);
        assert!(!out.is_empty(), "{args:?} printed nothing");
    }
}

#[test]
fn export_and_query_through_the_index_give_the_rows_of_a_whole_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, failed) = long_capture(dir.path());
    let p = path.to_str().unwrap();
    let trace = &failed[failed.len() / 2];
    let tables = "kernel,spans,logs,k8s_events,objects";
    for (i, args) in [
        &["--trace-id", trace.as_str()][..],
        &["--pod", "shop/cart-741ae30d6f-356ed", "--until", "+20m"],
        &["--node", "node-2", "--since", "+10m", "--until", "+11m"],
        &["--kind", "oom,k8s.event"],
    ]
    .into_iter()
    .enumerate()
    {
        let mut rows = Vec::new();
        for how in [&[][..], &["--no-index"]] {
            let out = dir.path().join(format!("out-{i}-{}/", how.len()));
            let mut a = vec![
                "export", p, "--format", "jsonl", "--table", tables, "-q", "-o",
            ];
            a.push(out.to_str().unwrap());
            a.extend_from_slice(args);
            a.extend_from_slice(how);
            run(&a);
            let mut files = Vec::new();
            for t in tables.split(',') {
                files.push(std::fs::read_to_string(out.join(format!("{t}.jsonl"))).unwrap());
            }
            rows.push(files);
        }
        assert_eq!(rows[0], rows[1], "{args:?}");
        let n: usize = rows[0].iter().map(|f| f.lines().count()).sum();
        assert!(n > 0, "{args:?} exported nothing");
    }
    // query too: the same rows either way.
    let sql = "select count(*) as n, min(pod) as pod from kernel";
    let args = [
        "query",
        p,
        sql,
        "--pod",
        "cart-741ae30d6f-356ed",
        "-o",
        "csv",
        "-q",
    ];
    let out = same(&args);
    assert!(out.contains("cart-741ae30d6f-356ed"), "{out}");
}

#[test]
fn correlate_through_the_index_gives_the_verdict_of_a_whole_read() {
    // Fourteen hours: the window a request needs (its baselines and 5 minutes around it, widened
    // by the reach of each finding of the incidents kept) is a small part of it.
    let dir = tempfile::tempdir().unwrap();
    let (path, failed, incident) = capture_of(dir.path(), 6);
    let p = path.to_str().unwrap();
    assert!(failed.len() >= 5, "{} failed traces", failed.len());
    assert_eq!(incident.len(), 3);
    let step = failed.len() / 5;
    // A request that failed in the incident is explained by it, and by nothing else.
    let json = same(&["correlate", p, "--trace-id", &incident[0], "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["root_cause"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["oom_container_limit"], "{json}");
    let mut narrowed = 0;
    for trace in failed.iter().step_by(step.max(1)).take(5).chain(&incident) {
        let json = same(&["correlate", p, "--trace-id", trace, "-o", "json"]);
        assert!(json.contains("incidents"), "{json}");
        same(&["correlate", p, "--trace-id", trace]);
        let opts = tapio::pipeline::Options {
            trace: tapio::event::TraceId::from_hex(trace),
            ..Default::default()
        };
        let (_, read) = tapio::pipeline::narrow::answer(
            std::slice::from_ref(&path),
            &opts,
            &Default::default(),
            &mut |_| {},
            &mut || {},
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
        // Every incident is short: every answer reads a small part of the capture.
        if let Some(read) = read {
            assert!(read.blocks * 3 < read.of_blocks, "{read:?}");
            narrowed += 1;
        }
    }
    assert_eq!(
        narrowed, 8,
        "{narrowed} of 8 answers read through the index"
    );
    same(&[
        "correlate",
        p,
        "--service",
        "shop/cart",
        "--since",
        "2026-03-14T10:20:00Z",
        "--until",
        "2026-03-14T10:30:00Z",
        "-o",
        "json",
    ]);
}

#[test]
fn correlate_answers_from_a_kept_verdict_what_a_whole_read_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (path, failed, incident) = capture_of(dir.path(), 6);
    let p = path.to_str().unwrap();
    let kept = dir.path().join("long.tapio.verdict");
    let (_, said) = run(&["index", p, "--verdict"]);
    assert!(
        said.contains("kept the verdict of") && said.contains("long.tapio.verdict"),
        "{said}"
    );
    let step = (failed.len() / 4).max(1);
    let questions: Vec<Vec<&str>> = failed
        .iter()
        .step_by(step)
        .take(4)
        .chain(&incident)
        .flat_map(|t| {
            [
                vec!["--trace-id", t.as_str(), "-o", "json"],
                vec!["--trace-id", t.as_str(), "--explain"],
            ]
        })
        .chain([
            vec!["--service", "shop/cart", "--since", "+1h", "--until", "+3h"],
            vec!["--pod", "shop/cart-741ae30d6f-356ed", "-o", "json"],
            vec!["--node", "node-2", "--explain"],
            vec!["--trace-id", "0123456789abcdef0123456789abcdef"],
        ])
        .collect();
    let ask = |args: &[&str]| {
        let mut a = vec!["correlate", p];
        a.extend_from_slice(args);
        let out = tapio().args(&a).output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let mut whole = Vec::new();
    for q in &questions {
        let mut a = q.clone();
        a.push("--no-index");
        whole.push(ask(&a));
    }
    for (q, expected) in questions.iter().zip(&whole) {
        assert_eq!(&ask(q), expected, "{q:?}");
    }
    let q = ["--trace-id", incident[0].as_str()];
    let expected = ask(&[q[0], q[1], "--no-index"]);
    assert!(expected.1.contains("OOM"), "{}", expected.1);
    // It is the kept verdict that answers: a word changed in it shows.
    let text = std::fs::read_to_string(&kept).unwrap();
    std::fs::write(&kept, text.replace("OOM", "0OM")).unwrap();
    assert!(ask(&q).1.contains("0OM"), "{}", ask(&q).1);
    // Another set of captures does not use it, nor does a capture that changed.
    let copy = dir.path().join("other.tapio");
    std::fs::copy(&path, &copy).unwrap();
    let (out, _) = run(&["correlate", p, copy.to_str().unwrap(), q[0], q[1]]);
    assert!(!out.contains("0OM") && out.contains("OOM"), "{out}");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let (_, out, _) = ask(&q);
    assert!(!out.contains("0OM") && out.contains("OOM"), "{out}");
    bytes[n - 30] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(ask(&q).1.contains("0OM"));
    // A kept verdict that is not one is said, and the question answered by reading.
    std::fs::write(&kept, b"{\"magic\": 7").unwrap();
    let (code, out, err) = ask(&q);
    assert_eq!((code, out), (expected.0, expected.1));
    assert!(
        err.contains("long.tapio.verdict") && err.contains("not a kept verdict"),
        "{err}"
    );
}

#[test]
fn a_capture_without_an_index_reads_whole_and_tapio_index_gives_it_one() {
    let dir = tempfile::tempdir().unwrap();
    let (path, failed) = long_capture(dir.path());
    let trace = failed[0].as_str();
    let (expected, _) = run(&["cat", path.to_str().unwrap(), "--trace-id", trace]);
    // The capture as a crash leaves it: every block, no index, no trailer.
    let offsets: Vec<u64> = {
        let r = Reader::open(&path, ReadOptions::default()).unwrap();
        let i = r.index().unwrap().unwrap();
        let last = i.blocks.last().unwrap();
        vec![last.offset + last.len]
    };
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.tapio");
    std::fs::write(&cut, &bytes[..offsets[0] as usize + 7]).unwrap();
    let c = cut.to_str().unwrap();
    assert!(Reader::open(&cut, ReadOptions::default())
        .unwrap()
        .index()
        .unwrap()
        .is_none());
    let (out, err) = run(&["cat", c, "--trace-id", trace]);
    assert_eq!(out, expected);
    assert!(err.contains("truncated"), "{err}");

    let (_, said) = run(&["index", c]);
    assert!(
        said.contains("indexed") && said.contains("cut.tapio.tidx"),
        "{said}"
    );
    let r = Reader::open(&cut, ReadOptions::default()).unwrap();
    assert!(r.index().unwrap().is_some_and(|i| i.events() == 300_000));
    assert_eq!(same(&["cat", c, "--trace-id", trace]), expected);
    // The capture grew: the index beside it no longer describes it, and is not used.
    std::fs::write(&cut, &bytes[..offsets[0] as usize + 9]).unwrap();
    assert!(Reader::open(&cut, ReadOptions::default())
        .unwrap()
        .index()
        .unwrap()
        .is_none());
    assert_eq!(run(&["cat", c, "--trace-id", trace]).0, expected);
    // A closed capture has its own.
    let (_, said) = run(&["index", path.to_str().unwrap()]);
    assert!(said.contains("has its own index"), "{said}");
}

#[test]
fn a_damaged_index_is_said_and_the_capture_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (path, failed) = long_capture(dir.path());
    let trace = failed[0].as_str();
    let (expected, _) = run(&["cat", path.to_str().unwrap(), "--trace-id", trace]);
    let (filter, index_at) = {
        let r = Reader::open(&path, ReadOptions::default()).unwrap();
        let i = r.index().unwrap().unwrap();
        assert!(
            i.blocks
                .iter()
                .all(|b| !matches!(b.traces, index::Keys::Bloom { .. })),
            "format 3 keeps its filters out of the index"
        );
        let filter = i
            .blocks
            .iter()
            .find_map(|b| match b.traces {
                index::Keys::Far { at, .. } => Some(at),
                _ => None,
            })
            .expect("blocks of more traces than an exact set holds");
        (filter, r.footer().unwrap().unwrap().0)
    };
    let clean = std::fs::read(&path).unwrap();
    // A bit flipped in the index, then in its first trace filter (every block's is read for a
    // trace): each is said, with the file, and the answer is the whole read's.
    for (at, what) in [
        (index_at + 40, "index (payload checksum mismatch)"),
        (filter + 3, "index (filter checksum mismatch at byte offset"),
    ] {
        let mut bytes = clean.clone();
        bytes[at as usize] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let said = |err: &str| {
            err.contains("long.tapio") && err.contains(what) && err.contains("reading every block")
        };
        let (out, err) = run(&["cat", path.to_str().unwrap(), "--trace-id", trace]);
        assert_eq!(out, expected);
        assert!(said(&err), "{err}");
        // The commands that read through the pipeline say it too, and answer from a whole read.
        let p = path.to_str().unwrap();
        let (_, err) = run(&["correlate", p, "--trace-id", trace]);
        assert!(said(&err), "correlate: {err}");
        let out = dir.path().join("spans.jsonl");
        let o = out.to_str().unwrap();
        let (_, err) = run(&[
            "export",
            p,
            "--trace-id",
            trace,
            "--table",
            "spans",
            "-o",
            o,
        ]);
        assert!(said(&err), "export: {err}");
        assert!(std::fs::read_to_string(&out).unwrap().contains(trace));
    }
}
