//! Where a recording goes: one capture; a rotated set (`-C SIZE`, `-G DURATION`, `-W COUNT`, as
//! tcpdump and sysdig users know them); or a flight recorder that keeps only the last minutes in
//! segments and, when something triggers it, writes the lead-up and what follows into a capture
//! of its own. Every file written is a complete capture that `replay` reads alone, and the event
//! numbers go on from file to file, so a set reads as one stream.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Error, Header, ReadOptions, Reader, Stats, Trailer, WriteOptions, Writer};
use crate::event::{Body, Event, Kube, ObjectAction, Ts};

/// How a recording is laid out on disk.
#[derive(Clone, Debug)]
pub enum Layout {
    /// One capture.
    Single(PathBuf),
    /// A new file past `max_bytes` or every `every`; at most `keep` files, the oldest removed.
    /// Files are `NAME-<n>.tapio` beside `base` (`NAME.tapio`), or, with `every` and a `base`
    /// holding `%` patterns, the strftime expansion of `base` at the file's start (UTC).
    Rotate {
        base: PathBuf,
        max_bytes: Option<u64>,
        every: Option<Duration>,
        keep: Option<usize>,
    },
    /// The flight recorder: the last `span` (and at most `max_bytes`) in segments under
    /// `dir/.ring/`; a trigger keeps the lead-up and records on for `after`, then writes
    /// `dir/<time>-<what>.tapio`. At most `keep` such captures are kept.
    Ring {
        dir: PathBuf,
        span: Duration,
        max_bytes: u64,
        after: Duration,
        keep: Option<usize>,
    },
}

impl Layout {
    /// Checks, before anything starts, that the recording can be written: the directory takes a
    /// new file and has at least 1 MiB free. A read-only or full file system is an error here,
    /// before a probe is loaded, not once events are lost.
    pub fn preflight(&self) -> Result<(), Error> {
        // Publishing only: nothing is written.
        if matches!(self, Layout::Single(p) if p == Path::new("/dev/null")) {
            return Ok(());
        }
        let dir = match self {
            Layout::Single(p) | Layout::Rotate { base: p, .. } => match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            Layout::Ring { dir, .. } => {
                // The ring's directory may not exist yet: it is made where its parent is.
                let mut d = dir.clone();
                while !d.exists() {
                    match d.parent() {
                        Some(p) if !p.as_os_str().is_empty() => d = p.to_path_buf(),
                        _ => {
                            d = PathBuf::from(".");
                            break;
                        }
                    }
                }
                d
            }
        };
        let probe = dir.join(format!(".tapio-write-check-{}", std::process::id()));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe);
        match created {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(Error::io(
                    self.shown(),
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot write in {}: {e}", dir.display()),
                    ),
                ))
            }
        }
        const MIN_FREE: u64 = 1 << 20;
        match super::free_space(&dir) {
            Some(free) if free < MIN_FREE => Err(Error::io(
                self.shown(),
                std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "only {} free in {} (at least {} needed to start)",
                        crate::units::bytes(free),
                        dir.display(),
                        crate::units::bytes(MIN_FREE)
                    ),
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The path to show: the file, the first file of a set, or the directory.
    pub fn shown(&self) -> &Path {
        match self {
            Layout::Single(p) => p,
            Layout::Rotate { base, .. } => base,
            Layout::Ring { dir, .. } => dir,
        }
    }
}

/// A capture that the flight recorder wrote.
#[derive(Clone, Debug)]
pub struct Kept {
    pub path: PathBuf,
    pub events: u64,
    pub from: Ts,
    pub to: Ts,
}

struct Segment {
    path: PathBuf,
    bytes: u64,
    /// How many events it holds, and the oldest one's time.
    events: u64,
    first: Ts,
    /// The newest event's time.
    last: Ts,
    /// The Kubernetes objects as they stood when the segment began.
    state: Snapshot,
    /// What the files given up before it held, as its drop markers count it: said again when
    /// it is given up in turn, so that no removal goes unrecorded.
    carried: Carried,
}

/// Events of removed files, and the earliest of their times.
#[derive(Clone, Copy, Debug, Default)]
struct Carried {
    events: u64,
    from: Option<Ts>,
}

/// Kubernetes objects as they stood at some time: what makes a kept capture self-contained
/// when the objects were listed long before the ring's window.
type Snapshot = Arc<Vec<Arc<Event>>>;

type ObjectKey = (String, String, String);

fn object_key(e: &Event) -> Option<(ObjectKey, bool)> {
    match &e.body {
        Body::Kube(Kube::Object(o)) => Some((
            (
                o.kind.as_str().to_string(),
                o.namespace.clone(),
                o.name.clone(),
            ),
            o.action == ObjectAction::Deleted,
        )),
        _ => None,
    }
}

struct Trigger {
    /// The earliest event the capture keeps.
    from: Ts,
    until: Instant,
    name: String,
}

/// A capture being written in the background, and whether it is done.
type Copy = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<Result<Kept, Error>>,
);

