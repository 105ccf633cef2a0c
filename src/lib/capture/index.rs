//! The block index: for each block of a capture, where it is, the time it covers, how many events
//! of each kind it holds, and compact sets of the trace ids, places (pods, namespaces, pod uids of
//! cgroup paths), nodes and services its events name. A reader asked for a few events of a large
//! capture (`cat --trace-id`, `cat --since … --until …`, `correlate --trace-id`) reads the index
//! and then only the blocks that can hold them.
//!
//! A set is exact (the keys' 64-bit hashes, sorted) up to [`EXACT_MAX`] keys and a Bloom filter
//! past that ([`BLOOM_BITS_PER_KEY`] bits a key, [`BLOOM_HASHES`] hashes: about 0.05 % false
//! positives; a filter says its own size and hashes, so filters written with other ones read).
//! Either way a set never misses a key that is in the block; a false positive only costs the
//! reading of a block that holds nothing wanted.
//!
//! The index is written at a clean close, after the last block (see `docs/capture-format.md`).
//! Since format 3 its Bloom filters (most of its bytes) are kept out of it, in the filters frame
//! before it, and read only for the blocks a question has not ruled out by their time and kinds:
//!
//! ```text
//! filters "TSET" u64 len u32 crc32(the 12 bytes before)  the filters, set by set
//! index   "TIDX" u32 zlen u32 rawlen u32 crc32(payload) u32 crc32(the 16 bytes before)  payload
//! footer  "TFTR" u64 index_offset u64 trailer_offset u32 crc32(the 20 bytes before)
//! ```

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Decoder, Error, ReadOptions, Reader};
use crate::event::{Event, Kind, Ts};

pub const INDEX_TAG: &[u8; 4] = b"TIDX";
pub const SETS_TAG: &[u8; 4] = b"TSET";
/// Bytes of the sets frame before its filters.
pub const SETS_FIXED: usize = 16;
pub const FOOTER_TAG: &[u8; 4] = b"TFTR";
/// Bytes of the index frame before its payload.
pub const INDEX_FIXED: usize = 20;
/// Bytes of the footer, the last of a closed capture of format 2 or later.
pub const FOOTER_LEN: usize = 24;
/// Sets of up to this many keys are kept exactly.
pub const EXACT_MAX: usize = 64;
/// Bits a key in a Bloom filter.
pub const BLOOM_BITS_PER_KEY: usize = 16;
/// Hash functions of a Bloom filter.
pub const BLOOM_HASHES: u32 = 11;
/// The largest index a reader accepts.
const MAX_INDEX: usize = 1 << 30;
/// The most hashes a key, and bytes, of a filter a reader accepts (a block of 1 MiB of records
/// has at most some 100,000 keys a set: 200 KB of filter).
const MAX_HASHES: u32 = 64;
const MAX_FILTER: u64 = 16 << 20;

/// What one kind of key is about; part of the hash, so equal strings of two sets never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    Trace,
    /// `pod:<ns>/<name>`, `pod:<name>`, `ns:<ns>`, `uid:<pod uid>` (from a cgroup path).
    Place,
    Node,
    Service,
}

/// The index of a capture: one entry a block, in the file's order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub blocks: Vec<BlockEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// Byte offset of the block's frame, and its length.
    pub offset: u64,
    pub len: u64,
    pub count: u32,
    pub first_seq: u64,
    /// The earliest and latest times of its events (ns since the Unix epoch), and its first
    /// event's (which a merge starts from).
    pub min_ts: u64,
    pub max_ts: u64,
    pub first_ts: u64,
    /// Events of each kind it holds (kinds by name: a later kind is just another name).
    pub kinds: Vec<(String, u32)>,
    pub traces: Keys,
    pub places: Keys,
    pub nodes: Keys,
    pub services: Keys,
}

/// A set of keys: exact, or a Bloom filter — in the index, or (format 3) in the capture's sets
/// frame, read only for the blocks a question has not ruled out by their time and kinds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Keys {
    /// The keys' hashes, sorted.
    Exact(Vec<u64>),
    /// `bits` as bytes, bit `p` in byte `p / 8` at `1 << (p % 8)`.
    Bloom { hashes: u32, bits: Vec<u8> },
    /// A Bloom filter's `len` bytes at byte offset `at` of the capture, whose CRC-32 is `crc`.
    Far {
        hashes: u32,
        at: u64,
        len: u32,
        crc: u32,
    },
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::Exact(Vec::new())
    }
}

