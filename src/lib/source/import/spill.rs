//! Bounded memory for big imports: parsed events past a batch go to scratch files, and the
//! placed events are ordered by an external merge sort.
//!
//! A log of millions of lines is parsed into events whose times cannot all be placed before the
//! whole import has been read (a `dmesg` needs the boot time that the other inputs pin). So an
//! input of the line formats writes its events, in the order it parsed them, to a scratch capture
//! once it holds more than a batch, and keeps only what placement reads: each record's
//! [`LineTime`] and the few events placement looks at (kernel OOM kills, container log lines
//! without a time). Placement then reads the scratch back a block at a time. The placed events go
//! through a [`Sorter`]: sorted batches become runs (scratch captures again), merged by
//! [`Merge`], whose tie rule (the earlier input first) keeps the order one stable sort of the
//! whole import would give, because runs are cut from consecutive stretches of it.
//!
//! Scratch files live in a hidden directory beside the output (not `/tmp`, which is often memory),
//! removed when the import ends.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{implausible, LineTime, Location, Pending, Rejected};
use crate::capture::{Error, Header, Merge, ReadOptions, Reader, WriteOptions, Writer};
use crate::event::{Body, Event, Kernel};

/// Where scratch files go, and how many events are held in memory before they do.
pub struct Scratch {
    parent: PathBuf,
    batch: usize,
    dir: OnceLock<Result<tempfile::TempDir, String>>,
    files: AtomicUsize,
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
            dir: OnceLock::new(),
            files: AtomicUsize::new(0),
        })
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Removes the scratch files now (an interrupted import, which ends without unwinding).
    pub fn remove(&self) {
        if let Some(Ok(dir)) = self.dir.get() {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }

    /// A new scratch capture.
    fn create(&self, what: &str) -> Result<(PathBuf, Writer), Error> {
        let dir = self
            .dir
            .get_or_init(|| {
                tempfile::Builder::new()
                    .prefix(".tapio-import-")
                    .tempdir_in(&self.parent)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Io {
                path: self.parent.clone(),
                error: std::io::Error::other(format!(
                    "cannot make a scratch directory for the import: {e}"
                )),
            })?;
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("{what}-{n}.tapio"));
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
    /// Each written record's time, in order.
    pub(super) times: Vec<LineTime>,
    /// The written events placement looks at, by their index in `times`.
    pub(super) kept: Vec<(usize, Pending)>,
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
            .field("records", &self.times.len())
            .finish()
    }
}

impl Spill {
    pub fn new(scratch: &Arc<Scratch>) -> Spill {
        Spill {
            scratch: Arc::clone(scratch),
            path: None,
            writer: None,
            times: Vec::new(),
            kept: Vec::new(),
            seen: 0,
            impossible: Vec::new(),
            error: None,
        }
    }

    pub fn batch(&self) -> usize {
        self.scratch.batch
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
            match self.scratch.create("input") {
                Ok((path, w)) => {
                    self.path = Some(path);
                    self.writer = Some(w);
                }
                Err(e) => {
                    self.error = Some(e);
                    events.clear();
                    return;
                }
            }
        }
        let Some(w) = self.writer.as_mut() else {
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
            let index = self.times.len();
            self.times.push(p.time);
            let looked_at = match &p.event.body {
                Body::Kernel(Kernel::OomKill(_)) => true,
                Body::AppLog(_) => matches!(p.time, LineTime::Unknown),
                _ => false,
            };
            if looked_at {
                self.kept.push((index, p.clone()));
            }
            let mut e = p.event;
            if let Err(err) = w.append(&mut e) {
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
        Ok(())
    }

    /// Placement changed the times of kept events (container log lines placed by their run):
    /// the same change for their records.
    pub(super) fn sync_kept(&mut self) {
        for (i, p) in &self.kept {
            self.times[*i] = p.time;
        }
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
    fn placement_keeps_24_bytes_a_line() {
        // What a spilled input costs in memory per record (the README says so).
        assert_eq!(std::mem::size_of::<LineTime>(), 24);
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