/// A recording's output: appends events, rotates and drops files as the layout says.
pub struct Output {
    layout: Layout,
    header: Header,
    opts: WriteOptions,
    writer: Option<Writer>,
    current: PathBuf,
    opened: Instant,
    n: u64,
    /// Files closed, oldest first (rotated files, or ring segments).
    done: VecDeque<Segment>,
    current_last: Ts,
    /// The ring: the Kubernetes objects now, and as they stood when the open segment began.
    objects: std::collections::BTreeMap<ObjectKey, Arc<Event>>,
    current_state: Snapshot,
    /// The removals that the open file's drop markers record.
    current_carried: Carried,
    /// What every file of the recording held, together.
    stats: Stats,
    bytes: u64,
    blocks: u64,
    trigger: Option<Trigger>,
    /// Captures being assembled in the background, and whether each is finished.
    assembling: Vec<Copy>,
    kept: Vec<Kept>,
    kept_paths: VecDeque<PathBuf>,
    warnings: Vec<String>,
}

impl Output {
    pub fn create(layout: Layout, header: &Header, opts: WriteOptions) -> Result<Output, Error> {
        if let Layout::Ring { dir, .. } = &layout {
            let ring = dir.join(".ring");
            std::fs::create_dir_all(&ring).map_err(|e| Error::io(&ring, e))?;
            // Segments of an earlier run are its ring, not ours.
            if let Ok(d) = std::fs::read_dir(&ring) {
                for e in d.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut out = Output {
            layout,
            header: header.clone(),
            opts,
            writer: None,
            current: PathBuf::new(),
            opened: Instant::now(),
            n: 0,
            done: VecDeque::new(),
            current_last: Ts(0),
            objects: Default::default(),
            current_state: Snapshot::default(),
            current_carried: Carried::default(),
            stats: Stats::default(),
            bytes: 0,
            blocks: 0,
            trigger: None,
            assembling: Vec::new(),
            kept: Vec::new(),
            kept_paths: VecDeque::new(),
            warnings: Vec::new(),
        };
        out.open_next(0)?;
        Ok(out)
    }

    fn path_of(&self, n: u64) -> PathBuf {
        match &self.layout {
            Layout::Single(p) => p.clone(),
            Layout::Rotate { base, every, .. } => {
                let name = base.to_string_lossy();
                if every.is_some() && name.contains('%') {
                    let now = chrono::Utc::now();
                    PathBuf::from(now.format(&name).to_string())
                } else {
                    let stem = base
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_else(|| "capture".into());
                    base.with_file_name(format!("{stem}-{n}.tapio"))
                }
            }
            Layout::Ring { dir, .. } => dir.join(".ring").join(format!("segment-{n}.tapio")),
        }
    }

    fn segment_every(&self) -> Option<Duration> {
        match &self.layout {
            Layout::Single(_) => None,
            Layout::Rotate { every, .. } => *every,
            // Fifteen segments to a ring, each 5 s to 1 min: dropping one loses little.
            Layout::Ring { span, .. } => {
                Some((*span / 15).clamp(Duration::from_secs(5), Duration::from_secs(60)))
            }
        }
    }

    fn open_next(&mut self, seq: u64) -> Result<(), Error> {
        let path = self.path_of(self.n);
        self.n += 1;
        let mut header = self.header.clone();
        if !matches!(self.layout, Layout::Single(_)) {
            header
                .options
                .insert("part".into(), (self.n - 1).to_string());
        }
        self.writer = Some(Writer::create(&path, &header, self.opts.clone())?.starting_at(seq));
        self.current = path;
        self.opened = Instant::now();
        self.current_last = Ts(0);
        if matches!(self.layout, Layout::Ring { .. }) {
            self.current_state = Arc::new(self.objects.values().cloned().collect());
        }
        Ok(())
    }

    fn writer(&mut self) -> &mut Writer {
        self.writer
            .as_mut()
            .expect("an output always has an open file")
    }

    pub fn append(&mut self, e: &mut Event) -> Result<(), Error> {
        let written = self.writer().append(e);
        self.make_room(written)?;
        self.stats.add(e);
        self.current_last = self.current_last.max(e.ts);
        if matches!(self.layout, Layout::Ring { .. }) {
            if let Some((key, deleted)) = object_key(e) {
                if deleted {
                    self.objects.remove(&key);
                } else {
                    self.objects.insert(key, Arc::new(e.clone()));
                }
            }
        }
        Ok(())
    }

    /// Pushes the open block out if it is old enough, rotates files that are full or old, drops
    /// what the layout no longer keeps, and finishes triggered captures. Call it a few times a
    /// second.
    pub fn tick(&mut self) -> Result<(), Error> {
        if self.writer().block_due() {
            let flushed = self.writer().flush();
            self.make_room(flushed)?;
        }
        let written = self.writer().bytes_written();
        let full = match &self.layout {
            Layout::Rotate {
                max_bytes: Some(m), ..
            } => written >= *m,
            _ => false,
        };
        let old = self
            .segment_every()
            .is_some_and(|d| self.opened.elapsed() >= d);
        if (full || old) && self.writer().stats().events > 0 {
            self.rotate()?;
        }
        self.drop_old()?;
        self.finish_trigger(false)?;
        self.reap();
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), Error> {
        let flushed = self.writer().flush();
        self.make_room(flushed)?;
        let w = self
            .writer
            .take()
            .expect("an output always has an open file");
        let seq = w.next_seq();
        let written = w.bytes_written();
        let t = w.finish()?;
        self.blocks += t.blocks;
        self.bytes += written;
        self.done.push_back(Segment {
            path: self.current.clone(),
            bytes: std::fs::metadata(&self.current).map_or(written, |m| m.len()),
            events: t.stats.events,
            first: t.stats.first_ts.unwrap_or(self.current_last),
            last: self.current_last,
            state: Arc::clone(&self.current_state),
            carried: std::mem::take(&mut self.current_carried),
        });
        self.open_next(seq)
    }

    /// When a write failed because the disk is full (another writer filled it since the last
    /// check): a rotated set or the ring gives up its oldest files, one at a time, and the block
    /// is written again; only with no file left to give up is it an error.
    fn make_room(&mut self, mut written: Result<(), Error>) -> Result<(), Error> {
        let mut markers = Vec::new();
        while let Err(e) = &written {
            let full = matches!(e, Error::Io { error, .. } if error.kind() == std::io::ErrorKind::StorageFull);
            if !full || matches!(self.layout, Layout::Single(_)) {
                break;
            }
            let Some(marker) = self.give_up_oldest("the disk filled up") else {
                break;
            };
            markers.push(marker);
            self.writer().rewind()?;
            written = self.writer().flush();
        }
        written?;
        for mut m in markers {
            self.append(&mut m)?;
        }
        Ok(())
    }

    /// Removes the oldest closed file of the recording for room: the drop marker that says what
    /// was lost (to append), or `None` when there is none to remove.
    fn give_up_oldest(&mut self, why: &str) -> Option<Event> {
        let s = self.done.pop_front()?;
        let _ = std::fs::remove_file(&s.path);
        // With it go the markers of the files removed before it: this one counts them too.
        let events = s.events + s.carried.events;
        let from = s.carried.from.map_or(s.first, |f| f.min(s.first));
        let before = match s.carried.events {
            0 => String::new(),
            n => format!(", with the {n} of the files removed before it"),
        };
        let why = format!(
            "{why}: the oldest file of the recording, {}, was removed ({events} events{before}, {from} → {})",
            s.path.display(),
            s.last
        );
        let c = &mut self.current_carried;
        c.events += events;
        c.from = Some(c.from.map_or(from, |f| f.min(from)));
        self.warnings.push(why.clone());
        Some(Event::new(
            super::now(),
            self.header.node.as_str(),
            crate::event::Source::Tapio,
            crate::event::Meta::Drop {
                source: crate::event::Source::Tapio,
                count: events,
                range: crate::event::TimeRange { from, to: s.last },
                reason: why,
            },
        ))
    }

    /// Whether the file system of the recording is nearly full: then a rotated set or the ring
    /// gives up its oldest file rather than the recording failing.
    fn low_space(&self) -> bool {
        let reserve = 4 * self.opts.block_bytes as u64;
        !matches!(self.layout, Layout::Single(_))
            && !self.done.is_empty()
            && super::free_space(&self.current).is_some_and(|f| f < reserve)
    }

    /// Drops the oldest files beyond what the layout keeps (never what a trigger holds); on a
    /// nearly full disk, the oldest file even so, with a drop marker that says what was lost.
    fn drop_old(&mut self) -> Result<(), Error> {
        while self.low_space() {
            let Some(mut marker) = self.give_up_oldest("the disk is nearly full") else {
                break;
            };
            self.append(&mut marker)?;
        }
        let now = super::now();
        loop {
            let drop = match &self.layout {
                Layout::Single(_) => false,
                Layout::Rotate { keep, .. } => {
                    // The open file counts as one of `keep`.
                    keep.is_some_and(|k| self.done.len() + 1 > k.max(1))
                }
                Layout::Ring {
                    span, max_bytes, ..
                } => {
                    let total: u64 = self.done.iter().map(|s| s.bytes).sum();
                    self.done.front().is_some_and(|s| {
                        s.last.0 + span.as_nanos() as u64 <= now.0 || total > *max_bytes
                    })
                }
            };
            // A segment the pending trigger or a copy in progress needs stays.
            let needed = self
                .done
                .front()
                .is_some_and(|s| self.trigger.as_ref().is_some_and(|t| s.last >= t.from))
                || self
                    .assembling
                    .iter()
                    .any(|(done, _)| !done.load(Ordering::Relaxed));
            if !drop || (needed && matches!(self.layout, Layout::Ring { .. })) {
                return Ok(());
            }
            if let Some(s) = self.done.pop_front() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
    }

    /// The flight recorder: keep the lead-up of `at` and what follows. A trigger while one is
    /// active extends it. Ignored by other layouts.
    pub fn trigger(&mut self, at: Ts, what: &str) {
        let Layout::Ring { span, after, .. } = &self.layout else {
            return;
        };
        let until = Instant::now() + *after;
        match &mut self.trigger {
            Some(t) => t.until = t.until.max(until),
            None => {
                let from = Ts(at.0.saturating_sub(span.as_nanos() as u64));
                let time = at.to_datetime().format("%Y%m%dT%H%M%SZ");
                let what: String = what
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                self.trigger = Some(Trigger {
                    from,
                    until,
                    name: format!("{time}-{}", what.trim_matches('-')),
                });
            }
        }
    }

    /// Writes the triggered capture once its time is up (or now, at the end of the recording).
    fn finish_trigger(&mut self, now: bool) -> Result<(), Error> {
        let due = self
            .trigger
            .as_ref()
            .is_some_and(|t| now || Instant::now() >= t.until);
        if !due {
            return Ok(());
        }
        if self.writer().stats().events > 0 {
            self.rotate()?;
        }
        let Some(t) = self.trigger.take() else {
            return Ok(());
        };
        let Layout::Ring { dir, keep, .. } = &self.layout else {
            return Ok(());
        };
        let kept: Vec<&Segment> = self.done.iter().filter(|s| s.last >= t.from).collect();
        let state = kept
            .first()
            .map(|s| Arc::clone(&s.state))
            .unwrap_or_default();
        let parts: Vec<PathBuf> = kept.iter().map(|s| s.path.clone()).collect();
        let path = dir.join(format!("{}.tapio", t.name));
        self.kept_paths.push_back(path.clone());
        if let Some(k) = keep {
            while self.kept_paths.len() > (*k).max(1) {
                if let Some(old) = self.kept_paths.pop_front() {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        let mut header = self.header.clone();
        header.options.insert("trigger".into(), t.name.clone());
        let opts = self.opts.clone();
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let from = t.from;
        let job = std::thread::Builder::new()
            .name("tapio-keep".into())
            .spawn(move || {
                let r = assemble(&parts, &state, from, &path, &header, opts);
                flag.store(true, Ordering::Relaxed);
                r
            })
            .map_err(|e| Error::io(dir, e))?;
        self.assembling.push((done, job));
        Ok(())
    }

    fn reap(&mut self) {
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.assembling)
            .into_iter()
            .partition(|(done, _)| done.load(Ordering::Relaxed));
        self.assembling = running;
        for (_, job) in finished {
            self.collect(job);
        }
    }

    /// Waits for a copy: the capture it kept, or why it did not.
    fn collect(&mut self, job: std::thread::JoinHandle<Result<Kept, Error>>) {
        match job.join() {
            Ok(Ok(k)) => self.kept.push(k),
            Ok(Err(e)) => self
                .warnings
                .push(format!("the flight recorder could not keep a capture: {e}")),
            Err(_) => self
                .warnings
                .push("the flight recorder's copy panicked".into()),
        }
    }

    /// Captures the flight recorder wrote since the last call.
    pub fn take_kept(&mut self) -> Vec<Kept> {
        std::mem::take(&mut self.kept)
    }

    /// Problems since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// What the recording held so far, over every file.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes + self.writer.as_ref().map_or(0, |w| w.bytes_written())
    }

    /// Closes the open file (and writes a triggered capture still pending); the trailer of the
    /// whole recording.
    pub fn finish(mut self) -> Result<(Trailer, Vec<Kept>, Vec<String>), Error> {
        self.finish_trigger(true)?;
        // The last block first, making room if it must: the trailer is then a few hundred bytes.
        let flushed = self.writer().flush();
        self.make_room(flushed)?;
        let w = self
            .writer
            .take()
            .expect("an output always has an open file");
        let written = w.bytes_written();
        let t = w.finish()?;
        self.blocks += t.blocks;
        self.bytes += written;
        if matches!(self.layout, Layout::Ring { .. }) {
            let _ = std::fs::remove_file(&self.current);
        }
        for (_, job) in std::mem::take(&mut self.assembling) {
            self.collect(job);
        }
        if let Layout::Ring { dir, .. } = &self.layout {
            for s in &self.done {
                let _ = std::fs::remove_file(&s.path);
            }
            let _ = std::fs::remove_dir(dir.join(".ring"));
        }
        let trailer = Trailer {
            blocks: self.blocks,
            stats: self.stats.clone(),
            closed: t.closed,
        };
        Ok((trailer, self.kept, self.warnings))
    }
}

/// Copies the events from `from` on out of the segments into one capture, keeping their numbers,
/// after the Kubernetes objects as they stood at `from` (dated `from`): the capture explains
/// itself. Written beside and renamed, so a reader never sees half of it.
fn assemble(
    parts: &[PathBuf],
    state: &Snapshot,
    from: Ts,
    path: &Path,
    header: &Header,
    opts: WriteOptions,
) -> Result<Kept, Error> {
    let tmp = path.with_extension("tapio.part");
    let mut w = Writer::create(&tmp, header, opts)?;
    let mut objects: std::collections::BTreeMap<ObjectKey, Event> = state
        .iter()
        .filter_map(|e| object_key(e).map(|(k, _)| (k, (**e).clone())))
        .collect();
    let (mut first, mut last) = (None, Ts(0));
    let mut buf = Vec::new();
    for p in parts {
        let mut r = Reader::open(p, ReadOptions::default())?;
        buf.clear();
        while r.next_block(&mut buf)? {
            for e in buf.drain(..) {
                if e.ts < from {
                    // Before the window: only what it did to the objects counts.
                    if let Some((key, deleted)) = object_key(&e) {
                        if deleted {
                            objects.remove(&key);
                        } else {
                            objects.insert(key, e);
                        }
                    }
                    continue;
                }
                if first.is_none() {
                    first = Some(from);
                    let mut snapshot: Vec<Event> =
                        std::mem::take(&mut objects).into_values().collect();
                    snapshot.sort_by_key(|o| o.seq);
                    for mut o in snapshot {
                        o.ts = from;
                        w.append_numbered(&o)?;
                    }
                }
                last = last.max(e.ts);
                w.append_numbered(&e)?;
            }
        }
    }
    let events = w.stats().events;
    w.finish()?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(Kept {
        path: path.to_path_buf(),
        events,
        from: first.unwrap_or(from),
        to: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::generate::{collect, Config};

    fn events(n: u64) -> Vec<Event> {
        collect(&Config {
            events: n,
            ..Config::default()
        })
    }

    fn read(path: &Path) -> Vec<Event> {
        Reader::open(path, ReadOptions::default())
            .unwrap()
            .read_all()
            .unwrap()
    }

    #[test]
    fn a_rotated_set_keeps_count_files_and_numbers_on_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::Rotate {
            base: dir.path().join("rec.tapio"),
            max_bytes: Some(20_000),
            every: None,
            keep: Some(3),
        };
        let small = WriteOptions {
            block_bytes: 16 << 10,
            ..WriteOptions::default()
        };
        let mut out = Output::create(layout, &Header::new("n"), small).unwrap();
        let all = events(50_000);
        for e in &all {
            out.append(&mut e.clone()).unwrap();
            out.tick().unwrap();
        }
        let (trailer, _, _) = out.finish().unwrap();
        assert_eq!(trailer.stats.events, 50_000);
        let files = crate::capture::rotated_set(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(files[0].ends_with("rec-") || files[0].to_string_lossy().contains("rec-"));
        let kept: Vec<Event> = files.iter().flat_map(|f| read(f)).collect();
        // The newest files, whole, with the numbers they had in the whole recording.
        let last = kept.last().unwrap();
        assert_eq!(last.seq, 49_999);
        assert!(kept.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(kept.first().unwrap().seq, 50_000 - kept.len() as u64);
    }

    #[test]
    fn a_triggered_ring_keeps_the_window_after_the_objects_as_they_stood() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::Ring {
            dir: dir.path().to_path_buf(),
            span: Duration::from_secs(2),
            max_bytes: 1 << 30,
            after: Duration::from_secs(60),
            keep: None,
        };
        let mut out = Output::create(layout, &Header::new("n"), WriteOptions::default()).unwrap();
        let all = events(100_000);
        let start = all[0].ts;
        let at = Ts(start.0 + 4 * Ts::NANOS_PER_SEC);
        let from = Ts(at.0 - 2 * Ts::NANOS_PER_SEC);
        let mut before = std::collections::BTreeSet::new();
        for e in all.iter().filter(|e| e.ts < from) {
            match object_key(e) {
                Some((k, false)) => {
                    before.insert(k);
                }
                Some((k, true)) => {
                    before.remove(&k);
                }
                None => {}
            }
        }
        let objects = before.len();
        assert!(objects > 10);
        for e in &all {
            out.append(&mut e.clone()).unwrap();
        }
        out.trigger(at, "oom_container_limit-pod/shop/cart");
        let (_, kept, warnings) = out.finish().unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(kept.len(), 1);
        let name = kept[0]
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name.ends_with("-oom_container_limit-pod-shop-cart.tapio"),
            "{name}"
        );
        let got = read(&kept[0].path);
        assert!(
            got.iter().all(|e| e.ts >= from),
            "nothing older than the ring"
        );
        assert_eq!(got[0].ts, from);
        let snapshot = got
            .iter()
            .take_while(|e| object_key(e).is_some() && e.ts == from);
        assert_eq!(
            snapshot.count(),
            objects,
            "the objects, listed at the start, as they stood"
        );
        let window = all.iter().filter(|e| e.ts >= from).count();
        assert_eq!(got.len(), objects + window);
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "numbers kept");
        // The ring itself is gone at the end.
        assert!(!dir.path().join(".ring").exists());
    }
}