impl Keys {
    fn of(mut hashes: Vec<u64>) -> Keys {
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.len() <= EXACT_MAX {
            return Keys::Exact(hashes);
        }
        let bytes = (hashes.len() * BLOOM_BITS_PER_KEY).div_ceil(64) * 8;
        let mut bits = vec![0u8; bytes];
        let m = (bytes * 8) as u64;
        for h in hashes {
            for p in probes(h, BLOOM_HASHES, m) {
                bits[(p / 8) as usize] |= 1 << (p % 8);
            }
        }
        Keys::Bloom {
            hashes: BLOOM_HASHES,
            bits,
        }
    }

    /// Whether the key of this hash may be in the set (never `false` for a key that is);
    /// `None` for a filter kept out of the index, which must be read first.
    pub fn may_contain(&self, h: u64) -> Option<bool> {
        match self {
            Keys::Exact(v) => Some(v.binary_search(&h).is_ok()),
            Keys::Bloom { hashes, bits } => Some(bloom_has(*hashes, bits, h)),
            Keys::Far { .. } => None,
        }
    }
}

/// Whether a Bloom filter may hold the key of hash `h`.
fn bloom_has(hashes: u32, bits: &[u8], h: u64) -> bool {
    let m = (bits.len() * 8) as u64;
    m > 0 && probes(h, hashes, m).all(|p| bits[(p / 8) as usize] & (1 << (p % 8)) != 0)
}

/// The bit positions of a key (double hashing, Kirsch and Mitzenmacher).
fn probes(h: u64, k: u32, m: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h, h.rotate_left(32) | 1);
    (0..u64::from(k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m)
}

/// The hash of a key: FNV-1a of the set's tag and the key's bytes, then the splitmix64 finaliser.
/// It is part of the format: the same key hashes the same in every version.
pub fn key(set: Set, bytes: &[u8]) -> u64 {
    key_of_parts(set, &[bytes])
}

