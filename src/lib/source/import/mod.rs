//! `tapio import`: the dumps people already have → one capture, ordered by time.
//!
//! Each input is detected by its content ([`detect`]), parsed by the parser of its format into
//! [`Pending`] events whose times may still be incomplete (a syslog line has no year, `dmesg`
//! counts seconds since boot), then every pending time is resolved against the other inputs of the
//! same import or the user's flags ([`clock`]), so that events from one incident land on one
//! timeline. Bad records are rejected with their file and line; the rest of the input goes on.

pub mod clock;
pub mod container_log;
pub mod detect;
pub mod kernel_log;
pub mod kube;
pub mod otlp;
pub mod paste;
pub mod read;
pub mod spill;
pub mod text_time;
mod traces;
pub mod zipkin;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::event::{Event, Ts};

pub use self::clock::{ClockOptions, Placement};
pub use self::detect::Format;
pub use self::spill::{Scratch, Sorted};

/// When a parsed record happened, as far as its input says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineTime {
    /// A complete UTC instant.
    Absolute(Ts),
    /// Nanoseconds since the node booted (`dmesg` without `-T`, `/dev/kmsg`).
    SinceBoot(u64),
    /// A local date and time without a year (classic syslog: `Nov 10 14:17:41.900439`).
    NoYear {
        month: u32,
        day: u32,
        nanos_of_day: u64,
    },
    /// A local date and time (`dmesg -T`): complete but for its zone.
    Local {
        year: i32,
        month: u32,
        day: u32,
        nanos_of_day: u64,
    },
    /// A local time of day without a date (`21:03:39`, as bcc's `oomkill` prints).
    TimeOfDay { nanos_of_day: u64 },
    /// The record carries no time at all: it is placed after the previous record of its input.
    Unknown,
    /// A container log line without a time, placed by its container's run in the Pods of the
    /// import: the index of its run among its input's ([`Parsed::runs`]).
    Run { group: u32 },
}

/// An event whose timestamp is not yet resolved.
#[derive(Clone, Debug)]
pub struct Pending {
    pub time: LineTime,
    pub event: Event,
}

/// Where in an input a record starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Line(usize),
    Byte(u64),
    /// The n-th item (0-based) of a JSON list or document stream.
    Item(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Byte(n) => write!(f, "byte offset {n}"),
            Location::Item(n) => write!(f, "item {n}"),
        }
    }
}

/// A record that could not be imported.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub at: Location,
    pub reason: String,
}

/// What a parser made of one input.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<Pending>,
    pub rejected: Vec<Rejected>,
    /// Things the user should know (assumptions, ignored parts), one sentence each.
    pub warnings: Vec<String>,
    /// Where the events go past a batch (line formats of a big import).
    spill: Option<spill::Spill>,
    /// The container runs of its log lines without times, and how many lines each has, in the
    /// order first seen ([`LineTime::Run`] indexes them).
    runs: Vec<(container_log::RunKey, u64)>,
    run_index: std::collections::HashMap<container_log::RunKey, u32>,
}

impl Parsed {
    /// A parse whose events past a batch go to `spill`.
    fn spilling(spill: Option<spill::Spill>) -> Parsed {
        Parsed {
            spill,
            ..Parsed::default()
        }
    }

    pub fn push(&mut self, time: LineTime, event: Event) {
        let time = match (time, container_log::run_key(&event)) {
            (LineTime::Unknown, Some(key)) => LineTime::Run {
                group: self.run_of(key),
            },
            (t, _) => t,
        };
        self.events.push(Pending { time, event });
        if let Some(s) = &mut self.spill {
            if self.events.len() >= s.batch() {
                s.write(&mut self.events);
            }
        }
    }

    /// The index of a container run among this input's, counting one more line of it.
    fn run_of(&mut self, key: container_log::RunKey) -> u32 {
        let next = self.runs.len() as u32;
        let i = *self.run_index.entry(key.clone()).or_insert(next);
        if i == next {
            self.runs.push((key, 0));
        }
        self.runs[i as usize].1 += 1;
        i
    }

