//! The pipeline: captures → order/merge → attribute and detect → link → verdict.
//!
//! Threads joined by bounded crossbeam channels. Per capture, one thread reads checked blocks and
//! `threads` workers decompress and decode them; the merge stage puts each capture's blocks back
//! in order and merges the captures by time into batches; one thread attributes and detects (it
//! is sequential on purpose: bursts and state changes depend on order, and the output must be
//! byte-identical whatever the thread count or batch size); linking and the verdict run last. A
//! full channel is backpressure: the reader waits, nothing is dropped.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::analysis::{self as report, Incident, Verdict};
use crate::capture::{corrupt_block, Decoder, Error, RawBlock, ReadOptions, Reader, Warning};
use crate::detect::{self, Blind, Detected, Detector};
use crate::event::{Event, Ts};
use crate::link::{self, Group};

/// How the pipeline runs. None of this changes its output.
#[derive(Clone, Debug)]
pub struct Options {
    /// Decoding threads per capture.
    pub threads: usize,
    /// Events per batch handed to the detect stage.
    pub batch: usize,
    pub read: ReadOptions,
    pub detect: detect::Config,
    /// Replay at this many times the recorded pace (1: as it happened); `None`: as fast as it goes.
    /// Pacing changes when incidents appear, never what they say.
    pub speed: Option<f64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: 2,
            batch: 4096,
            read: ReadOptions::default(),
            detect: detect::Config::default(),
            speed: None,
        }
    }
}

/// What a run produced.
pub struct Outcome {
    pub verdict: Verdict,
    pub detected: Detected,
    pub events: u64,
    pub warnings: Vec<(PathBuf, Warning)>,
}

enum Item {
    Block(u64, RawBlock),
    Failed(Error),
    End(u64, Vec<Warning>),
}

enum Decoded {
    Block(u64, Result<Vec<Event>, (RawBlock, String)>),
    Failed(Error),
    End(u64, Vec<Warning>),
}

/// Event time an incident must have been quiet before it is closed: the longest rule window and
/// a burst window, so that nothing still to come can link to it.
const QUIET_NS: u64 = (1800 + 60) * Ts::NANOS_PER_SEC;
/// With `--speed`, the longest wait between two events; longer idle stretches are shortened.
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// How often (in event time) the detect stage looks for incidents to close.
const CHECK_NS: u64 = 60 * Ts::NANOS_PER_SEC;

