//! A batch on the wire: one node's events of one source, as one block frame of the capture format,
//! with the headers that say whose they are and let JetStream drop resends.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::capture::{decode_frame, FrameEncoder};
use crate::event::{Event, Ts};

/// The wire version (`Tapio-Batch`). A consumer refuses versions it does not know.
pub const WIRE_VERSION: &str = "1";
/// The raw size a batch is cut at: its frame stays under NATS's default 1 MiB payload limit even
/// when nothing compresses.
pub const MAX_RAW: usize = 768 << 10;

pub const H_MSG_ID: &str = "Nats-Msg-Id";
pub const H_BATCH: &str = "Tapio-Batch";
pub const H_NODE: &str = "Tapio-Node";
pub const H_SOURCE: &str = "Tapio-Source";
pub const H_RUN: &str = "Tapio-Run";
pub const H_SEQ: &str = "Tapio-Seq";
pub const H_SENT: &str = "Tapio-Sent";
pub const H_SPOOL: &str = "Tapio-Spool-Bytes";

/// A batch ready to send (and to spool: it is written to disk as it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub subject: String,
    pub node: String,
    pub source: String,
    pub run: String,
    pub seq: u64,
    pub events: u32,
    pub first_ts: Ts,
    pub last_ts: Ts,
    /// Sent by a live recorder: its clock stamps `Tapio-Sent`, for the consumer's skew estimate.
    pub live_clock: bool,
    pub frame: Vec<u8>,
}

impl Outgoing {
    /// The message id JetStream deduplicates on.
    pub fn id(&self) -> String {
        format!("{}.{}.{}", super::token(&self.node), self.run, self.seq)
    }

    /// The message's headers, with the sender's clock now (`sent`) when it is a live one.
    pub fn headers(&self, sent: Ts, spool_bytes: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(H_MSG_ID, self.id().as_str());
        h.insert(H_BATCH, WIRE_VERSION);
        h.insert(H_NODE, self.node.as_str());
        h.insert(H_SOURCE, self.source.as_str());
        h.insert(H_RUN, self.run.as_str());
        h.insert(H_SEQ, self.seq.to_string().as_str());
        if self.live_clock {
            h.insert(H_SENT, sent.0.to_string().as_str());
        }
        h.insert(H_SPOOL, spool_bytes.to_string().as_str());
        h
    }
}

/// Cuts events into batches: one per node and source, in their order, each under [`MAX_RAW`].
pub struct Batcher {
    encoder: FrameEncoder,
    cluster: String,
    run: String,
    next_seq: u64,
    live_clock: bool,
}

impl Batcher {
    pub fn new(cluster: &str, run: String, live_clock: bool) -> std::io::Result<Batcher> {
        Ok(Batcher {
            encoder: FrameEncoder::new(3)?,
            cluster: cluster.to_string(),
            run,
            next_seq: 0,
            live_clock,
        })
    }

    /// Continues a run's numbering (a spool left by an earlier run of the same id).
    pub fn starting_at(mut self, seq: u64) -> Batcher {
        self.next_seq = seq;
        self
    }

    /// The batches of these events (in time order): grouped by node and source, each group's
    /// order kept. An event that cannot be encoded is skipped and counted in the result's second
    /// part.
    pub fn batches(&mut self, events: &[Event]) -> (Vec<Outgoing>, u64) {
        let mut groups: BTreeMap<(&str, &str), Vec<&Event>> = BTreeMap::new();
        for e in events {
            groups
                .entry((e.node.as_str(), e.source.as_str()))
                .or_default()
                .push(e);
        }
        let mut out = Vec::new();
        let mut failed = 0;
        for ((node, source), group) in groups {
            let node = if node.is_empty() { "cluster" } else { node };
            let mut first: Option<&Event> = None;
            let mut last_ts = Ts(0);
            for e in group {
                if self.encoder.push(e).is_err() {
                    failed += 1;
                    continue;
                }
                first.get_or_insert(e);
                last_ts = last_ts.max(e.ts);
                if self.encoder.raw_len() >= MAX_RAW {
                    self.cut(node, source, first.take(), last_ts, &mut out);
                    last_ts = Ts(0);
                }
            }
            if self.encoder.count() > 0 {
                self.cut(node, source, first, last_ts, &mut out);
            }
        }
        (out, failed)
    }

    fn cut(
        &mut self,
        node: &str,
        source: &str,
        first: Option<&Event>,
        last_ts: Ts,
        out: &mut Vec<Outgoing>,
    ) {
        let events = self.encoder.count();
        let Ok(frame) = self.encoder.finish() else {
            return;
        };
        out.push(Outgoing {
            subject: super::subject(&self.cluster, node, source),
            node: node.to_string(),
            source: source.to_string(),
            run: self.run.clone(),
            seq: self.next_seq,
            events,
            first_ts: first.map_or(last_ts, |e| e.ts),
            last_ts,
            live_clock: self.live_clock,
            frame,
        });
        self.next_seq += 1;
    }
}

