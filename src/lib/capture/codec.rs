//! Block encoding: events → postcard records → zstd, and back.
//!
//! Inside a block, timestamps and sequence numbers are stored as deltas from the previous event
//! (zigzag varints: one or two bytes for a steady stream), and every [`Name`] (node, process and
//! cgroup names, attribute keys) is written in full once and then by its number. That, and zstd
//! over the whole block, keeps a kernel-heavy capture near 10 bytes per event and its decoding
//! free of per-event allocations.

use std::net::IpAddr;

use serde::Serialize;

use crate::event::{
    with_encoder, with_names, AttrValue, Attribute, Body, EncodeTable, Event, Exec, Exit, Kernel,
    Name, Source, Span, SpanEvent, SpanId, SpanKind, StatusCode, TcpMeaning, TcpState,
    TcpStateChange, TraceId, Ts,
};

#[derive(Serialize)]
struct RecordRef<'a> {
    dts: i64,
    dseq: u64,
    node: &'a Name,
    source: Source,
    body: &'a Body,
}

#[cfg(test)]
#[derive(serde::Deserialize)]
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
///
/// The frequent records (the kernel's exec, exit and TCP state changes: nine in ten events of a
/// busy node; and spans, the costliest to read) are read here directly, byte for byte as
/// postcard wrote them, with the block's name table in hand; the others go through serde with
/// the same table. Both readers accept the same bytes and read them the same (a unit test holds
/// them to it on damaged blocks), but for arrays nested past [`MAX_NESTING`] in a span's
/// attribute, which only this one refuses.
///
/// `table` is scratch space for the block's name table and shared strings, kept by the caller
/// from block to block for its memory; it is left empty.
pub(crate) fn decode_block(
    raw: &[u8],
    count: u32,
    out: &mut Vec<Event>,
    table: &mut BlockTable,
) -> Result<(), postcard::Error> {
    table.clear();
    let decoded = decode_records(raw, count, out, table);
    table.clear();
    decoded
}

/// What one block's records share while they are read: its names by number, and the short
/// strings of its spans (names, attribute values) already met, so that a value repeated from
/// span to span — a resource's pod and namespace, a method, a route — is one shared string, not
/// a copy per span to allocate and free.
#[derive(Default)]
pub(crate) struct BlockTable {
    names: Vec<Name>,
    strings: hashbrown::HashSet<Name, rustc_hash::FxBuildHasher>,
}

impl BlockTable {
    fn clear(&mut self) {
        self.names.clear();
        self.strings.clear();
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.names.is_empty() && self.strings.is_empty()
    }

    /// `s`, shared with its earlier occurrences in the block. Long strings (a statement, a stack
    /// trace) are rarely repeated and costly to hash: they are not looked up.
    fn shared(&mut self, s: &str) -> Name {
        if s.len() > MAX_SHARED {
            return Name::from(s);
        }
        self.strings
            .get_or_insert_with(s, |s| Name::from(s))
            .clone()
    }
}

/// The longest string [`BlockTable::shared`] looks up.
const MAX_SHARED: usize = 128;