    /// The container runs of its log lines without times, with how many lines each has.
    pub fn runs(&self) -> &[(container_log::RunKey, u64)] {
        &self.runs
    }

    /// Room for `n` more events (at most a batch, when spilling).
    pub fn reserve(&mut self, n: usize) {
        let n = self.spill.as_ref().map_or(n, |s| n.min(s.batch()));
        self.events.reserve(n);
    }

    /// Every record's time, in order (those written to disk first, read back from there).
    pub fn times(&self) -> Result<spill::Times<'_>, crate::capture::Error> {
        spill::Times::new(self.spill.as_ref(), &self.events)
    }

    /// What placement needs to know of all the records' times.
    pub fn summary(&self) -> clock::Summary {
        let mut sum = self.spill.as_ref().map(|s| s.summary).unwrap_or_default();
        for p in &self.events {
            sum.add(p.time);
        }
        sum
    }

    /// The records placement looks at: all of them in memory, or of those written to disk the
    /// kernel OOM kills.
    pub fn looked_at(&self) -> impl Iterator<Item = &Pending> {
        self.spill
            .iter()
            .flat_map(|s| s.kept.iter())
            .chain(self.events.iter())
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.written()) + self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reject(&mut self, at: Location, reason: impl Into<String>) {
        self.rejected.push(Rejected {
            at,
            reason: reason.into(),
        });
    }
}

/// Whether a record's time can be real: not before 2000 (null-time sentinels such as 1754 or
/// the epoch), not after a year from now (a flipped bit). A record that fails is rejected, and
/// never moves where the other records of the import are placed.
pub fn implausible(ts: Ts) -> Option<String> {
    let floor = Ts::from_secs(946_684_800); // 2000-01-01T00:00:00Z
    let ceiling = Ts::from_datetime(&chrono::Utc::now()).0 + 366 * 86_400 * Ts::NANOS_PER_SEC;
    if ts.0 == 0 {
        // Times before the epoch are read as the epoch.
        Some("its time is 1970 or earlier (before 2000): a placeholder for \"no time\", not when it happened".to_string())
    } else if ts < floor {
        Some(format!(
            "time {ts} is before 2000: a placeholder for \"no time\", not when it happened"
        ))
    } else if ts.0 > ceiling {
        Some(format!("time {ts} is more than a year from now"))
    } else {
        None
    }
}

/// One input of an import.
#[derive(Clone, Debug)]
pub struct Input {
    /// The path as the user gave it (for messages).
    pub path: PathBuf,
    /// Forces a format instead of detecting it.
    pub format: Option<Format>,
}

/// Options of an import.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub clock: ClockOptions,
    /// The node to record on events that do not name one.
    pub node: Option<String>,
    /// When pasted `kubectl describe`/`get` output was captured, for its ages; else each file's
    /// modification time.
    pub now: Option<Ts>,
    /// Whose container logs plain `kubectl logs` texts are (`--pod`, `--container`, `--previous`).
    pub owner: Option<container_log::Owner>,
    /// Where big imports keep what does not fit a batch; without it, everything is in memory.
    pub scratch: Option<Arc<Scratch>>,
}

/// The outcome for one input file.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: Option<Format>,
    pub events: usize,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<String>,
    /// Set when the whole file could not be read or recognised.
    pub error: Option<String>,
}

/// The events of an import, ordered by time, and what happened to each input.
#[derive(Debug)]
pub struct Import {
    pub events: Sorted,
    pub files: Vec<FileReport>,
    /// Assumptions made to place times (years, boot times, zones), one sentence each.
    pub placements: Vec<String>,
}

/// Reads, parses and places every input. Inputs that fail are reported, never fatal: the others
/// still import. The error is one of the scratch files (`Options::scratch`).
pub fn run(
    inputs: &[Input],
    opts: &Options,
    mut progress: impl FnMut(&Path, u64),
) -> Result<Import, crate::capture::Error> {
    let mut parsed = Vec::with_capacity(inputs.len());
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let modified = std::fs::metadata(&input.path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| Ts::from_datetime(&chrono::DateTime::<chrono::Utc>::from(t)));
        let (report, p) = parse_input(input, opts, modified)?;
        progress(&input.path, report.events as u64);
        parsed.push(Placement {
            name: display_name(&input.path),
            modified,
            parsed: p,
        });
        files.push(report);
    }
    let mut sorter = spill::Sorter::new(opts.scratch.clone());
    let placements = place_into(parsed, &opts.clock, &mut sorter)?;
    Ok(Import {
        events: sorter.finish()?,
        files,
        placements,
    })
}

