//! Following the kubelet's container log files live (`tapio record --logs`).
//!
//! Every poll lists `/var/log/pods/<ns>_<pod>_<uid>/<container>/`, reads what each file gained
//! since the last poll (complete lines only: a line still being written waits for its newline),
//! and turns whole messages into events. Files are tracked by device and inode, so a rotation
//! (`0.log` renamed to `0.log.<time>` and a new `0.log` begun) loses and repeats nothing: the old
//! inode is read to its end under its new name, the new file from its start. When the kubelet has
//! already compressed a rotated file that still had unread lines, they are read from the `.gz`.
//! A new pod directory or restart file (`1.log`) is picked up at the next poll. Files present when
//! the recorder starts are read from their last `backlog` bytes: the recent past, not all history.
//!
//! Each container gets at most `rate` lines a second; the excess is counted and written as a drop
//! marker once a second, never silently. Messages longer than `max_line` are cut, and the cut is
//! counted and noted on the event.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{app_log, parse_line, Joiner, LogPath};
use crate::event::{AttrValue, Attribute, Event, Meta, Name, Source, TimeRange, Ts};

#[derive(Clone, Debug)]
pub struct Options {
    /// The kubelet's pod log directory.
    pub root: PathBuf,
    /// Lines per second per container (0: no limit).
    pub rate: u32,
    /// The longest message kept, in bytes.
    pub max_line: usize,
    /// How much of a file present at start is read.
    pub backlog: u64,
    pub node: Name,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            root: PathBuf::from("/var/log/pods"),
            rate: 1000,
            max_line: 16 << 10,
            backlog: 64 << 10,
            node: Name::default(),
        }
    }
}

/// What the follower did, for the closing summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub files: u64,
    pub lines: u64,
    /// Lines over the rate limit (in drop markers).
    pub limited: u64,
    /// Messages cut at the length cap, and the bytes cut.
    pub cut_lines: u64,
    pub cut_bytes: u64,
    /// Lines in neither the CRI nor the docker format (kept as they are).
    pub unparsed: u64,
    /// Bytes the files had gained and the follower had not read when it stopped (it was behind a
    /// flood and had read for its last 5 s).
    pub unread_bytes: u64,
}

/// The most read from one file in one poll: memory stays bounded when a container writes faster
/// than the follower reads; the rest is read at the next poll, at once.
const MAX_READ: u64 = 4 << 20;

/// How long a stopping follower goes on reading what the files gained before it stopped.
const FINISH_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

type Key = (u64, u64); // (device, inode)

struct Tracked {
    path: PathBuf,
    offset: u64,
    /// The file's first bytes, to recognise it once compressed.
    head: Vec<u8>,
    joiner: Joiner,
    resource: Vec<Attribute>,
    container: String,
    seen: bool,
}

#[derive(Default)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
    limited: u64,
    since: Option<Ts>,
}

pub struct Follower {
    opts: Options,
    files: HashMap<Key, Tracked>,
    /// Compressed files already read (or known to hold only what was read).
    done_gz: std::collections::HashSet<PathBuf>,
    buckets: HashMap<String, Bucket>,
    counters: Counters,
    started: bool,
}

