//! Bounded memory for big imports: parsed events past a batch go to scratch files, and the
//! placed events are ordered by an external merge sort.
//!
//! A log of millions of lines is parsed into events whose times cannot all be placed before the
//! whole import has been read (a `dmesg` needs the boot time that the other inputs pin). So an
//! input of the line formats writes its events, in the order it parsed them, to a scratch capture
//! once it holds more than a batch, its records' [`LineTime`]s to a file of their own (16 bytes
//! each), and keeps in memory only a [`Summary`] of those times and the few events placement
//! looks at (kernel OOM kills). Placement then reads both back in step, a block at a time. The placed events go
//! through a [`Sorter`]: sorted batches become runs (scratch captures again), merged by
//! [`Merge`], whose tie rule (the earlier input first) keeps the order one stable sort of the
//! whole import would give, because runs are cut from consecutive stretches of it.
//!
//! Scratch files live in a hidden directory beside the output (not `/tmp`, which is often memory),
//! removed when the import ends.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clock::Summary;
use super::{implausible, LineTime, Location, Pending, Rejected};
use crate::capture::{Error, Header, Merge, ReadOptions, Reader, WriteOptions, Writer};
use crate::event::{Body, Event, Kernel, Ts};

/// Where scratch files go, and how many events are held in memory before they do.
pub struct Scratch {
    parent: PathBuf,
    batch: usize,
    dir: Mutex<Dir>,
    files: AtomicUsize,
}

/// The scratch directory's state: made on first need, gone for good once removed.
enum Dir {
    None,
    Made(tempfile::TempDir),
    Failed(String),
    Removed,
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("parent", &self.parent)
            .field("batch", &self.batch)
            .finish()
    }
}

impl Scratch {
    /// Scratch files in a hidden directory under `parent`, made when the first is needed; past
    /// `batch` events (at least 1) an input or the sort goes to disk.
    pub fn new(parent: &Path, batch: usize) -> Arc<Scratch> {
        Arc::new(Scratch {
            parent: parent.to_path_buf(),
            batch: batch.max(1),
            dir: Mutex::new(Dir::None),
            files: AtomicUsize::new(0),
        })
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Removes the scratch files now (an interrupted import, which ends without unwinding); no
    /// scratch file is made after. A file another thread is making as the directory goes can
    /// leave it non-empty once, so the removal is tried again for a while.
    pub fn remove(&self) {
        let dir = {
            let mut state = self.dir.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *state, Dir::Removed)
        };
        let Dir::Made(dir) = dir else { return };
        let path = dir.keep();
        for _ in 0..100 {
            match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => return,
            }
        }
    }

    /// The scratch directory, made the first time.
    fn dir(&self) -> Result<PathBuf, Error> {
        let mut state = self.dir.lock().unwrap_or_else(|e| e.into_inner());
        if let Dir::None = *state {
            *state = match tempfile::Builder::new()
                .prefix(".tapio-import-")
                .tempdir_in(&self.parent)
            {
                Ok(dir) => Dir::Made(dir),
                Err(e) => Dir::Failed(e.to_string()),
            };
        }
        let problem = match &*state {
            Dir::Made(dir) => return Ok(dir.path().to_path_buf()),
            Dir::Failed(e) => format!("cannot make a scratch directory for the import: {e}"),
            Dir::Removed | Dir::None => "the import was stopped".to_string(),
        };
        Err(Error::Io {
            path: self.parent.clone(),
            error: std::io::Error::other(problem),
        })
    }

    /// A new scratch file's path.
    fn path(&self, what: &str, ext: &str) -> Result<PathBuf, Error> {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        Ok(self.dir()?.join(format!("{what}-{n}.{ext}")))
    }

    /// A new scratch capture.
    fn create(&self, what: &str) -> Result<(PathBuf, Writer), Error> {
        let path = self.path(what, "tapio")?;
        // Small blocks: a merge holds one block of every run.
        let opts = WriteOptions {
            block_bytes: 64 << 10,
            block_interval: Duration::from_secs(3600),
            zstd_level: 1,
        };
        let w = Writer::create(&path, &Header::new(""), opts)?;
        Ok((path, w))
    }
}

/// An input's events past the batch, on disk in parse order, and what placement needs of them.
pub struct Spill {
    scratch: Arc<Scratch>,
    path: Option<PathBuf>,
    writer: Option<Writer>,
    /// Each written record's time, in order, in a file of their own.
    times: Option<TimeFile>,
    /// What placement needs of those times.
    pub(super) summary: Summary,
    /// The written events placement looks at (kernel OOM kills), in order.
    pub(super) kept: Vec<Pending>,
    /// Records seen (written or rejected), for the item numbers of rejections.
    seen: usize,
    /// Records whose own time is impossible, rejected instead of written.
    pub(super) impossible: Vec<Rejected>,
    error: Option<Error>,
}

