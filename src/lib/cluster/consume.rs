//! The cluster consumer: the stream's batches → dedupe → clock correction → reorder window → the
//! one pipeline core → incidents, numbered and printed once across restarts.
//!
//! A durable consumer keeps the stream position; the ledger ([`super::ledger`]) keeps what was
//! printed. After a restart the consumer first reads the stream again up to where it stopped (an
//! ordered consumer; the incidents' state is rebuilt, nothing already printed is printed again),
//! then goes on with the durable consumer. Stopping it (Ctrl-C, SIGTERM) closes nothing: the
//! incidents stay open for the next run. Time goes on with the wall clock when the stream is
//! quiet, so incidents close after their quiet period even when no node sends anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::ledger::Ledger;
use super::metrics::Metrics;
use super::reorder::Reorder;
use super::skew::{self, Skew};
use super::{wire, Error, Nats};
use crate::detect;
use crate::event::{Body, Meta, Ts};
use crate::pipeline::{Change, Core, Sink};

#[derive(Clone, Debug)]
pub struct FollowOptions {
    pub nats: Nats,
    pub cluster: String,
    pub stream: String,
    /// The durable consumer's name (and its ledger's).
    pub consumer: String,
    /// Only this node's subjects.
    pub node: Option<String>,
    /// How long an event waits for other nodes' earlier events.
    pub max_lateness: Duration,
    /// Correct a node's clock when it is off by more than this; `None`: never.
    pub skew_threshold: Option<Duration>,
    /// A restart rebuilds from this much of the stream (and the objects from before it);
    /// `None`: from the stream's beginning.
    pub rebuild_window: Option<Duration>,
    pub detect: detect::Config,
}

/// How a run of the consumer ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub messages: u64,
    pub events: u64,
    /// Messages read again after a restart to rebuild the state.
    pub rebuilt: u64,
    /// Kubernetes objects from before the rebuild's window.
    pub snapshot: u64,
    pub duplicates: u64,
    pub garbage: u64,
    pub late: u64,
    pub skew: Vec<skew::NodeSkew>,
}

enum Net {
    Msg {
        headers: Option<async_nats::HeaderMap>,
        payload: bytes::Bytes,
        received: Ts,
        stream_seq: u64,
        rebuild: bool,
    },
    /// The Kubernetes objects as they stood before the rebuild's window: fed first.
    Snapshot(Vec<crate::event::Event>),
    Lag(u64),
    Connected(bool),
    Failed(Error),
}

/// Warnings about one kind of problem: the first few in full, then one in a thousand.
struct Said(u64);

impl Said {
    fn say(&mut self) -> bool {
        self.0 += 1;
        self.0 <= 5 || self.0 % 1000 == 0
    }
}

