//! `tapio record`: live sources → one capture file, in time order, and the live verdicts.
//!
//! Each source ([`crate::source::Source`]) runs on its own thread and sends batches of events into
//! one bounded channel; this thread orders them (events wait [`REORDER`] for later arrivals with
//! earlier times) and appends them to the capture, which is flushed block by block so that a crash
//! loses at most the last second. The ordered events also go to the pipeline's core on a thread of
//! its own, which hands out incidents as they open, change and close. A full channel blocks the
//! source: for the kernel that means a full ring buffer, whose losses the kernel counts and the
//! capture records as drop markers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError};

use crate::analysis::{RootKind, Severity, Verdict};
use crate::capture::{self, Header, Kept, Layout, Output, Trailer, WriteOptions};
use crate::detect;
use crate::event::{Event, Ts};
use crate::pipeline::{kept, Change, Core, Finished, Sink, State};
use crate::source::logs::follow;
use crate::source::{kernel, kube, otlp, Counters, Outlet, Source};

/// How long an event waits for events from other sources (or other CPUs) that happened earlier.
pub const REORDER: Duration = Duration::from_millis(500);
/// Batches in flight between the sources and the writer (a source's batch is bounded: one OTLP
/// request, one read of a log).
const CHANNEL_BATCHES: usize = 64;
/// Events in flight between the writer and the core, in chunks: a bound in events, not in
/// batches, since what the writer hands over at once grows with the load. A core behind holds
/// the writer back, and the sources behind it refuse or count what they drop.
const CORE_CHUNK: usize = 4096;
const CORE_BACKLOG: usize = 65_536;

#[derive(Clone, Debug)]
pub struct Options {
    /// One capture, a rotated set, or the flight recorder's ring.
    pub output: Layout,
    /// The node name written into the header and every event.
    pub node: String,
    /// Record the kernel with these options.
    pub kernel: Option<kernel::Options>,
    /// Watch Kubernetes with these options.
    pub kube: Option<kube::Options>,
    /// Receive OTLP traces and logs with these options.
    pub otlp: Option<otlp::Options>,
    /// Follow container log files with these options.
    pub logs: Option<follow::Options>,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// The command line's choices, kept in the header.
    pub header_options: BTreeMap<String, String>,
    /// Run the pipeline on what is recorded, with these detectors: incidents as they open,
    /// change and close. `None`: record only.
    pub verdicts: Option<detect::Config>,
    /// The flight recorder keeps a capture when an incident opens that this accepts.
    pub trigger: Option<TriggerOn>,
    /// Set from outside (SIGUSR1): keep a capture now.
    pub trigger_now: Option<Arc<AtomicBool>>,
    /// Also publish what is recorded to the cluster's stream.
    pub publish: Option<crate::cluster::PublishOptions>,
    /// Replace secrets before anything is written or published (see [`crate::redact`]); off only
    /// with `--no-redact`.
    pub redact: bool,
}

/// Which incidents make the flight recorder keep a capture.
#[derive(Clone, Debug)]
pub struct TriggerOn {
    /// At least this severity…
    pub severity: Severity,
    /// …or one of these root causes, whatever its severity.
    pub kinds: Vec<RootKind>,
}

impl TriggerOn {
    fn accepts(&self, inc: &crate::analysis::Incident) -> bool {
        inc.severity >= self.severity || self.kinds.contains(&inc.root_cause.kind)
    }
}

/// What the status line shows.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub events: u64,
    pub dropped: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// What the sources had to say since the previous call (a lost API server, a skipped object).
    pub warnings: Vec<String>,
    /// Captures the flight recorder kept since the previous call.
    pub kept: Vec<Kept>,
    /// What the publisher did so far (with --publish).
    pub publish: Option<crate::cluster::PublishStats>,
}