fn decode_records(
    raw: &[u8],
    count: u32,
    out: &mut Vec<Event>,
    table: &mut BlockTable,
) -> Result<(), postcard::Error> {
    // The first record's deltas are from zero: it carries its absolute time and sequence.
    let (mut ts, mut seq) = (0u64, 0u64);
    let mut r = Bytes(raw);
    // `count` is checked against the block's size by the reader; cap the reservation anyway.
    out.reserve((count as usize).min(raw.len() / 4));
    for _ in 0..count {
        ts = ts.wrapping_add(r.zigzag_i64()? as u64);
        seq = seq.wrapping_add(r.varint_u64()?);
        let node = r.name(&mut table.names)?;
        let source = r.source()?;
        let body = match r.body(table)? {
            Some(body) => body,
            None => {
                let (body, tail) =
                    with_names(&mut table.names, || postcard::take_from_bytes::<Body>(r.0))?;
                r.0 = tail;
                body
            }
        };
        out.push(Event {
            ts: Ts(ts),
            node,
            source,
            seq,
            body,
        });
    }
    if r.0.is_empty() {
        Ok(())
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

/// How deep arrays may nest in an attribute's value: deeper is a damaged block, refused rather
/// than read at the cost of the stack.
const MAX_NESTING: usize = 32;

/// The rest of a block's records, read as postcard reads them.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> Result<u8, postcard::Error> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], postcard::Error> {
        if self.0.len() < n {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// `N` bytes as they are (ids, addresses, floats).
    fn array<const N: usize>(&mut self) -> Result<[u8; N], postcard::Error> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.0 = rest;
        Ok(*head)
    }

    /// One of a field-less enum's variants, by its index: `all` lists them in the order they are
    /// declared, which is the order serde numbers them.
    fn variant<T: Copy>(&mut self, all: &[T]) -> Result<T, postcard::Error> {
        let i = self.varint_u32()? as usize;
        all.get(i).copied().ok_or(postcard::Error::SerdeDeCustom)
    }

    /// A varint of at most `max` bytes whose last byte fits the type's remaining `last` bits, as
    /// postcard requires.
    #[inline(always)]
    fn varint(&mut self, max: usize, last: u8) -> Result<u64, postcard::Error> {
        // Most are one byte: tags, name numbers, small counts.
        if let Some((&b, rest)) = self.0.split_first() {
            if b & 0x80 == 0 {
                self.0 = rest;
                return Ok(u64::from(b));
            }
        }
        let mut out = 0u64;
        for i in 0..max {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max - 1 && b > last {
                    return Err(postcard::Error::DeserializeBadVarint);
                }
                return Ok(out);
            }
        }
        Err(postcard::Error::DeserializeBadVarint)
    }

    #[inline(always)]
    fn varint_u64(&mut self) -> Result<u64, postcard::Error> {
        self.varint(10, 1)
    }

    #[inline(always)]
    fn varint_u32(&mut self) -> Result<u32, postcard::Error> {
        Ok(self.varint(5, 15)? as u32)
    }

    #[inline(always)]
    fn varint_u16(&mut self) -> Result<u16, postcard::Error> {
        Ok(self.varint(3, 3)? as u16)
    }

    #[inline(always)]
    fn zigzag_i64(&mut self) -> Result<i64, postcard::Error> {
        let n = self.varint_u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    #[inline(always)]
    fn zigzag_i32(&mut self) -> Result<i32, postcard::Error> {
        let n = self.varint_u32()?;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    fn str(&mut self) -> Result<&'a str, postcard::Error> {
        let len = self.varint_u64()?;
        let bytes = self
            .take(usize::try_from(len).map_err(|_| postcard::Error::DeserializeUnexpectedEnd)?)?;
        std::str::from_utf8(bytes).map_err(|_| postcard::Error::DeserializeBadUtf8)
    }

    /// A [`Name`]: in full the first time in the block, then by its number.
    #[inline(always)]
    fn name(&mut self, names: &mut Vec<Name>) -> Result<Name, postcard::Error> {
        match self.varint_u32()? {
            0 => self.new_name(names),
            1 => {
                let id = self.varint_u32()?;
                names
                    .get(id as usize)
                    .cloned()
                    .ok_or(postcard::Error::SerdeDeCustom)
            }
            _ => Err(postcard::Error::SerdeDeCustom),
        }
    }

    /// A name new to the block (the first of its uses there).
    #[inline(never)]
    fn new_name(&mut self, names: &mut Vec<Name>) -> Result<Name, postcard::Error> {
        let name = Name::interned(self.str()?);
        names.push(name.clone());
        Ok(name)
    }

    fn source(&mut self) -> Result<Source, postcard::Error> {
        use Source::*;
        self.variant(&[Ebpf, Kube, Otlp, Kmsg, PodLogs, Import, Tapio])
    }

    /// The body when it is a span or one of the frequent kernel records; otherwise `None`, and
    /// nothing of it read.
    fn body(&mut self, table: &mut BlockTable) -> Result<Option<Body>, postcard::Error> {
        let at = self.0;
        // `Body::Kernel` is variant 0, `Body::Span` 2.
        match self.varint_u32().ok() {
            Some(0) => {}
            Some(2) => return Ok(Some(Body::Span(Box::new(self.span(table)?)))),
            _ => {
                self.0 = at;
                return Ok(None);
            }
        }
        let names = &mut table.names;
        let k = match self.varint_u32().ok() {
            Some(0) => Kernel::Exec(Exec {
                pid: self.varint_u32()?,
                ppid: self.varint_u32()?,
                comm: self.name(names)?,
                filename: self.name(names)?,
                cgroup: self.name(names)?,
            }),
            Some(1) => Kernel::Exit(Exit {
                pid: self.varint_u32()?,
                comm: self.name(names)?,
                code: self.zigzag_i32()?,
                signal: self.byte()?,
                cgroup: self.name(names)?,
            }),
            Some(4) => Kernel::TcpState(TcpStateChange {
                pid: self.varint_u32()?,
                saddr: self.ip()?,
                sport: self.varint_u16()?,
                daddr: self.ip()?,
                dport: self.varint_u16()?,
                old: self.tcp_state()?,
                new: self.tcp_state()?,
                meaning: self.tcp_meaning()?,
            }),
            _ => {
                self.0 = at;
                return Ok(None);
            }
        };
        Ok(Some(Body::Kernel(k)))
    }

    fn bool(&mut self) -> Result<bool, postcard::Error> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(postcard::Error::DeserializeBadBool),
        }
    }

    /// A sequence's length; its items are at least a byte each, so no more are reserved than
    /// the bytes left.
    fn len(&mut self) -> Result<(usize, usize), postcard::Error> {
        let n = usize::try_from(self.varint_u64()?)
            .map_err(|_| postcard::Error::DeserializeUnexpectedEnd)?;
        Ok((n, n.min(self.0.len())))
    }

    fn span(&mut self, table: &mut BlockTable) -> Result<Span, postcard::Error> {
        let trace_id = TraceId(self.array()?);
        let span_id = SpanId(self.array()?);
        let parent_span_id = match self.byte()? {
            0 => None,
            1 => Some(SpanId(self.array()?)),
            _ => return Err(postcard::Error::DeserializeBadOption),
        };
        let name = table.shared(self.str()?);
        let kind = {
            use SpanKind::*;
            self.variant(&[Unspecified, Internal, Server, Client, Producer, Consumer])?
        };
        let start = Ts(self.varint_u64()?);
        let end = Ts(self.varint_u64()?);
        let status = self.variant(&[StatusCode::Unset, StatusCode::Ok, StatusCode::Error])?;
        let status_message = self.str()?.to_string();
        let service = self.name(&mut table.names)?;
        let resource = self.attributes(table)?;
        let attributes = self.attributes(table)?;
        let (n, cap) = self.len()?;
        let mut events = Vec::with_capacity(cap);
        for _ in 0..n {
            events.push(SpanEvent {
                ts: Ts(self.varint_u64()?),
                name: self.str()?.to_string(),
                attributes: self.attributes(table)?,
            });
        }
        Ok(Span {
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind,
            start,
            end,
            status,
            status_message,
            service,
            resource,
            attributes,
            events,
        })
    }

    fn attributes(&mut self, table: &mut BlockTable) -> Result<Vec<Attribute>, postcard::Error> {
        let (n, cap) = self.len()?;
        let mut out = Vec::with_capacity(cap);
        for _ in 0..n {
            out.push(Attribute {
                key: self.name(&mut table.names)?,
                value: self.value(table, 0)?,
            });
        }
        Ok(out)
    }

    /// An attribute's value; arrays nest at most [`MAX_NESTING`] deep.
    fn value(
        &mut self,
        table: &mut BlockTable,
        depth: usize,
    ) -> Result<AttrValue, postcard::Error> {
        Ok(match self.varint_u32()? {
            0 => AttrValue::Str(table.shared(self.str()?)),
            1 => AttrValue::Int(self.zigzag_i64()?),
            2 => AttrValue::Float(f64::from_le_bytes(self.array()?)),
            3 => AttrValue::Bool(self.bool()?),
            4 => {
                let (n, _) = self.len()?;
                AttrValue::Bytes(self.take(n)?.to_vec())
            }
            5 if depth < MAX_NESTING => {
                let (n, cap) = self.len()?;
                let mut items = Vec::with_capacity(cap);
                for _ in 0..n {
                    items.push(self.value(table, depth + 1)?);
                }
                AttrValue::Array(items)
            }
            5 => return Err(postcard::Error::DeserializeBadEncoding),
            _ => return Err(postcard::Error::SerdeDeCustom),
        })
    }

    // Inlined: returned through memory, the result costs a stalled load per address.
    #[inline(always)]
    fn ip(&mut self) -> Result<IpAddr, postcard::Error> {
        Ok(match self.varint_u32()? {
            0 => IpAddr::from(self.array::<4>()?),
            1 => IpAddr::from(self.array::<16>()?),
            _ => return Err(postcard::Error::SerdeDeCustom),
        })
    }

    fn tcp_state(&mut self) -> Result<TcpState, postcard::Error> {
        use TcpState::*;
        self.variant(&[
            Established,
            SynSent,
            SynRecv,
            FinWait1,
            FinWait2,
            TimeWait,
            Close,
            CloseWait,
            LastAck,
            Listen,
            Closing,
            NewSynRecv,
            Unknown,
        ])
    }

    fn tcp_meaning(&mut self) -> Result<TcpMeaning, postcard::Error> {
        use TcpMeaning::*;
        self.variant(&[Connected, Refused, Reset, Timeout, Closed, Other])
    }
}