/// Runs the whole pipeline over captures (several are merged by time: several nodes).
/// `on_close` sees each incident as soon as it closes (quiet long enough that nothing to come can
/// change it), before the run ends; the outcome has every incident, numbered.
pub fn run(
    paths: &[PathBuf],
    opts: &Options,
    on_close: &(dyn Fn(&Incident) + Sync),
) -> Result<Outcome, Error> {
    let readers = paths
        .iter()
        .map(|p| Reader::open(p, opts.read.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    thread::scope(|scope| {
        let inputs: Vec<Input> = readers
            .into_iter()
            .map(|r| Input::spawn(scope, r, opts.threads.max(1)))
            .collect();
        let (batch_tx, batch_rx) = bounded::<Vec<Event>>(4);
        let cfg = opts.detect.clone();
        let detect = scope.spawn(move || detect_stage(batch_rx, cfg, on_close));
        let merged = merge_stage(inputs, opts, batch_tx);
        let (mut detector, closed, events) = detect
            .join()
            .map_err(|_| internal("the detect stage panicked"))?;
        let warnings = merged?;
        // A capture cut short (or with a skipped corrupt block) may miss what came last or inside.
        for (path, w) in &warnings {
            let last = detector.last_ts;
            let (from, what) = match w {
                Warning::Truncated { .. } => (last, "ends torn"),
                Warning::SkippedCorrupt { .. } => (Ts(0), "has a corrupt block that was skipped"),
            };
            detector.blind.push(Blind {
                from,
                to: last,
                what: format!("{} {what}", path.display()),
            });
        }
        let detected = detector.finish();
        let groups = link::link(detected.view());
        let mut all = closed;
        all.extend(report::incidents(detected.view(), &groups));
        Ok(Outcome {
            verdict: report::verdict(all),
            detected,
            events,
            warnings,
        })
    })
}

/// The same pipeline over events already in memory (live sources, tests).
pub fn run_events(
    batches: impl IntoIterator<Item = Vec<Event>>,
    cfg: detect::Config,
) -> (Verdict, Detected) {
    let mut d = Detector::new(cfg);
    for batch in batches {
        batch.iter().for_each(|e| d.observe(e));
    }
    let detected = d.finish();
    let groups = link::link(detected.view());
    (report::build(detected.view(), &groups), detected)
}

/// Attributes and detects, and closes incidents as the stream goes on (checked every minute of
/// event time, so where the checks fall does not depend on batches or threads).
fn detect_stage(
    rx: Receiver<Vec<Event>>,
    cfg: detect::Config,
    on_close: &(dyn Fn(&Incident) + Sync),
) -> (Detector, Vec<Incident>, u64) {
    let mut d = Detector::new(cfg);
    let mut closed = Vec::new();
    let mut next_check: Option<Ts> = None;
    let mut n = 0u64;
    for batch in rx {
        n += batch.len() as u64;
        for e in &batch {
            match next_check {
                None => next_check = Some(Ts((e.ts.0 / CHECK_NS + 1) * CHECK_NS)),
                Some(t) if e.ts >= t => {
                    close_quiet(&mut d, t, &mut closed, on_close);
                    next_check = Some(Ts((e.ts.0 / CHECK_NS + 1) * CHECK_NS));
                }
                Some(_) => {}
            }
            d.observe(e);
        }
    }
    (d, closed, n)
}

/// Closes the incidents whose findings are all settled and older than the quiet period.
fn close_quiet(
    d: &mut Detector,
    now: Ts,
    closed: &mut Vec<Incident>,
    on_close: &(dyn Fn(&Incident) + Sync),
) {
    let horizon = Ts(now.0.saturating_sub(QUIET_NS));
    let view = d.view();
    if !view.findings.iter().any(|f| f.end < horizon) {
        return;
    }
    let open = d.open_findings();
    let groups: Vec<Group> = link::link(view)
        .into_iter()
        .filter(|g| {
            g.members
                .iter()
                .all(|&i| !open.contains(&i) && view.findings[i].end < horizon)
        })
        .collect();
    if groups.is_empty() {
        return;
    }
    let done: HashSet<usize> = groups
        .iter()
        .flat_map(|g| g.members.iter().copied())
        .collect();
    let mut incidents = report::incidents(view, &groups);
    incidents.sort_by(|a, b| (a.start, &a.root_cause.entity).cmp(&(b.start, &b.root_cause.entity)));
    for inc in incidents {
        on_close(&inc);
        closed.push(inc);
    }
    d.forget(&done);
}

fn internal(what: &str) -> Error {
    Error::Io {
        path: PathBuf::from("pipeline"),
        error: std::io::Error::other(what.to_string()),
    }
}

/// One capture's decoded blocks, in order.
struct Input {
    path: PathBuf,
    rx: Receiver<Decoded>,
    pending: BTreeMap<u64, Result<Vec<Event>, (RawBlock, String)>>,
    next: u64,
    end_at: Option<u64>,
    queue: VecDeque<Event>,
    skip_corrupt: bool,
}

impl Input {
    fn spawn<'s>(scope: &'s thread::Scope<'s, '_>, mut reader: Reader, threads: usize) -> Input {
        let path = reader.path().to_path_buf();
        let skip_corrupt = reader.options().skip_corrupt;
        let (raw_tx, raw_rx) = bounded::<Item>(threads * 2);
        let (dec_tx, dec_rx) = bounded::<Decoded>(threads * 2);
        scope.spawn(move || read_stage(&mut reader, raw_tx));
        for _ in 0..threads {
            let (rx, tx) = (raw_rx.clone(), dec_tx.clone());
            scope.spawn(move || decode_stage(rx, tx));
        }
        Input {
            path,
            rx: dec_rx,
            pending: BTreeMap::new(),
            next: 0,
            end_at: None,
            queue: VecDeque::new(),
            skip_corrupt,
        }
    }

    /// Fills the queue with the next block in order; `Ok(false)` at the end.
    fn fill(&mut self, warnings: &mut Vec<(PathBuf, Warning)>) -> Result<bool, Error> {
        loop {
            if !self.queue.is_empty() {
                return Ok(true);
            }
            if let Some(block) = self.pending.remove(&self.next) {
                self.next += 1;
                match block {
                    Ok(events) => self.queue.extend(events),
                    Err((raw, what)) => {
                        let w = corrupt_block(&self.path, &raw, what, self.skip_corrupt)?;
                        warnings.push((self.path.clone(), w));
                    }
                }
                continue;
            }
            // Workers may deliver the end before the last blocks: it counts once they are in.
            if self.end_at == Some(self.next) {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(Decoded::Block(i, b)) => {
                    self.pending.insert(i, b);
                }
                Ok(Decoded::Failed(e)) => return Err(e),
                Ok(Decoded::End(i, w)) => {
                    warnings.extend(w.into_iter().map(|w| (self.path.clone(), w)));
                    self.end_at = Some(i);
                }
                Err(_) => return Err(internal("a decode stage stopped")),
            }
        }
    }
}

fn read_stage(reader: &mut Reader, tx: Sender<Item>) {
    let mut i = 0;
    loop {
        let item = match reader.next_raw() {
            Ok(Some(b)) => Item::Block(i, b),
            Ok(None) => Item::End(i, reader.take_warnings()),
            Err(e) => Item::Failed(e),
        };
        i += 1;
        let last = !matches!(item, Item::Block(..));
        if tx.send(item).is_err() || last {
            return;
        }
    }
}

fn decode_stage(rx: Receiver<Item>, tx: Sender<Decoded>) {
    let Ok(mut decoder) = Decoder::new() else {
        let _ = tx.send(Decoded::Failed(internal("cannot start a zstd decoder")));
        return;
    };
    for item in rx {
        let out = match item {
            Item::Block(i, raw) => {
                let mut events = Vec::new();
                match decoder.decode(&raw, &mut events) {
                    Ok(()) => Decoded::Block(i, Ok(events)),
                    Err(what) => Decoded::Block(i, Err((raw, what))),
                }
            }
            Item::Failed(e) => Decoded::Failed(e),
            Item::End(i, w) => Decoded::End(i, w),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}

/// Merges the inputs by time (ties: earlier input first) into batches for the detect stage.
fn merge_stage(
    mut inputs: Vec<Input>,
    opts: &Options,
    tx: Sender<Vec<Event>>,
) -> Result<Vec<(PathBuf, Warning)>, Error> {
    let mut warnings = Vec::new();
    let mut live: Vec<bool> = vec![true; inputs.len()];
    let mut batch = Vec::with_capacity(opts.batch);
    let mut pace: Option<(Ts, std::time::Instant)> = None;
    loop {
        let mut best: Option<(Ts, usize)> = None;
        for (i, input) in inputs.iter_mut().enumerate() {
            if live[i] && !input.fill(&mut warnings)? {
                live[i] = false;
            }
            if let Some(e) = input.queue.front() {
                if best.is_none_or(|(t, _)| e.ts < t) {
                    best = Some((e.ts, i));
                }
            }
        }
        let Some((ts, i)) = best else { break };
        if let Some(speed) = opts.speed.filter(|s| *s > 0.0) {
            // Hand the batch over before waiting, so what happened so far is seen on time.
            let (first, wall) = pace.get_or_insert((ts, std::time::Instant::now()));
            let due =
                std::time::Duration::from_secs_f64(ts.saturating_sub(*first) as f64 / 1e9 / speed);
            if let Some(mut wait) = due.checked_sub(wall.elapsed()).filter(|w| !w.is_zero()) {
                if !batch.is_empty() && tx.send(std::mem::take(&mut batch)).is_err() {
                    return Err(internal("the detect stage stopped"));
                }
                // Long idle stretches (a snapshot taken days before the incident) are cut short.
                if wait > MAX_IDLE {
                    let skipped = (wait - MAX_IDLE).as_secs_f64() * speed * 1e9;
                    *first = Ts(first.0.saturating_add(skipped as u64));
                    wait = MAX_IDLE;
                }
                thread::sleep(wait);
            }
        }
        if let Some(e) = inputs[i].queue.pop_front() {
            batch.push(e);
        }
        if batch.len() >= opts.batch.max(1) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(opts.batch));
            if tx.send(full).is_err() {
                return Err(internal("the detect stage stopped"));
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(warnings)
}

/// The paths of a fixture directory's captures, or the path itself.
pub fn captures_in(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "tapio"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
