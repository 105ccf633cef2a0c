//! One block frame, on its own: the bytes a capture holds for a block (see the module's format),
//! made from events and read back from a byte slice. The file writer writes these frames one after
//! the other; the cluster transport sends one per message, so a message is checked and decoded
//! exactly as a block of a file is.

use super::codec::{decode_block, BlockBuilder, BlockTable};
use super::BLOCK_TAG;
use crate::event::Event;

/// Bytes of a frame before its payload.
pub const FRAME_FIXED: usize = 48;
/// The largest raw (uncompressed) block a reader accepts.
pub const MAX_RAW_BLOCK: usize = 256 << 20;

/// Builds frames: events in, checked and compressed frames out.
pub struct FrameEncoder {
    block: BlockBuilder,
    compressor: zstd::bulk::Compressor<'static>,
}

impl FrameEncoder {
    pub fn new(zstd_level: i32) -> std::io::Result<FrameEncoder> {
        Ok(FrameEncoder {
            block: BlockBuilder::default(),
            compressor: zstd::bulk::Compressor::new(zstd_level)?,
        })
    }

    /// Adds an event to the frame being built (its `seq` is kept as it is).
    pub fn push(&mut self, e: &Event) -> Result<(), postcard::Error> {
        self.block.push(e)
    }

    /// Events in the frame being built.
    pub fn count(&self) -> u32 {
        self.block.count
    }

    /// Raw bytes of the frame being built.
    pub fn raw_len(&self) -> usize {
        self.block.raw_len()
    }

    /// Closes the frame being built and returns its bytes; the next frame starts empty.
    pub fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        let (count, first_ts, last_ts, first_seq) = (
            self.block.count,
            self.block.first_ts,
            self.block.last_ts,
            self.block.first_seq,
        );
        let raw = self.block.finish();
        let z = self.compressor.compress(&raw)?;
        let mut frame = Vec::with_capacity(FRAME_FIXED + z.len());
        frame.extend_from_slice(BLOCK_TAG);
        frame.extend_from_slice(&(z.len() as u32).to_le_bytes());
        frame.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        frame.extend_from_slice(&count.to_le_bytes());
        frame.extend_from_slice(&first_ts.0.to_le_bytes());
        frame.extend_from_slice(&last_ts.0.to_le_bytes());
        frame.extend_from_slice(&first_seq.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&z).to_le_bytes());
        let frame_crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&frame_crc.to_le_bytes());
        frame.extend_from_slice(&z);
        Ok(frame)
    }

    /// One frame of these events.
    pub fn encode(&mut self, events: &[Event]) -> Result<Vec<u8>, String> {
        for e in events {
            if let Err(err) = self.push(e) {
                self.block.finish();
                return Err(format!("cannot encode an event: {err}"));
            }
        }
        self.finish().map_err(|e| format!("cannot compress: {e}"))
    }
}

/// The fixed part of a frame, checked.
#[derive(Clone, Copy, Debug)]
pub struct FrameHeader {
    pub zlen: usize,
    pub raw_len: usize,
    pub count: u32,
    /// The sequence number of the frame's first event.
    pub first_seq: u64,
    pub payload_crc: u32,
}

impl FrameHeader {
    /// Parses and checks a frame's fixed part; says what is wrong with a damaged one.
    pub fn parse(b: &[u8]) -> Result<FrameHeader, &'static str> {
        if b.len() < FRAME_FIXED {
            return Err("block header (too short)");
        }
        if &b[..4] != BLOCK_TAG {
            return Err("frame tag");
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if crc32fast::hash(&b[..44]) != u32_at(44) {
            return Err("block header (checksum mismatch)");
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[32..40]);
        let frame = FrameHeader {
            zlen: u32_at(4) as usize,
            raw_len: u32_at(8) as usize,
            count: u32_at(12),
            first_seq: u64::from_le_bytes(seq),
            payload_crc: u32_at(40),
        };
        // Every record takes at least four bytes (two deltas, a name, a source, a body tag).
        let plausible = frame.raw_len <= MAX_RAW_BLOCK
            && frame.zlen <= MAX_RAW_BLOCK
            && frame.count as usize <= frame.raw_len / 4;
        if plausible {
            Ok(frame)
        } else {
            Err("block header (lengths and count do not fit together)")
        }
    }
}

/// Decodes one whole frame held in memory (a message of the cluster stream): checks its frame and
/// payload checksums and that nothing follows it, then appends its events to `out`. On failure
/// nothing is appended and the error says what is wrong.
pub fn decode_frame(
    bytes: &[u8],
    zstd: &mut zstd::bulk::Decompressor<'static>,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let h = FrameHeader::parse(bytes).map_err(str::to_string)?;
    let payload = &bytes[FRAME_FIXED..];
    if payload.len() != h.zlen {
        return Err(format!(
            "block (payload of {} bytes, the header says {})",
            payload.len(),
            h.zlen
        ));
    }
    if crc32fast::hash(payload) != h.payload_crc {
        return Err("block (payload checksum mismatch)".to_string());
    }
    let mut raw = Vec::with_capacity(h.raw_len);
    zstd.decompress_to_buffer(payload, &mut raw)
        .map_err(|e| format!("block (cannot decompress: {e})"))?;
    let before = out.len();
    decode_block(&raw, h.count, out, &mut BlockTable::default()).map_err(|e| {
        out.truncate(before);
        format!("block (cannot decode events: {e})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Meta, Source, Ts};

    fn events() -> Vec<Event> {
        (0..100)
            .map(|i| {
                let mut e = Event::new(
                    Ts(1_700_000_000_000_000_000 + i * 1000),
                    "node-1",
                    Source::Tapio,
                    crate::event::Body::Meta(Meta::Annotation {
                        text: format!("note {i}"),
                    }),
                );
                e.seq = 40 + i;
                e
            })
            .collect()
    }

    #[test]
    fn a_frame_reads_back_and_any_flipped_bit_is_refused() {
        let mut enc = FrameEncoder::new(3).unwrap();
        let frame = enc.encode(&events()).unwrap();
        let mut z = zstd::bulk::Decompressor::new().unwrap();
        let mut out = Vec::new();
        decode_frame(&frame, &mut z, &mut out).unwrap();
        assert_eq!(out, events());
        for i in [0, 5, 13, 30, 44, 47, 60, frame.len() - 1] {
            let mut bad = frame.clone();
            bad[i] ^= 0x10;
            let mut out = Vec::new();
            assert!(decode_frame(&bad, &mut z, &mut out).is_err(), "bit at {i}");
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        assert!(decode_frame(&frame[..frame.len() - 1], &mut z, &mut out).is_err());
        assert!(decode_frame(b"hello", &mut z, &mut out).is_err());
    }
}