fn parse_input(
    input: &Input,
    opts: &Options,
    modified: Option<Ts>,
) -> Result<(FileReport, Parsed), crate::capture::Error> {
    match read::open(&input.path) {
        Ok(text) => parse_text_spilling(&input.path, text, input.format, opts, modified),
        Err(e) => Ok((
            FileReport {
                path: input.path.clone(),
                format: input.format,
                events: 0,
                rejected: Vec::new(),
                warnings: Vec::new(),
                error: Some(e),
            },
            Parsed::default(),
        )),
    }
}

/// Detects (unless `forced`) and parses the text of one input; `path` names it in messages and,
/// for container logs, may say whose logs they are. Records with impossible times are rejected.
pub fn parse_text(
    path: &Path,
    text: &str,
    forced: Option<Format>,
    opts: &Options,
    modified: Option<Ts>,
) -> (FileReport, Parsed) {
    let text = read::Text::Whole(text.to_string());
    match parse_text_spilling(path, text, forced, opts, modified) {
        Ok(r) => r,
        // A scratch file could not be written: the input is not imported, and says why.
        Err(e) => (
            FileReport {
                path: path.to_path_buf(),
                format: forced,
                events: 0,
                rejected: Vec::new(),
                warnings: Vec::new(),
                error: Some(e.to_string()),
            },
            Parsed::default(),
        ),
    }
}