/// The same, all through serde: what [`decode_block`] must agree with.
#[cfg(test)]
fn decode_block_serde(raw: &[u8], count: u32, out: &mut Vec<Event>) -> Result<(), postcard::Error> {
    crate::event::with_decoder(|| {
        let (mut ts, mut seq) = (0u64, 0u64);
        let mut rest = raw;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kernel, TcpRetransmit};
    use crate::source::generate::{collect, Config};

    /// Blocks of the generator's mix (exec, exit, TCP, spans, Kubernetes objects, an OOM kill)
    /// and of the shapes it does not make (IPv6, negative exit codes, signals), 500 events each.
    fn blocks() -> Vec<(Vec<Event>, Vec<u8>)> {
        let mut events = collect(&Config {
            events: 3000,
            incident: true,
            ..Config::default()
        });
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        for i in 0..50u32 {
            let at = events[i as usize * 7].ts;
            events.push(Event::new(
                at,
                "node-6",
                Source::Ebpf,
                Kernel::TcpState(TcpStateChange {
                    pid: i,
                    saddr: v6,
                    sport: 40000 + i as u16,
                    daddr: "10.0.0.1".parse().unwrap(),
                    dport: u16::MAX,
                    old: TcpState::SynSent,
                    new: TcpState::Close,
                    meaning: TcpMeaning::Refused,
                }),
            ));
            events.push(Event::new(
                at,
                "node-6",
                Source::Kmsg,
                Kernel::Exit(Exit {
                    pid: u32::MAX - i,
                    comm: Name::from("jävä"),
                    code: -(i as i32) * 1000,
                    signal: 9,
                    cgroup: Name::from(""),
                }),
            ));
            events.push(Event::new(
                at,
                "node-6",
                Source::Ebpf,
                Kernel::TcpRetransmit(TcpRetransmit {
                    saddr: v6,
                    sport: 1,
                    daddr: v6,
                    dport: 2,
                    state: TcpState::Established,
                    count: i,
                    interval_ms: 1000,
                }),
            ));
        }
        // Spans with every kind of value, a parent, a status message and an exception: in the mix,
        // and a block of their own, so that damage falls on them often.
        let mut spans = Vec::new();
        for i in 0..50u8 {
            let at = events[i as usize * 11].ts;
            let attrs = vec![
                Attribute::new("s", AttrValue::Str(format!("välue {i}").into())),
                Attribute::new("i", AttrValue::Int(-(i as i64) << 40)),
                Attribute::new("f", AttrValue::Float(f64::from(i) / 3.0)),
                Attribute::new("b", AttrValue::Bool(i % 2 == 0)),
                Attribute::new("x", AttrValue::Bytes(vec![i, 0, 255])),
                // Longer than a shared string.
                Attribute::new("l", AttrValue::Str("ß".repeat(65 + i as usize).into())),
                Attribute::new(
                    "a",
                    AttrValue::Array(vec![
                        AttrValue::Int(1),
                        AttrValue::Array(vec![AttrValue::Str(Name::default())]),
                    ]),
                ),
            ];
            let span = Span {
                trace_id: TraceId([i; 16]),
                span_id: SpanId([i.wrapping_add(1); 8]),
                parent_span_id: (i % 3 != 0).then_some(SpanId([7; 8])),
                name: format!("POST /pay/{i}").into(),
                kind: [SpanKind::Client, SpanKind::Server, SpanKind::Consumer][i as usize % 3],
                start: at,
                end: Ts(at.0 + u64::from(i) * 1_000_000),
                status: [StatusCode::Error, StatusCode::Ok, StatusCode::Unset][i as usize % 3],
                status_message: "card declined".repeat(i as usize % 2),
                service: Name::from("payments"),
                resource: attrs[..2].to_vec(),
                attributes: attrs.clone(),
                events: vec![SpanEvent {
                    ts: at,
                    name: "exception".to_string(),
                    attributes: attrs[3..].to_vec(),
                }],
            };
            spans.push(Event::new(at, "node-6", Source::Otlp, span));
        }
        events.extend(spans.iter().cloned());
        events.sort_by_key(|e| e.ts);
        for (i, e) in events.iter_mut().enumerate() {
            e.seq = 10 * i as u64;
        }
        events
            .chunks(500)
            .chain([&spans[..]])
            .map(|chunk| {
                let mut b = BlockBuilder::default();
                for e in chunk {
                    b.push(e).unwrap();
                }
                (chunk.to_vec(), b.finish())
            })
            .collect()
    }

    /// Within a block, a span's name and short attribute values repeated from span to span are
    /// one string in memory; long ones are each their own; the next block shares nothing with
    /// the last.
    #[test]
    fn repeated_span_strings_are_shared_within_a_block() {
        let (events, raw) = blocks().pop().unwrap();
        let mut table = BlockTable::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        decode_block(&raw, events.len() as u32, &mut a, &mut table).unwrap();
        decode_block(&raw, events.len() as u32, &mut b, &mut table).unwrap();
        assert_eq!(a, events);
        let span = |e: &Event| match &e.body {
            Body::Span(s) => (**s).clone(),
            other => panic!("{other:?}"),
        };
        let value = |s: &Span, key: &str| match s.attr(key) {
            Some(AttrValue::Str(v)) => v.as_str().as_ptr(),
            other => panic!("{other:?}"),
        };
        let (s0, s1, s50) = (span(&a[0]), span(&a[1]), span(&b[0]));
        // "välue 0" and "välue 1" differ; the nested empty string is the same in both.
        assert_ne!(value(&s0, "s"), value(&s1, "s"));
        let nested = |s: &Span| match s.attr("a") {
            Some(AttrValue::Array(v)) => match &v[1] {
                AttrValue::Array(w) => match &w[0] {
                    AttrValue::Str(x) => x.as_str().as_ptr(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(nested(&s0), nested(&s1));
        // The same value in the span's resource and its attributes, and in another span.
        let resource_s = match &s1.resource[0].value {
            AttrValue::Str(x) => x.as_str().as_ptr(),
            other => panic!("{other:?}"),
        };
        assert_eq!(resource_s, value(&s1, "s"));
        // Long values are equal to what was written, each in its own memory.
        let long = |s: &Span| match s.events[0].attributes.iter().find(|a| *a.key == *"l") {
            Some(Attribute {
                value: AttrValue::Str(x),
                ..
            }) => x.as_str().as_ptr(),
            other => panic!("{other:?}"),
        };
        assert_ne!(long(&s0), value(&s0, "l"));
        // Another block (here the same bytes read again) has its own strings.
        assert_ne!(nested(&s0), nested(&s50));
        assert!(table.is_empty());
    }

    #[test]
    fn blocks_read_back_as_written_and_as_serde_reads_them() {
        for (events, raw) in blocks() {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            decode_block(
                &raw,
                events.len() as u32,
                &mut fast,
                &mut BlockTable::default(),
            )
            .unwrap();
            decode_block_serde(&raw, events.len() as u32, &mut slow).unwrap();
            assert_eq!(fast, events);
            assert_eq!(slow, events);
            // One record too few leaves bytes over; one too many runs off the end.
            let n = events.len() as u32;
            assert!(
                decode_block(&raw, n - 1, &mut Vec::new(), &mut BlockTable::default()).is_err()
            );
            assert!(
                decode_block(&raw, n + 1, &mut Vec::new(), &mut BlockTable::default()).is_err()
            );
        }
    }

    /// Damaged blocks — a changed byte, a cut, a byte put in — are refused or read exactly as
    /// serde refuses or reads them.
    #[test]
    fn damaged_blocks_are_read_or_refused_as_serde_does() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0, 0);
        // One table for every block, as a decoding thread keeps it.
        let mut table = BlockTable::default();
        for (events, raw) in blocks() {
            for round in 0..400 {
                let mut bad = raw.clone();
                let at = next() as usize % bad.len();
                match round % 4 {
                    0 => bad[at] ^= 1 << (next() % 8),
                    1 => bad[at] = next() as u8,
                    2 => bad.truncate(at),
                    _ => bad.insert(at, next() as u8),
                }
                let n = events.len() as u32;
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                let a = decode_block(&bad, n, &mut fast, &mut table);
                assert!(table.is_empty());
                let b = decode_block_serde(&bad, n, &mut slow);
                assert_eq!(a.is_ok(), b.is_ok(), "round {round}: {a:?} vs {b:?}");
                if a.is_ok() {
                    assert_eq!(fast, slow, "round {round}");
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both outcomes were met: the comparison was not one-sided.
        assert!(
            accepted > 100 && refused > 100,
            "{accepted} accepted, {refused} refused"
        );
    }
}
