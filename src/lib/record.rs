//! `tapio record`: live sources → one capture file, in time order.
//!
//! Each source runs on its own thread and sends batches of events into one bounded channel; this
//! thread orders them (events wait [`REORDER`] for later arrivals with earlier times) and appends
//! them to the capture, which is flushed block by block so that a crash loses at most the last
//! second. A full channel blocks the source: for the kernel that means a full ring buffer, whose
//! losses the kernel counts and the capture records as drop markers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};

use crate::capture::{self, Header, Trailer, WriteOptions, Writer};
use crate::event::{Event, Ts};
use crate::source::logs::follow;
use crate::source::{kernel, kube, otlp};

/// How long an event waits for events from other sources (or other CPUs) that happened earlier.
pub const REORDER: Duration = Duration::from_millis(500);
/// Batches in flight between the sources and the writer.
const CHANNEL_BATCHES: usize = 64;

#[derive(Clone, Debug)]
pub struct Options {
    pub output: PathBuf,
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
}

/// How a recording ended.
#[derive(Debug)]
pub struct Summary {
    pub trailer: Trailer,
    pub bytes: u64,
    pub elapsed: Duration,
    pub kernel: Option<kernel::Counters>,
    pub kube: Option<kube::Counters>,
    pub otlp: Option<otlp::Counters>,
    pub logs: Option<follow::Counters>,
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
    #[error("a source stopped unexpectedly: {0}")]
    Source(String),
}

/// Sources that are started and ready to run; made before the output file is created, so that a
/// machine that cannot record gets an error and no empty capture.
pub struct Prepared {
    opts: Options,
    kernel: Option<kernel::Recorder>,
    kube: Option<kube::Watchers>,
    otlp: Option<otlp::Receiver>,
}

impl Prepared {
    /// What the user should know before the recording starts.
    pub fn warnings(&self) -> Vec<String> {
        self.kernel
            .as_ref()
            .map(|k| k.warnings().to_vec())
            .unwrap_or_default()
    }

    /// The sources that will feed the capture (`ebpf`, `kube`).
    pub fn sources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.kernel.is_some() {
            s.push("ebpf");
        }
        if self.kube.is_some() {
            s.push("kube");
        }
        if self.otlp.is_some() {
            s.push("otlp");
        }
        if self.opts.logs.is_some() {
            s.push("pod-logs");
        }
        s
    }

    /// The OTLP receiver's gRPC and HTTP addresses, if it runs.
    pub fn otlp_addrs(&self) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
        self.otlp.as_ref().map(|o| o.addrs())
    }

    /// The Kubernetes API server watched, if any.
    pub fn kube_server(&self) -> Option<&str> {
        self.kube.as_ref().map(|k| k.server())
    }
}

/// Starts the sources of `opts` (loads and attaches the probes, loads the Kubernetes
/// configuration).
pub fn prepare(opts: Options) -> Result<Prepared, Error> {
    let kernel = match &opts.kernel {
        Some(k) => Some(kernel::Recorder::start(k)?),
        None => None,
    };
    let kube = match &opts.kube {
        Some(k) => Some(kube::connect(k.clone())?),
        None => None,
    };
    let otlp = match &opts.otlp {
        Some(o) => Some(otlp::bind(o.clone())?),
        None => None,
    };
    Ok(Prepared {
        opts,
        kernel,
        kube,
        otlp,
    })
}

/// Records until `stop` is set or the duration is over; calls `progress` a few times a second.
pub fn run(
    prepared: Prepared,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, Error> {
    let sources = prepared.sources();
    let Prepared {
        opts,
        kernel,
        kube,
        otlp,
    } = prepared;
    let logs = opts.logs.clone();
    let started = Instant::now();
    let mut header = Header::new(opts.node.clone());
    header.kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    header.boot_time = Some(kernel::boot_time());
    header.sources = sources.iter().map(|s| s.to_string()).collect();
    header.options = opts.header_options.clone();
    let mut writer = Writer::create(&opts.output, &header, WriteOptions::default())?;

    let (tx, rx) = bounded::<Vec<Event>>(CHANNEL_BATCHES);
    let halt = Arc::new(AtomicBool::new(false));
    let (warn_tx, warn_rx) = unbounded::<String>();
    let channels = Channels {
        tx,
        warn: warn_tx,
        halt: Arc::clone(&halt),
    };
    let kernel_thread =
        kernel.map(|k| channels.spawn("tapio-kernel", move |c| kernel_loop(k, &c.tx, &c.halt)));
    let kube_thread =
        kube.map(|k| channels.spawn("tapio-kube", move |c| k.run(&c.tx, &c.warn, &c.halt)));
    let otlp_thread =
        otlp.map(|o| channels.spawn("tapio-otlp", move |c| o.run(&c.tx, &c.warn, &c.halt)));
    let logs_thread = logs.map(|o| {
        channels.spawn("tapio-logs", move |c| {
            logs_loop(follow::Follower::new(o), &c.tx, &c.halt)
        })
    });
    // The writer stops when every source has dropped its sender.
    drop(channels);

    let mut pending: Vec<Event> = Vec::new();
    let mut last_write = Instant::now();
    let mut halted = false;
    loop {
        let over =
            stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| started.elapsed() >= d);
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
            write_until(&mut writer, &mut pending, Some(watermark))?;
            if writer.block_due() {
                writer.flush()?;
            }
            progress(&snapshot(&writer, started, drain(&warn_rx)));
        }
    }
    let counters = join(kernel_thread, "the kernel reader")?;
    let kube_counters = join(kube_thread, "the Kubernetes watchers")?;
    let logs_counters = join(logs_thread, "the log follower")?;
    let otlp_counters = join(otlp_thread, "the OTLP receiver")?;
    write_until(&mut writer, &mut pending, None)?;
    let late = drain(&warn_rx);
    if !late.is_empty() {
        progress(&snapshot(&writer, started, late));
    }
    let bytes_before_trailer = writer.bytes_written();
    let trailer = writer.finish()?;
    let bytes = std::fs::metadata(&opts.output)
        .map(|m| m.len())
        .unwrap_or(bytes_before_trailer);
    Ok(Summary {
        trailer,
        bytes,
        elapsed: started.elapsed(),
        kernel: counters,
        kube: kube_counters,
        otlp: otlp_counters,
        logs: logs_counters,
    })
}