impl fmt::Debug for Spill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spill")
            .field("file", &self.path)
            .field("records", &self.written())
            .finish()
    }
}

impl Spill {
    pub fn new(scratch: &Arc<Scratch>) -> Spill {
        Spill {
            scratch: Arc::clone(scratch),
            path: None,
            writer: None,
            times: None,
            summary: Summary::default(),
            kept: Vec::new(),
            seen: 0,
            impossible: Vec::new(),
            error: None,
        }
    }

    pub fn batch(&self) -> usize {
        self.scratch.batch
    }

    /// How many records went to disk.
    pub fn written(&self) -> usize {
        self.times.as_ref().map_or(0, |t| t.len as usize)
    }

    /// Whether any record went to disk (an input within a batch stays in memory).
    pub fn used(&self) -> bool {
        self.path.is_some()
    }

    /// Writes `events` (and empties it). The first error is kept for [`Spill::finish`]; what
    /// follows it is dropped.
    pub fn write(&mut self, events: &mut Vec<Pending>) {
        if self.error.is_some() {
            events.clear();
            return;
        }
        if self.path.is_none() {
            match self.scratch.create("input").and_then(|(path, w)| {
                let times = TimeFile::create(self.scratch.path("times", "bin")?)?;
                Ok((path, w, times))
            }) {
                Ok((path, w, times)) => {
                    self.path = Some(path);
                    self.writer = Some(w);
                    self.times = Some(times);
                }
                Err(e) => {
                    self.error = Some(e);
                    events.clear();
                    return;
                }
            }
        }
        let (Some(w), Some(times)) = (self.writer.as_mut(), self.times.as_mut()) else {
            events.clear();
            return;
        };
        for p in events.drain(..) {
            let i = self.seen;
            self.seen += 1;
            if let LineTime::Absolute(ts) = p.time {
                if let Some(why) = implausible(ts) {
                    self.impossible.push(Rejected {
                        at: Location::Item(i),
                        reason: why,
                    });
                    continue;
                }
            }
            self.summary.add(p.time);
            if let Body::Kernel(Kernel::OomKill(_)) = &p.event.body {
                self.kept.push(p.clone());
            }
            let mut e = p.event;
            if let Err(err) = times.push(p.time).and_then(|()| w.append(&mut e)) {
                self.error = Some(err);
                return;
            }
        }
    }

    /// Ends the writing: the error that stopped it, if any.
    pub fn finish(&mut self, rest: &mut Vec<Pending>) -> Result<(), Error> {
        self.write(rest);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(w) = self.writer.take() {
            w.finish()?;
        }
        if let Some(t) = &mut self.times {
            t.flush()?;
        }
        Ok(())
    }

    /// The written events, in parse order.
    pub(super) fn read(&self) -> Result<SpillReader, Error> {
        let path = self.path.clone().unwrap_or_default();
        Ok(SpillReader {
            reader: Reader::open(&path, ReadOptions::default())?,
            block: Vec::new().into_iter(),
        })
    }
}

/// Records' times on disk, [`TIME_BYTES`] each, in order: what placement reads of a spilled
/// input, twice at most, without holding it.
struct TimeFile {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    len: u64,
}

/// The bytes of one record's time on disk.
const TIME_BYTES: usize = 16;

impl TimeFile {
    fn create(path: PathBuf) -> Result<TimeFile, Error> {
        let file = std::fs::File::create(&path).map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })?;
        Ok(TimeFile {
            path,
            out: std::io::BufWriter::with_capacity(64 << 10, file),
            len: 0,
        })
    }

    fn push(&mut self, t: LineTime) -> Result<(), Error> {
        use std::io::Write;
        self.len += 1;
        self.out.write_all(&encode(t)).map_err(|error| Error::Io {
            path: self.path.clone(),
            error,
        })
    }

    fn flush(&mut self) -> Result<(), Error> {
        use std::io::Write;
        self.out.flush().map_err(|error| Error::Io {
            path: self.path.clone(),
            error,
        })
    }
}

/// A time as [`TIME_BYTES`] bytes: its kind, month, day and year or run, then its nanoseconds.
fn encode(t: LineTime) -> [u8; TIME_BYTES] {
    let (kind, month, day, word, nanos): (u8, u32, u32, u32, u64) = match t {
        LineTime::Absolute(ts) => (0, 0, 0, 0, ts.0),
        LineTime::SinceBoot(ns) => (1, 0, 0, 0, ns),
        LineTime::NoYear {
            month,
            day,
            nanos_of_day,
        } => (2, month, day, 0, nanos_of_day),
        LineTime::Local {
            year,
            month,
            day,
            nanos_of_day,
        } => (3, month, day, year as u32, nanos_of_day),
        LineTime::TimeOfDay { nanos_of_day } => (4, 0, 0, 0, nanos_of_day),
        LineTime::Unknown => (5, 0, 0, 0, 0),
        LineTime::Run { group } => (6, 0, 0, group, 0),
    };
    let mut b = [0u8; TIME_BYTES];
    b[0] = kind;
    // Months and days are parsed from two digits: a byte holds them.
    b[1] = month.min(255) as u8;
    b[2] = day.min(255) as u8;
    b[4..8].copy_from_slice(&word.to_le_bytes());
    b[8..].copy_from_slice(&nanos.to_le_bytes());
    b
}

