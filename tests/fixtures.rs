//! Frozen captures: files written by earlier versions that every later version must still read,
//! event for event. `fixtures/captures/README.md` says how each was made.

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use tapio::capture::{Header, ReadOptions, Reader, WriteOptions, Writer};
use tapio::event::{
    Body, Event, Kernel, Kind, Log, LogOrigin, Meta, Severity, SignalSent, Source, TcpMeaning,
    TcpState, TcpStateChange, TimeRange, Ts,
};
use tapio::source::generate::{generate, Config};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/captures")
        .join(name)
}

/// The events of `v1-oom-demo.tapio`: the generator's cluster with its OOM incident, plus one
/// event of every kind the generator does not make.
fn demo_events() -> Vec<Event> {
    let mut events = Vec::new();
    let cfg = Config {
        events: 6000,
        seed: 7,
        incident: true,
        ..Config::default()
    };
    generate(&cfg, |e| {
        events.push(e);
        Ok::<_, ()>(())
    })
    .unwrap();
    let at = |ms: u64| Ts(cfg.start.0 + ms * 1_000_000);
    let extra: Vec<(Ts, Source, Body)> = vec![
        (
            at(100),
            Source::Tapio,
            Meta::Annotation {
                text: "frozen fixture v1: every event kind".into(),
            }
            .into(),
        ),
        (
            at(120),
            Source::Ebpf,
            Kernel::Signal(SignalSent {
                sender_pid: 812,
                sender_comm: "containerd-shim".into(),
                target_pid: 1400,
                target_comm: "checkout".into(),
                signal: 15,
            })
            .into(),
        ),
        (
            at(130),
            Source::Ebpf,
            Kernel::TcpState(TcpStateChange {
                pid: 0,
                saddr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                sport: 51000,
                daddr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                dport: 9,
                old: TcpState::SynSent,
                new: TcpState::Close,
                meaning: TcpMeaning::Refused,
            })
            .into(),
        ),
        (
            at(140),
            Source::Kmsg,
            Log {
                severity: Severity::Warning,
                ident: "kernel".into(),
                ..Log::new(LogOrigin::Kmsg, "eth0: link becomes ready")
            }
            .into(),
        ),
        (
            at(150),
            Source::Tapio,
            Meta::Drop {
                source: Source::Ebpf,
                count: 1234,
                range: TimeRange {
                    from: at(145),
                    to: at(150),
                },
                reason: "ring buffer full".into(),
            }
            .into(),
        ),
        (
            at(160),
            Source::Tapio,
            Meta::Gap {
                source: Source::Kube,
                range: TimeRange {
                    from: at(155),
                    to: at(160),
                },
                reason: "watch of pods lost: connection reset".into(),
            }
            .into(),
        ),
    ];
    for (ts, source, body) in extra {
        events.push(Event::new(ts, "node-2", source, body));
    }
    events.sort_by_key(|e| e.ts);
    events
}