/// A batch as received.
#[derive(Debug)]
pub struct Incoming {
    pub node: String,
    pub source: String,
    pub run: String,
    pub seq: u64,
    /// The sender's clock when it sent the batch (live recorders only).
    pub sent: Option<Ts>,
    /// When the stream stored it (the NATS server's clock).
    pub received: Ts,
    pub stream_seq: u64,
    pub spool_bytes: Option<u64>,
    pub events: Vec<Event>,
}

/// Reads a message of the stream; says why one is not a tapio batch.
pub fn decode(
    headers: Option<&HeaderMap>,
    payload: &[u8],
    received: Ts,
    stream_seq: u64,
    zstd: &mut zstd::bulk::Decompressor<'static>,
) -> Result<Incoming, String> {
    let h = headers.ok_or("no headers (not a tapio batch)")?;
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string());
    match get(H_BATCH).as_deref() {
        Some(WIRE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "wire version {v:?}, this tapio reads {WIRE_VERSION}"
            ))
        }
        None => return Err(format!("no {H_BATCH} header (not a tapio batch)")),
    }
    let need = |k: &str| get(k).ok_or_else(|| format!("no {k} header"));
    let num = |k: &str| -> Result<Option<u64>, String> {
        get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{k}: {v:?} is not a number"))
            })
            .transpose()
    };
    let mut events = Vec::new();
    decode_frame(payload, zstd, &mut events)?;
    Ok(Incoming {
        node: need(H_NODE)?,
        source: need(H_SOURCE)?,
        run: need(H_RUN)?,
        seq: num(H_SEQ)?.ok_or_else(|| format!("no {H_SEQ} header"))?,
        sent: num(H_SENT)?.map(Ts),
        received,
        stream_seq,
        spool_bytes: num(H_SPOOL)?,
        events,
    })
}

/// The batches seen, per node and run: a resend or a redelivery is known by its number. Memory is
/// bounded: past 100,000 numbers of a run, those far behind are forgotten.
#[derive(Default)]
pub struct Seen(std::collections::HashMap<(String, String), std::collections::BTreeSet<u64>>);

impl Seen {
    /// Whether this batch is new (and remembers it).
    pub fn first_time(&mut self, b: &Incoming) -> bool {
        let seen = self.0.entry((b.node.clone(), b.run.clone())).or_default();
        if !seen.insert(b.seq) {
            return false;
        }
        if seen.len() > 100_000 {
            let cut = b.seq.saturating_sub(50_000);
            *seen = seen.split_off(&cut);
        }
        true
    }
}

/// A run id: random for a recorder, or derived from what is sent (`tapio publish` of the same
/// captures twice gives the same ids, and JetStream drops the second copy within its window).
pub fn run_id(seed: Option<&[u8]>) -> String {
    let bytes: Vec<u8> = match seed {
        Some(s) => ring::digest::digest(&ring::digest::SHA256, s).as_ref()[..6].to_vec(),
        None => {
            let mut b = [0u8; 6];
            let rng = ring::rand::SystemRandom::new();
            if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
                let t = crate::capture::now().0 ^ u64::from(std::process::id());
                b.copy_from_slice(&t.to_le_bytes()[..6]);
            }
            b.to_vec()
        }
    };
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Meta, Source};

    fn ev(ts: u64, node: &str, source: Source) -> Event {
        Event::new(
            Ts(ts),
            node,
            source,
            Body::Meta(Meta::Annotation {
                text: format!("{node} {ts}"),
            }),
        )
    }

    #[test]
    fn batches_group_by_node_and_source_and_read_back_with_their_headers() {
        let events = vec![
            ev(1, "a", Source::Ebpf),
            ev(2, "b.x", Source::Kube),
            ev(3, "a", Source::Ebpf),
            ev(4, "a", Source::Otlp),
        ];
        let mut b = Batcher::new("prod", "r1".into(), true).unwrap();
        let (out, failed) = b.batches(&events);
        assert_eq!(failed, 0);
        let subjects: Vec<&str> = out.iter().map(|o| o.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "tapio.prod.a.ebpf",
                "tapio.prod.a.otlp",
                "tapio.prod.b_x.kube"
            ]
        );
        assert_eq!(out[0].id(), "a.r1.0");
        assert_eq!(out[2].id(), "b_x.r1.2");
        let mut z = zstd::bulk::Decompressor::new().unwrap();
        let h = out[0].headers(Ts(99), 7);
        let got = decode(Some(&h), &out[0].frame, Ts(100), 5, &mut z).unwrap();
        assert_eq!(
            (got.node.as_str(), got.seq, got.sent),
            ("a", 0, Some(Ts(99)))
        );
        assert_eq!(got.events.len(), 2);
        assert_eq!(got.spool_bytes, Some(7));
        // Not a batch: said so, never a panic.
        assert!(decode(None, b"hello", Ts(0), 1, &mut z).is_err());
        let mut h2 = HeaderMap::new();
        h2.insert(H_BATCH, "1");
        assert!(decode(Some(&h2), b"hello", Ts(0), 1, &mut z).is_err());
        assert!(decode(Some(&h), b"TBLKhello", Ts(0), 1, &mut z).is_err());
    }
}
