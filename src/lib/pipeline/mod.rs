//! The pipeline: captures → order/merge → attribute and detect → link → verdict.
//!
//! Every way in feeds one [`Core`]: replay (this module's [`run`]), a capture being written
//! ([`follow`]), the recorder's live path (`crate::record`), tests ([`run_events`]). Reading a
//! capture is threads joined by bounded crossbeam channels: per capture, one thread reads checked
//! blocks and `threads` workers decompress and decode them; [`capture::Merge`] puts them back in
//! order and merges the captures by time into batches; one thread runs the core (sequential on
//! purpose: bursts and state changes depend on order, and the output must be byte-identical
//! whatever the thread count or batch size). A full channel is backpressure: the reader waits,
//! nothing is dropped.

mod core;
mod input;
pub mod kept;
pub mod live;
pub mod narrow;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

pub use self::core::{Core, Finished, Sink, QUIET_NS};
use self::input::{Input, Spares};
pub use self::live::{Change, State};
use crate::analysis::Verdict;
use crate::capture::{self, Blocks, Error, ReadOptions, Warning};
use crate::detect::{self, Detected};
use crate::event::{Event, Span, TraceId, Ts};

/// How the pipeline runs. Only `live` changes what is handed out (incidents also as they open and
/// change); none of it changes the verdict.
#[derive(Clone, Debug)]
pub struct Options {
    /// Decoding threads per capture.
    pub threads: usize,
    /// Events per batch handed to the core: exactly that many with `live` (incidents open and
    /// change between batches), at least that many otherwise (whole blocks where they go first).
    pub batch: usize,
    pub read: ReadOptions,
    pub detect: detect::Config,
    /// Replay at this many times the recorded pace (1: as it happened); `None`: as fast as it goes.
    /// Pacing changes when incidents appear, never what they say.
    pub speed: Option<f64>,
    /// Hand out incidents as they open and change, not only as they close.
    pub live: bool,
    /// Keep the spans of this trace (`correlate --trace-id`).
    pub trace: Option<TraceId>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: decoders(),
            batch: 4096,
            read: ReadOptions::default(),
            detect: detect::Config::default(),
            speed: None,
            live: false,
            trace: None,
        }
    }
}

/// Decoding threads per capture by default: one fewer than the cores (the core's thread and the
/// merge's take one between them), at least one, at most four. On two cores one decoder keeps
/// pace with the core, and a second only adds memory (measured: the same rate, twice the RSS).
pub fn decoders() -> usize {
    thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_sub(1)
        .clamp(1, 4)
}

impl Options {
    fn core(&self) -> Core {
        let core = Core::new(self.detect.clone()).collect_trace(self.trace);
        if self.live {
            core.live()
        } else {
            core
        }
    }
}

/// What a run produced.
pub struct Outcome {
    pub verdict: Verdict,
    pub detected: Detected,
    pub events: u64,
    pub warnings: Vec<(PathBuf, Warning)>,
    /// Damaged indexes met (their captures were read whole), by capture.
    pub notes: capture::index::Notes,
    /// The spans of [`Options::trace`].
    pub trace_spans: Vec<Span>,
}

impl Outcome {
    fn new(f: Finished, warnings: Vec<(PathBuf, Warning)>) -> Outcome {
        Outcome {
            verdict: f.verdict,
            detected: f.detected,
            events: f.events,
            warnings,
            notes: Vec::new(),
            trace_spans: f.trace_spans,
        }
    }
}

/// With `--speed`, the longest wait between two events; longer idle stretches are shortened.
const MAX_IDLE: Duration = Duration::from_secs(2);

/// Runs the whole pipeline over captures (several are merged by time: several nodes, or the
/// rotated files of one recorder). `sink` sees each incident as soon as it closes (quiet long
/// enough that nothing to come can change it) — and, with [`Options::live`], as it opens and
/// changes — before the run ends; the outcome has every incident, numbered.
pub fn run(paths: &[PathBuf], opts: &Options, sink: &mut Sink<'_>) -> Result<Outcome, Error> {
    run_tapped(paths, opts, Some(sink), &mut |_| ControlFlow::Continue(()))
}

