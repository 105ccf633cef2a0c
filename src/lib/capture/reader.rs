//! Reading a capture, block by block: tolerant of a torn tail, strict about corruption, and able to
//! follow a capture that is still being written.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec::{decode_block, BlockTable};
use super::index::{self, Index, Want, FOOTER_LEN, INDEX_FIXED, INDEX_TAG, SETS_FIXED, SETS_TAG};
use super::{Error, Header, Trailer, BLOCK_TAG, FORMAT_VERSION, MAGIC, TRAILER_TAG};
use crate::event::Event;

/// Fixed part of the header before its JSON: magic, version, flags, length.
const HEADER_FIXED: usize = 16;
/// Fixed part of a block frame before its payload.
const BLOCK_FIXED: usize = super::frame::FRAME_FIXED;
/// No header or trailer is larger than this.
const MAX_HEADER: usize = 16 << 20;

#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Report a corrupt block as a warning and read on past it, instead of stopping with an error.
    pub skip_corrupt: bool,
    /// At the end of the data, wait for more until the writer closes the capture.
    pub follow: bool,
    /// How often to look for new data when following (default 200 ms).
    pub poll: Option<Duration>,
    /// When following: stop waiting once this says so (Ctrl-C, or a newer file of a rotated set
    /// appeared); what was read is kept.
    pub stop: Option<StopWhen>,
}

/// A condition checked while a following reader waits for more data.
#[derive(Clone)]
pub struct StopWhen(pub std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl fmt::Debug for StopWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopWhen(..)")
    }
}

/// Problems that lose some events but let the read go on. The caller prints them.
#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// The file ends inside a frame: the recorder stopped without closing it (a crash, `kill -9`,
    /// a full disk, or it is still running). Every complete block before `offset` was read.
    Truncated { offset: u64, inside: &'static str },
    /// A corrupt region was skipped (`--skip-corrupt`).
    SkippedCorrupt {
        offset: u64,
        bytes: u64,
        what: String,
    },
    /// The trailer counts other events than the blocks hold: blocks were lost in writing.
    Missing { counted: u64, read: u64 },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Truncated { offset, inside } => write!(
                f,
                "capture is truncated at byte offset {offset} ({inside}): it was not closed cleanly; \
                 every complete block before that offset was read"
            ),
            Warning::SkippedCorrupt { offset, bytes, what } => {
                write!(f, "skipped {bytes} corrupt bytes at byte offset {offset} ({what})")
            }
            Warning::Missing { counted, read } => write!(
                f,
                "its trailer counts {counted} events, its blocks hold {read}: {} events were lost \
                 when it was written",
                counted.abs_diff(*read)
            ),
        }
    }
}

enum Step {
    Block(RawBlock),
    /// A whole, valid block that repeats events already read (the position is past it).
    Repeat(String),
    End,
    /// The index, passed over (a whole read does not need it).
    Index,
    Torn(&'static str),
    Corrupt(String),
}

/// Reads one capture file.
pub struct Reader {
    file: File,
    path: PathBuf,
    opts: ReadOptions,
    pos: u64,
    header: Option<Header>,
    trailer: Option<Trailer>,
    done: bool,
    warnings: Vec<Warning>,
    decoder: Decoder,
    /// The number the next block's first event must reach at least.
    next_seq: Option<u64>,
    /// Events in the blocks read, to check against the trailer's count.
    events: u64,
    /// Read only the blocks at these offsets (chosen with the index), in this order.
    only: Option<std::collections::VecDeque<u64>>,
    /// The index, once read.
    index: std::sync::OnceLock<Result<Option<Index>, String>>,
}

impl Reader {
    /// Opens `path` and reads its header. A file cut inside its header opens with no header, no
    /// events and a [`Warning::Truncated`]; a file that is not a capture is an error.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Reader, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let decoder = Decoder::new().map_err(|e| Error::io(path, e))?;
        let mut r = Reader {
            file,
            path: path.to_path_buf(),
            opts,
            pos: 0,
            header: None,
            trailer: None,
            done: false,
            warnings: Vec::new(),
            decoder,
            next_seq: None,
            events: 0,
            only: None,
            index: std::sync::OnceLock::new(),
        };
        loop {
            match r.read_header()? {
                Some(()) => break,
                None if r.opts.follow && !r.stopped() => r.wait(),
                None => {
                    r.warnings.push(Warning::Truncated {
                        offset: r.file_len()?,
                        inside: "inside the header",
                    });
                    r.done = true;
                    break;
                }
            }
        }
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The trailer, once the reader has reached it (only cleanly closed captures have one).
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Takes the warnings gathered so far (for callers that print them as they come).
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// The byte offset of the next frame.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Appends the events of the next block to `out`. Returns `false` at the end of the capture.
    pub fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
        while let Some(block) = self.next_raw()? {
            match self.decoder.decode(&block, out) {
                Ok(()) => return Ok(true),
                Err(what) => {
                    let w = corrupt_block(&self.path, &block, what, self.opts.skip_corrupt)?;
                    self.warnings.push(w);
                }
            }
        }
        Ok(false)
    }

