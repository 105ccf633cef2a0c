//! Block encoding: events → postcard records → zstd, and back.
//!
//! Inside a block, timestamps and sequence numbers are stored as deltas from the previous event
//! (zigzag varints: one or two bytes for a steady stream), and every [`Name`] (node, process and
//! cgroup names, attribute keys) is written in full once and then by its number. That, and zstd
//! over the whole block, keeps a kernel-heavy capture near 10 bytes per event and its decoding
//! free of per-event allocations.

use serde::{Deserialize, Serialize};

use crate::event::{with_decoder, with_encoder, Body, EncodeTable, Event, Name, Source, Ts};

#[derive(Serialize)]
struct RecordRef<'a> {
    dts: i64,
    dseq: u64,
    node: &'a Name,
    source: Source,
    body: &'a Body,
}

#[derive(Deserialize)]
struct Record {
    dts: i64,
    dseq: u64,
    node: Name,
    source: Source,
    body: Body,
}

/// Accumulates the raw (uncompressed) records of one block.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    names: EncodeTable,
    records: Vec<u8>,
    scratch: Vec<u8>,
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
        let rec = RecordRef {
            dts: e.ts.0.wrapping_sub(self.prev_ts) as i64,
            dseq: e.seq.wrapping_sub(self.prev_seq),
            node: &e.node,
            source: e.source,
            body: &e.body,
        };
        // Encode into a scratch buffer so that a record that fails leaves the block as it was.
        let names_before = self.names.len();
        let scratch = std::mem::take(&mut self.scratch);
        match with_encoder(&mut self.names, || postcard::to_extend(&rec, scratch)) {
            Ok(mut bytes) => {
                self.records.extend_from_slice(&bytes);
                bytes.clear();
                self.scratch = bytes;
            }
            Err(err) => {
                self.names.truncate(names_before);
                return Err(err);
            }
        }
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

    /// Takes the raw payload and starts a new block (keeping the buffer's allocation).
    pub fn finish(&mut self) -> Vec<u8> {
        let raw = self.records.clone();
        let records = std::mem::take(&mut self.records);
        *self = BlockBuilder {
            records,
            ..Default::default()
        };
        self.records.clear();
        raw
    }
}

/// Decodes the raw payload of a block holding `count` events, appending them to `out`.
pub(crate) fn decode_block(
    raw: &[u8],
    count: u32,
    out: &mut Vec<Event>,
) -> Result<(), postcard::Error> {
    with_decoder(|| {
        // The first record's deltas are from zero: it carries its absolute time and sequence.
        let (mut ts, mut seq) = (0u64, 0u64);
        let mut rest = raw;
        // `count` is checked against the block's size by the reader; cap the reservation anyway.
        out.reserve((count as usize).min(raw.len() / 4));
        for _ in 0..count {
            let (rec, tail): (Record, &[u8]) = postcard::take_from_bytes(rest)?;
            rest = tail;
            ts = ts.wrapping_add(rec.dts as u64);
            seq = seq.wrapping_add(rec.dseq);
            out.push(Event {
                ts: Ts(ts),
                node: rec.node,
                source: rec.source,
                seq,
                body: rec.body,
            });
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(postcard::Error::DeserializeBadEncoding)
        }
    })
}