fn decode(b: &[u8; TIME_BYTES]) -> LineTime {
    let word = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let nanos = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    let (month, day) = (u32::from(b[1]), u32::from(b[2]));
    match b[0] {
        0 => LineTime::Absolute(Ts(nanos)),
        1 => LineTime::SinceBoot(nanos),
        2 => LineTime::NoYear {
            month,
            day,
            nanos_of_day: nanos,
        },
        3 => LineTime::Local {
            year: word as i32,
            month,
            day,
            nanos_of_day: nanos,
        },
        4 => LineTime::TimeOfDay {
            nanos_of_day: nanos,
        },
        6 => LineTime::Run { group: word },
        _ => LineTime::Unknown,
    }
}

/// Every record's time of an input, in order: those on disk, then those in memory.
pub struct Times<'a> {
    disk: Option<(PathBuf, std::io::BufReader<std::fs::File>, u64)>,
    memory: std::slice::Iter<'a, Pending>,
}

impl<'a> Times<'a> {
    pub(super) fn new(spill: Option<&Spill>, memory: &'a [Pending]) -> Result<Times<'a>, Error> {
        let disk = match spill.and_then(|s| s.times.as_ref()) {
            Some(t) => {
                let file = std::fs::File::open(&t.path).map_err(|error| Error::Io {
                    path: t.path.clone(),
                    error,
                })?;
                let reader = std::io::BufReader::with_capacity(64 << 10, file);
                Some((t.path.clone(), reader, t.len))
            }
            None => None,
        };
        Ok(Times {
            disk,
            memory: memory.iter(),
        })
    }
}

impl Iterator for Times<'_> {
    type Item = Result<LineTime, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((path, reader, left)) = &mut self.disk {
            if *left > 0 {
                *left -= 1;
                use std::io::Read;
                let mut b = [0u8; TIME_BYTES];
                return Some(match reader.read_exact(&mut b) {
                    Ok(()) => Ok(decode(&b)),
                    Err(error) => {
                        *left = 0;
                        Err(Error::Io {
                            path: path.clone(),
                            error,
                        })
                    }
                });
            }
            self.disk = None;
        }
        self.memory.next().map(|p| Ok(p.time))
    }
}

/// The events of a spill, read back a block at a time.
pub(super) struct SpillReader {
    reader: Reader,
    block: std::vec::IntoIter<Event>,
}

impl SpillReader {
    pub(super) fn next_event(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(e) = self.block.next() {
                return Ok(Some(e));
            }
            let mut v = Vec::new();
            if !self.reader.next_block(&mut v)? {
                return Ok(None);
            }
            self.block = v.into_iter();
        }
    }
}

/// Orders events by time, stably: in memory up to a batch, past it by sorted runs on disk and a
/// merge.
pub struct Sorter {
    scratch: Option<Arc<Scratch>>,
    buf: Vec<Event>,
    runs: Vec<PathBuf>,
}

