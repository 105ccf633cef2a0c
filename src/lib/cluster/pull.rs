//! `tapio pull`: a window of the cluster's stream as an ordinary capture.
//!
//! The Kubernetes objects as they stood at the window's start come first (read from the stream's
//! beginning), so the capture explains its events by itself, as a flight-recorder capture does;
//! then every batch stored from a little before the window to a little after it, with the clock
//! corrections the consumer would apply. Events are kept when their (corrected) time falls in the
//! window, ordered by time, and written with the applied skews in the header.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use super::skew::{self, Skew};
use super::{wire, Error, Nats};
use crate::capture::{Header, WriteOptions, Writer};
use crate::event::{Body, Event, Kube, Ts};

#[derive(Clone, Debug)]
pub struct PullOptions {
    pub nats: Nats,
    pub cluster: String,
    pub stream: String,
    pub nodes: Vec<String>,
    pub since: Option<Ts>,
    pub until: Option<Ts>,
    pub output: PathBuf,
    /// Batches stored this long before `since` (or after `until`) are read too: a node's
    /// publish delay, a spool sent late.
    pub margin: Duration,
    pub skew_threshold: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct PullSummary {
    pub messages: u64,
    pub events: u64,
    /// Kubernetes objects from before the window, written first.
    pub objects: u64,
    pub garbage: u64,
    pub duplicates: u64,
    pub skew: Vec<skew::NodeSkew>,
    pub first: Option<Ts>,
    pub last: Option<Ts>,
}

/// Reads the window and writes the capture.
pub fn pull(opts: &PullOptions, warn: &mut dyn FnMut(String)) -> Result<PullSummary, Error> {
    let rt = super::runtime()?;
    let url = opts.nats.url.clone();
    let (events, objects, mut summary) = rt.block_on(read(opts, &url, warn))?;
    let mut header = Header::new("");
    header.sources = vec![format!("nats:{}/{}", opts.stream, opts.cluster)];
    header
        .options
        .insert("cluster".to_string(), opts.cluster.clone());
    if let Some(s) = opts.since {
        header.options.insert("since".to_string(), s.to_string());
    }
    if let Some(u) = opts.until {
        header.options.insert("until".to_string(), u.to_string());
    }
    for s in summary.skew.iter().filter(|s| s.applied_ns != 0) {
        header.options.insert(
            format!("clock_correction.{}", s.node),
            skew::seconds(-s.applied_ns),
        );
    }
    let mut w = Writer::create(&opts.output, &header, WriteOptions::default())?;
    for mut e in objects.into_iter().chain(events) {
        summary.first.get_or_insert(e.ts);
        summary.last = Some(e.ts);
        w.append(&mut e)?;
    }
    w.finish()?;
    Ok(summary)
}

async fn read(
    opts: &PullOptions,
    url: &str,
    warn: &mut dyn FnMut(String),
) -> Result<(Vec<Event>, Vec<Event>, PullSummary), Error> {
    let client = super::connect(&opts.nats, "tapio pull", false).await?;
    let js = jetstream::new(client);
    let mut stream = super::get_stream(&js, url, &opts.stream).await?;
    let last = stream
        .info()
        .await
        .map_err(|e| Error::nats(url, format!("stream {}: {e}", opts.stream)))?
        .state
        .last_sequence;
    let mut summary = PullSummary::default();
    let mut zstd = zstd::bulk::Decompressor::new()
        .map_err(|e| Error::Other(format!("cannot start a zstd decoder: {e}")))?;
    let margin = opts.margin.as_nanos() as u64;
    let wanted = |node: &str| opts.nodes.is_empty() || opts.nodes.iter().any(|n| n == node);

    // The objects as they stood at the window's start.
    let mut objects: BTreeMap<(String, String, String), Event> = BTreeMap::new();
    if let Some(since) = opts.since {
        // Objects come from the Kubernetes recorder, or from imported dumps.
        for source in ["kube", "import"] {
            let subjects = format!("tapio.{}.*.{source}", super::token(&opts.cluster));
            each(
                &stream,
                &subjects,
                consumer::DeliverPolicy::All,
                last,
                url,
                |h, p, recv, seq| {
                    let Ok(b) = wire::decode(h, p, recv, seq, &mut zstd) else {
                        return true;
                    };
                    // Both clocks past the start: nothing earlier follows (an upload of old
                    // captures is read on, whatever its receive time).
                    let first = b.events.first().map_or(Ts(0), |e| e.ts);
                    if recv.0 > since.0.saturating_add(margin)
                        && first.0 > since.0.saturating_add(margin)
                    {
                        return false;
                    }
                    keep_objects(&mut objects, b.events, Some(since));
                    true
                },
            )
            .await?;
        }
    }
    summary.objects = objects.len() as u64;

    let start = match opts.since {
        Some(s) => consumer::DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                s.0.saturating_sub(margin),
            ))
            .map_err(|e| Error::Other(format!("--since: {e}")))?,
        },
        None => consumer::DeliverPolicy::All,
    };
    let mut skew = Skew::new(opts.skew_threshold.map(|d| d.as_nanos() as u64));
    let mut seen = wire::Seen::default();
    let mut events: Vec<Event> = Vec::new();
    let filter = super::filter(&opts.cluster, None);
    let mut garbage = 0u64;
    each(&stream, &filter, start, last, url, |h, p, recv, seq| {
        summary.messages += 1;
        let mut b = match wire::decode(h, p, recv, seq, &mut zstd) {
            Ok(b) => b,
            Err(why) => {
                garbage += 1;
                if garbage <= 5 {
                    warn(format!("stream message {seq} skipped: {why}"));
                }
                return true;
            }
        };
        // Both clocks past the end: nothing of the window follows.
        let first = b.events.first().map_or(Ts(0), |e| e.ts);
        if let Some(u) = opts.until {
            let end = u.0.saturating_add(margin);
            if recv.0 > end && first.0 > end {
                return false;
            }
        }
        if !wanted(&b.node) {
            return true;
        }
        if !seen.first_time(&b) {
            summary.duplicates += 1;
            return true;
        }
        let correction = match b.sent {
            Some(sent) => skew.observe(&b.node, sent, recv, recv),
            None => 0,
        };
        for mut e in b.events.drain(..) {
            e.ts = skew::correct(e.ts, correction);
            let inside =
                opts.since.is_none_or(|s| e.ts >= s) && opts.until.is_none_or(|u| e.ts <= u);
            if inside {
                events.push(e);
            }
        }
        true
    })
    .await?;
    summary.garbage = garbage;
    // By time; at equal times by node, then as they came (the consumer's tie rule).
    events.sort_by(|a, b| (a.ts, a.node.as_str()).cmp(&(b.ts, b.node.as_str())));
    summary.events = events.len() as u64;
    summary.skew = skew.report();
    let objects: Vec<Event> = {
        let mut o: Vec<Event> = objects.into_values().collect();
        o.sort_by_key(|e| e.ts);
        o
    };
    Ok((events, objects, summary))
}

