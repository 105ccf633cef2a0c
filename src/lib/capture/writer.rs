//! Writing a capture: append events, cut them into blocks, close with a trailer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::frame::FrameEncoder;
use super::{Error, Header, Stats, Trailer, FORMAT_VERSION, MAGIC, TRAILER_TAG};
use crate::event::Event;

/// How blocks are cut.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Close a block when its raw records reach this size.
    pub block_bytes: usize,
    /// Close a block when its first event is this old (bounds what a crash can lose).
    pub block_interval: Duration,
    /// zstd level (1–19); 3 is a good trade of speed and size.
    pub zstd_level: i32,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            block_bytes: 1 << 20,
            block_interval: Duration::from_secs(1),
            zstd_level: 3,
        }
    }
}

/// Appends events to a capture. Every event gets the next sequence number.
pub struct Writer<W: Write = BufWriter<File>> {
    out: W,
    path: PathBuf,
    opts: WriteOptions,
    block: FrameEncoder,
    block_started: Option<Instant>,
    next_seq: u64,
    blocks: u64,
    bytes: u64,
    stats: Stats,
}

impl Writer<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the header. The file is readable by its owner
    /// only (0600), whatever the umask: a capture holds a cluster's internals.
    pub fn create(path: &Path, header: &Header, opts: WriteOptions) -> Result<Self, Error> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        // An existing file keeps its mode on open: set it. (/dev/null and other special files
        // are left as they are.)
        if file.metadata().is_ok_and(|m| m.is_file()) {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(path, e))?;
        }
        Writer::new(BufWriter::with_capacity(1 << 20, file), path, header, opts)
    }
}

impl<W: Write> Writer<W> {
    /// Writes the header to `out`; `path` names the output in errors.
    pub fn new(
        mut out: W,
        path: &Path,
        header: &Header,
        opts: WriteOptions,
    ) -> Result<Self, Error> {
        let json = serde_json::to_vec(header).map_err(|e| Error::Encode {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let mut buf = Vec::with_capacity(json.len() + 24);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&buf)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io(path, e))?;
        let block = FrameEncoder::new(opts.zstd_level).map_err(|e| Error::io(path, e))?;
        Ok(Writer {
            out,
            path: path.to_path_buf(),
            opts,
            block,
            block_started: None,
            next_seq: 0,
            blocks: 0,
            bytes: buf.len() as u64,
            stats: Stats::default(),
        })
    }

    /// Numbers events from `seq` on (the next file of a rotated recording goes on where the
    /// previous one stopped).
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.next_seq = seq;
        self
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends one event, giving it the next sequence number, and closes the block when it is full
    /// or old enough.
    pub fn append(&mut self, e: &mut Event) -> Result<(), Error> {
        e.seq = self.next_seq;
        self.append_numbered(e)
    }

    /// Appends an event that keeps its sequence number (copying from captures already written);
    /// numbers must grow.
    pub fn append_numbered(&mut self, e: &Event) -> Result<(), Error> {
        self.next_seq = e.seq + 1;
        self.block.push(e).map_err(|err| self.encode_error(err))?;
        self.stats.add(e);
        let started = *self.block_started.get_or_insert_with(Instant::now);
        let full = self.block.raw_len() >= self.opts.block_bytes;
        // Reading the clock costs more than encoding a small event: look every 256 events.
        if full || (self.block.count() % 256 == 0 && started.elapsed() >= self.opts.block_interval)
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Closes the current block, if any, and pushes it to the file: after this returns, a reader
    /// (and a crash) sees every event appended so far.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.block.count() > 0 {
            self.write_block()?;
        }
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// Whether the open block is older than the block interval (for writers fed by slow sources,
    /// which call this on a timer and then [`Writer::flush`]).
    pub fn block_due(&self) -> bool {
        self.block_started
            .is_some_and(|t| t.elapsed() >= self.opts.block_interval)
    }

    fn write_block(&mut self) -> Result<(), Error> {
        let frame = self.block.finish().map_err(|e| Error::io(&self.path, e))?;
        self.out
            .write_all(&frame)
            .map_err(|e| Error::io(&self.path, e))?;
        self.bytes += frame.len() as u64;
        self.blocks += 1;
        self.block_started = None;
        Ok(())
    }

    /// Events appended so far, and bytes written so far (header and closed blocks).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flushes the last block and writes the trailer: the capture is now cleanly closed.
    pub fn finish(mut self) -> Result<Trailer, Error> {
        self.flush()?;
        let trailer = Trailer {
            blocks: self.blocks,
            stats: self.stats.clone(),
            closed: super::now(),
        };
        let json = serde_json::to_vec(&trailer).map_err(|e| Error::Encode {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        let mut buf = Vec::with_capacity(json.len() + 12);
        buf.extend_from_slice(TRAILER_TAG);
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        self.out
            .write_all(&buf)
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(trailer)
    }

    fn encode_error(&self, err: postcard::Error) -> Error {
        Error::Encode {
            path: self.path.clone(),
            detail: err.to_string(),
        }
    }
}

#[cfg(test)]
mod mode_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_capture_is_readable_by_its_owner_only_whatever_the_umask_or_an_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tapio");
        // An older file, readable by all.
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = Writer::create(&path, &Header::new("n"), WriteOptions::default()).unwrap();
        w.finish().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fresh = dir.path().join("d.tapio");
        Writer::create(&fresh, &Header::new("n"), WriteOptions::default())
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