/// Sees every batch of the merged events on its way to the core, in order: `tapio export` and
/// `tapio stats` make their rows of it. `Break` stops the run (the tap keeps its own error).
pub type Tap<'a> = dyn FnMut(&[Event]) -> ControlFlow<()> + Send + 'a;

/// [`run`], with every batch shown to `tap` first, on the core's thread (while the next batch is
/// read and merged). Without a `sink` the core is not fed: the outcome's verdict is empty, and
/// only the tap sees the events.
pub fn run_tapped(
    paths: &[PathBuf],
    opts: &Options,
    sink: Option<&mut Sink<'_>>,
    tap: &mut Tap<'_>,
) -> Result<Outcome, Error> {
    let readers = paths
        .iter()
        .map(|p| capture::Reader::open(p, opts.read.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    run_readers(readers, opts, sink, tap)
}

/// [`run_tapped`] over captures already open (and narrowed to the blocks wanted by their
/// indexes, as `cat`, `export` and `correlate --trace-id` do).
pub fn run_readers(
    readers: Vec<capture::Reader>,
    opts: &Options,
    mut sink: Option<&mut Sink<'_>>,
    tap: &mut Tap<'_>,
) -> Result<Outcome, Error> {
    let stopped = AtomicBool::new(false);
    let threads = opts.threads.max(1);
    let spares = Spares::new(2 * threads * readers.len().max(1));
    thread::scope(|scope| {
        let inputs: Vec<Input> = readers
            .into_iter()
            .map(|r| Input::spawn(scope, r, threads, &spares))
            .collect();
        let (batch_tx, batch_rx) = bounded::<Vec<Event>>(4);
        let mut core = opts.core();
        let stopped = &stopped;
        let given = spares.clone();
        let detect = scope.spawn(move || {
            for batch in batch_rx {
                if tap(&batch).is_break() {
                    // The merge stage sees the channel closed, and stops.
                    stopped.store(true, Ordering::Relaxed);
                    break;
                }
                if let Some(sink) = sink.as_deref_mut() {
                    core.feed(&batch, sink);
                }
                given.give(batch);
            }
            (core, sink)
        });
        let merged = merge_stage(
            capture::Merge::new(inputs),
            opts,
            stopped,
            &spares,
            batch_tx,
        );
        let (core, sink) = detect
            .join()
            .map_err(|_| internal("the detect stage panicked"))?;
        let (warnings, events) = merged?;
        let finished = match sink {
            Some(sink) => core.finish(&warnings, sink),
            None => core.finish(&warnings, &mut |_| {}),
        };
        // Every event read, whether the core saw it or not.
        let mut outcome = Outcome::new(finished, warnings);
        outcome.events = events;
        Ok(outcome)
    })
}

/// The same pipeline over events already in memory (tests, imports).
pub fn run_events(
    batches: impl IntoIterator<Item = Vec<Event>>,
    cfg: detect::Config,
) -> (Verdict, Detected) {
    let mut core = Core::new(cfg);
    let sink: &mut Sink<'_> = &mut |_| {};
    for batch in batches {
        core.feed(&batch, sink);
    }
    let f = core.finish(&[], sink);
    (f.verdict, f.detected)
}

/// Follows a capture being written — a recorder's output file, or its directory of rotated files,
/// moving to the next file as each is closed — until `stop` is set and what was written is read:
/// incidents are handed out as they open, change and close. When nothing new arrives, time is
/// taken to go on at the wall clock's pace from the last event, so that incidents still close when
/// a node goes quiet.
pub fn follow(
    path: &Path,
    opts: &Options,
    stop: &Arc<AtomicBool>,
    sink: &mut Sink<'_>,
) -> Result<Outcome, Error> {
    let poll = opts.read.poll.unwrap_or(Duration::from_millis(200));
    thread::scope(|scope| {
        let (tx, rx) = bounded::<Vec<Event>>(4);
        let reader = scope.spawn(move || -> Result<Vec<(PathBuf, Warning)>, Error> {
            let mut input = capture::Follower::new(path, opts.read.clone(), stop);
            let mut warnings = Vec::new();
            loop {
                let mut batch = Vec::new();
                let more = input.next_block(&mut batch);
                let at = input.path().to_path_buf();
                warnings.extend(input.take_warnings().into_iter().map(|w| (at.clone(), w)));
                let more = more?;
                if !batch.is_empty() && tx.send(batch).is_err() {
                    return Err(internal("the detect stage stopped"));
                }
                if !more {
                    return Ok(warnings);
                }
            }
        });
        let mut core = opts.core();
        let mut last_batch = Instant::now();
        loop {
            match rx.recv_timeout(poll.max(Duration::from_millis(100))) {
                Ok(batch) => {
                    core.feed(&batch, sink);
                    last_batch = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {
                    if core.events() > 0 {
                        let idle = last_batch.elapsed().as_nanos() as u64;
                        core.advance(Ts(core.last_ts().0.saturating_add(idle)), sink);
                    }
                    if stop.load(Ordering::Relaxed) && reader.is_finished() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let warnings = reader
            .join()
            .map_err(|_| internal("the capture reader panicked"))??;
        Ok(Outcome::new(core.finish(&warnings, sink), warnings))
    })
}

fn internal(what: &str) -> Error {
    Error::Io {
        path: PathBuf::from("pipeline"),
        error: std::io::Error::other(what.to_string()),
    }
}

/// Takes the merged events in batches to the core, at the recorded pace with `--speed`.
fn merge_stage(
    mut merge: capture::Merge<Input>,
    opts: &Options,
    stopped: &AtomicBool,
    spares: &Spares,
    tx: Sender<Vec<Event>>,
) -> Result<(Vec<(PathBuf, Warning)>, u64), Error> {
    let events = std::cell::Cell::new(0u64);
    // False when the tap stopped the run.
    let hand_over = |batch: Vec<Event>| -> Result<bool, Error> {
        events.set(events.get() + batch.len() as u64);
        if tx.send(batch).is_err() {
            if stopped.load(Ordering::Relaxed) {
                return Ok(false);
            }
            return Err(internal("the detect stage stopped"));
        }
        Ok(true)
    };
    let Some(speed) = opts.speed.filter(|s| *s > 0.0) else {
        // As fast as it goes: runs of events at a time (a whole block where it goes first). Live,
        // batches of the same size whatever the blocks: incidents open and change between them.
        let max = if opts.live { opts.batch } else { usize::MAX };
        loop {
            spares.tidy();
            let mut batch = spares.take();
            let more = merge.next_batch(&mut batch, opts.batch, max);
            // What was merged before an error is seen before the error ends the run.
            if !batch.is_empty() && !hand_over(batch)? {
                return Ok((merge.take_warnings(), events.get()));
            }
            if !more? {
                return Ok((merge.take_warnings(), events.get()));
            }
        }
    };
    let mut batch = Vec::with_capacity(opts.batch);
    let mut pace: Option<(Ts, Instant)> = None;
    while let Some(ts) = merge.peek_ts()? {
        // Hand the batch over before waiting, so what happened so far is seen on time.
        let (first, wall) = pace.get_or_insert((ts, Instant::now()));
        let due = Duration::from_secs_f64(ts.saturating_sub(*first) as f64 / 1e9 / speed);
        if let Some(mut wait) = due.checked_sub(wall.elapsed()).filter(|w| !w.is_zero()) {
            if !batch.is_empty() && !hand_over(std::mem::take(&mut batch))? {
                return Ok((merge.take_warnings(), events.get()));
            }
            // Long idle stretches (a snapshot taken days before the incident) are cut short.
            if wait > MAX_IDLE {
                let skipped = (wait - MAX_IDLE).as_secs_f64() * speed * 1e9;
                *first = Ts(first.0.saturating_add(skipped as u64));
                wait = MAX_IDLE;
            }
            thread::sleep(wait);
        }
        match merge.next_event()? {
            Some(e) => batch.push(e),
            None => break,
        }
        if batch.len() >= opts.batch.max(1) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(opts.batch));
            if !hand_over(full)? {
                return Ok((merge.take_warnings(), events.get()));
            }
        }
    }
    if !batch.is_empty() {
        hand_over(batch)?;
    }
    Ok((merge.take_warnings(), events.get()))
}

/// The paths of a directory's captures (a fixture, a rotated set), in the order they were
/// written, or the path itself.
pub fn captures_in(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        capture::rotated_set(path)
    } else {
        vec![path.to_path_buf()]
    }
}