/// What every source thread gets: the batch channel, the warnings channel, the stop flag.
#[derive(Clone)]
struct Channels {
    tx: Sender<Vec<Event>>,
    warn: Sender<String>,
    halt: Arc<AtomicBool>,
}

impl Channels {
    fn spawn<T: Send + 'static>(
        &self,
        name: &str,
        run: impl FnOnce(Channels) -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let c = self.clone();
        thread::Builder::new()
            .name(name.into())
            .spawn(move || run(c))
            .expect("spawning a thread")
    }
}

/// Waits for a source's thread; a panic in it is an error of the recording.
fn join<T>(t: Option<thread::JoinHandle<T>>, what: &str) -> Result<Option<T>, Error> {
    t.map(|t| {
        t.join()
            .map_err(|_| Error::Source(format!("{what} panicked")))
    })
    .transpose()
}

fn drain(rx: &Receiver<String>) -> Vec<String> {
    rx.try_iter().collect()
}

fn snapshot(writer: &Writer, started: Instant, warnings: Vec<String>) -> Progress {
    Progress {
        events: writer.stats().events,
        dropped: writer.stats().dropped,
        bytes: writer.bytes_written(),
        elapsed: started.elapsed(),
        warnings,
    }
}

/// Appends, in time order, the pending events up to `watermark` (all of them for `None`).
fn write_until(
    writer: &mut Writer,
    pending: &mut Vec<Event>,
    watermark: Option<Ts>,
) -> Result<(), capture::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    pending.sort_by_key(|e| e.ts); // stable: equal times keep their arrival order
    let cut = match watermark {
        Some(w) => pending.partition_point(|e| e.ts <= w),
        None => pending.len(),
    };
    for mut e in pending.drain(..cut) {
        writer.append(&mut e)?;
    }
    Ok(())
}

/// The log follower's thread: poll the files four times a second, write drop markers each second.
fn logs_loop(
    mut f: follow::Follower,
    tx: &Sender<Vec<Event>>,
    halt: &AtomicBool,
) -> follow::Counters {
    let mut last_tick = Instant::now();
    loop {
        let halting = halt.load(Ordering::Relaxed);
        let mut batch = Vec::new();
        f.poll(&mut batch);
        if halting {
            f.finish(&mut batch);
        }
        if halting || last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            f.tick(Ts::from_datetime(&chrono::Utc::now()), &mut batch);
        }
        if !batch.is_empty() && tx.send(batch).is_err() {
            break;
        }
        if halting {
            break;
        }
        thread::sleep(Duration::from_millis(250));
    }
    f.counters()
}

/// How often the kernel thread reads the ring buffer when it is not backed up. Reading on a timer,
/// not on every record's wakeup, keeps a quiet node's recorder near zero CPU; the ring buffer
/// holds far more than one interval's records at hundreds of thousands of events a second.
const KERNEL_READ_EVERY: Duration = Duration::from_millis(10);
/// Records read in one go; more than this means the ring buffer is backed up: read again at once.
const KERNEL_READ_MAX: usize = 16384;
/// A batch goes to the writer when it is this big or this old.
const BATCH_EVENTS: usize = 16384;
const BATCH_AGE: Duration = Duration::from_millis(100);

/// The kernel source's thread: read the ring buffer, sweep counters once a second, send batches.
fn kernel_loop(
    mut k: kernel::Recorder,
    tx: &Sender<Vec<Event>>,
    halt: &AtomicBool,
) -> kernel::Counters {
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    let mut last_tick = Instant::now();
    let mut last_send = Instant::now();
    loop {
        let halting = halt.load(Ordering::Relaxed);
        let before = k.counters().records;
        if halting {
            // What the probes wrote before the stop still goes in.
            k.drain(usize::MAX, &mut batch);
            k.tick(&mut batch);
        } else {
            k.drain(KERNEL_READ_MAX, &mut batch);
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                k.tick(&mut batch);
            }
        }
        let backed_up = k.counters().records - before >= KERNEL_READ_MAX as u64;
        if halting || batch.len() >= BATCH_EVENTS || last_send.elapsed() >= BATCH_AGE {
            last_send = Instant::now();
            if !batch.is_empty() {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS));
                if tx.send(full).is_err() {
                    break;
                }
            }
        }
        if halting {
            break;
        }
        if !backed_up {
            thread::sleep(KERNEL_READ_EVERY);
        }
    }
    k.counters()
}
