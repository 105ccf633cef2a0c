//! The capture file: what `record` and `import` write and every other command reads.
//!
//! A capture is a header, then blocks of events, then (on a clean close) a trailer:
//!
//! ```text
//! header   "TAPIOCAP" u16 version u16 flags u32 len  <len bytes of JSON>  u32 crc32
//! block    "TBLK" u32 zlen u32 rawlen u32 count u64 first_ts u64 last_ts u64 first_seq
//!          u32 payload_crc u32 frame_crc  <zlen bytes: zstd(postcard records)>
//! index    "TIDX" u32 zlen u32 rawlen u32 payload_crc u32 frame_crc  <zlen bytes: zstd(postcard)>
//! trailer  "TEND" u32 len  <len bytes of JSON>  u32 crc32
//! footer   "TFTR" u64 index_offset u64 trailer_offset u32 crc32
//! ```
//!
//! (Format 1 has neither index nor footer; see [`index`].)
//!
//! Each block is written with one `write` and is self-contained, so a capture cut at any byte
//! offset (a crash, `kill -9`, a full disk) still reads back every complete block, and a reader
//! can follow a capture that is still being written. Checksums on every frame mean a flipped bit
//! is detected and reported with its offset, never believed. `docs/capture-format.md` is the
//! specification; `fixtures/captures/` holds frozen files that every later version must read.

mod codec;
mod follow;
mod frame;
pub mod index;
mod merge;
mod output;
mod reader;
mod stats;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::event::Ts;

pub use self::follow::{rotated_set, Follower};
pub use self::frame::{decode_frame, FrameEncoder};
pub use self::merge::{Blocks, Merge};
pub use self::output::{Kept, Layout, Output};
pub use self::reader::{corrupt_block, Decoder, RawBlock, ReadOptions, Reader, StopWhen, Warning};
pub use self::stats::Stats;
pub use self::writer::{WriteOptions, Writer};

/// The first eight bytes of every capture.
pub const MAGIC: &[u8; 8] = b"TAPIOCAP";
/// The version this build writes. Readers accept every version up to this one.
pub const FORMAT_VERSION: u16 = 3;
/// The frame tags.
pub const BLOCK_TAG: &[u8; 4] = b"TBLK";
pub const TRAILER_TAG: &[u8; 4] = b"TEND";

/// Metadata written once at the start of a capture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// The format version, from the binary part of the header.
    #[serde(skip)]
    pub format_version: u16,
    /// The node that recorded it (host name); empty for an import of cluster-wide dumps.
    pub node: String,
    /// `uname -r` of the recording node.
    pub kernel_release: String,
    /// Wall-clock time of the node's boot, to turn monotonic kernel times into UTC.
    pub boot_time: Option<Ts>,
    pub tapio_version: String,
    /// When the capture was created (wall clock of the writer).
    pub created: Ts,
    /// The sources that fed it (`ebpf`, `kube`, `otlp`, `import:<file>` …).
    pub sources: Vec<String>,
    /// The options of the run (`--kind`, `--namespace`, assumed years …), for the record.
    pub options: BTreeMap<String, String>,
}

impl Header {
    /// A header for this tapio version, created now.
    pub fn new(node: impl Into<String>) -> Header {
        Header {
            format_version: FORMAT_VERSION,
            node: node.into(),
            tapio_version: env!("CARGO_PKG_VERSION").to_string(),
            created: now(),
            ..Header::default()
        }
    }
}

/// The wall clock, or `SOURCE_DATE_EPOCH` (seconds) when it is set: the reproducible-builds
/// convention, so that fixtures rebuilt from the same inputs are byte-identical.
pub fn now() -> Ts {
    match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        Some(secs) => Ts::from_secs(secs),
        None => Ts::from_datetime(&chrono::Utc::now()),
    }
}

/// Totals written at a clean close.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Trailer {
    pub blocks: u64,
    pub stats: Stats,
    pub closed: Ts,
}

/// Errors of reading or writing a capture. Each names the file and, where it applies, the byte
/// offset of the problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a tapio capture (the file does not start with the capture magic)", path.display())]
    NotACapture { path: PathBuf },
    #[error("{}: capture format version {version} is newer than this tapio reads ({FORMAT_VERSION}); upgrade tapio", path.display())]
    UnsupportedVersion { path: PathBuf, version: u16 },
    #[error("{}: corrupt {what} at byte offset {offset}; pass --skip-corrupt to read on past it", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{}: cannot encode event: {detail}", path.display())]
    Encode { path: PathBuf, detail: String },
}

impl Error {
    /// An I/O error of `path`; a full disk says how much space is left there.
    pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> Error {
        let error = if error.raw_os_error() == Some(libc::ENOSPC) {
            let free = free_space(path).map_or_else(String::new, |f| {
                format!(" ({} free on its file system)", crate::units::bytes(f))
            });
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("no space left on the device{free}; every block written before this point reads"),
            )
        } else {
            error
        };
        Error::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The bytes an unprivileged writer may still use on the file system of `path` (or of its
/// directory, when it does not exist yet).
pub fn free_space(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = if path.is_dir() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        }
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid out-pointer for the call's duration.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
