//! Capture throughput: encoding (append + block compression) and decoding (read + decompress +
//! decode) of the generator's kernel-heavy mix, in events per second on one core.
//!
//! `scripts/bench.sh` runs this and prints the figures with bytes per event.

use std::io::sink;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tapio::capture::{Header, ReadOptions, Reader, WriteOptions, Writer};
use tapio::event::{Body, Event};
use tapio::source::generate::{generate, Config};

const EVENTS: u64 = 1_000_000;

fn events() -> Vec<Event> {
    let mut v = Vec::with_capacity(EVENTS as usize);
    let cfg = Config {
        events: EVENTS,
        incident: true,
        ..Config::default()
    };
    generate(&cfg, |e| {
        v.push(e);
        Ok::<_, ()>(())
    })
    .expect("generate");
    v
}

fn encode(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("capture_encode");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| {
        b.iter_batched(
            || evs.clone(),
            |mut evs| {
                let mut w = Writer::new(
                    sink(),
                    Path::new("sink"),
                    &Header::new("bench"),
                    WriteOptions::default(),
                )
                .expect("writer");
                for e in &mut evs {
                    w.append(e).expect("append");
                }
                w.finish().expect("finish")
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Writes `events` to a new capture at `path`: its size in bytes, and how many events it holds.
fn written(path: &Path, events: impl Iterator<Item = Event>) -> (u64, u64) {
    let mut w =
        Writer::create(path, &Header::new("bench"), WriteOptions::default()).expect("create");
    let mut n = 0u64;
    for mut e in events {
        w.append(&mut e).expect("append");
        n += 1;
    }
    w.finish().expect("finish");
    (std::fs::metadata(path).expect("size").len(), n)
}

fn decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.tapio");
    let evs = events();
    let (size, _) = written(&path, evs.iter().cloned());
    eprintln!(
        "bytes/event: {:.2} ({size} bytes, {EVENTS} events)",
        size as f64 / EVENTS as f64
    );
    // The mix's parts, each written alone with the same options: the kernel's records (the
    // budget is for these), and spans, whose random trace and span ids no compressor shortens.
    let kernel = |e: &Event| matches!(e.body, Body::Kernel(_));
    let parts = [
        ("kernel events", kernel as fn(&Event) -> bool),
        ("spans", |e| matches!(e.body, Body::Span(_))),
    ];
    for (part, wanted) in parts {
        let part_path = dir.path().join("part.tapio");
        let (size, n) = written(&part_path, evs.iter().filter(|e| wanted(e)).cloned());
        eprintln!(
            "bytes/event of {part} alone: {:.2} ({size} bytes, {n} events)",
            size as f64 / n.max(1) as f64
        );
    }
    drop(evs);

    let mut g = c.benchmark_group("capture_decode");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| {
        b.iter(|| {
            let mut r = Reader::open(&path, ReadOptions::default()).expect("open");
            let mut buf = Vec::with_capacity(70_000);
            let mut n = 0usize;
            while r.next_block(&mut buf).expect("block") {
                n += buf.len();
                buf.clear();
            }
            assert_eq!(n as u64, EVENTS);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
