//! Writing a capture: append events, cut them into blocks, close with a trailer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::frame::FrameEncoder;
use super::index::{self, BlockEntry, BlockKeys, Index};
use super::{Error, Header, Stats, Trailer, FORMAT_VERSION, MAGIC, TRAILER_TAG};
use crate::event::Event;

/// How blocks are cut.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Close a block when its raw records reach this size. 512 KiB: a reader decompresses a
    /// block whole and then decodes it, and a block of that size stays in a core's cache between
    /// the two (the events it makes, about 2 MB, are the next stage's batch): replay takes about
    /// 8 % less CPU and half the memory than with blocks of 1 MiB, for 0.5 % more bytes.
    pub block_bytes: usize,
    /// Close a block when its first event is this old (bounds what a crash can lose).
    pub block_interval: Duration,
    /// zstd level (1–19); 3 is a good trade of speed and size.
    pub zstd_level: i32,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            block_bytes: 512 << 10,
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
    /// A closed block whose write failed (a full disk), kept to be written again, with its entry
    /// of the index.
    unwritten: Option<(Vec<u8>, BlockEntry)>,
    /// The keys of the block being filled, and the entries of the blocks written.
    keys: BlockKeys,
    index: Index,
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

    /// After a write failed: cuts off what of the failed block reached the file, so that the
    /// next [`Writer::flush`] writes it again after the last complete block.
    pub fn rewind(&mut self) -> Result<(), Error> {
        use std::io::Seek;
        let io = |e| Error::io(&self.path, e);
        let file = self.out.get_ref().try_clone().map_err(io)?;
        let old = std::mem::replace(&mut self.out, BufWriter::with_capacity(1 << 20, file));
        // What the buffer still held of the failed block is dropped, not written.
        let (file, _) = old.into_parts();
        file.set_len(self.bytes).map_err(io)?;
        (&file)
            .seek(std::io::SeekFrom::Start(self.bytes))
            .map_err(io)?;
        Ok(())
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
            unwritten: None,
            keys: BlockKeys::default(),
            index: Index::default(),
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
        self.keys.add(e);
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
        if let Some((frame, entry)) = self.unwritten.take() {
            self.write_frame(frame, entry)?;
        }
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
        let entry = self.keys.finish(0, frame.len() as u64);
        self.block_started = None;
        self.write_frame(frame, entry)
    }

    /// Writes a closed block through to the file; when that fails, the block is kept for the
    /// next flush (after [`Writer::rewind`]), so that no event is lost to a full disk that frees.
    fn write_frame(&mut self, frame: Vec<u8>, mut entry: BlockEntry) -> Result<(), Error> {
        match self.out.write_all(&frame).and_then(|()| self.out.flush()) {
            Ok(()) => {
                entry.offset = self.bytes;
                self.index.blocks.push(entry);
                self.bytes += frame.len() as u64;
                self.blocks += 1;
                Ok(())
            }
            Err(e) => {
                self.unwritten = Some((frame, entry));
                Err(Error::io(&self.path, e))
            }
        }
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
        // The index's filters, the index, the trailer, then the footer that says where the
        // index and the trailer start.
        let mut buf = self.index.move_filters_out(self.bytes);
        let index_offset = self.bytes + buf.len() as u64;
        buf.extend_from_slice(
            &self
                .index
                .encode(self.opts.zstd_level)
                .map_err(|e| Error::io(&self.path, e))?,
        );
        let trailer_offset = self.bytes + buf.len() as u64;
        let start = buf.len();
        buf.extend_from_slice(TRAILER_TAG);
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        let crc = crc32fast::hash(&buf[start..]);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&index::footer(index_offset, trailer_offset));
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

#[cfg(test)]
mod full_disk_tests {
    use std::io::Write;

    use super::*;
    use crate::capture::{ReadOptions, Reader, Warning};
    use crate::event::{Event, Log, LogOrigin, Source, Ts};

    /// A file whose writes fail while `full` is set (nothing of them lands), and that can drop
    /// the `swallow`-th block write silently, as a lost write would.
    struct Disk {
        bytes: Vec<u8>,
        full: bool,
        writes: usize,
        swallow: Option<usize>,
    }

    impl Write for &mut Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.full {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.writes += 1;
            if self.swallow != Some(self.writes) {
                self.bytes.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(n: u64) -> Event {
        let mut e = Event::new(
            Ts(1_000 + n),
            "n",
            Source::Import,
            Log::new(LogOrigin::App, "x"),
        );
        e.seq = n;
        e
    }

    fn read(bytes: &[u8]) -> (usize, Vec<Warning>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tapio");
        std::fs::write(&path, bytes).unwrap();
        let mut r = Reader::open(&path, ReadOptions::default()).unwrap();
        let n = r.read_all().unwrap().len();
        (n, r.take_warnings())
    }

    #[test]
    fn a_block_whose_write_failed_is_written_again_by_the_next_flush() {
        let mut disk = Disk {
            bytes: Vec::new(),
            full: false,
            writes: 0,
            swallow: None,
        };
        let mut w = Writer::new(
            &mut disk,
            Path::new("c"),
            &Header::new("n"),
            Default::default(),
        )
        .unwrap();
        for n in 0..10 {
            w.append(&mut log(n)).unwrap();
        }
        w.out.full = true;
        let err = w.flush().unwrap_err().to_string();
        assert!(err.contains("no space left"), "{err}");
        w.out.full = false;
        for n in 10..20 {
            w.append(&mut log(n)).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(read(&disk.bytes), (20, Vec::new()));
    }

    #[test]
    fn a_block_lost_in_writing_is_said_by_the_reader() {
        let mut disk = Disk {
            bytes: Vec::new(),
            full: false,
            writes: 0,
            swallow: Some(3),
        };
        let mut w = Writer::new(
            &mut disk,
            Path::new("c"),
            &Header::new("n"),
            Default::default(),
        )
        .unwrap();
        for n in 0..30 {
            w.append(&mut log(n)).unwrap();
            if n % 10 == 9 {
                w.flush().unwrap();
            }
        }
        w.finish().unwrap();
        let (n, warnings) = read(&disk.bytes);
        assert_eq!(n, 20);
        assert_eq!(
            warnings,
            [Warning::Missing {
                counted: 30,
                read: 20
            }]
        );
        assert!(warnings[0].to_string().contains("10 events were lost"));
    }
}