/// How a recording ended.
#[derive(Debug)]
pub struct Summary {
    pub trailer: Trailer,
    pub bytes: u64,
    pub elapsed: Duration,
    /// What each source counted, in the order they were started.
    pub sources: Vec<Counters>,
    /// Every incident of the recording (with verdicts on).
    pub verdict: Option<Verdict>,
    /// Where that verdict was kept beside the capture (a recording into one file), for
    /// `correlate` to answer from; or why it could not be.
    pub verdict_kept: Option<Result<std::path::PathBuf, String>>,
    /// The captures the flight recorder kept.
    pub kept: Vec<Kept>,
    /// What the publisher did (with --publish); what NATS did not take is in the spool.
    pub publish: Option<crate::cluster::PublishStats>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] kernel::Error),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Otlp(#[from] otlp::Error),
    #[error(transparent)]
    Capture(#[from] capture::Error),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    #[error("a source stopped unexpectedly: {0}")]
    Source(String),
}

/// Sources that are started and ready to run; made before the output file is created, so that a
/// machine that cannot record gets an error and no empty capture.
pub struct Prepared {
    opts: Options,
    sources: Vec<Box<dyn Source>>,
}

impl Prepared {
    /// The running sources, in the order they were started.
    pub fn sources(&self) -> impl Iterator<Item = &dyn Source> {
        self.sources.iter().map(|s| s.as_ref())
    }
}

/// Starts the sources of `opts` (loads and attaches the probes, loads the Kubernetes
/// configuration, binds the OTLP ports).
pub fn prepare(opts: Options) -> Result<Prepared, Error> {
    // A read-only or full file system is said before a probe is loaded.
    opts.output.preflight()?;
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    if let Some(k) = &opts.kernel {
        sources.push(Box::new(kernel::Recorder::start(k)?));
    }
    if let Some(k) = &opts.kube {
        sources.push(Box::new(kube::connect(k.clone())?));
    }
    if let Some(o) = &opts.otlp {
        sources.push(Box::new(otlp::bind(o.clone())?));
    }
    if let Some(l) = &opts.logs {
        sources.push(Box::new(follow::Follower::new(l.clone())));
    }
    Ok(Prepared { opts, sources })
}

/// Records until `stop` is set or the duration is over; calls `progress` a few times a second;
/// with verdicts on, hands incidents to `sink` as they open, change and close.
pub fn run(
    prepared: Prepared,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
    sink: &mut Sink<'_>,
) -> Result<Summary, Error> {
    let Prepared { opts, sources } = prepared;
    let started = Instant::now();
    let mut header = Header::new(opts.node.clone());
    header.kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    header.boot_time = Some(kernel::boot_time());
    header.sources = sources.iter().map(|s| s.name().to_string()).collect();
    header.options = opts.header_options.clone();
    // Every write cycle ends its block: what was received is on disk (in the page cache, which a
    // crash of tapio does not lose) within REORDER and one cycle, 750 ms.
    let write_opts = WriteOptions {
        block_interval: Duration::ZERO,
        ..WriteOptions::default()
    };
    let mut writer = Output::create(opts.output.clone(), &header, write_opts)?;
    let publisher = match &opts.publish {
        Some(p) => Some(crate::cluster::Publisher::start(p.clone())?),
        None => None,
    };

    let (tx, rx) = bounded::<Vec<Event>>(CHANNEL_BATCHES);
    let (warn_tx, warn_rx) = unbounded::<String>();
    let outlet = Outlet {
        events: tx,
        warnings: warn_tx,
        halt: Arc::new(AtomicBool::new(false)),
    };
    let halt = Arc::clone(&outlet.halt);
    let threads: Vec<(&'static str, thread::JoinHandle<Counters>)> = sources
        .into_iter()
        .map(|s| {
            let name = s.name();
            let out = outlet.clone();
            let t = thread::Builder::new()
                .name(format!("tapio-{name}"))
                .spawn(move || s.run(&out))
                .expect("spawning a thread");
            (name, t)
        })
        .collect();
    // The writer stops when every source has dropped its sender.
    drop(outlet);

    // Incidents that trigger the flight recorder, from the core's thread to this one.
    let (trig_tx, trig_rx) = unbounded::<(Ts, String)>();
    thread::scope(|scope| {
        let (core_tx, core_rx) = bounded::<Vec<Event>>(CORE_BACKLOG / CORE_CHUNK);
        let trigger = opts.trigger.clone();
        let core = opts.verdicts.clone().map(|cfg| {
            let sink = &mut *sink;
            scope.spawn(move || {
                let mut sink = |c: Change<'_>| {
                    let inc = c.incident;
                    if c.state != State::Closed && trigger.as_ref().is_some_and(|t| t.accepts(inc))
                    {
                        let what = format!("{}-{}", inc.root_cause.kind, inc.root_cause.entity);
                        let _ = trig_tx.send((inc.start, what));
                    }
                    sink(c)
                };
                core_stage(Core::new(cfg).live(), core_rx, &mut sink)
            })
        });
        let core_tx = core.is_some().then_some(core_tx);
        let mut pending: Vec<Event> = Vec::new();
        let mut redactor = opts.redact.then(crate::redact::Redactor::new);
        let mut last_write = Instant::now();
        let mut halted = false;
        loop {
            let over = stop.load(Ordering::Relaxed)
                || opts.duration.is_some_and(|d| started.elapsed() >= d);
            if over && !halted {
                halt.store(true, Ordering::Relaxed);
                halted = true;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(batch) => {
                    pending.extend(batch);
                    // Whatever else is waiting, without waiting again.
                    for batch in rx.try_iter().take(CHANNEL_BATCHES) {
                        pending.extend(batch);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_write.elapsed() >= Duration::from_millis(250) {
                last_write = Instant::now();
                let now = Ts::from_datetime(&chrono::Utc::now());
                let watermark = Ts(now.0.saturating_sub(REORDER.as_nanos() as u64));
                write_until(
                    &mut writer,
                    &mut pending,
                    Some(watermark),
                    core_tx.as_ref(),
                    publisher.as_ref(),
                    redactor.as_mut(),
                )?;
                for (at, what) in trig_rx.try_iter() {
                    writer.trigger(at, &what);
                }
                if opts
                    .trigger_now
                    .as_ref()
                    .is_some_and(|f| f.swap(false, Ordering::Relaxed))
                {
                    writer.trigger(now, "signal");
                }
                writer.tick()?;
                let mut warnings = drain(&warn_rx);
                warnings.extend(writer.take_warnings());
                let mut p = snapshot(&writer, started, warnings);
                p.kept = writer.take_kept();
                p.publish = publisher.as_ref().map(|p| p.stats());
                progress(&p);
            }
        }
        let mut counters = Vec::new();
        for (name, t) in threads {
            counters.push(
                t.join()
                    .map_err(|_| Error::Source(format!("the {name} source panicked")))?,
            );
        }
        write_until(
            &mut writer,
            &mut pending,
            None,
            core_tx.as_ref(),
            publisher.as_ref(),
            redactor.as_mut(),
        )?;
        drop(core_tx);
        // What NATS does not take within a few seconds waits in the spool for the next run.
        let publish = match publisher {
            Some(p) => Some(p.finish(Duration::from_secs(5))?),
            None => None,
        };
        let finished = match core {
            Some(c) => Some(
                c.join()
                    .map_err(|_| Error::Source("the verdict stage panicked".into()))?,
            ),
            None => None,
        };
        for (at, what) in trig_rx.try_iter() {
            writer.trigger(at, &what);
        }
        let mut late = drain(&warn_rx);
        let mut kept = writer.take_kept();
        let bytes_before_trailer = writer.bytes_written();
        let (trailer, more, warnings) = writer.finish()?;
        late.extend(warnings);
        kept.extend(more);
        if !late.is_empty() {
            progress(&Progress {
                warnings: late,
                ..Progress::default()
            });
        }
        let bytes = match &opts.output {
            Layout::Single(p) => std::fs::metadata(p)
                .map(|m| m.len())
                .unwrap_or(bytes_before_trailer),
            _ => bytes_before_trailer,
        };
        // The core saw every event written, in the order written, and nothing else: over a
        // recording into one file, its verdict is what a whole read of the file answers. Kept
        // beside it, `correlate` answers from it at once. (Rotated files and rings are read in
        // parts that the recording's verdict does not answer for.)
        let verdict_kept = match (&opts.output, &finished, &opts.verdicts) {
            (Layout::Single(p), Some(f), Some(cfg)) => Some(
                kept::keep_verdict(
                    std::slice::from_ref(p),
                    cfg,
                    f.events,
                    f.detected.first_finding(),
                    &f.verdict.incidents,
                )
                .map_err(|e| e.to_string())
                .and_then(|k| k.ok_or_else(|| "no place beside the capture".to_string())),
            ),
            _ => None,
        };
        let verdict = finished.map(|f| f.verdict);
        Ok(Summary {
            trailer,
            bytes,
            elapsed: started.elapsed(),
            sources: counters,
            verdict,
            verdict_kept,
            kept,
            publish,
        })
    })
}

/// The core's thread: what was written, in order; when the node is quiet, time still goes on (at
/// the writer's watermark), so that incidents close.
fn core_stage(mut core: Core, rx: Receiver<Vec<Event>>, sink: &mut Sink<'_>) -> Finished {
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(batch) => core.feed(&batch, sink),
            Err(RecvTimeoutError::Timeout) => {
                let now = Ts::from_datetime(&chrono::Utc::now());
                let watermark = Ts(now.0.saturating_sub(2 * REORDER.as_nanos() as u64));
                if core.events() > 0 && watermark > core.last_ts() {
                    core.advance(watermark, sink);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    core.finish(&[], sink)
}

fn drain(rx: &Receiver<String>) -> Vec<String> {
    rx.try_iter().collect()
}

fn snapshot(writer: &Output, started: Instant, warnings: Vec<String>) -> Progress {
    Progress {
        events: writer.stats().events,
        dropped: writer.stats().dropped,
        bytes: writer.bytes_written(),
        elapsed: started.elapsed(),
        warnings,
        kept: Vec::new(),
        publish: None,
    }
}

/// Appends, in time order, the pending events up to `watermark` (all of them for `None`), and
/// hands them, numbered, to the core.
fn write_until(
    writer: &mut Output,
    pending: &mut Vec<Event>,
    watermark: Option<Ts>,
    core: Option<&crossbeam_channel::Sender<Vec<Event>>>,
    publisher: Option<&crate::cluster::Publisher>,
    mut redactor: Option<&mut crate::redact::Redactor>,
) -> Result<(), capture::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    pending.sort_by_key(|e| e.ts); // stable: equal times keep their arrival order
    let cut = match watermark {
        Some(w) => pending.partition_point(|e| e.ts <= w),
        None => pending.len(),
    };
    let keep = core.is_some() || publisher.is_some();
    let mut written = Vec::with_capacity(if keep { cut } else { 0 });
    for mut e in pending.drain(..cut) {
        if let Some(r) = redactor.as_deref_mut() {
            r.event(&mut e);
        }
        writer.append(&mut e)?;
        if keep {
            written.push(e);
        }
    }
    if let Some(p) = publisher {
        if core.is_some() {
            p.send(written.clone());
        } else {
            p.send(std::mem::take(&mut written));
        }
    }
    if let Some(tx) = core.filter(|_| !written.is_empty()) {
        // The core gone (it panicked) is reported when it is joined.
        let mut rest = written;
        while rest.len() > CORE_CHUNK {
            let tail = rest.split_off(CORE_CHUNK);
            if tx.send(rest).is_err() {
                return Ok(());
            }
            rest = tail;
        }
        let _ = tx.send(rest);
    }
    Ok(())
}
