//! Publishing: a node's events into the stream, in order, surviving a NATS that is away or slow.
//!
//! The publisher runs on a thread of its own. Batches are sent a window at a time and each is
//! acknowledged by JetStream before it counts as sent. When NATS cannot be reached (or does not
//! acknowledge in time), batches go to the spool on disk and are sent, oldest first, once it is
//! back; while the spool holds anything, new batches queue behind it, so the order is kept. A full
//! spool drops the batch and a drop marker (with the count and the time range lost) is sent in
//! its place: loss is visible in the stream, never silent. A resend keeps its message id, so
//! JetStream stores every batch once.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use async_nats::connection::State as Conn;
use async_nats::jetstream;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::spool::Spool;
use super::wire::{Batcher, Outgoing};
use super::{Error, Nats, StreamSettings};
use crate::event::{Body, Event, Meta, Source, TimeRange, Ts};

/// Batches sent before their acknowledgements are awaited.
const WINDOW: usize = 64;
/// How long an acknowledgement may take before NATS counts as away.
const ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a NATS that is away is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How often, while NATS is away, the publisher asks why.
const PROBE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct PublishOptions {
    pub nats: Nats,
    /// The cluster's name, the second token of the subjects.
    pub cluster: String,
    pub stream: StreamSettings,
    /// Where batches wait while NATS is away (one directory per publisher).
    pub spool_dir: PathBuf,
    /// The spool holds at most this many bytes.
    pub spool_max: u64,
    /// The run id (message ids are `<node>.<run>.<seq>`).
    pub run: String,
    /// Stamp `Tapio-Sent` with this machine's clock: the events come from it, live.
    pub live_clock: bool,
    /// Added to the `Tapio-Sent` stamps (a node whose clock is off, simulated).
    pub clock_offset_ns: i64,
    /// The name this client shows in NATS's monitoring.
    pub client_name: String,
}

/// What the publisher did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PublishStats {
    /// Batches and events acknowledged by JetStream.
    pub batches: u64,
    pub events: u64,
    /// Batches JetStream already had (a resend).
    pub duplicates: u64,
    /// Batches that went through the spool.
    pub spooled: u64,
    /// Bytes in the spool now.
    pub spool_bytes: u64,
    /// Events lost to a full spool (each sent as a drop marker).
    pub dropped_events: u64,
    /// Events that could not be encoded.
    pub unencodable: u64,
    /// Whether the last attempt reached NATS.
    pub connected: bool,
    /// The last problem, for the status line.
    pub last_error: Option<String>,
}

enum Cmd {
    Events(Vec<Event>),
    /// Send what is left until this time, then stop (the rest stays in the spool).
    Finish(Instant),
}

/// Events waiting for the publisher thread, at most, and how many go over at once.
const BACKLOG: usize = 262_144;
const CHUNK: usize = 4096;

/// A running publisher.
pub struct Publisher {
    tx: Sender<Cmd>,
    thread: Option<thread::JoinHandle<Result<(), Error>>>,
    stats: Arc<Mutex<PublishStats>>,
}

impl Publisher {
    /// Opens the spool and starts the publishing thread (which connects in the background: a NATS
    /// that is not up yet is not an error, its batches are spooled).
    pub fn start(opts: PublishOptions) -> Result<Publisher, Error> {
        let spool = Spool::open(&opts.spool_dir, opts.spool_max)?;
        let batcher = Batcher::new(&opts.cluster, opts.run.clone(), opts.live_clock)
            .map_err(|e| Error::Other(format!("cannot start a zstd encoder: {e}")))?;
        let stats = Arc::new(Mutex::new(PublishStats {
            spool_bytes: spool.bytes(),
            ..PublishStats::default()
        }));
        let (tx, rx) = bounded::<Cmd>(BACKLOG / CHUNK);
        let shared = Arc::clone(&stats);
        let thread = thread::Builder::new()
            .name("tapio-publish".into())
            .spawn(move || {
                let rt = super::runtime()?;
                let mut w = Worker {
                    opts,
                    spool,
                    batcher,
                    memory: VecDeque::new(),
                    drops: BTreeMap::new(),
                    stats: shared,
                    js: None,
                    client: None,
                    stream_ready: false,
                    next_try: Instant::now(),
                    said: Default::default(),
                    probed: None,
                };
                w.run(&rt, rx)
            })
            .map_err(|e| Error::Other(format!("cannot start the publisher: {e}")))?;
        Ok(Publisher {
            tx,
            thread: Some(thread),
            stats,
        })
    }

    /// Hands events (in time order) over to be published. Waits only when [`BACKLOG`] events
    /// are already waiting for the publisher thread (counted in chunks: what the writer hands
    /// over at once grows with the load, so a bound in batches would not bound memory).
    pub fn send(&self, mut events: Vec<Event>) {
        while events.len() > CHUNK {
            let rest = events.split_off(CHUNK);
            let _ = self.tx.send(Cmd::Events(events));
            events = rest;
        }
        if !events.is_empty() {
            let _ = self.tx.send(Cmd::Events(events));
        }
    }

