//! The replay pipeline stage by stage, on the generator's kernel-heavy mix with its incident, in
//! events per second on one core: decode (read, decompress, decode blocks), merge (three nodes'
//! block streams into one by time), attribute (the events that say which process and pod is
//! which: exec, exit, task, Kubernetes objects), detect (every event through the detectors,
//! attribution included), link (closing the findings, linking them and writing the verdict).
//! The slowest stage bounds `tapio replay`; `scripts/bench-replay.sh` prints these figures with
//! the end-to-end rate.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tapio::capture::{
    Blocks, Error, Header, Merge, ReadOptions, Reader, Warning, WriteOptions, Writer,
};
use tapio::detect::{Config as DetectConfig, Detector};
use tapio::event::{Event, Kind};
use tapio::pipeline::Core;
use tapio::source::generate::{generate, Config};

const EVENTS: u64 = 1_000_000;

fn events() -> Vec<Event> {
    let mut v = Vec::with_capacity(EVENTS as usize);
    let cfg = Config {
        events: EVENTS,
        incident: true,
        ..Config::default()
    };
    generate(&cfg, |mut e| {
        e.seq = v.len() as u64;
        v.push(e);
        Ok::<_, ()>(())
    })
    .expect("generate");
    v
}

fn decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.tapio");
    let mut w =
        Writer::create(&path, &Header::new("bench"), WriteOptions::default()).expect("create");
    for mut e in events() {
        w.append(&mut e).expect("append");
    }
    w.finish().expect("finish");
    let mut g = c.benchmark_group("decode");
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

/// Blocks already decoded, as a merge input.
struct Decoded {
    blocks: VecDeque<Vec<Event>>,
    path: PathBuf,
}

impl Blocks for Decoded {
    fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
        match self.blocks.pop_front() {
            Some(mut b) => {
                std::mem::swap(out, &mut b);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn take_warnings(&mut self) -> Vec<Warning> {
        Vec::new()
    }
}

fn merge(c: &mut Criterion) {
    // Each node's events, in blocks of 30,000 (about a block of the file).
    let mut per_node: std::collections::BTreeMap<String, Vec<Event>> = Default::default();
    for e in events() {
        per_node.entry(e.node.to_string()).or_default().push(e);
    }
    let inputs: Vec<Vec<Vec<Event>>> = per_node
        .into_values()
        .map(|v| v.chunks(30_000).map(<[Event]>::to_vec).collect())
        .collect();
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("three_nodes", |b| {
        b.iter_batched(
            || {
                inputs
                    .iter()
                    .map(|blocks| Decoded {
                        blocks: blocks.clone().into(),
                        path: PathBuf::from("node"),
                    })
                    .collect::<Vec<_>>()
            },
            |inputs| {
                // As replay merges: runs of events into batches of at least 4,096.
                let mut m = Merge::new(inputs);
                let mut n = 0u64;
                let mut batch = Vec::new();
                while m.next_batch(&mut batch, 4096, usize::MAX).expect("merge") {
                    n += batch.len() as u64;
                    std::hint::black_box(&batch);
                    batch.clear();
                }
                assert_eq!(n, EVENTS);
                n
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn attribute(c: &mut Criterion) {
    let evs: Vec<Event> = events()
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind(),
                Kind::Exec | Kind::Exit | Kind::Task | Kind::K8sObject
            )
        })
        .collect();
    let mut g = c.benchmark_group("attribute");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.sample_size(10);
    g.bench_function("exec_exit_task_objects", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectConfig::default());
            for e in &evs {
                d.observe(e);
            }
            d
        })
    });
    g.finish();
}

fn detect(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectConfig::default());
            for e in &evs {
                d.observe(e);
            }
            d
        })
    });
    g.finish();
}

fn link(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| {
        b.iter_batched(
            || {
                let mut core = Core::new(DetectConfig::default());
                core.feed(&evs, &mut |_| {});
                core
            },
            |core| {
                let f = core.finish(&[], &mut |_| {});
                assert!(!f.verdict.incidents.is_empty());
                f
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decode, merge, attribute, detect, link);
criterion_main!(benches);
