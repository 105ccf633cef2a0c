//! Block encoding: events → postcard records → zstd, and back.
//!
//! Inside a block, timestamps and sequence numbers are stored as deltas from the previous event
//! (zigzag varints: one or two bytes for a steady stream) and node names as indexes into a small
//! table at the start of the block. That, and zstd over the whole block, is what keeps a
//! kernel-heavy capture under its budget of bytes per event.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{Body, Event, Source, Ts};

#[derive(Serialize)]
struct RecordRef<'a> {
    dts: i64,
    dseq: u64,
    node: u32,
    source: Source,
    body: &'a Body,
}

#[derive(Deserialize)]
struct Record {
    dts: i64,
    dseq: u64,
    node: u32,
    source: Source,
    body: Body,
}

/// Accumulates the raw (uncompressed) records of one block.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    nodes: Vec<Arc<str>>,
    records: Vec<u8>,
    pub count: u32,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub first_seq: u64,
    prev_ts: u64,
    prev_seq: u64,
}

impl BlockBuilder {
    pub fn push(&mut self, e: &Event) -> Result<(), postcard::Error> {
        if self.count == 0 {
            self.first_ts = e.ts;
            self.last_ts = e.ts;
            self.first_seq = e.seq;
        }
        let node = match self.nodes.iter().position(|n| **n == *e.node) {
            Some(i) => i,
            None => {
                self.nodes.push(e.node.clone());
                self.nodes.len() - 1
            }
        };
        let rec = RecordRef {
            dts: e.ts.0.wrapping_sub(self.prev_ts) as i64,
            dseq: e.seq.wrapping_sub(self.prev_seq),
            node: node as u32,
            source: e.source,
            body: &e.body,
        };
        self.records = postcard::to_extend(&rec, std::mem::take(&mut self.records))?;
        self.prev_ts = e.ts.0;
        self.prev_seq = e.seq;
        self.count += 1;
        self.first_ts = self.first_ts.min(e.ts);
        self.last_ts = self.last_ts.max(e.ts);
        Ok(())
    }

    pub fn raw_len(&self) -> usize {
        self.records.len()
    }

    /// The raw payload: the node table, then the records.
    pub fn finish(&mut self) -> Result<Vec<u8>, postcard::Error> {
        let nodes: Vec<&str> = self.nodes.iter().map(|n| &**n).collect();
        let mut raw = postcard::to_stdvec(&nodes)?;
        raw.extend_from_slice(&self.records);
        *self = BlockBuilder {
            records: std::mem::take(&mut self.records),
            ..Default::default()
        };
        self.records.clear();
        Ok(raw)
    }
}

/// Decodes the raw payload of a block holding `count` events, appending them to `out`.
pub(crate) fn decode_block(
    raw: &[u8],
    count: u32,
    out: &mut Vec<Event>,
) -> Result<(), postcard::Error> {
    let (names, mut rest): (Vec<&str>, &[u8]) = postcard::take_from_bytes(raw)?;
    let nodes: Vec<Arc<str>> = names.into_iter().map(Arc::from).collect();
    // The first record's deltas are from zero: it carries its absolute time and sequence.
    let (mut ts, mut seq) = (0u64, 0u64);
    out.reserve(count as usize);
    for _ in 0..count {
        let (rec, tail): (Record, &[u8]) = postcard::take_from_bytes(rest)?;
        rest = tail;
        ts = ts.wrapping_add(rec.dts as u64);
        seq = seq.wrapping_add(rec.dseq);
        let node = nodes
            .get(rec.node as usize)
            .cloned()
            .ok_or(postcard::Error::DeserializeBadVarint)?;
        out.push(Event {
            ts: Ts(ts),
            node,
            source: rec.source,
            seq,
            body: rec.body,
        });
    }
    if !rest.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(())
}