/// [`parse_text`], with the events of the line formats past a batch written to scratch files.
/// A big text of a line format is parsed as it is read; of the other formats, read whole.
fn parse_text_spilling(
    path: &Path,
    text: read::Text,
    forced: Option<Format>,
    opts: &Options,
    modified: Option<Ts>,
) -> Result<(FileReport, Parsed), crate::capture::Error> {
    let mut report = FileReport {
        path: path.to_path_buf(),
        format: forced,
        events: 0,
        rejected: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    let head = match &text {
        read::Text::Whole(t) => t.as_str(),
        read::Text::Stream { head, .. } => head.as_str(),
    };
    if head.trim().is_empty() && matches!(text, read::Text::Whole(_)) {
        report.error = Some("the file is empty".to_string());
        return Ok((report, Parsed::default()));
    }
    let detected = forced.or_else(|| detect::detect(head));
    // With --pod, plain text is `kubectl logs` output, not a kernel log.
    let detected = match (detected, &opts.owner, forced) {
        (Some(Format::KernelLog | Format::Syslog) | None, Some(_), None) => {
            Some(Format::ContainerLog)
        }
        (d, _, _) => d,
    };
    let format = match detected {
        Some(f) => f,
        None => {
            report.error = Some(
                "format not recognised: none of Kubernetes JSON/YAML, a watch stream, OTLP or \
                 Zipkin JSON, dmesg, syslog or journalctl output, kernel messages, kubectl \
                 describe or get output, container logs; pass --format to force one (a plain \
                 `kubectl logs` text: --pod NS/NAME)"
                    .to_string(),
            );
            return Ok((report, Parsed::default()));
        }
    };
    report.format = Some(format);
    let node = opts.node.as_deref().unwrap_or("");
    // The line formats, which make logs of millions of lines, write past a batch to disk; the
    // Kubernetes inputs stay in memory (placement reads them, and they are parsed whole).
    let spill = match format {
        Format::KernelLog | Format::Syslog | Format::JournalJson | Format::ContainerLog => {
            opts.scratch.as_ref().map(spill::Spill::new)
        }
        _ => None,
    };
    let mut parsed = Parsed::spilling(spill);
    let line_format = matches!(
        format,
        Format::KernelLog | Format::Syslog | Format::JournalJson | Format::ContainerLog
    );
    let text = match text {
        read::Text::Stream { head, rest } if line_format => {
            let mut lines = read::Lines::new(&head, Some(rest));
            if format == Format::ContainerLog {
                container_log::parse_lines(
                    &mut lines,
                    path,
                    opts.owner.as_ref(),
                    node,
                    &mut parsed,
                );
            } else {
                kernel_log::parse_lines(&mut lines, format, node, &mut parsed);
            }
            if let Some(e) = lines.error {
                report.error = Some(e);
                return Ok((report, Parsed::default()));
            }
            None
        }
        t => match t.into_whole() {
            Ok(t) => Some(t),
            Err(e) => {
                report.error = Some(e);
                return Ok((report, Parsed::default()));
            }
        },
    };
    let text = text.as_deref().unwrap_or_default();
    match format {
        _ if text.is_empty() => {} // parsed as it was read
        Format::KubeJson | Format::KubeYaml | Format::WatchJson | Format::WatchYaml => {
            parsed = kube::parse(text, format, node);
        }
        Format::OtlpJson => parsed = otlp::parse(text, node),
        Format::TapioJson => parsed = tapio_json(text),
        Format::ZipkinJson => parsed = zipkin::parse(text, node),
        Format::KernelLog | Format::Syslog | Format::JournalJson => {
            kernel_log::parse_into(text, format, node, &mut parsed);
        }
        Format::ContainerLog => {
            container_log::parse_into(text, path, opts.owner.as_ref(), node, &mut parsed);
        }
        Format::KubectlDescribe | Format::KubectlTable => {
            let now = match opts.now {
                Some(ts) => paste::Now { ts, given: true },
                None => paste::Now {
                    ts: modified.unwrap_or_else(|| Ts::from_datetime(&chrono::Utc::now())),
                    given: false,
                },
            };
            parsed = paste::parse(text, now, node);
        }
    }
    if let Some(mut s) = parsed.spill.take().filter(spill::Spill::used) {
        // Past a batch: the rest goes to disk too, so that the input is read back from one place.
        s.finish(&mut parsed.events)?;
        parsed.rejected.append(&mut s.impossible);
        parsed.spill = Some(s);
    }
    // Records whose own time cannot be real (parsers that know the line reject them there),
    // removed in place.
    let mut i = 0;
    let mut impossible = Vec::new();
    parsed.events.retain(|p| {
        let why = match p.time {
            LineTime::Absolute(ts) => implausible(ts),
            _ => None,
        };
        if let Some(why) = why {
            impossible.push(Rejected {
                at: Location::Item(i),
                reason: why,
            });
        }
        i += 1;
        impossible
            .last()
            .is_none_or(|r| r.at != Location::Item(i - 1))
    });
    parsed.rejected.append(&mut impossible);
    report.events = parsed.len();
    report.rejected = std::mem::take(&mut parsed.rejected);
    report.warnings = std::mem::take(&mut parsed.warnings);
    Ok((report, parsed))
}

/// Places the parsed inputs of one import on one timeline: the events ordered by time, and the
/// assumptions made, one sentence each.
pub fn place(parsed: Vec<Placement>, clock: &ClockOptions) -> (Vec<Event>, Vec<String>) {
    let mut sorter = spill::Sorter::new(None);
    match place_into(parsed, clock, &mut sorter) {
        Ok(notes) => (sorter.into_memory(), notes),
        // Only scratch files fail, and without a scratch directory there are none.
        Err(e) => (Vec::new(), vec![e.to_string()]),
    }
}

/// [`place`], the events going to `sorter`.
fn place_into(
    mut parsed: Vec<Placement>,
    clock: &ClockOptions,
    sorter: &mut spill::Sorter,
) -> Result<Vec<String>, crate::capture::Error> {
    let mut placed_logs = paste::adopt_namespaces(&mut parsed);
    let (runs, mut said) = plan_runs(&parsed);
    placed_logs.append(&mut said);
    let mut placements = clock::place(parsed, clock, &runs, sorter)?;
    placements.append(&mut placed_logs);
    Ok(placements)
}

/// Where the container log lines without times go: by their container's run in the Pods of the
/// import, the lines of one run counted across every input in input order.
fn plan_runs(parsed: &[Placement]) -> (container_log::Runs, Vec<String>) {
    let pods: Vec<&Event> = parsed
        .iter()
        .flat_map(|p| p.parsed.looked_at())
        .filter(|p| {
            matches!(&p.event.body, crate::event::Body::Kube(crate::event::Kube::Object(o)) if o.kind == crate::event::ObjectKind::Pod)
        })
        .map(|p| &p.event)
        .collect();
    let mut lines: Vec<(container_log::RunKey, u64)> = Vec::new();
    for (key, n) in parsed.iter().flat_map(|p| p.parsed.runs()) {
        match lines.iter_mut().find(|(k, _)| k == key) {
            Some((_, total)) => *total += n,
            None => lines.push((key.clone(), *n)),
        }
    }
    if lines.is_empty() {
        return (container_log::Runs::default(), Vec::new());
    }
    container_log::plan_runs(&lines, &pods)
}

/// The event model's own JSON lines, as written by hand for fixtures (`tapio-json`).
fn tapio_json(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => out.push(LineTime::Absolute(e.ts), e),
            Err(err) => out.reject(Location::Line(i + 1), format!("not a tapio event: {err}")),
        }
    }
    out
}