    /// From now on, reads only the blocks that start at these offsets (from [`Reader::index`]),
    /// in the file's order.
    pub fn select(&mut self, mut offsets: Vec<u64>) {
        offsets.sort_unstable();
        offsets.retain(|o| *o >= self.pos);
        self.only = Some(offsets.into());
    }

    /// The capture's block index: the one its writer stored at a clean close (format 2 on), else
    /// the one `tapio index` stored beside it, if it still describes this file. `Ok(None)` when
    /// there is none; an error (a damaged index) says what is wrong, and the capture still reads
    /// whole.
    pub fn index(&self) -> Result<Option<&Index>, String> {
        self.index
            .get_or_init(|| self.read_index())
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    fn read_index(&self) -> Result<Option<Index>, String> {
        let len = self.file_len().map_err(|e| e.to_string())?;
        if let Some((at, _)) = self.footer().map_err(|e| e.to_string())? {
            return self.index_at(at).map(Some);
        }
        index::cached(&self.path, len)
    }

    /// Where the index and the trailer of a capture closed cleanly (format 2 on) start, from the
    /// footer at its end; `None` when it has none (format 1, still being written, cut short).
    pub fn footer(&self) -> Result<Option<(u64, u64)>, Error> {
        let len = self.file_len()?;
        if self.header.as_ref().is_none_or(|h| h.format_version < 2) || len < FOOTER_LEN as u64 {
            return Ok(None);
        }
        let mut f = [0u8; FOOTER_LEN];
        let n = self.read_at(&mut f, len - FOOTER_LEN as u64)?;
        Ok(index::parse_footer(&f[..n]))
    }

    fn index_at(&self, at: u64) -> Result<Index, String> {
        let mut fixed = [0u8; INDEX_FIXED];
        let io = |e: Error| e.to_string();
        if self.read_at(&mut fixed, at).map_err(io)? < INDEX_FIXED {
            return Err(format!("index at byte offset {at} (cut short)"));
        }
        let (zlen, rawlen, crc) =
            Index::frame_len(&fixed).map_err(|w| format!("{w} at byte offset {at}"))?;
        let mut payload = vec![0u8; zlen];
        if self
            .read_at(&mut payload, at + INDEX_FIXED as u64)
            .map_err(io)?
            < zlen
        {
            return Err(format!("index at byte offset {at} (cut short)"));
        }
        Index::decode(&payload, rawlen, crc).map_err(|w| format!("{w} at byte offset {at}"))
    }

    /// The blocks `want` needs, from the capture's index; `None` when it has no index (then
    /// everything is read).
    pub fn plan(&self, want: &Want) -> Result<Option<Vec<u64>>, String> {
        let Some(index) = self.index()? else {
            return Ok(None);
        };
        let read = |at: u64, buf: &mut [u8]| match self.read_at(buf, at) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(_) => Err(format!("index filters at byte offset {at} (cut short)")),
            Err(e) => Err(e.to_string()),
        };
        index.select(want, &read).map(Some)
    }

