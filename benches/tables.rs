//! The tables' throughput, a stage a group (as `scripts/bench-tables.sh` measures end to end):
//! rows made from the generator's kernel-heavy mix (attribution and cells), and rows written as
//! Parquet (zstd), in events per second on one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapio::event::Event;
use tapio::source::generate::{generate, Config};
use tapio::table::write::{Format, Sink};
use tapio::table::{Labels, Table, Tabulator};

const EVENTS: u64 = 500_000;
const BATCH: usize = 32_768;

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

fn frames(evs: &[Event]) -> Vec<(Table, polars::prelude::DataFrame)> {
    // As export makes them for Parquet: labels as dictionaries.
    let mut tab = Tabulator::with_labels(Table::EVENTS, BATCH, Labels::Dictionary);
    let mut out = Vec::new();
    for e in evs {
        if let Some(t) = tab.add(e, true).expect("add") {
            out.push((t, tab.take(t).expect("take")));
        }
    }
    for &t in Table::EVENTS {
        out.push((t, tab.take(t).expect("take")));
    }
    out
}

fn rows(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("tables_rows");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| b.iter(|| frames(&evs)));
    g.finish();
}

fn parquet(c: &mut Criterion) {
    let evs = events();
    let made = frames(&evs);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("tables_parquet");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("kernel_heavy_mix", |b| {
        b.iter(|| {
            let mut sinks: Vec<(Table, Sink)> = Table::EVENTS
                .iter()
                .map(|&t| {
                    let p = dir.path().join(format!("{t}.parquet"));
                    (
                        t,
                        Sink::create(&p, Format::Parquet, &t.schema_with(Labels::Dictionary))
                            .expect("sink"),
                    )
                })
                .collect();
            for (t, df) in &made {
                let mut df = df.clone();
                let sink = &mut sinks.iter_mut().find(|(x, _)| x == t).expect("sink").1;
                sink.write(&mut df).expect("write");
            }
            for (_, s) in sinks {
                s.finish().expect("finish");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, rows, parquet);
criterion_main!(benches);