impl Follower {
    pub fn new(opts: Options) -> Follower {
        Follower {
            opts,
            files: HashMap::new(),
            done_gz: Default::default(),
            buckets: HashMap::new(),
            counters: Counters::default(),
            started: false,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Reads what every file gained since the last poll.
    /// Reads what the files gained; `true` when a file had more than one read takes (the
    /// follower is behind and should poll again at once).
    pub fn poll(&mut self, out: &mut Vec<Event>) -> bool {
        let mut behind = false;
        let first = !self.started;
        self.started = true;
        let mut present: HashMap<Key, PathBuf> = HashMap::new();
        let mut gz: Vec<PathBuf> = Vec::new();
        for pod_dir in read_dir(&self.opts.root) {
            for container_dir in read_dir(&pod_dir) {
                for file in read_dir(&container_dir) {
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if name.ends_with(".gz") {
                        gz.push(file);
                    } else if name.contains(".log") {
                        if let Ok(m) = std::fs::metadata(&file) {
                            if m.is_file() {
                                present.insert((m.dev(), m.ino()), file);
                            }
                        }
                    }
                }
            }
        }
        // Tracked files gone from the listing: compressed by the kubelet, or deleted with their pod.
        let gone: Vec<Key> = self
            .files
            .keys()
            .filter(|k| !present.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            let mut t = self.files.remove(&k).expect("listed");
            if let Some(z) = gz
                .iter()
                .find(|z| !self.done_gz.contains(*z) && gz_starts_with(z, &t.head))
            {
                let z = z.clone();
                if let Ok(data) = read_gz(&z) {
                    if (data.len() as u64) > t.offset {
                        let rest = data[t.offset as usize..].to_vec();
                        self.consume(&mut t, &rest, true, out);
                    }
                }
                self.done_gz.insert(z);
            }
            self.flush(&mut t, out);
        }
        for (k, path) in present {
            if !self.files.contains_key(&k) {
                let Some(lp) = LogPath::parse(&path.to_string_lossy()) else {
                    continue;
                };
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let rotated = !path.to_string_lossy().ends_with(".log");
                // At start, current files are read from their recent past and rotated ones are
                // history; later, every new file is read whole.
                if first && rotated {
                    self.files
                        .insert(k, self.tracked(path.clone(), &lp, len, false));
                    continue;
                }
                let offset = if first {
                    start_of_backlog(&path, len, self.opts.backlog)
                } else {
                    0
                };
                self.counters.files += 1;
                self.files
                    .insert(k, self.tracked(path.clone(), &lp, offset, true));
            }
            let mut t = self.files.remove(&k).expect("tracked");
            t.path = path;
            if t.seen {
                if let Ok((data, more)) = read_from(&t.path, t.offset, MAX_READ) {
                    // A full read without a newline is one line longer than a read: cut it.
                    let all = more && !data.contains(&b'\n');
                    self.consume(&mut t, &data, all, out);
                    behind |= more;
                }
            }
            self.files.insert(k, t);
        }
        // Compressed files never seen uncompressed (rotated and compressed between two polls are
        // read whole; those present at start are history).
        for z in gz {
            if first {
                self.done_gz.insert(z);
            }
        }
        behind
    }

    /// The bytes the tracked files hold past what was read.
    fn unread(&self) -> u64 {
        self.files
            .values()
            .filter(|t| t.seen)
            .map(|t| std::fs::metadata(&t.path).map_or(0, |m| m.len().saturating_sub(t.offset)))
            .sum()
    }

    fn tracked(&self, path: PathBuf, lp: &LogPath, offset: u64, seen: bool) -> Tracked {
        let mut head = vec![0u8; 256];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        head.truncate(n);
        Tracked {
            path,
            offset,
            head,
            joiner: Joiner::new(self.opts.max_line),
            resource: lp.resource(),
            container: format!("{}/{}/{}", lp.namespace, lp.pod, lp.container),
            seen,
        }
    }

    /// Turns the complete lines of `data` into events; with `all`, a last line without newline too.
    fn consume(&mut self, t: &mut Tracked, data: &[u8], all: bool, out: &mut Vec<Event>) {
        let end = if all {
            data.len()
        } else {
            match data.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return,
            }
        };
        t.offset += end as u64;
        let text = String::from_utf8_lossy(&data[..end]);
        for raw in text.lines() {
            if raw.is_empty() {
                continue;
            }
            let Some(line) = parse_line(raw) else {
                self.counters.unparsed += 1;
                continue;
            };
            if let Some(m) = t.joiner.push(line) {
                self.emit(t, m, out);
            }
        }
    }

    fn flush(&mut self, t: &mut Tracked, out: &mut Vec<Event>) {
        for m in t.joiner.flush() {
            self.emit(t, m, out);
        }
    }

    fn emit(&mut self, t: &Tracked, m: super::Message, out: &mut Vec<Event>) {
        if !self.admit(&t.container, m.ts) {
            return;
        }
        self.counters.lines += 1;
        let mut log = app_log(m.text, Some(m.stream), &t.resource, false);
        if m.cut > 0 {
            self.counters.cut_lines += 1;
            self.counters.cut_bytes += m.cut;
            log.attributes.push(Attribute::new(
                "tapio.log.cut_bytes",
                AttrValue::Int(m.cut as i64),
            ));
        }
        out.push(Event::new(
            m.ts,
            self.opts.node.clone(),
            Source::PodLogs,
            log,
        ));
    }

    /// The per-container rate limit: a token bucket of one second's worth of lines.
    fn admit(&mut self, container: &str, ts: Ts) -> bool {
        let rate = self.opts.rate;
        if rate == 0 {
            return true;
        }
        if !self.buckets.contains_key(container) {
            self.buckets
                .insert(container.to_string(), Bucket::default());
        }
        let b = self.buckets.get_mut(container).expect("inserted");
        let now = Instant::now();
        let refill = b.last.map_or(rate as f64, |l| {
            now.duration_since(l).as_secs_f64() * rate as f64
        });
        b.tokens = (b.tokens + refill).min(rate as f64);
        b.last = Some(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.limited += 1;
            b.since.get_or_insert(ts);
            self.counters.limited += 1;
            false
        }
    }

    /// Once a second: a drop marker per container that went over its rate.
    pub fn tick(&mut self, now: Ts, out: &mut Vec<Event>) {
        for (container, b) in &mut self.buckets {
            if b.limited > 0 {
                out.push(Event::new(
                    now,
                    self.opts.node.clone(),
                    Source::Tapio,
                    Meta::Drop {
                        source: Source::PodLogs,
                        count: b.limited,
                        range: TimeRange {
                            from: b.since.unwrap_or(now),
                            to: now,
                        },
                        reason: format!(
                            "{container} wrote more than {} lines/s (--logs-rate)",
                            self.opts.rate
                        ),
                    },
                ));
                b.limited = 0;
                b.since = None;
            }
        }
    }

    /// At the end: messages left open by files that stopped mid-message.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let keys: Vec<Key> = self.files.keys().copied().collect();
        for k in keys {
            let mut t = self.files.remove(&k).expect("listed");
            self.flush(&mut t, out);
        }
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// At most `max` bytes of `path` from `offset`, and whether the file holds more.
fn read_from(path: &Path, offset: u64, max: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok((Vec::new(), false));
    }
    f.seek(SeekFrom::Start(offset))?;
    let n = (len - offset).min(max);
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok((buf, len - offset > n))
}

/// A rotated, compressed log file (the kubelet rotates at 10 MiB by default): at most 1 GiB
/// once decompressed.
fn read_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path)?);
    crate::source::gunzip(gz, crate::source::import::read::MAX_GUNZIPPED)
        .map_err(std::io::Error::other)
}