    /// The next block, checked but still compressed: decoding is left to the caller, so that
    /// several threads can decode the blocks of one capture. `None` at the end of the capture.
    pub fn next_raw(&mut self) -> Result<Option<RawBlock>, Error> {
        while !self.done {
            if let Some(only) = &mut self.only {
                match only.pop_front() {
                    Some(at) => self.pos = at,
                    None => {
                        self.done = true;
                        break;
                    }
                }
            }
            let at = self.pos;
            match self.step()? {
                Step::Block(b) => {
                    self.events += u64::from(b.count);
                    return Ok(Some(b));
                }
                Step::End => {
                    self.done = true;
                    let counted = self.trailer.as_ref().map(|t| t.stats.events);
                    // Only a whole read can be held against the count.
                    if let Some(counted) = counted.filter(|&c| c != self.events) {
                        if self.warnings.is_empty() && !self.opts.follow {
                            self.warnings.push(Warning::Missing {
                                counted,
                                read: self.events,
                            });
                        }
                    }
                }
                Step::Index => {}
                Step::Torn(_) if self.opts.follow && !self.stopped() => self.wait(),
                Step::Torn(inside) => {
                    self.warnings
                        .push(Warning::Truncated { offset: at, inside });
                    self.done = true;
                }
                Step::Repeat(what) if self.opts.skip_corrupt => {
                    let bytes = self.pos - at;
                    self.warnings.push(Warning::SkippedCorrupt {
                        offset: at,
                        bytes,
                        what,
                    });
                }
                Step::Repeat(what) => {
                    self.done = true;
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        offset: at,
                        what,
                    });
                }
                Step::Corrupt(what) if self.opts.skip_corrupt => self.resync(at, what)?,
                Step::Corrupt(what) => {
                    self.done = true;
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        offset: at,
                        what,
                    });
                }
            }
        }
        Ok(None)
    }

    pub fn options(&self) -> &ReadOptions {
        &self.opts
    }

    /// Reads every remaining event (for small captures and tests).
    pub fn read_all(&mut self) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        while self.next_block(&mut out)? {}
        Ok(out)
    }

    fn stopped(&self) -> bool {
        self.opts.stop.as_ref().is_some_and(|s| (s.0)())
    }

    fn wait(&self) {
        std::thread::sleep(self.opts.poll.unwrap_or(Duration::from_millis(200)));
    }

    fn file_len(&self) -> Result<u64, Error> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Reads `buf.len()` bytes at `offset`; returns how many were there (fewer at the end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Error> {
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(n)
    }

    /// `Some` when the header was read; `None` when the file ends inside it.
    fn read_header(&mut self) -> Result<Option<()>, Error> {
        let mut fixed = [0u8; HEADER_FIXED];
        let n = self.read_at(&mut fixed, 0)?;
        let magic_seen = n.min(MAGIC.len());
        if fixed[..magic_seen] != MAGIC[..magic_seen] {
            return Err(Error::NotACapture {
                path: self.path.clone(),
            });
        }
        if n < HEADER_FIXED {
            return Ok(None);
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version == 0 {
            return self.corrupt_header(version, "header (format version 0)".to_string());
        }
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: self.path.clone(),
                version,
            });
        }
        let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        if len > MAX_HEADER {
            return self.corrupt_header(version, format!("header (length {len})"));
        }
        let mut rest = vec![0u8; len + 4];
        if self.read_at(&mut rest, HEADER_FIXED as u64)? < rest.len() {
            // Cut inside the header, or a damaged length that points past the end: only the
            // second leaves valid blocks behind it.
            if !self.opts.follow {
                if let Some(at) = self.next_valid_frame(HEADER_FIXED as u64)? {
                    let what = format!(
                        "header (its length, {len}, points past the end of the file, but valid blocks follow at byte offset {at})"
                    );
                    if self.opts.skip_corrupt {
                        return self.skip_header_to(version, at, what);
                    }
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        offset: 12,
                        what,
                    });
                }
            }
            return Ok(None);
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&fixed);
        hasher.update(&rest[..len]);
        let stored = u32::from_le_bytes([rest[len], rest[len + 1], rest[len + 2], rest[len + 3]]);
        let header = match serde_json::from_slice::<Header>(&rest[..len]) {
            Ok(h) if hasher.finalize() == stored => h,
            Ok(_) => return self.corrupt_header(version, "header (checksum mismatch)".to_string()),
            Err(e) => return self.corrupt_header(version, format!("header ({e})")),
        };
        self.header = Some(Header {
            format_version: version,
            ..header
        });
        self.pos = (HEADER_FIXED + len + 4) as u64;
        Ok(Some(()))
    }

    /// A damaged header: an error, or with `skip_corrupt` a warning and a read from the first
    /// valid frame after it.
    fn corrupt_header(&mut self, version: u16, what: String) -> Result<Option<()>, Error> {
        if !self.opts.skip_corrupt {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                offset: 0,
                what,
            });
        }
        let at = self
            .next_valid_frame(HEADER_FIXED as u64)?
            .unwrap_or(self.file_len()?);
        self.skip_header_to(version, at, what)
    }

    fn skip_header_to(&mut self, version: u16, at: u64, what: String) -> Result<Option<()>, Error> {
        self.warnings.push(Warning::SkippedCorrupt {
            offset: 0,
            bytes: at,
            what,
        });
        self.header = Some(Header {
            format_version: version,
            ..Header::default()
        });
        self.pos = at;
        Ok(Some(()))
    }

    fn step(&mut self) -> Result<Step, Error> {
        let mut fixed = [0u8; BLOCK_FIXED];
        let n = self.read_at(&mut fixed[..4], self.pos)?;
        if n == 0 {
            return Ok(Step::Torn("before its trailer"));
        }
        if n < 4 {
            return Ok(Step::Torn("inside a frame tag"));
        }
        match &fixed[..4] {
            t if t == BLOCK_TAG => self.step_block(),
            t if t == TRAILER_TAG => self.step_trailer(),
            t if t == INDEX_TAG => self.step_index(),
            t if t == SETS_TAG => self.step_sets(),
            _ => Ok(Step::Corrupt("frame tag".to_string())),
        }
    }

    fn step_block(&mut self) -> Result<Step, Error> {
        let mut fixed = [0u8; BLOCK_FIXED];
        if self.read_at(&mut fixed, self.pos)? < BLOCK_FIXED {
            return Ok(Step::Torn("inside a block header"));
        }
        let frame = match BlockFrame::parse(&fixed) {
            Ok(frame) => frame,
            Err(what) => return Ok(Step::Corrupt(what.to_string())),
        };
        let mut payload = vec![0u8; frame.zlen];
        if self.read_at(&mut payload, self.pos + BLOCK_FIXED as u64)? < frame.zlen {
            return Ok(Step::Torn("inside a block"));
        }
        if crc32fast::hash(&payload) != frame.payload_crc {
            return Ok(Step::Corrupt(
                "block (payload checksum mismatch)".to_string(),
            ));
        }
        // Numbers grow through a capture: a block that goes back is a repeat (a copy gone wrong),
        // not new events.
        if frame.count > 0 {
            if let Some(next) = self.next_seq.filter(|n| frame.first_seq < *n) {
                self.pos += (BLOCK_FIXED + frame.zlen) as u64;
                return Ok(Step::Repeat(format!(
                    "block repeated: its events start at number {}, and number {} was already read",
                    frame.first_seq,
                    next - 1
                )));
            }
            self.next_seq = Some(frame.first_seq.saturating_add(u64::from(frame.count)));
        }
        let block = RawBlock {
            offset: self.pos,
            count: frame.count,
            raw_len: frame.raw_len,
            payload,
        };
        self.pos += (BLOCK_FIXED + frame.zlen) as u64;
        Ok(Step::Block(block))
    }

    /// Passes over the index: its frame header is checked, its payload is left for
    /// [`Reader::index`].
    fn step_index(&mut self) -> Result<Step, Error> {
        self.step_over::<INDEX_FIXED>(|fixed| Index::frame_len(fixed).map(|(zlen, ..)| zlen as u64))
    }

    /// Passes over the index's filters (format 3): its frame header is checked, its filters are
    /// read by [`Reader::plan`] as a question needs them.
    fn step_sets(&mut self) -> Result<Step, Error> {
        self.step_over::<SETS_FIXED>(Index::sets_len)
    }

    /// Passes over a frame of the index whose header is `FIXED` bytes, `len` of which says how
    /// many bytes follow it.
    fn step_over<const FIXED: usize>(
        &mut self,
        len: impl Fn(&[u8]) -> Result<u64, &'static str>,
    ) -> Result<Step, Error> {
        let mut fixed = [0u8; FIXED];
        if self.read_at(&mut fixed, self.pos)? < FIXED {
            return Ok(Step::Torn("inside the index"));
        }
        let len = match len(&fixed) {
            Ok(len) => len,
            Err(what) => return Ok(Step::Corrupt(what.to_string())),
        };
        let end = (self.pos + FIXED as u64).saturating_add(len);
        if self.file_len()? < end {
            return Ok(Step::Torn("inside the index"));
        }
        self.pos = end;
        Ok(Step::Index)
    }

    fn step_trailer(&mut self) -> Result<Step, Error> {
        let mut len = [0u8; 4];
        if self.read_at(&mut len, self.pos + 4)? < 4 {
            return Ok(Step::Torn("inside the trailer"));
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_HEADER {
            return Ok(Step::Corrupt("trailer (length)".to_string()));
        }
        let mut buf = vec![0u8; 8 + len + 4];
        if self.read_at(&mut buf, self.pos)? < buf.len() {
            // Cut while the trailer was written, or a damaged length: a whole trailer (JSON and
            // its checksum) in what is left says which.
            if !self.opts.follow {
                let after = self.file_len()?.saturating_sub(self.pos + 8) as usize;
                // What is left is the trailer, or (format 2 on) the trailer and its footer.
                for left in [after, after.saturating_sub(FOOTER_LEN)] {
                    if !(4..=MAX_HEADER).contains(&left) {
                        continue;
                    }
                    let mut rest = vec![0u8; left];
                    let n = self.read_at(&mut rest, self.pos + 8)?;
                    if n == left && serde_json::from_slice::<Trailer>(&rest[..left - 4]).is_ok() {
                        return Ok(Step::Corrupt(format!(
                            "trailer (its length, {len}, does not fit the {} bytes of trailer that are there)",
                            left - 4
                        )));
                    }
                }
            }
            return Ok(Step::Torn("inside the trailer"));
        }
        let stored = u32::from_le_bytes([buf[8 + len], buf[9 + len], buf[10 + len], buf[11 + len]]);
        if crc32fast::hash(&buf[..8 + len]) != stored {
            return Ok(Step::Corrupt("trailer (checksum mismatch)".to_string()));
        }
        let trailer = match serde_json::from_slice::<Trailer>(&buf[8..8 + len]) {
            Ok(t) => t,
            Err(e) => return Ok(Step::Corrupt(format!("trailer ({e})"))),
        };
        // Format 2 ends with a footer, written with the trailer: without it the file was cut.
        if self.header.as_ref().is_some_and(|h| h.format_version >= 2) {
            let mut f = [0u8; FOOTER_LEN];
            let at = self.pos + buf.len() as u64;
            let n = self.read_at(&mut f, at)?;
            if n < FOOTER_LEN {
                return Ok(Step::Torn("inside the footer"));
            }
            if index::parse_footer(&f).is_none() {
                return Ok(Step::Corrupt("footer (tag or checksum)".to_string()));
            }
        }
        self.trailer = Some(trailer);
        self.pos += buf.len() as u64;
        Ok(Step::End)
    }

    /// Skips from a corrupt frame at `at` to the next frame whose checksum holds.
    fn resync(&mut self, at: u64, what: String) -> Result<(), Error> {
        let next = self.next_valid_frame(at + 1)?;
        let to = match next {
            Some(to) => to,
            None => self.file_len()?,
        };
        self.warnings.push(Warning::SkippedCorrupt {
            offset: at,
            bytes: to - at,
            what,
        });
        self.pos = to;
        self.done = next.is_none() && !self.opts.follow;
        Ok(())
    }

    /// The offset of the first frame at or after `from` whose checksums hold.
    fn next_valid_frame(&self, from: u64) -> Result<Option<u64>, Error> {
        let len = self.file_len()?;
        let mut offset = from;
        let mut chunk = vec![0u8; 1 << 16];
        while offset < len {
            let n = self.read_at(&mut chunk, offset)?;
            if n < 4 {
                break;
            }
            for i in 0..n - 3 {
                let tag = &chunk[i..i + 4];
                let cand = offset + i as u64;
                let valid = (tag == BLOCK_TAG && self.block_header_valid(cand)?)
                    || (tag == TRAILER_TAG && self.trailer_valid(cand)?);
                if valid {
                    return Ok(Some(cand));
                }
            }
            offset += (n - 3) as u64;
        }
        Ok(None)
    }

    fn trailer_valid(&self, offset: u64) -> Result<bool, Error> {
        let mut len = [0u8; 4];
        if self.read_at(&mut len, offset + 4)? < 4 {
            return Ok(false);
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_HEADER {
            return Ok(false);
        }
        let mut buf = vec![0u8; 8 + len + 4];
        if self.read_at(&mut buf, offset)? < buf.len() {
            return Ok(false);
        }
        let stored = u32::from_le_bytes([buf[8 + len], buf[9 + len], buf[10 + len], buf[11 + len]]);
        Ok(crc32fast::hash(&buf[..8 + len]) == stored)
    }

    fn block_header_valid(&self, offset: u64) -> Result<bool, Error> {
        let mut fixed = [0u8; BLOCK_FIXED];
        Ok(self.read_at(&mut fixed, offset)? == BLOCK_FIXED && BlockFrame::parse(&fixed).is_ok())
    }
}

/// A block as read from the file: its checksums hold, its payload is still compressed.
pub struct RawBlock {
    /// The byte offset of its frame.
    pub offset: u64,
    count: u32,
    raw_len: usize,
    payload: Vec<u8>,
}

impl RawBlock {
    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> u64 {
        (BLOCK_FIXED + self.payload.len()) as u64
    }
}

/// Decompresses and decodes blocks; one per thread.
pub struct Decoder {
    zstd: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    table: BlockTable,
}

impl Decoder {
    pub fn new() -> std::io::Result<Decoder> {
        Ok(Decoder {
            zstd: zstd::bulk::Decompressor::new()?,
            raw: Vec::new(),
            table: BlockTable::default(),
        })
    }

    /// Decompresses the block without decoding its events: what a reader that needs only the
    /// trailer's counts checks of each block.
    pub fn check(&mut self, b: &RawBlock) -> Result<(), String> {
        self.raw.clear();
        self.raw.reserve(b.raw_len);
        match self.zstd.decompress_to_buffer(&b.payload, &mut self.raw) {
            Ok(n) if n == b.raw_len => Ok(()),
            Ok(n) => Err(format!(
                "block (decompressed to {n} bytes, not {})",
                b.raw_len
            )),
            Err(e) => Err(format!("block (cannot decompress: {e})")),
        }
    }

    /// Appends the block's events to `out`; on failure appends nothing and says what is wrong.
    pub fn decode(&mut self, b: &RawBlock, out: &mut Vec<Event>) -> Result<(), String> {
        self.raw.clear();
        self.raw.reserve(b.raw_len);
        if let Err(e) = self.zstd.decompress_to_buffer(&b.payload, &mut self.raw) {
            return Err(format!("block (cannot decompress: {e})"));
        }
        let before = out.len();
        decode_block(&self.raw, b.count, out, &mut self.table).map_err(|e| {
            out.truncate(before);
            format!("block (cannot decode events: {e})")
        })
    }
}

/// A block whose checksums held but whose content does not decode: an error, or with
/// `skip_corrupt` the warning to report.
pub fn corrupt_block(
    path: &Path,
    b: &RawBlock,
    what: String,
    skip: bool,
) -> Result<Warning, Error> {
    if skip {
        Ok(Warning::SkippedCorrupt {
            offset: b.offset,
            bytes: b.frame_len(),
            what,
        })
    } else {
        Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: b.offset,
            what,
        })
    }
}

type BlockFrame = super::frame::FrameHeader;