/// The file name of a path, for messages.
pub fn display_name(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_log_parsed_as_it_is_read_imports_as_the_whole_text_does() {
        // Over three heads of text, with OOM-killer reports (which span lines) across the ends of
        // the head and of every batch; the same from scratch files and from memory.
        let report = include_str!("../../../../fixtures/incidents/node-oom/dmesg.txt");
        let report: Vec<&str> = report
            .lines()
            .filter_map(|l| l.split_once("] "))
            .map(|(_, r)| r)
            .collect();
        let mut text = String::new();
        let mut t = 1000.0f64;
        let mut n = 0;
        while text.len() < 3 * read::HEAD_BYTES {
            for _ in 0..997 {
                t += 0.000731;
                n += 1;
                text.push_str(&format!("[{t:12.6}] eth0: link is up (line {n})\n"));
            }
            for r in &report {
                t += 0.000021;
                text.push_str(&format!("[{t:12.6}] {r}\n"));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dmesg.txt");
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(read::open(&path), Ok(read::Text::Stream { .. })));
        let clock = ClockOptions {
            boot_time: Ts::parse_rfc3339("2026-03-14T00:00:00Z"),
            ..ClockOptions::default()
        };
        let whole = {
            let opts = Options {
                clock: clock.clone(),
                ..Options::default()
            };
            let (report, parsed) = parse_text(&path, &text, None, &opts, None);
            assert!(report.error.is_none(), "{report:?}");
            let placement = Placement {
                name: display_name(&path),
                modified: None,
                parsed,
            };
            place(vec![placement], &clock).0
        };
        assert!(whole.len() > 40_000);
        let kills = |v: &[Event]| {
            v.iter()
                .filter(|e| {
                    matches!(
                        e.body,
                        crate::event::Body::Kernel(crate::event::Kernel::OomKill(_))
                    )
                })
                .count()
        };
        assert!(kills(&whole) >= 40, "{} OOM kills", kills(&whole));
        let input = Input {
            path: path.clone(),
            format: None,
        };
        for scratch in [None, Some(Scratch::new(dir.path(), 4096))] {
            let opts = Options {
                clock: clock.clone(),
                scratch,
                ..Options::default()
            };
            let streamed = run(std::slice::from_ref(&input), &opts, |_, _| {}).unwrap();
            assert!(streamed.files[0].error.is_none(), "{:?}", streamed.files[0]);
            let streamed = streamed.events.into_vec().unwrap();
            assert_eq!(streamed.len(), whole.len());
            // (Scratch files number their events; the output numbers them again.)
            let mut streamed = streamed;
            for e in &mut streamed {
                e.seq = 0;
            }
            assert!(streamed == whole, "streamed and whole differ");
        }
    }
}