    pub fn stats(&self) -> PublishStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends what is left, for at most `linger`; what NATS did not take by then stays in the
    /// spool for the next run.
    pub fn finish(mut self, linger: Duration) -> Result<PublishStats, Error> {
        let _ = self.tx.send(Cmd::Finish(Instant::now() + linger));
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| Error::Other("the publisher panicked".into()))??;
        }
        Ok(self.stats())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Cmd::Finish(Instant::now()));
            let _ = t.join();
        }
    }
}

struct Worker {
    opts: PublishOptions,
    spool: Spool,
    batcher: Batcher,
    /// Batches not yet sent nor spooled, in order.
    memory: VecDeque<Outgoing>,
    /// Events lost to a full spool, per node and source: (count, from, to).
    drops: BTreeMap<(String, String), (u64, Ts, Ts)>,
    stats: Arc<Mutex<PublishStats>>,
    js: Option<jetstream::Context>,
    client: Option<async_nats::Client>,
    stream_ready: bool,
    next_try: Instant,
    /// What the client last said about its connection.
    said: super::LastEvent,
    /// When a connection was last tried by hand to learn why NATS is away.
    probed: Option<Instant>,
}

impl Worker {
    fn run(&mut self, rt: &tokio::runtime::Runtime, rx: Receiver<Cmd>) -> Result<(), Error> {
        let url = self.opts.nats.url.clone();
        let _in_runtime = rt.enter();
        let client = rt.block_on(super::connect(
            &self.opts.nats,
            &self.opts.client_name,
            true,
        ))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(ACK_TIMEOUT);
        self.js = Some(js);
        self.client = Some(client);
        let mut deadline: Option<Instant> = None;
        loop {
            let busy = !self.memory.is_empty() || !self.spool.is_empty();
            let wait = if busy {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(200)
            };
            match rx.recv_timeout(wait) {
                Ok(cmd) => {
                    self.take(cmd, &mut deadline);
                    for cmd in rx.try_iter() {
                        self.take(cmd, &mut deadline);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    deadline.get_or_insert_with(Instant::now);
                }
            }
            self.pump(rt, &url)?;
            let done = self.memory.is_empty() && self.spool.is_empty() && self.drops.is_empty();
            if let Some(d) = deadline {
                if done || Instant::now() >= d {
                    // What is left waits in the spool for the next run.
                    self.spool_memory()?;
                    self.publish_stats();
                    return Ok(());
                }
            }
        }
    }

    fn take(&mut self, cmd: Cmd, deadline: &mut Option<Instant>) {
        match cmd {
            Cmd::Events(events) => {
                let (batches, failed) = self.batcher.batches(&events);
                self.memory.extend(batches);
                if failed > 0 {
                    if let Ok(mut s) = self.stats.lock() {
                        s.unencodable += failed;
                    }
                }
            }
            Cmd::Finish(at) => *deadline = Some(at),
        }
    }

    fn connected(&self) -> bool {
        let up = self
            .client
            .as_ref()
            .is_some_and(|c| c.connection_state() == Conn::Connected);
        if !up {
            if let Some(said) = self.said.lock().ok().and_then(|s| s.clone()) {
                self.note(said);
            }
        }
        up
    }

    /// Sends what can be sent now: the spool first, then what is in memory; when NATS is away,
    /// what is in memory goes to the spool.
    fn pump(&mut self, rt: &tokio::runtime::Runtime, url: &str) -> Result<(), Error> {
        if !self.connected() && self.probed.is_none_or(|t| t.elapsed() >= PROBE) {
            // The client retries quietly in the background; one attempt of our own says why it
            // does not get through (refused, a wrong token, TLS).
            self.probed = Some(Instant::now());
            let nats = self.opts.nats.clone();
            let tried = rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    super::connect(&nats, "tapio probe", false),
                )
                .await
            });
            match tried {
                Ok(Err(e)) => self.note(e.to_string()),
                Ok(Ok(c)) => drop(c),
                Err(_) => self.note(format!("NATS at {url}: no answer within 2 s")),
            }
        }
        let up = self.connected() && Instant::now() >= self.next_try;
        if up && !self.stream_ready {
            let js = self.js.clone().expect("connected");
            match rt.block_on(super::ensure_stream(&js, url, &self.opts.stream)) {
                Ok(_) => self.stream_ready = true,
                Err(e) => self.away(e.to_string()),
            }
        }
        if up && self.stream_ready {
            self.send_markers(rt);
            // The spool, oldest first, a window at a time.
            while !self.spool.is_empty() && Instant::now() >= self.next_try {
                let window = match self.spool.peek(WINDOW) {
                    Ok(w) => w,
                    Err(e) => {
                        // An unreadable file was removed; it is reported and the rest goes on.
                        self.note(e.to_string());
                        continue;
                    }
                };
                if window.is_empty() {
                    break;
                }
                let sent = self.send(rt, &window);
                for _ in 0..sent {
                    self.spool.pop();
                }
                if sent < window.len() {
                    break;
                }
            }
            if self.spool.is_empty() && Instant::now() >= self.next_try {
                while !self.memory.is_empty() && Instant::now() >= self.next_try {
                    let n = WINDOW.min(self.memory.len());
                    let window: Vec<Outgoing> = self.memory.iter().take(n).cloned().collect();
                    let sent = self.send(rt, &window);
                    self.memory.drain(..sent);
                    if sent < n {
                        break;
                    }
                }
            }
        }
        if !self.memory.is_empty() && (!self.connected() || Instant::now() < self.next_try) {
            self.spool_memory()?;
        }
        self.publish_stats();
        Ok(())
    }

    /// Sends a window of batches and waits for their acknowledgements; returns how many, from
    /// the first, are stored. NATS counts as away from the first failure.
    fn send(&mut self, rt: &tokio::runtime::Runtime, window: &[Outgoing]) -> usize {
        let js = self.js.clone().expect("connected");
        let spool_bytes = self.spool.bytes();
        let offset = self.opts.clock_offset_ns;
        let (stored, dups, problem) = rt.block_on(async {
            let mut acks = Vec::with_capacity(window.len());
            let mut problem = None;
            for b in window {
                let now = crate::capture::now().0 as i64 + offset;
                let headers = b.headers(Ts(now.max(0) as u64), spool_bytes);
                match js
                    .publish_with_headers(b.subject.clone(), headers, b.frame.clone().into())
                    .await
                {
                    Ok(ack) => acks.push(ack),
                    Err(e) => {
                        problem = Some(e.to_string());
                        break;
                    }
                }
            }
            let (mut stored, mut dups) = (0usize, 0u64);
            for ack in acks {
                match ack.await {
                    Ok(a) => {
                        stored += 1;
                        dups += u64::from(a.duplicate);
                    }
                    Err(e) => {
                        problem.get_or_insert(e.to_string());
                        break;
                    }
                }
            }
            (stored, dups, problem)
        });
        if let Ok(mut s) = self.stats.lock() {
            for b in &window[..stored] {
                s.batches += 1;
                s.events += u64::from(b.events);
            }
            s.duplicates += dups;
            s.connected = problem.is_none();
        }
        if let Some(p) = problem {
            self.away(p);
        }
        stored
    }

    fn away(&mut self, problem: String) {
        self.next_try = Instant::now() + RETRY;
        self.note(problem);
        if let Ok(mut s) = self.stats.lock() {
            s.connected = false;
        }
    }

    fn note(&self, problem: String) {
        if let Ok(mut s) = self.stats.lock() {
            s.last_error = Some(problem);
        }
    }

    /// What is in memory goes to the spool; what does not fit becomes a drop marker.
    fn spool_memory(&mut self) -> Result<(), Error> {
        while let Some(b) = self.memory.pop_front() {
            if self.spool.push(&b)? {
                if let Ok(mut s) = self.stats.lock() {
                    s.spooled += 1;
                }
            } else {
                let d = self
                    .drops
                    .entry((b.node.clone(), b.source.clone()))
                    .or_insert((0, b.first_ts, b.last_ts));
                d.0 += u64::from(b.events);
                d.1 = d.1.min(b.first_ts);
                d.2 = d.2.max(b.last_ts);
                if let Ok(mut s) = self.stats.lock() {
                    s.dropped_events += u64::from(b.events);
                }
            }
        }
        self.publish_stats();
        Ok(())
    }

    /// The drop markers of what a full spool lost, sent ahead of what follows.
    fn send_markers(&mut self, rt: &tokio::runtime::Runtime) {
        if self.drops.is_empty() {
            return;
        }
        let markers: Vec<Event> = self
            .drops
            .iter()
            .map(|((node, source), (count, from, to))| {
                Event::new(
                    *to,
                    node.as_str(),
                    Source::Tapio,
                    Body::Meta(Meta::Drop {
                        source: Source::parse_name(source).unwrap_or(Source::Tapio),
                        count: *count,
                        range: TimeRange {
                            from: *from,
                            to: *to,
                        },
                        reason: format!(
                            "the publish spool was full while NATS was away: {count} events are only in the node's local capture"
                        ),
                    }),
                )
            })
            .collect();
        let (batches, _) = self.batcher.batches(&markers);
        if self.send(rt, &batches) == batches.len() {
            self.drops.clear();
        }
    }

    fn publish_stats(&self) {
        if let Ok(mut s) = self.stats.lock() {
            s.spool_bytes = self.spool.bytes();
        }
    }
}