/// Writes the frozen fixture of this format version (`v<N>-oom-demo.tapio`). Run once per format
/// version, never to "fix" a failing test:
/// `cargo test --test integration -- --ignored fixtures::write_frozen_fixture`, with
/// `SOURCE_DATE_EPOCH=1773482400`. Its events go to `v<N>-oom-demo.events.jsonl.gz`.
#[test]
#[ignore = "writes a frozen fixture: once per format version"]
fn write_frozen_fixture() {
    let mut header = Header::new("node-2");
    header.kernel_release = "6.1.0-28-amd64".into();
    header.boot_time = Ts::parse_rfc3339("2026-03-14T08:12:03.5Z");
    header.created = Ts::parse_rfc3339("2026-03-14T10:00:00Z").unwrap();
    header.sources = vec!["generate".into(), "ebpf".into(), "kube".into()];
    header.options.insert("seed".into(), "7".into());
    let opts = WriteOptions {
        block_bytes: 64 << 10,
        ..WriteOptions::default()
    };
    let name = format!("v{}-oom-demo.tapio", tapio::capture::FORMAT_VERSION);
    let mut w = Writer::create(&fixture(&name), &header, opts).unwrap();
    let mut lines = String::new();
    for mut e in demo_events() {
        w.append(&mut e).unwrap();
        lines.push_str(&serde_json::to_string(&e).unwrap());
        lines.push('\n');
    }
    w.finish().unwrap();
    let events = format!(
        "v{}-oom-demo.events.jsonl.gz",
        tapio::capture::FORMAT_VERSION
    );
    let file = std::fs::File::create(fixture(&events)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    std::io::Write::write_all(&mut gz, lines.as_bytes()).unwrap();
    gz.finish().unwrap();
}

/// Format 2: its events, and a block index that finds them.
#[test]
fn the_frozen_v2_capture_still_reads_event_for_event_and_through_its_index() {
    let index = reads_through_its_index(2);
    assert!(index
        .blocks
        .iter()
        .all(|b| !matches!(b.traces, tapio::capture::index::Keys::Far { .. })));
}

/// Format 3: the same, with the index's Bloom filters kept out of it, read as a question needs.
#[test]
fn the_frozen_v3_capture_still_reads_event_for_event_and_through_its_index() {
    let index = reads_through_its_index(3);
    assert!(index
        .blocks
        .iter()
        .any(|b| matches!(b.traces, tapio::capture::index::Keys::Far { .. })));
}

/// Reads `v<version>-oom-demo.tapio` whole and through its index, and returns the index.
fn reads_through_its_index(version: u16) -> tapio::capture::index::Index {
    let path = fixture(&format!("v{version}-oom-demo.tapio"));
    let mut r = Reader::open(&path, ReadOptions::default()).unwrap();
    let got = r.read_all().unwrap();
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert_eq!(r.header().unwrap().format_version, version);
    let expected = expected_events(&format!("v{version}-oom-demo.events.jsonl.gz"));
    assert_eq!(got, expected);

    let index = r.index().unwrap().expect("its index").clone();
    assert_eq!(index.events(), got.len() as u64);
    assert_eq!(index.first_ts(), Some(got[0].ts));
    // Every event's trace, node and time are found through the index, in the blocks it names.
    let mut filter = tapio::filter::Filter {
        pod: Some("shop/cart-cd7a2917db-62735".into()),
        ..Default::default()
    };
    got.iter().for_each(|e| filter.learn_pod(e));
    let want = filter.want(None, None);
    let mut through = Reader::open(&path, ReadOptions::default()).unwrap();
    through.select(r.plan(&want).unwrap().unwrap());
    let some = through.read_all().unwrap();
    let kept = |v: &[Event]| -> Vec<Event> {
        v.iter()
            .filter(|e| filter.matches(e, None, None))
            .cloned()
            .collect()
    };
    assert!(!kept(&got).is_empty());
    assert_eq!(kept(&some), kept(&got));
    // One trace lives in one block or two of the capture's.
    let trace = got
        .iter()
        .rev()
        .find_map(|e| match &e.body {
            Body::Span(s) => Some(s.trace_id),
            _ => None,
        })
        .unwrap();
    let want = tapio::filter::Filter {
        trace_id: Some(trace),
        ..Default::default()
    }
    .want(None, None);
    let blocks = r.plan(&want).unwrap().unwrap();
    assert!(
        blocks.len() <= index.blocks.len().div_ceil(3),
        "{} of {}",
        blocks.len(),
        index.blocks.len()
    );
    index
}

#[test]
fn the_frozen_v1_capture_still_reads_event_for_event() {
    let mut r = Reader::open(&fixture("v1-oom-demo.tapio"), ReadOptions::default()).unwrap();
    let got = r.read_all().unwrap();
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    let header = r.header().unwrap();
    assert_eq!((header.format_version, header.node.as_str()), (1, "node-2"));
    assert_eq!(r.trailer().unwrap().stats.events, got.len() as u64);

    let expected = expected_events("v1-oom-demo.events.jsonl.gz");
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "event {}", e.seq);
    }
}

/// A real recording by `tapio record` on a Linux 6.18 machine (see fixtures/captures/README.md).
#[test]
fn the_frozen_v1_recording_still_reads_event_for_event() {
    let mut r = Reader::open(&fixture("v1-record.tapio"), ReadOptions::default()).unwrap();
    let got = r.read_all().unwrap();
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    let header = r.header().unwrap();
    assert_eq!((header.format_version, header.node.as_str()), (1, "node-7"));
    assert_eq!(header.sources, ["ebpf"]);
    assert_eq!(r.trailer().unwrap().stats.events, got.len() as u64);
    let expected = expected_events("v1-record.events.jsonl.gz");
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "event {}", e.seq);
    }
    let oom = got
        .iter()
        .find_map(|e| match &e.body {
            Body::Kernel(Kernel::OomKill(o)) => Some(o),
            _ => None,
        })
        .expect("the recording's OOM kill");
    assert_eq!(oom.victim_comm.as_str(), "python3");
    assert_eq!(oom.memcg_limit_kib, Some(32 << 10));
    assert!(oom
        .task_memcg
        .ends_with("3f1d9c8e2b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e"));
}

fn expected_events(name: &str) -> Vec<Event> {
    let mut text = String::new();
    let gz = std::fs::File::open(fixture(name)).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Between them, the frozen captures hold every kind of event, so that every kind's encoding is
/// pinned by a file an earlier version wrote.
#[test]
fn the_frozen_captures_hold_every_kind() {
    let mut kinds = std::collections::BTreeSet::new();
    for name in [
        "v1-oom-demo.tapio",
        "v1-record.tapio",
        "v1-throttle.tapio",
        "v2-oom-demo.tapio",
    ] {
        let mut r = Reader::open(&fixture(name), ReadOptions::default()).unwrap();
        kinds.extend(r.read_all().unwrap().iter().map(Event::kind));
    }
    for &kind in Kind::ALL {
        assert!(
            kinds.contains(&kind),
            "no frozen capture has a {kind} event"
        );
    }
}

/// Writes the JSON lines of `v1-record.tapio` once, when the recording is frozen.
#[test]
#[ignore = "writes a frozen fixture: once per format version"]
fn write_frozen_recording_events() {
    let mut r = Reader::open(&fixture("v1-record.tapio"), ReadOptions::default()).unwrap();
    let mut lines = String::new();
    for e in r.read_all().unwrap() {
        lines.push_str(&serde_json::to_string(&e).unwrap());
        lines.push('\n');
    }
    let file = std::fs::File::create(fixture("v1-record.events.jsonl.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    std::io::Write::write_all(&mut gz, lines.as_bytes()).unwrap();
    gz.finish().unwrap();
}