fn gz_starts_with(path: &Path, head: &[u8]) -> bool {
    let mut buf = vec![0u8; head.len()];
    std::fs::File::open(path)
        .map(flate2::read::GzDecoder::new)
        .and_then(|mut d| d.read_exact(&mut buf))
        .is_ok()
        && buf == head
}

/// Where reading a file that was there at start begins: `backlog` bytes before its end, at the
/// start of a line.
fn start_of_backlog(path: &Path, len: u64, backlog: u64) -> u64 {
    if len <= backlog {
        return 0;
    }
    let from = len - backlog;
    match read_from(path, from, backlog) {
        Ok((data, _)) => data
            .iter()
            .position(|&b| b == b'\n')
            .map_or(len, |i| from + i as u64 + 1),
        Err(_) => len,
    }
}

impl crate::source::Source for Follower {
    fn name(&self) -> &'static str {
        "pod-logs"
    }

    fn describe(&self) -> String {
        format!("container logs in {}", self.opts.root.display())
    }

    /// Polls the files four times a second and writes drop markers each second.
    fn run(mut self: Box<Self>, out: &crate::source::Outlet) -> crate::source::Counters {
        use std::sync::atomic::Ordering;
        let f = &mut *self;
        let mut last_tick = Instant::now();
        let mut halted_at: Option<Instant> = None;
        loop {
            let halting = out.halt.load(Ordering::Relaxed);
            let halted = *halted_at.get_or_insert_with(Instant::now);
            if !halting {
                halted_at = None;
            }
            let mut batch = Vec::new();
            let behind = f.poll(&mut batch);
            // Stopping: what the files gained before the stop is read, for a while.
            let done = halting && (!behind || halted.elapsed() >= FINISH_WITHIN);
            if done {
                f.counters.unread_bytes = f.unread();
                f.finish(&mut batch);
            }
            if halting || last_tick.elapsed() >= std::time::Duration::from_secs(1) {
                last_tick = Instant::now();
                f.tick(Ts::from_datetime(&chrono::Utc::now()), &mut batch);
            }
            if !batch.is_empty() && out.events.send(batch).is_err() {
                break;
            }
            if done {
                break;
            }
            if !behind {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
        crate::source::Counters::Logs(f.counters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for l in lines {
            f.write_all(l.as_bytes()).unwrap();
        }
    }

    fn bodies(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.body {
                crate::event::Body::AppLog(a) => Some(a.log.body.clone()),
                _ => None,
            })
            .collect()
    }

    fn cri(n: u32, text: &str) -> String {
        format!(
            "2026-03-14T10:00:{:02}.000000000Z stdout F {text}\n",
            n % 60
        )
    }

    #[test]
    fn rotation_compression_partials_and_restarts_lose_and_repeat_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root
            .path()
            .join("shop_api-1_5e0c4a1e-7d3b-4f8e-9a65-00000000abcd/api");
        std::fs::create_dir_all(&dir).unwrap();
        let log0 = dir.join("0.log");
        write(&log0, &[&cri(0, "old line, before the recorder")]);
        let mut f = Follower::new(Options {
            root: root.path().to_path_buf(),
            backlog: 0,
            ..Options::default()
        });
        let mut out = Vec::new();
        f.poll(&mut out);
        assert!(
            bodies(&out).is_empty(),
            "a file at start is read from its backlog only"
        );

        write(
            &log0,
            &[
                &cri(1, "a1"),
                "2026-03-14T10:00:02.000000000Z stderr P half of \n",
            ],
        );
        f.poll(&mut out);
        write(&log0, &["2026-03-14T10:00:02.000000001Z stderr F a st"]);
        f.poll(&mut out); // a line without its newline waits
        write(
            &log0,
            &[
                "ory\n",
                "2026-03-14T10:00:02.100000000Z stderr F a2\n",
                &cri(3, "a3"),
            ],
        );
        // Rotated, a new 0.log begun, and the rotated file compressed, all before the next poll.
        let rotated = dir.join("0.log.20260314-100003");
        std::fs::rename(&log0, &rotated).unwrap();
        write(&log0, &[&cri(4, "b1")]);
        let data = std::fs::read(&rotated).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        std::fs::write(dir.join("0.log.20260314-100003.gz"), gz.finish().unwrap()).unwrap();
        std::fs::remove_file(&rotated).unwrap();
        f.poll(&mut out);
        // A restart: the next file of the container.
        write(&dir.join("1.log"), &[&cri(5, "after restart")]);
        // A second rotation, left uncompressed this time.
        write(&log0, &[&cri(4, "b2")]);
        std::fs::rename(&log0, dir.join("0.log.20260314-100006")).unwrap();
        f.poll(&mut out);
        f.poll(&mut out);
        f.finish(&mut out);
        out.sort_by_key(|e| e.ts); // the recorder orders by time; one poll reads files in any order
        assert_eq!(
            bodies(&out),
            [
                "a1",
                "half of a story",
                "a2",
                "a3",
                "b1",
                "b2",
                "after restart"
            ]
        );
        let e = &out[6];
        assert_eq!(e.source, Source::PodLogs);
        let crate::event::Body::AppLog(a) = &e.body else {
            panic!()
        };
        assert_eq!(a.pod(), Some(("shop", "api-1")));
        assert_eq!(
            a.resource_attr("k8s.container.restart_count")
                .and_then(|v| v.as_i64()),
            Some(1)
        );
    }

    #[test]
    fn a_container_over_its_rate_is_counted_in_a_drop_marker() {
        let root = tempfile::tempdir().unwrap();
        let dir = root
            .path()
            .join("shop_chatty-1_5e0c4a1e-7d3b-4f8e-9a65-00000000abcd/chatty");
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = Follower::new(Options {
            root: root.path().to_path_buf(),
            rate: 10,
            max_line: 100,
            ..Options::default()
        });
        let mut out = Vec::new();
        f.poll(&mut out);
        let lines: Vec<String> = (0..50).map(|i| cri(i, &format!("line {i}"))).collect();
        let long = cri(1, &"x".repeat(300));
        let mut all: Vec<&str> = vec![&long];
        all.extend(lines.iter().map(String::as_str));
        write(&dir.join("0.log"), &all);
        f.poll(&mut out);
        f.tick(Ts(1), &mut out);
        assert_eq!(bodies(&out).len(), 10);
        let drops: Vec<u64> = out
            .iter()
            .filter_map(|e| match &e.body {
                crate::event::Body::Meta(Meta::Drop { count, source, .. }) => {
                    assert_eq!(*source, Source::PodLogs);
                    Some(*count)
                }
                _ => None,
            })
            .collect();
        assert_eq!(drops, [41]);
        assert_eq!((f.counters().cut_lines, f.counters().cut_bytes), (1, 200));
    }
}