/// Calls `f` on each message of `filter` from `start` up to stream sequence `last`, until it
/// returns false.
async fn each(
    stream: &jetstream::stream::Stream,
    filter: &str,
    start: consumer::DeliverPolicy,
    last: u64,
    url: &str,
    mut f: impl FnMut(Option<&async_nats::HeaderMap>, &[u8], Ts, u64) -> bool,
) -> Result<(), Error> {
    if last == 0 {
        return Ok(());
    }
    let c = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: start,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::nats(url, format!("reading {filter}: {e}")))?;
    let mut msgs = c
        .messages()
        .await
        .map_err(|e| Error::nats(url, format!("reading {filter}: {e}")))?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), msgs.next()).await;
        let m = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(Error::nats(url, format!("reading {filter}: {e}"))),
            // Nothing more of this filter up to the end.
            Ok(None) | Err(_) => return Ok(()),
        };
        let Ok(info) = m.info() else { continue };
        let seq = info.stream_sequence;
        let recv = Ts(info.published.unix_timestamp_nanos().max(0) as u64);
        if !f(m.headers.as_ref(), &m.payload, recv, seq) || seq >= last {
            return Ok(());
        }
    }
}

/// The Kubernetes objects as they stood in the messages the stream received before `start` (its
/// receive clock), up to sequence `last`: the last state of each, deletions applied, by time.
pub(super) async fn objects_received_before(
    stream: &jetstream::stream::Stream,
    cluster: &str,
    start: Ts,
    last: u64,
    url: &str,
) -> Result<Vec<Event>, Error> {
    let mut zstd = zstd::bulk::Decompressor::new()
        .map_err(|e| Error::Other(format!("cannot start a zstd decoder: {e}")))?;
    let mut objects: BTreeMap<(String, String, String), Event> = BTreeMap::new();
    for source in ["kube", "import"] {
        let subjects = format!("tapio.{}.*.{source}", super::token(cluster));
        each(
            stream,
            &subjects,
            consumer::DeliverPolicy::All,
            last,
            url,
            |h, p, recv, seq| {
                if recv >= start {
                    return false;
                }
                if let Ok(b) = wire::decode(h, p, recv, seq, &mut zstd) {
                    keep_objects(&mut objects, b.events, None);
                }
                true
            },
        )
        .await?;
    }
    let mut o: Vec<Event> = objects.into_values().collect();
    o.sort_by_key(|e| e.ts);
    Ok(o)
}

/// Keeps the last state of each Kubernetes object among `events` (those before `before`).
fn keep_objects(
    objects: &mut BTreeMap<(String, String, String), Event>,
    events: Vec<Event>,
    before: Option<Ts>,
) {
    for e in events
        .into_iter()
        .filter(|e| before.is_none_or(|b| e.ts < b))
    {
        if let Body::Kube(Kube::Object(o)) = &e.body {
            let key = (
                o.kind.to_string(),
                o.namespace.to_string(),
                o.name.to_string(),
            );
            if o.action == crate::event::ObjectAction::Deleted {
                objects.remove(&key);
            } else {
                objects.insert(key, e);
            }
        }
    }
}