/// [`key`] of the concatenation of `parts`, without making it.
pub fn key_of_parts(set: Set, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let tag = match set {
        Set::Trace => 1u8,
        Set::Place => 2,
        Set::Node => 3,
        Set::Service => 4,
    };
    for b in std::iter::once(&tag).chain(parts.iter().flat_map(|p| p.iter())) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Keys that are hashes already.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashSet64 = HashSet<u64, BuildHasherDefault<Identity>>;

/// What the index needs of each block while it is written or scanned.
#[derive(Default)]
pub struct BlockKeys {
    kinds: [u32; Kind::COUNT],
    traces: HashSet64,
    places: HashSet64,
    nodes: HashSet64,
    services: HashSet64,
    first_ts: Option<Ts>,
    min_ts: u64,
    max_ts: u64,
    count: u32,
    first_seq: u64,
    /// The last node and cgroup path seen, and their keys: consecutive events mostly repeat them.
    last_node: Option<(crate::event::Name, u64)>,
    last_cgroup: Option<(crate::event::Name, Option<u64>)>,
}

impl BlockKeys {
    pub fn add(&mut self, e: &Event) {
        if self.first_ts.is_none() {
            self.first_ts = Some(e.ts);
            self.min_ts = e.ts.0;
            self.max_ts = e.ts.0;
            self.first_seq = e.seq;
        }
        self.min_ts = self.min_ts.min(e.ts.0);
        self.max_ts = self.max_ts.max(e.ts.0);
        self.count += 1;
        self.kinds[e.kind() as usize] += 1;
        let node = match &self.last_node {
            Some((n, h)) if *n == e.node => *h,
            _ => {
                let h = key(Set::Node, e.node.as_bytes());
                self.last_node = Some((e.node.clone(), h));
                h
            }
        };
        self.nodes.insert(node);
        crate::filter::index_keys(e, &mut |set, parts| {
            let h = key_of_parts(set, parts);
            match set {
                Set::Trace => self.traces.insert(h),
                Set::Place => self.places.insert(h),
                Set::Node => self.nodes.insert(h),
                Set::Service => self.services.insert(h),
            };
        });
        if let Some(cgroup) = crate::filter::cgroup_of(e) {
            let uid = match &self.last_cgroup {
                Some((c, h)) if c == cgroup => *h,
                _ => {
                    let h = crate::topology::pod_uid_in_cgroup(cgroup)
                        .map(|uid| key(Set::Place, format!("uid:{uid}").as_bytes()));
                    self.last_cgroup = Some((cgroup.clone(), h));
                    h
                }
            };
            if let Some(h) = uid {
                self.places.insert(h);
            }
        }
    }

    /// Events added since the last entry.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The entry of the block of the events added since the last one, at `offset`, `len` bytes
    /// long; the next block starts empty.
    pub fn finish(&mut self, offset: u64, len: u64) -> BlockEntry {
        let drain = |s: &mut HashSet64| Keys::of(s.drain().collect());
        let kinds = Kind::ALL
            .iter()
            .filter(|k| self.kinds[**k as usize] > 0)
            .map(|k| (k.as_str().to_string(), self.kinds[*k as usize]))
            .collect();
        let entry = BlockEntry {
            offset,
            len,
            count: self.count,
            first_seq: self.first_seq,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            first_ts: self.first_ts.map_or(0, |t| t.0),
            kinds,
            traces: drain(&mut self.traces),
            places: drain(&mut self.places),
            nodes: drain(&mut self.nodes),
            services: drain(&mut self.services),
        };
        self.kinds = [0; Kind::COUNT];
        self.first_ts = None;
        self.count = 0;
        entry
    }
}

/// Which blocks a read needs. Every condition given must hold of a block for it to be read,
/// except that blocks holding one of `always` kinds are read whatever else is asked.
#[derive(Clone, Debug, Default)]
pub struct Want {
    /// Blocks with at least one event in `[from, to]`.
    pub from: Option<Ts>,
    pub to: Option<Ts>,
    /// Blocks holding at least one event of these kinds (empty: any).
    pub kinds: HashSet<Kind>,
    /// Blocks that may name one of these keys, by set (empty: any).
    pub traces: Vec<u64>,
    pub places: Vec<u64>,
    pub nodes: Vec<u64>,
    pub services: Vec<u64>,
    /// Blocks holding one of these kinds are read whatever else is asked (the Kubernetes objects
    /// that explain the other events).
    pub always: HashSet<Kind>,
}

impl Want {
    /// Whether it reads every block.
    pub fn is_everything(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.kinds.is_empty()
            && self.traces.is_empty()
            && self.places.is_empty()
            && self.nodes.is_empty()
            && self.services.is_empty()
    }

    pub fn place(&mut self, k: &str) {
        self.places.push(key(Set::Place, k.as_bytes()));
    }

    /// The keys asked of each set, in [`BlockEntry::sets`]' order.
    fn keys(&self) -> [&[u64]; 4] {
        [&self.traces, &self.places, &self.nodes, &self.services]
    }

    /// Whether block `b` is wanted, as far as its index entry tells: `Some(true)` or
    /// `Some(false)`, or `None` when it passes every test but some of its filters are kept out of
    /// the index (they decide).
    fn wants(&self, b: &BlockEntry) -> Option<bool> {
        let has = |k: &Kind| b.kinds.iter().any(|(n, c)| n == k.as_str() && *c > 0);
        if self.always.iter().any(has) {
            return Some(true);
        }
        let first = self.from.is_none_or(|t| b.max_ts >= t.0)
            && self.to.is_none_or(|t| b.min_ts <= t.0)
            && (self.kinds.is_empty() || self.kinds.iter().any(has));
        if !first {
            return Some(false);
        }
        let mut far = false;
        for (want, keys) in self.keys().into_iter().zip(b.sets()) {
            if want.is_empty() {
                continue;
            }
            let mut verdict = Some(false);
            for h in want {
                match keys.may_contain(*h) {
                    Some(true) => {
                        verdict = Some(true);
                        break;
                    }
                    Some(false) => {}
                    None => verdict = None,
                }
            }
            match verdict {
                Some(false) => return Some(false),
                Some(true) => {}
                None => far = true,
            }
        }
        (!far).then_some(true)
    }
}

impl BlockEntry {
    /// Its sets, in the order of [`Set`].
    fn sets(&self) -> [&Keys; 4] {
        [&self.traces, &self.places, &self.nodes, &self.services]
    }

    fn sets_mut(&mut self) -> [&mut Keys; 4] {
        [
            &mut self.traces,
            &mut self.places,
            &mut self.nodes,
            &mut self.services,
        ]
    }
}

/// Filters kept out of the index that lie less than this far apart are read in one read.
const READ_GAP: u64 = 64 << 10;
/// The most bytes of filters read at once (at least one filter).
const READ_MOST: u64 = MAX_FILTER;

/// Reads `buf.len()` bytes of the capture at a byte offset, or says why it cannot.
pub type ReadAt<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result<(), String>;

impl Index {
    /// The offsets of the blocks `want` needs, in the file's order. Filters kept out of the
    /// index are read with `read`, only for blocks that pass every other test, set by set; one
    /// whose checksum fails is an error (the caller reads the capture whole).
    pub fn select(&self, want: &Want, read: ReadAt<'_>) -> Result<Vec<u64>, String> {
        let mut verdicts: Vec<Option<bool>> = self.blocks.iter().map(|b| want.wants(b)).collect();
        for (set, keys) in want.keys().into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            // The far filters of this set of the blocks still undecided, in the file's order:
            // (block, hashes, offset, end, crc), each of a length a reader accepts.
            let mut far: Vec<(usize, u32, u64, u64, u32)> = Vec::new();
            for (i, _) in verdicts.iter().enumerate().filter(|(_, v)| v.is_none()) {
                if let Keys::Far {
                    hashes,
                    at,
                    len,
                    crc,
                } = self.blocks[i].sets()[set]
                {
                    let end = at
                        .checked_add(u64::from(*len))
                        .filter(|_| u64::from(*len) <= MAX_FILTER)
                        .ok_or_else(|| format!("index (filter length at byte offset {at})"))?;
                    far.push((i, *hashes, *at, end, *crc));
                }
            }
            far.sort_unstable_by_key(|f| f.2);
            // A writer lays a set's filters end to end: ones that overlap would make the work of
            // checking them grow past the size of the file.
            if let Some(pair) = far.windows(2).find(|pair| pair[1].2 < pair[0].3) {
                return Err(format!(
                    "index (filters overlap at byte offset {})",
                    pair[1].2
                ));
            }
            let mut buf = Vec::new();
            let mut k = 0;
            while k < far.len() {
                // One read: the filters near each other, up to READ_MOST bytes.
                let start = far[k].2;
                let mut j = k + 1;
                while j < far.len()
                    && far[j].2 <= far[j - 1].3.saturating_add(READ_GAP)
                    && far[j].3 - start <= READ_MOST
                {
                    j += 1;
                }
                buf.resize((far[j - 1].3 - start) as usize, 0);
                read(start, &mut buf)?;
                for &(i, hashes, at, end, crc) in &far[k..j] {
                    let bits = &buf[(at - start) as usize..(end - start) as usize];
                    if crc32fast::hash(bits) != crc {
                        return Err(format!(
                            "index (filter checksum mismatch at byte offset {at})"
                        ));
                    }
                    if !keys.iter().any(|h| bloom_has(hashes, bits, *h)) {
                        verdicts[i] = Some(false);
                    }
                }
                k = j;
            }
        }
        // Undecided blocks passed every filter they were tested against.
        Ok(self
            .blocks
            .iter()
            .zip(verdicts)
            .filter(|(_, v)| *v != Some(false))
            .map(|(b, _)| b.offset)
            .collect())
    }

    /// The time of the capture's first event as a reader meets it (what `+5m` counts from).
    pub fn first_ts(&self) -> Option<Ts> {
        self.blocks.first().map(|b| Ts(b.first_ts))
    }

    /// Events in all blocks.
    pub fn events(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.count)).sum()
    }

    /// Moves the Bloom filters out of the index into a sets frame to be written at byte offset
    /// `at` (format 3), and returns that frame: the filters of the traces of every block, then
    /// those of places, nodes and services, so that a question about one set reads one run.
    pub fn move_filters_out(&mut self, at: u64) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(SETS_TAG);
        frame.extend_from_slice(&0u64.to_le_bytes());
        frame.extend_from_slice(&0u32.to_le_bytes());
        for set in 0..4 {
            for b in &mut self.blocks {
                let Some(keys) = b.sets_mut().into_iter().nth(set) else {
                    continue;
                };
                if let Keys::Bloom { hashes, bits } = keys {
                    let far = Keys::Far {
                        hashes: *hashes,
                        at: at + frame.len() as u64,
                        len: bits.len() as u32,
                        crc: crc32fast::hash(bits),
                    };
                    frame.extend_from_slice(bits);
                    *keys = far;
                }
            }
        }
        let len = (frame.len() - SETS_FIXED) as u64;
        frame[4..12].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&frame[..12]);
        frame[12..16].copy_from_slice(&crc.to_le_bytes());
        frame
    }

    /// Checks the fixed part of a sets frame: the length of its filters.
    pub fn sets_len(fixed: &[u8]) -> Result<u64, &'static str> {
        if fixed.len() < SETS_FIXED || &fixed[..4] != SETS_TAG {
            return Err("index filters (frame tag)");
        }
        if crc32fast::hash(&fixed[..12]).to_le_bytes() != fixed[12..16] {
            return Err("index filters (header checksum mismatch)");
        }
        Ok(u64::from_le_bytes(
            fixed[4..12].try_into().unwrap_or([0; 8]),
        ))
    }

    /// The index frame: its bytes, to be written at `offset`.
    pub fn encode(&self, zstd_level: i32) -> std::io::Result<Vec<u8>> {
        let raw = postcard::to_stdvec(self).map_err(std::io::Error::other)?;
        let z = zstd::bulk::compress(&raw, zstd_level)?;
        let mut frame = Vec::with_capacity(INDEX_FIXED + z.len());
        frame.extend_from_slice(INDEX_TAG);
        frame.extend_from_slice(&(z.len() as u32).to_le_bytes());
        frame.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&z).to_le_bytes());
        let crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame.extend_from_slice(&z);
        Ok(frame)
    }

    /// Checks and parses the fixed part of an index frame: the payload's length.
    pub fn frame_len(fixed: &[u8]) -> Result<(usize, usize, u32), &'static str> {
        if fixed.len() < INDEX_FIXED || &fixed[..4] != INDEX_TAG {
            return Err("index (frame tag)");
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        if crc32fast::hash(&fixed[..16]) != u32_at(16) {
            return Err("index (header checksum mismatch)");
        }
        let (zlen, rawlen) = (u32_at(4) as usize, u32_at(8) as usize);
        if zlen > MAX_INDEX || rawlen > MAX_INDEX {
            return Err("index (length)");
        }
        Ok((zlen, rawlen, u32_at(12)))
    }

    /// Decodes an index frame's payload.
    pub fn decode(payload: &[u8], rawlen: usize, crc: u32) -> Result<Index, String> {
        if crc32fast::hash(payload) != crc {
            return Err("index (payload checksum mismatch)".to_string());
        }
        let raw = zstd::bulk::decompress(payload, rawlen)
            .map_err(|e| format!("index (cannot decompress: {e})"))?;
        let index: Index =
            postcard::from_bytes(&raw).map_err(|e| format!("index (cannot decode: {e})"))?;
        index.check()?;
        Ok(index)
    }

    /// Refuses what no writer makes and a reader could not afford: a filter of more hashes a
    /// key than [`MAX_HASHES`] (each key costs one probe a hash) or of more than [`MAX_FILTER`]
    /// bytes.
    fn check(&self) -> Result<(), String> {
        for (n, b) in self.blocks.iter().enumerate() {
            for keys in b.sets() {
                let (hashes, len) = match keys {
                    Keys::Exact(_) => continue,
                    Keys::Bloom { hashes, bits } => (*hashes, bits.len() as u64),
                    Keys::Far { hashes, len, .. } => (*hashes, u64::from(*len)),
                };
                if hashes == 0 || hashes > MAX_HASHES || len > MAX_FILTER {
                    return Err(format!(
                        "index (block {n}: a filter of {hashes} hashes and {len} bytes)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The footer of a closed capture of format 2 or later: where its index and trailer start.
pub fn footer(index_offset: u64, trailer_offset: u64) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[..4].copy_from_slice(FOOTER_TAG);
    f[4..12].copy_from_slice(&index_offset.to_le_bytes());
    f[12..20].copy_from_slice(&trailer_offset.to_le_bytes());
    let crc = crc32fast::hash(&f[..20]);
    f[20..].copy_from_slice(&crc.to_le_bytes());
    f
}

/// The index and trailer offsets of a footer, when it is one.
pub fn parse_footer(f: &[u8]) -> Option<(u64, u64)> {
    if f.len() != FOOTER_LEN || &f[..4] != FOOTER_TAG {
        return None;
    }
    if crc32fast::hash(&f[..20]).to_le_bytes() != f[20..24] {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().unwrap_or([0; 8]));
    Some((u64_at(4), u64_at(12)))
}

/// The first bytes of an index kept beside a capture that has none of its own (`tapio index`).
const CACHE_MAGIC: &[u8; 8] = b"TAPIOIDX";

/// Where `tapio index` keeps the index of a capture without one: beside it.
pub fn cache_path(capture: &Path) -> PathBuf {
    let mut p = capture.as_os_str().to_owned();
    p.push(".tidx");
    PathBuf::from(p)
}

/// The index kept beside `capture`, when there is one and it describes the capture as it is now
/// (`len` bytes long, as when it was made: a capture only grows).
pub fn cached(capture: &Path, len: u64) -> Result<Option<Index>, String> {
    let path = cache_path(capture);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if bytes.len() < 16 + INDEX_FIXED || &bytes[..8] != CACHE_MAGIC {
        return Err(format!("{}: not a tapio index", path.display()));
    }
    let made_for = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    if made_for != len {
        return Ok(None);
    }
    let frame = &bytes[16..];
    let (zlen, rawlen, crc) =
        Index::frame_len(frame).map_err(|w| format!("{}: {w}", path.display()))?;
    if frame.len() != INDEX_FIXED + zlen {
        return Err(format!("{}: index (cut short)", path.display()));
    }
    Index::decode(&frame[INDEX_FIXED..], rawlen, crc)
        .map(Some)
        .map_err(|w| format!("{}: {w}", path.display()))
}

/// Builds the index of a capture by reading it whole (a capture of format 1, or one that was
/// not closed cleanly), and keeps it beside the capture. Returns where, and the index.
pub fn rebuild(capture: &Path, opts: &ReadOptions) -> Result<(PathBuf, Index), Error> {
    let mut reader = Reader::open(capture, opts.clone())?;
    let mut decoder = Decoder::new().map_err(|e| Error::io(capture, e))?;
    let mut keys = BlockKeys::default();
    let mut index = Index::default();
    let mut events = Vec::new();
    while let Some(raw) = reader.next_raw()? {
        events.clear();
        if let Err(what) = decoder.decode(&raw, &mut events) {
            super::corrupt_block(capture, &raw, what, opts.skip_corrupt)?;
            continue;
        }
        events.iter().for_each(|e| keys.add(e));
        index.blocks.push(keys.finish(raw.offset, raw.frame_len()));
    }
    // What the index covers: the capture up to its last complete block (and a trailer).
    let len = std::fs::metadata(capture)
        .map_err(|e| Error::io(capture, e))?
        .len();
    let path = cache_path(capture);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&index.encode(3).map_err(|e| Error::io(&path, e))?);
    let tmp = path.with_extension("tidx.tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(&path, e))?;
    Ok((path, index))
}

/// What is wrong with the indexes of some captures (read whole instead), by capture.
pub type Notes = Vec<(PathBuf, String)>;

/// The note of a capture whose index is damaged: what is wrong, and that it is read whole.
pub fn damaged(path: &Path, what: &str) -> (PathBuf, String) {
    (path.to_path_buf(), format!("{what}; reading every block"))
}

/// Opens captures to read what `want` needs: each capture with an index reads only the blocks
/// that can hold it; one without reads whole. A damaged index is said (the path and what is
/// wrong) and its capture read whole.
pub fn open_selected(
    paths: &[PathBuf],
    opts: &ReadOptions,
    want: &Want,
) -> Result<(Vec<Reader>, Notes), Error> {
    let mut readers = paths
        .iter()
        .map(|p| Reader::open(p, opts.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let notes = select(&mut readers, want);
    Ok((readers, notes))
}

/// Narrows open readers to what `want` needs, as [`open_selected`] does.
pub fn select(readers: &mut [Reader], want: &Want) -> Notes {
    let mut notes = Vec::new();
    if want.is_everything() {
        return notes;
    }
    for r in readers.iter_mut().filter(|r| !r.options().follow) {
        match r.plan(want) {
            Ok(Some(blocks)) => r.select(blocks),
            Ok(None) => {}
            Err(e) => notes.push(damaged(r.path(), &e)),
        }
    }
    notes
}

/// The time of the first event of the merge of these captures, from their indexes (what `+5m`
/// counts from); `None` when one has no index.
pub fn first_ts(readers: &[Reader]) -> Option<Ts> {
    let mut first: Option<Ts> = None;
    for r in readers {
        let t = r.index().ok().flatten()?.first_ts()?;
        first = Some(first.map_or(t, |f| f.min(t)));
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_never_misses_a_key_it_holds_and_its_bloom_filter_keeps_to_its_rate() {
        for n in [0usize, 1, 10, EXACT_MAX, EXACT_MAX + 1, 500, 5000] {
            let keys: Vec<u64> = (0..n as u64)
                .map(|i| key(Set::Trace, &i.to_le_bytes()))
                .collect();
            let set = Keys::of(keys.clone());
            assert_eq!(matches!(set, Keys::Exact(_)), n <= EXACT_MAX, "{n}");
            assert!(
                keys.iter().all(|h| set.may_contain(*h) == Some(true)),
                "{n}"
            );
            let probes = 100_000u64;
            let false_positives = (0..probes)
                .filter(|i| {
                    set.may_contain(key(Set::Trace, &(1_000_000 + i).to_le_bytes())) == Some(true)
                })
                .count();
            let rate = false_positives as f64 / probes as f64;
            if n <= EXACT_MAX {
                assert_eq!(false_positives, 0, "{n}");
            } else {
                // 16 bits and 11 hashes a key: 0.046 % in theory.
                assert!(rate < 0.001, "{n} keys: {rate}");
            }
        }
    }

    #[test]
    fn keys_of_two_sets_differ_and_hashes_are_stable() {
        assert_ne!(key(Set::Trace, b"a"), key(Set::Node, b"a"));
        // Part of the format: a change here breaks every index written before.
        assert_eq!(key(Set::Node, b"node-1"), 0xb3ac_2bbb_7cc9_4a26);
    }

    /// An index of `n` blocks, block `b` naming traces `b*100 .. b*100+traces(b)` and node
    /// `node-<b % 3>`.
    fn blocks(n: u64, traces: impl Fn(u64) -> u64) -> Index {
        let mut keys = BlockKeys::default();
        let mut index = Index::default();
        for b in 0..n {
            for t in 0..traces(b) {
                keys.traces
                    .insert(key(Set::Trace, &(b * 100 + t).to_le_bytes()));
            }
            keys.nodes
                .insert(key(Set::Node, format!("node-{}", b % 3).as_bytes()));
            keys.add(&Event::new(
                Ts(b * 1000),
                "node-1",
                crate::event::Source::Tapio,
                crate::event::Body::Meta(crate::event::Meta::Annotation { text: "x".into() }),
            ));
            index.blocks.push(keys.finish(1000 + b * 10, 10));
        }
        index
    }

    #[test]
    fn filters_moved_out_of_the_index_select_the_blocks_they_selected_in_it() {
        // Blocks of 10 to 90 traces: exact sets and Bloom filters side by side.
        let inline = blocks(40, |b| 10 + (b % 9) * 10);
        let mut far = inline.clone();
        let at = 5000;
        let frame = far.move_filters_out(at);
        assert_eq!(
            Index::sets_len(&frame[..SETS_FIXED]),
            Ok((frame.len() - SETS_FIXED) as u64)
        );
        assert!(far
            .blocks
            .iter()
            .any(|b| matches!(b.traces, Keys::Far { .. })));
        assert!(far
            .blocks
            .iter()
            .any(|b| matches!(b.traces, Keys::Exact(_))));
        let mut file = vec![0u8; at as usize];
        file.extend_from_slice(&frame);
        let reads = std::cell::Cell::new(0);
        let read = |at: u64, buf: &mut [u8]| {
            reads.set(reads.get() + 1);
            let at = at as usize;
            match file.get(at..at + buf.len()) {
                Some(b) => {
                    buf.copy_from_slice(b);
                    Ok(())
                }
                None => Err(format!("cut short at {at}")),
            }
        };
        let never = |_: u64, _: &mut [u8]| Err("no filter is far".to_string());
        for (traces, nodes, from) in [
            (vec![5 * 100 + 3], vec![], None),
            (vec![17 * 100 + 85, 30 * 100 + 1], vec![], None),
            (vec![17 * 100 + 85, 30 * 100 + 1], vec!["node-0"], None),
            (vec![8 * 100 + 80], vec![], Some(Ts(20_000))),
            (vec![99_999], vec![], None),
        ] {
            let want = Want {
                traces: traces
                    .iter()
                    .map(|t: &u64| key(Set::Trace, &t.to_le_bytes()))
                    .collect(),
                nodes: nodes.iter().map(|n| key(Set::Node, n.as_bytes())).collect(),
                from,
                ..Want::default()
            };
            let expected = inline.select(&want, &never).unwrap();
            assert_eq!(far.select(&want, &read).unwrap(), expected, "{traces:?}");
            let blocks: Vec<u64> = traces
                .iter()
                .filter(|t| **t < 4000 && from.is_none_or(|f| *t / 100 * 1000 >= f.0))
                .filter(|t| nodes.is_empty() || (*t / 100) % 3 == 0)
                .map(|t| 1000 + t / 100 * 10)
                .collect();
            assert!(blocks.iter().all(|b| expected.contains(b)), "{traces:?}");
            assert!(
                expected.len() <= blocks.len() + 1,
                "{traces:?}: {expected:?}"
            );
        }
        // Filters near each other are read at once: a question of every block, a read.
        reads.set(0);
        let want = Want {
            traces: vec![key(Set::Trace, b"none")],
            ..Want::default()
        };
        far.select(&want, &read).unwrap();
        assert_eq!(reads.get(), 1);
        // A damaged filter, or one past the end of the file, is an error, not a missed block.
        let mut bad = file.clone();
        *bad.last_mut().unwrap() ^= 1;
        let read_bad = |at: u64, buf: &mut [u8]| {
            buf.copy_from_slice(&bad[at as usize..at as usize + buf.len()]);
            Ok(())
        };
        let err = far.select(&want, &read_bad).unwrap_err();
        assert!(
            err.contains("filter checksum mismatch at byte offset"),
            "{err}"
        );
        // Filters that overlap (no writer lays them so) are refused before any is checked.
        let mut overlapping = far.clone();
        let first = overlapping
            .blocks
            .iter()
            .find_map(|b| match b.traces {
                Keys::Far { at, .. } => Some(at),
                _ => None,
            })
            .unwrap();
        for b in &mut overlapping.blocks {
            if let Keys::Far { at, .. } = &mut b.traces {
                *at = first;
            }
        }
        let err = overlapping.select(&want, &read).unwrap_err();
        assert!(err.contains("filters overlap at byte offset"), "{err}");
        let short = &file[..file.len() - 1];
        let read_short =
            |at: u64, buf: &mut [u8]| match short.get(at as usize..at as usize + buf.len()) {
                Some(b) => {
                    buf.copy_from_slice(b);
                    Ok(())
                }
                None => Err("cut short".to_string()),
            };
        assert!(far
            .select(&want, &read_short)
            .unwrap_err()
            .contains("cut short"));
    }

    #[test]
    fn an_index_frame_reads_back_and_a_flipped_bit_is_refused() {
        let mut b = BlockKeys::default();
        let mut e = Event::new(
            Ts(5),
            "node-1",
            crate::event::Source::Tapio,
            crate::event::Body::Meta(crate::event::Meta::Annotation { text: "x".into() }),
        );
        e.seq = 7;
        b.add(&e);
        let index = Index {
            blocks: vec![b.finish(16, 100)],
        };
        assert_eq!(index.blocks[0].kinds, [("annotation".to_string(), 1)]);
        let frame = index.encode(3).unwrap();
        let (zlen, rawlen, crc) = Index::frame_len(&frame[..INDEX_FIXED]).unwrap();
        assert_eq!(zlen, frame.len() - INDEX_FIXED);
        assert_eq!(
            Index::decode(&frame[INDEX_FIXED..], rawlen, crc).unwrap(),
            index
        );
        let mut bad = frame.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(Index::decode(&bad[INDEX_FIXED..], rawlen, crc).is_err());
        // A filter no writer makes (each key would cost a billion probes) is refused.
        let mut costly = index.clone();
        costly.blocks[0].traces = Keys::Far {
            hashes: 1 << 30,
            at: 0,
            len: 8,
            crc: 0,
        };
        let frame = costly.encode(3).unwrap();
        let (_, rawlen, crc) = Index::frame_len(&frame[..INDEX_FIXED]).unwrap();
        let err = Index::decode(&frame[INDEX_FIXED..], rawlen, crc).unwrap_err();
        assert!(
            err.contains("block 0: a filter of 1073741824 hashes"),
            "{err}"
        );
        let f = footer(10, 20);
        assert_eq!(parse_footer(&f), Some((10, 20)));
        let mut g = f;
        g[5] ^= 1;
        assert_eq!(parse_footer(&g), None);
    }
}