/// Follows the cluster's stream until `stop` is set; incidents go to `sink` as they open, change
/// and close, each change once across restarts of the same `--consumer`.
pub fn follow(
    opts: &FollowOptions,
    stop: &AtomicBool,
    metrics: &Metrics,
    warn: &mut dyn FnMut(String),
    sink: &mut Sink<'_>,
) -> Result<Summary, Error> {
    let url = opts.nats.url.clone();
    let rt = super::runtime()?;
    // A consumer started before any recorder waits for the stream.
    let mut said = None;
    loop {
        let found = rt.block_on(async {
            let client = super::connect(&opts.nats, "tapio consumer", false).await?;
            let js = jetstream::new(client);
            Ok::<_, Error>(js.get_stream(&opts.stream).await.is_ok())
        });
        let why = match found {
            Ok(true) => break,
            Ok(false) => format!(
                "stream {} does not exist yet at {url}: waiting for the first recorder to create it",
                opts.stream
            ),
            // NATS not up yet (the cluster is starting): waited for too.
            Err(e) => format!("{e}: waiting for it"),
        };
        if said.as_ref() != Some(&why) {
            warn(why.clone());
            said = Some(why);
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Summary::default());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // NATS going away while the consumer sets up is waited for too (the setup is idempotent).
    let mut said_setup: Option<String> = None;
    let (client, stream, durable, ack_floor, mut ledger) = loop {
        let setup = rt.block_on(async {
            let client = super::connect(
                &opts.nats,
                &format!("tapio consumer {}", opts.consumer),
                false,
            )
            .await?;
            let js = jetstream::new(client.clone());
            let stream = super::get_stream(&js, &url, &opts.stream).await?;
            let filter = super::filter(&opts.cluster, opts.node.as_deref());
            let durable: consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &super::token(&opts.consumer),
                    consumer::pull::Config {
                        durable_name: Some(super::token(&opts.consumer)),
                        description: Some(format!("tapio replay --follow ({filter})")),
                        filter_subject: filter.clone(),
                        ack_policy: consumer::AckPolicy::All,
                        deliver_policy: consumer::DeliverPolicy::All,
                        ack_wait: Duration::from_secs(60),
                        max_ack_pending: 100_000,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| Error::nats(&url, format!("consumer {}: {e}", opts.consumer)))?;
            let mut d = durable.clone();
            let info = d
                .info()
                .await
                .map_err(|e| Error::nats(&url, format!("consumer {}: {e}", opts.consumer)))?;
            if info.config.filter_subject != filter {
                return Err(Error::nats(
                    &url,
                    format!(
                        "consumer {} follows {:?}, not {filter:?}: give another --consumer",
                        opts.consumer, info.config.filter_subject
                    ),
                ));
            }
            // Everything delivered before (acknowledged or not) is read again; what the server
            // redelivers later is a duplicate and skipped.
            let ack_floor = info.delivered.stream_sequence;
            let ledger = Ledger::open(&js, &url, &opts.consumer).await?;
            Ok::<_, Error>((client, stream, durable, ack_floor, ledger))
        });
        match setup {
            Ok(done) => break done,
            // A consumer that follows other subjects is the user's to fix, not to wait for.
            Err(Error::Nats { detail, .. }) if detail.contains("give another --consumer") => {
                return Err(Error::nats(&url, detail));
            }
            Err(e @ Error::Nats { .. }) => {
                let why = format!("{e}: trying again");
                if said_setup.as_ref() != Some(&why) {
                    warn(why.clone());
                    said_setup = Some(why);
                }
                if stop.load(Ordering::Relaxed) {
                    return Ok(Summary::default());
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    };
    let (tx, mut rx) = mpsc::channel::<Net>(1024);
    let filter = super::filter(&opts.cluster, opts.node.as_deref());
    let reader = rt.spawn(read(
        client,
        stream,
        durable,
        ack_floor,
        opts.rebuild_window,
        filter,
        opts.cluster.clone(),
        url.clone(),
        tx,
    ));

    let mut st = Consumer::new(opts, Core::new(opts.detect.clone()).live())?;
    metrics.with(|m| m.connected = true);
    let mut last_msg = Instant::now();
    let mut warnings = Vec::new();
    let lateness = opts.max_lateness.max(Duration::from_millis(100));
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let got = rt
            .block_on(async { tokio::time::timeout(Duration::from_millis(200), rx.recv()).await });
        match got {
            Ok(Some(Net::Msg {
                headers,
                payload,
                received,
                stream_seq,
                rebuild,
            })) => {
                last_msg = Instant::now();
                st.summary.rebuilt += u64::from(rebuild);
                st.message(
                    headers.as_ref(),
                    &payload,
                    received,
                    stream_seq,
                    metrics,
                    warn,
                );
            }
            Ok(Some(Net::Snapshot(objects))) => {
                st.summary.snapshot = objects.len() as u64;
                st.out.extend(objects);
            }
            Ok(Some(Net::Lag(n))) => metrics.with(|m| m.lag = Some(n)),
            Ok(Some(Net::Connected(c))) => metrics.with(|m| m.connected = c),
            Ok(Some(Net::Failed(e))) => break Err(e),
            Ok(None) => break Err(Error::nats(&url, "the stream reader stopped")),
            Err(_) => {
                // Between messages the server's clock goes on: what has waited its window goes.
                let now = Ts(st
                    .last_received
                    .0
                    .saturating_add(last_msg.elapsed().as_nanos() as u64));
                st.reorder.advance_to(now, &mut st.out);
                // Quiet for the whole window: nothing more is waited for, and time goes on.
                if last_msg.elapsed() >= lateness && st.reorder.pending() > 0 {
                    st.reorder.flush(&mut st.out);
                }
                if last_msg.elapsed() >= lateness && st.out.is_empty() && st.core.events() > 0 {
                    let now = Ts(crate::capture::now()
                        .0
                        .saturating_sub(lateness.as_nanos() as u64));
                    let idle = Ts(st
                        .core
                        .last_ts()
                        .0
                        .saturating_add(last_msg.elapsed().as_nanos() as u64));
                    let to = now.max(idle);
                    if to > st.core.last_ts() {
                        let notes = st.skew.applied();
                        let mut out = Out {
                            notes: &notes,
                            ledger: &mut ledger,
                            metrics,
                            sink,
                            rt: rt.handle(),
                            url: &url,
                            warnings: &mut warnings,
                        };
                        st.core.advance(to, &mut |c| out.hand_out(c));
                    }
                }
            }
        }
        st.feed(&mut Out {
            notes: &st.skew.applied(),
            ledger: &mut ledger,
            metrics,
            sink,
            rt: rt.handle(),
            url: &url,
            warnings: &mut warnings,
        });
        for w in warnings.drain(..) {
            warn(w);
        }
    };
    reader.abort();
    result?;
    st.summary.late = st.reorder.late;
    st.summary.skew = st.skew.report();
    Ok(st.summary)
}

struct Consumer {
    core: Core,
    reorder: Reorder,
    skew: Skew,
    /// Batches seen, per node and run (resends and redeliveries are skipped).
    seen: wire::Seen,
    zstd: zstd::bulk::Decompressor<'static>,
    summary: Summary,
    garbage: Said,
    /// Released by the reorder window, to feed.
    out: Vec<crate::event::Event>,
    /// The stream time of the newest message.
    last_received: Ts,
}

impl Consumer {
    fn new(opts: &FollowOptions, core: Core) -> Result<Consumer, Error> {
        Ok(Consumer {
            core,
            reorder: Reorder::new(opts.max_lateness.as_nanos() as u64),
            skew: Skew::new(opts.skew_threshold.map(|d| d.as_nanos() as u64)),
            seen: wire::Seen::default(),
            zstd: zstd::bulk::Decompressor::new()
                .map_err(|e| Error::Other(format!("cannot start a zstd decoder: {e}")))?,
            summary: Summary::default(),
            garbage: Said(0),
            out: Vec::new(),
            last_received: Ts(0),
        })
    }

    fn message(
        &mut self,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
        received: Ts,
        stream_seq: u64,
        metrics: &Metrics,
        warn: &mut dyn FnMut(String),
    ) {
        self.summary.messages += 1;
        self.last_received = self.last_received.max(received);
        metrics.with(|m| m.messages += 1);
        let mut b = match wire::decode(headers, payload, received, stream_seq, &mut self.zstd) {
            Ok(b) => b,
            Err(why) => {
                self.summary.garbage += 1;
                metrics.with(|m| m.garbage += 1);
                if self.garbage.say() {
                    warn(format!(
                        "stream message {stream_seq} skipped ({} such so far): {why}",
                        self.garbage.0
                    ));
                }
                return;
            }
        };
        if !self.seen.first_time(&b) {
            self.summary.duplicates += 1;
            metrics.with(|m| m.duplicates += 1);
            return;
        }
        let correction = match b.sent {
            Some(sent) => {
                let at = b.events.first().map_or(received, |e| e.ts);
                self.skew.observe(&b.node, sent, received, at)
            }
            None => 0,
        };
        if correction != 0 {
            for e in &mut b.events {
                e.ts = skew::correct(e.ts, correction);
            }
        }
        self.summary.events += b.events.len() as u64;
        metrics.with(|m| {
            *m.events
                .entry((b.node.clone(), b.source.clone()))
                .or_default() += b.events.len() as u64;
            for e in &b.events {
                if let Body::Meta(Meta::Drop { count, .. }) = &e.body {
                    *m.dropped.entry(b.node.clone()).or_default() += count;
                }
            }
            if let Some(s) = b.spool_bytes {
                m.spool_bytes.insert(b.node.clone(), s);
            }
            for s in self.skew.report() {
                m.skew.insert(s.node, (s.estimate_ns, s.applied_ns));
            }
        });
        let input = format!("{}/{}", b.node, b.source);
        self.reorder.push(&input, received, b.events, &mut self.out);
        metrics.with(|m| {
            m.late = self.reorder.late;
            m.forced = self.reorder.forced;
        });
    }

    fn feed(&mut self, out: &mut Out<'_, '_>) {
        if self.out.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.out);
        self.core.feed(&batch, &mut |c| out.hand_out(c));
        self.out = batch;
        self.out.clear();
    }
}

/// Where the core's changes go: numbered by the ledger, with the clock corrections noted, and
/// handed out once. A change is written to the ledger before it is printed: a consumer killed in
/// between leaves out that one line (the incident's next change, or its close, says it all), and
/// never prints a line twice.
struct Out<'a, 's> {
    notes: &'a [(String, i64, Ts)],
    ledger: &'a mut Ledger,
    metrics: &'a Metrics,
    sink: &'a mut Sink<'s>,
    rt: &'a tokio::runtime::Handle,
    url: &'a str,
    warnings: &'a mut Vec<String>,
}

impl Out<'_, '_> {
    fn hand_out(&mut self, c: Change<'_>) {
        let id = self.ledger.id(c.id, c.incident, c.state);
        let merged_into = c.merged_into.map(|m| self.ledger.known(m).unwrap_or(m));
        if !self.ledger.first_time(id, c.state, &c.changed) {
            return;
        }
        // NATS away: the ledger waits for it (it reconnects within seconds); past half a
        // minute the change is printed anyway and the ledger saved with the next one.
        let start = Instant::now();
        while let Err(e) = self.rt.block_on(self.ledger.save(self.url)) {
            if start.elapsed() >= Duration::from_secs(30) {
                self.warnings
                    .push(format!("{e}: printing without recording it in the ledger"));
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut inc = c.incident.clone();
        note_skews(&mut inc, self.notes);
        let change = Change {
            id,
            merged_into,
            incident: &inc,
            ..c
        };
        self.metrics.change(&change);
        (self.sink)(change);
    }
}

fn ts_of(t: time::OffsetDateTime) -> Ts {
    Ts(t.unix_timestamp_nanos().max(0) as u64)
}

/// Reads the stream: first again up to `ack_floor` (the last delivered before; rebuilding after
/// a restart), then on with the durable consumer, acknowledging as it goes; reports the lag and
/// the connection. The rebuild reads the last `window` (of stream time) before the floor; what
/// came earlier gives only the Kubernetes objects as they stood (the snapshot), so that a restart
/// takes the time of the window, not of the stream's whole retention.
#[allow(clippy::too_many_arguments)]
async fn read(
    client: async_nats::Client,
    mut stream: jetstream::stream::Stream,
    durable: consumer::PullConsumer,
    ack_floor: u64,
    window: Option<Duration>,
    filter: String,
    cluster: String,
    url: String,
    tx: mpsc::Sender<Net>,
) {
    if ack_floor > 0 {
        let last = match stream.info().await {
            Ok(i) => i.state.last_sequence,
            Err(e) => {
                let _ = tx
                    .send(Net::Failed(Error::nats(&url, format!("stream info: {e}"))))
                    .await;
                return;
            }
        };
        let upto = ack_floor.min(last);
        let mut from = consumer::DeliverPolicy::All;
        if let Some(w) = window {
            let end = match stream.get_raw_message(upto).await {
                Ok(m) => ts_of(m.time),
                // Gone: everything is read.
                Err(_) => Ts(u64::MAX),
            };
            let start = Ts(end.0.saturating_sub(w.as_nanos() as u64));
            let first_seq = stream
                .info()
                .await
                .map_or(1, |i| i.state.first_sequence.max(1));
            let first = match stream.get_raw_message(first_seq).await {
                Ok(m) => ts_of(m.time),
                Err(_) => Ts(0),
            };
            if end.0 != u64::MAX && first < start {
                match super::pull::objects_received_before(&stream, &cluster, start, upto, &url)
                    .await
                {
                    Ok(objects) => {
                        if tx.send(Net::Snapshot(objects)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Net::Failed(e)).await;
                        return;
                    }
                }
                from = consumer::DeliverPolicy::ByStartTime {
                    start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                        start.0,
                    ))
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                };
            }
        }
        // What is gone (removed by the stream's limits) is not waited for.
        if !read_to(&stream, upto, from, &filter, &url, &tx, true).await {
            return;
        }
    }
    let mut last_info = Instant::now();
    loop {
        let mut msgs = match durable.messages().await {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Net::Connected(false)).await;
                let _ = e;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut unacked: Option<jetstream::Message> = None;
        let mut since_ack = 0u32;
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), msgs.next()).await;
            let connected = client.connection_state() == async_nats::connection::State::Connected;
            if last_info.elapsed() >= Duration::from_secs(2) {
                last_info = Instant::now();
                let _ = tx.send(Net::Connected(connected)).await;
                let mut d = durable.clone();
                if let Ok(i) = d.info().await {
                    let _ = tx.send(Net::Lag(i.num_pending)).await;
                }
            }
            match next {
                Ok(Some(Ok(m))) => {
                    let Ok(info) = m.info() else { continue };
                    let msg = Net::Msg {
                        headers: m.headers.clone(),
                        payload: m.payload.clone(),
                        received: ts_of(info.published),
                        stream_seq: info.stream_sequence,
                        rebuild: false,
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                    since_ack += 1;
                    unacked = Some(m);
                    if since_ack >= 100 {
                        if let Some(m) = unacked.take() {
                            let _ = m.ack().await;
                        }
                        since_ack = 0;
                    }
                }
                Ok(Some(Err(_))) | Ok(None) => {
                    let _ = tx.send(Net::Connected(false)).await;
                    break;
                }
                Err(_) => {
                    if let Some(m) = unacked.take() {
                        let _ = m.ack().await;
                        since_ack = 0;
                    }
                }
            }
        }
        if let Some(m) = unacked.take() {
            let _ = m.ack().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `tapio replay nats://…`: the stream as it stands now, read to its end through the consumer's
/// dedupe, clock correction and reorder window, as one replay: every incident closes at the end,
/// and the verdict is the one `tapio replay` gives for the nodes' captures merged.
pub fn replay(
    opts: &FollowOptions,
    warn: &mut dyn FnMut(String),
    sink: &mut Sink<'_>,
) -> Result<(crate::pipeline::Finished, Summary), Error> {
    let url = opts.nats.url.clone();
    let rt = super::runtime()?;
    let metrics = Metrics::default();
    let mut st = Consumer::new(opts, Core::new(opts.detect.clone()))?;
    let filter = super::filter(&opts.cluster, opts.node.as_deref());
    let (tx, mut rx) = mpsc::channel::<Net>(1024);
    rt.block_on(async {
        let client = super::connect(&opts.nats, "tapio replay", false).await?;
        let js = jetstream::new(client.clone());
        let mut stream = super::get_stream(&js, &url, &opts.stream).await?;
        let last = stream
            .info()
            .await
            .map_err(|e| Error::nats(&url, format!("stream {}: {e}", opts.stream)))?
            .state
            .last_sequence;
        let url = url.clone();
        tokio::spawn(async move {
            let all = consumer::DeliverPolicy::All;
            read_to(&stream, last, all, &filter, &url, &tx, false).await
        });
        Ok::<_, Error>(())
    })?;
    while let Some(net) = rt.block_on(rx.recv()) {
        match net {
            Net::Msg {
                headers,
                payload,
                received,
                stream_seq,
                ..
            } => {
                st.message(
                    headers.as_ref(),
                    &payload,
                    received,
                    stream_seq,
                    &metrics,
                    warn,
                );
                if !st.out.is_empty() {
                    let batch = std::mem::take(&mut st.out);
                    st.core.feed(&batch, sink);
                }
            }
            Net::Failed(e) => return Err(e),
            _ => {}
        }
    }
    st.reorder.flush(&mut st.out);
    let batch = std::mem::take(&mut st.out);
    st.core.feed(&batch, sink);
    st.summary.late = st.reorder.late;
    st.summary.skew = st.skew.report();
    let mut finished = st.core.finish(&[], sink);
    // The clock corrections, on every incident they may have changed.
    let applied = st.skew.applied();
    for inc in &mut finished.verdict.incidents {
        note_skews(inc, &applied);
    }
    Ok((finished, st.summary))
}

/// The clock corrections in force since before the incident ended, said on it.
fn note_skews(inc: &mut crate::analysis::Incident, applied: &[(String, i64, Ts)]) {
    for (node, ns, since) in applied {
        if inc.end >= *since {
            inc.notes.push(skew_note(node, *ns));
        }
    }
}

fn skew_note(node: &str, ns: i64) -> String {
    format!(
        "the events of node {node} were moved by {} to the NATS server's clock (the node's clock was {} {})",
        skew::seconds(-ns),
        skew::seconds(ns.abs()).trim_start_matches('+'),
        if ns > 0 { "ahead" } else { "behind" }
    )
}

/// Reads the stream from its beginning to sequence `last` (an ordered consumer) into `tx`;
/// `false` when the receiver is gone or reading failed (said on `tx`).
async fn read_to(
    stream: &jetstream::stream::Stream,
    last: u64,
    from: consumer::DeliverPolicy,
    filter: &str,
    url: &str,
    tx: &mpsc::Sender<Net>,
    rebuild: bool,
) -> bool {
    if last == 0 {
        return true;
    }
    let failed = |what: String| Net::Failed(Error::nats(url, what));
    let c = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: from,
            ..Default::default()
        })
        .await;
    let mut msgs = match c {
        Ok(c) => match c.messages().await {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(failed(format!("reading {filter}: {e}"))).await;
                return false;
            }
        },
        Err(e) => {
            let _ = tx.send(failed(format!("reading {filter}: {e}"))).await;
            return false;
        }
    };
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), msgs.next()).await;
        let m = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                let _ = tx.send(failed(format!("reading {filter}: {e}"))).await;
                return false;
            }
            // Nothing more of this filter up to the end.
            Ok(None) | Err(_) => return true,
        };
        let Ok(info) = m.info() else { continue };
        let seq = info.stream_sequence;
        if seq > last {
            return true;
        }
        let msg = Net::Msg {
            headers: m.headers.clone(),
            payload: m.payload.clone(),
            received: ts_of(info.published),
            stream_seq: seq,
            rebuild,
        };
        if tx.send(msg).await.is_err() {
            return false;
        }
        if seq >= last {
            return true;
        }
    }
}