impl Sorter {
    /// All in memory (`None`), or past a batch through `scratch`.
    pub fn new(scratch: Option<Arc<Scratch>>) -> Sorter {
        Sorter {
            scratch,
            buf: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, e: Event) -> Result<(), Error> {
        self.buf.push(e);
        if self
            .scratch
            .as_ref()
            .is_some_and(|s| self.buf.len() >= s.batch)
        {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> Result<(), Error> {
        let Some(scratch) = &self.scratch else {
            return Ok(());
        };
        // Stable: equal times keep the order they came in.
        self.buf.sort_by_key(|e| e.ts);
        let (path, mut w) = scratch.create("run")?;
        for mut e in self.buf.drain(..) {
            // The sequence number is the writer's: the run's own order is kept by the file.
            w.append(&mut e)?;
        }
        w.finish()?;
        self.runs.push(path);
        Ok(())
    }

    /// Every event pushed, in time order, when none went to disk (a sorter without scratch).
    pub fn into_memory(mut self) -> Vec<Event> {
        self.buf.sort_by_key(|e| e.ts);
        self.buf
    }

    /// Every event pushed, in time order.
    pub fn finish(mut self) -> Result<Sorted, Error> {
        if self.runs.is_empty() {
            self.buf.sort_by_key(|e| e.ts);
            return Ok(Sorted::Memory(self.buf.into_iter()));
        }
        if !self.buf.is_empty() {
            self.write_run()?;
        }
        let readers = self
            .runs
            .iter()
            .map(|p| Reader::open(p, ReadOptions::default()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sorted::Runs {
            merge: Box::new(Merge::new(readers)),
            _scratch: self.scratch,
        })
    }
}

/// The events of an import in time order.
pub enum Sorted {
    Memory(std::vec::IntoIter<Event>),
    /// Merged from runs on disk; the scratch directory lives as long as this.
    Runs {
        merge: Box<Merge<Reader>>,
        _scratch: Option<Arc<Scratch>>,
    },
}

impl fmt::Debug for Sorted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sorted::Memory(v) => write!(f, "Sorted::Memory({} events)", v.len()),
            Sorted::Runs { .. } => write!(f, "Sorted::Runs"),
        }
    }
}

impl Sorted {
    /// The next event in time order, `None` after the last.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        match self {
            Sorted::Memory(v) => Ok(v.next()),
            Sorted::Runs { merge, .. } => {
                // The events were numbered by their runs; the output numbers them again.
                merge.next_event()
            }
        }
    }

    /// All the events (tests and small imports).
    pub fn into_vec(mut self) -> Result<Vec<Event>, Error> {
        if let Sorted::Memory(v) = self {
            return Ok(v.collect());
        }
        let mut out = Vec::new();
        while let Some(e) = self.next_event()? {
            out.push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Log, LogOrigin, Source, Ts};

    fn log(ts: u64, n: usize) -> Event {
        Event::new(
            Ts(ts),
            "n",
            Source::Import,
            Log::new(LogOrigin::App, n.to_string()),
        )
    }

    fn order(events: Vec<Event>) -> Vec<(u64, String)> {
        events
            .into_iter()
            .map(|e| match e.body {
                Body::Log(l) => (e.ts.0, l.body),
                _ => (e.ts.0, String::new()),
            })
            .collect()
    }

    #[test]
    fn removing_scratch_while_threads_make_files_leaves_nothing_and_makes_no_more() {
        for _ in 0..20 {
            let parent = tempfile::tempdir().unwrap();
            let scratch = Scratch::new(parent.path(), 1);
            let makers: Vec<_> = (0..3)
                .map(|_| {
                    let scratch = Arc::clone(&scratch);
                    std::thread::spawn(move || {
                        for _ in 0..200 {
                            if scratch.create("run").is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            while std::fs::read_dir(parent.path()).unwrap().next().is_none() {
                std::thread::yield_now();
            }
            scratch.remove();
            let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
            assert!(left.is_empty(), "left behind: {left:?}");
            assert!(scratch.create("late").is_err());
            for m in makers {
                m.join().unwrap();
            }
            let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
            assert!(left.is_empty(), "made after the removal: {left:?}");
        }
    }

    #[test]
    fn sorted_runs_merge_to_the_order_of_one_stable_sort() {
        let dir = tempfile::tempdir().unwrap();
        // Out of order, with many ties: ties keep the order they came in.
        let events: Vec<Event> = (0..200).map(|n| log((n * 7 % 13) as u64, n)).collect();
        let mut want = events.clone();
        want.sort_by_key(|e| e.ts);
        for batch in [1, 2, 3, 50, 1000] {
            let mut s = Sorter::new(Some(Scratch::new(dir.path(), batch)));
            for e in events.clone() {
                s.push(e).unwrap();
            }
            let got = s.finish().unwrap().into_vec().unwrap();
            assert_eq!(order(got), order(want.clone()), "batch {batch}");
        }
        // The scratch directory goes with the sort.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn every_kind_of_time_reads_back_as_written() {
        let times = [
            LineTime::Absolute(Ts(1_733_000_000_123_456_789)),
            LineTime::SinceBoot(u64::MAX),
            LineTime::NoYear {
                month: 12,
                day: 31,
                nanos_of_day: 86_399_999_999_999,
            },
            LineTime::Local {
                year: -3,
                month: 2,
                day: 29,
                nanos_of_day: 7,
            },
            LineTime::TimeOfDay { nanos_of_day: 1 },
            LineTime::Unknown,
            LineTime::Run { group: u32::MAX },
        ];
        for t in times {
            assert_eq!(decode(&encode(t)), t);
        }
    }

    #[test]
    fn a_scratch_directory_that_cannot_be_made_is_an_error_naming_where() {
        let mut s = Sorter::new(Some(Scratch::new(Path::new("/proc/no-such-dir"), 1)));
        let err = s.push(log(1, 1)).unwrap_err().to_string();
        assert!(
            err.contains("/proc/no-such-dir") && err.contains("scratch"),
            "{err}"
        );
    }
}
