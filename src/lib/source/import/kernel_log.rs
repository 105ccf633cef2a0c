//! Kernel and system logs: `dmesg`, `/dev/kmsg`, syslog / `journalctl` text and `journalctl -o json`.
//!
//! These are where a node's side of an incident is written: above all the kernel OOM killer's
//! reports, which say which process of which memory cgroup (so which container) was killed and
//! why. Every line becomes a [`Log`] event with whatever time its prefix gives ([`LineTime`]: since
//! boot, without a year, absolute …; a later stage places it). The many lines of one OOM-killer
//! report (from `<comm> invoked oom-killer:` to `Killed process …` and `oom_reaper: …`) are folded
//! into one [`OomKill`] event instead, as are the one-line kills printed by bcc's `oomkill` tool.
//! A report that never names its victim stays as plain log lines: nothing is lost. Blank lines and
//! `#` comment lines (as in test fixtures) are skipped, and they end an open report.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate};
use regex::{Captures, Match, Regex};
use serde_json::Value;

use super::{Format, LineTime, Location, Parsed};
use crate::event::{Body, Event, Kernel, Log, LogOrigin, OomConstraint, OomKill, Severity};
use crate::event::{Source, Ts};

/// Declares the line shapes: one `Regex` field of `Patterns` each, all compiled once in `P`.
macro_rules! patterns {
    ($($(#[$m:meta])* $name:ident: $re:literal,)*) => {
        struct Patterns { $($(#[$m])* $name: Regex,)* }
        static P: LazyLock<Patterns> =
            LazyLock::new(|| Patterns { $($name: Regex::new($re).expect("static regex"),)* });
    };
}

patterns! {
    /// `/dev/kmsg`: `priority,seq,usec,flags[,…];message`.
    kmsg: r"^(\d{1,4}),\d{1,20},(\d{1,20}),[^;]*;(.*)$",
    /// `dmesg` / console: `[  123.456789] msg`, optionally after `<6>`.
    dmesg: r"^(?:<(\d{1,4})>)?\[\s*(\d{1,12})\.(\d{1,9})\]\s?(.*)$",
    /// `dmesg -T`: `[Tue Nov 10 14:17:41 2020] msg`, with the weekday and month names of the
    /// machine's locale (`[Fr Dez  4 …]`, `[ven. déc.  4 …]`, `[金 12月  4 …]`).
    /// The date may also be in the locale's own order (`[Fr,  4. Dez 2026, 12:44:22]`).
    dmesg_t: r"^(?:<(\d{1,4})>)?\[([^\]]{12,48})\]\s?(.*)$",
    /// Classic syslog: `Nov 10 14:17:41[.900439] host rest`, optionally after `<30>`.
    bsd: r"^(?:<(\d{1,4})>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? +(\S+) ?(.*)$",
    /// An RFC 3339 time first (`journalctl -o short-iso`, rsyslog, `dmesg --time-format iso`).
    iso: r"^(?:<(\d{1,4})>)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))\s+(.*)$",
    /// RFC 5424: `<34>1 2024-05-01T10:02:11.003Z host app procid msgid [sd]|- msg`.
    rfc5424: r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) \S+ (?:-|\[.*?\])(?: \x{FEFF}?(.*))?$",
    /// What follows the host of a syslog line: `ident[pid]: msg` or `ident: msg`.
    ident: r"^([^\s\[\]:]+)(?:\[(\d{1,10})\])?:(?: (.*))?$",
    /// The dmesg prefix that syslog keeps in kernel messages.
    boot_prefix: r"^\[\s*\d+\.\d+\]\s?",
    /// bcc `oomkill`: `21:03:39 Triggered by PID 3297 ("ntpd"), OOM kill of PID 22516 ("perl"), 3850642 pages, …`.
    bcc: r#"^(\d{2}):(\d{2}):(\d{2}) Triggered by PID (\d{1,10}) \("(.*?)"\), OOM kill of PID (\d{1,10}) \("(.*?)"\), (\d{1,20}) pages"#,
    /// The lines of an OOM-killer report, first to last.
    invoked: r"^\s*(.+?) invoked oom-killer: ",
    cpu: r"^CPU: \d+ (?:UID: \d+ )?PID: (\d{1,10}) Comm: ",
    task_in: r"Task in (.+) killed as a result of limit of (.+?)\s*$",
    memory: r"^memory: usage (\d{1,20})kB, limit (\d{1,20})kB",
    oom_kill: r"oom-kill:(\S*=\S*)",
    kill: r"(Memory cgroup out of memory|Out of memory)[^:]*: Kill(?:ed)? process (\d{1,10}) \((.*?)\)",
    killed: r"Killed process (\d{1,10}) \((.*?)\)(?: total-vm:(\d{1,20})kB, anon-rss:(\d{1,20})kB, file-rss:(\d{1,20})kB(?:, shmem-rss:(\d{1,20})kB)?|[^)]*$)",
    reaped: r"oom_reaper: reaped process \d",
    /// cgroup v2 `memory.oom.group`: every task of the cgroup is killed after the victim.
    group: r"Tasks in (\S+) are going to be killed due to memory\.oom\.group set",
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const NANOS: u64 = 1_000_000_000;

/// Parses one kernel or system log input (`format` is [`Format::KernelLog`], [`Format::Syslog`] or
/// [`Format::JournalJson`]; any other is read as a kernel log) into pending events.
///
/// `node` names the machine; when it is empty, the host column of syslog lines or the journal's
/// `_HOSTNAME` is used. Lines of a journal export that are not JSON objects are rejected with their
/// 1-based line number; text lines are never rejected (a line without a time gets
/// [`LineTime::Unknown`]). `dmesg -T` times are local times, placed by the clock stage (`--tz`).
pub fn parse(text: &str, format: Format, node: &str) -> Parsed {
    let mut out = Parsed::default();
    parse_into(text, format, node, &mut out);
    out
}

/// [`parse`] into `parsed` (which may write its events to disk past a batch).
pub fn parse_into(text: &str, format: Format, node: &str, parsed: &mut Parsed) {
    // About one event a line: one allocation, not a doubling vector's copies.
    parsed.reserve(text.bytes().filter(|&b| b == b'\n').count() + 1);
    parse_lines(text.lines(), format, node, parsed);
}

/// [`parse_into`] from lines as they are read (a big input is never held whole).
pub fn parse_lines<S: AsRef<str>>(
    lines: impl Iterator<Item = S>,
    format: Format,
    node: &str,
    parsed: &mut Parsed,
) {
    let mut out = Out {
        parsed: std::mem::take(parsed),
        node: node.into(),
        from_host: node.is_empty(),
        host: None,
    };
    let items: Box<dyn Iterator<Item = Item> + '_> = match format {
        Format::JournalJson => Box::new(JournalRecords {
            lines: lines.enumerate(),
        }),
        _ => Box::new(TextRecords {
            lines: lines.enumerate(),
            syslog: format == Format::Syslog,
            joinable: false,
            held: None,
        }),
    };
    let mut report: Option<Report> = None;
    for item in items {
        let r = match item {
            Item::Bad(at, why) => {
                out.parsed.reject(at, why);
                continue;
            }
            Item::Break => {
                out.close(report.take());
                continue;
            }
            Item::Kill(time, kill) => {
                out.push(time, None, Kernel::OomKill(Box::new(kill)));
                continue;
            }
            Item::Rec(r) if !r.kernel => {
                out.log(r);
                continue;
            }
            Item::Rec(r) => r,
        };
        let b = r.body.as_str();
        let belongs = report.as_ref().map(|p| match (p.done, p.tail) {
            // After the victim, a group kill's other tasks (`memory.oom.group`).
            (true, _) if p.group.is_some() => {
                P.reaped.is_match(b) || P.killed.is_match(b) || P.kill.is_match(b)
            }
            (true, _) => P.reaped.is_match(b) || P.group.is_match(b),
            (_, true) => P.oom_kill.is_match(b) || P.kill.is_match(b) || P.killed.is_match(b),
            _ => !P.invoked.is_match(b),
        });
        if belongs == Some(false) {
            out.close(report.take());
        }
        if report.is_none() && !opens_report(b) {
            out.log(r);
            continue;
        }
        let p = report.get_or_insert_with(Report::new);
        let reaped = p.done && p.group.is_none() && P.reaped.is_match(&r.body);
        p.absorb(r);
        if reaped {
            out.close(report.take());
        }
    }
    out.close(report);
    *parsed = out.parsed;
}

/// One log record of the input, its time and header read.
struct Rec {
    time: LineTime,
    severity: Severity,
    ident: String,
    pid: u32,
    body: String,
    /// The host column of the line, if it has one.
    host: Option<String>,
    /// A kernel message (origin kmsg): it may be part of an OOM-killer report.
    kernel: bool,
}

impl Rec {
    fn kernel(time: LineTime, severity: Severity, body: &str) -> Rec {
        let (ident, body) = ("kernel".to_string(), body.to_string());
        Rec {
            time,
            severity,
            ident,
            pid: 0,
            body,
            host: None,
            kernel: true,
        }
    }
}

enum Item {
    Rec(Rec),
    /// A complete OOM kill on one line (bcc `oomkill`).
    Kill(LineTime, OomKill),
    /// A blank or comment line: ends an open OOM report.
    Break,
    /// A line that is no record, and why.
    Bad(Location, String),
}

/// Reads text lines (dmesg, kmsg, syslog, journalctl short output, bcc oomkill), one record at a
/// time: an indented line continues the record before it, so each record is held until the next
/// line shows it is complete.
struct TextRecords<L> {
    /// The lines, numbered from 0.
    lines: L,
    syslog: bool,
    joinable: bool,
    held: Option<Item>,
}

/// A line, without the byte-order mark of the first.
fn line_text(i: usize, line: &str) -> &str {
    match i {
        0 => line.strip_prefix('\u{feff}').unwrap_or(line),
        _ => line,
    }
}

impl<S: AsRef<str>, L: Iterator<Item = (usize, S)>> Iterator for TextRecords<L> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let Some((i, line)) = self.lines.next() else {
                return self.held.take();
            };
            let line = line_text(i, line.as_ref()).trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                self.joinable = false;
                return Some(match self.held.replace(Item::Break) {
                    Some(prev) => prev,
                    None => self.held.take().unwrap_or(Item::Break),
                });
            }
            if self.syslog && line.starts_with("-- ") {
                continue; // journalctl's `-- Boot … --` and `-- No entries --` markers
            }
            if self.joinable && line.starts_with([' ', '\t']) {
                if let Some(Item::Rec(prev)) = self.held.as_mut() {
                    prev.body.push('\n');
                    prev.body.push_str(line.trim());
                    continue;
                }
            }
            let (item, join) = text_line(line, self.syslog);
            self.joinable = join;
            if let Some(prev) = self.held.replace(item) {
                return Some(prev);
            }
        }
    }
}

/// Reads one text line; also says whether indented lines after it continue it.
fn text_line(line: &str, syslog: bool) -> (Item, bool) {
    if let Some(c) = P.kmsg.captures(line) {
        if let Ok(usec) = c[2].parse::<u64>() {
            let time = LineTime::SinceBoot(usec.saturating_mul(1_000));
            return (Item::Rec(Rec::kernel(time, pri(c.get(1)), &c[3])), true);
        }
    }
    if let Some(c) = P.dmesg.captures(line) {
        let secs: u64 = c[2].parse().unwrap_or(0);
        let time =
            LineTime::SinceBoot(secs.saturating_mul(NANOS).saturating_add(frac_nanos(&c[3])));
        return (Item::Rec(Rec::kernel(time, pri(c.get(1)), &c[4])), false);
    }
    if let Some(c) = P.dmesg_t.captures(line) {
        if let Some(time) = wall_time(&c[2]) {
            let r = Rec::kernel(time, pri(c.get(1)), &c[3]);
            return (Item::Rec(r), false);
        }
    }
    if let Some(r) = P.bsd.captures(line).and_then(|c| bsd_line(&c)) {
        return (Item::Rec(r), syslog);
    }
    if let Some(c) = P.rfc5424.captures(line) {
        let time = iso_time(&c[2]).map_or(LineTime::Unknown, LineTime::Absolute);
        let nil = |i: usize| c.get(i).map_or("", |m| m.as_str()).trim_start_matches('-');
        let rest = match nil(5).parse::<u32>() {
            Ok(pid) => format!("{}[{pid}]: {}", nil(4), nil(6)),
            Err(_) => format!("{}: {}", nil(4), nil(6)),
        };
        return (
            Item::Rec(syslog_rec(time, pri(c.get(1)), nil(3), &rest)),
            false,
        );
    }
    if let Some(c) = P.iso.captures(line) {
        if let Some(ts) = iso_time(&c[2]) {
            let (time, sev) = (LineTime::Absolute(ts), pri(c.get(1)));
            if !syslog {
                return (Item::Rec(Rec::kernel(time, sev, &c[3])), false);
            }
            let (host, rest) = c[3].split_once(' ').unwrap_or((&c[3], ""));
            return (Item::Rec(syslog_rec(time, sev, host, rest)), true);
        }
    }
    if let Some(item) = P.bcc.captures(line).and_then(|c| bcc_line(&c)) {
        return (item, false);
    }
    let mut r = Rec::kernel(LineTime::Unknown, Severity::Unknown, line);
    if syslog {
        r.ident.clear();
        r.kernel = false;
    }
    (Item::Rec(r), false)
}

/// What `dmesg -T` prints between its brackets: the machine's local date and time, in its
/// locale's names and order (`Tue Nov 10 14:17:41 2020`, `Fr Dez  4 10:15:02 2026`,
/// `Fr,  4. Dez 2026, 12:44:22`, `ven. 11 déc. 05:52:40 2026`, `金 12月  4 10:15:02 2026`): a
/// time of day, a four-digit year, a month name and a day, in any order, and nothing else but a
/// weekday name. The clock stage applies `--tz`.
pub fn wall_time(inside: &str) -> Option<LineTime> {
    let (mut time, mut year, mut month, mut day, mut other) = (None, None, None, None, 0);
    for w in inside.split([' ', ',']).filter(|w| !w.is_empty()) {
        let bare = w.trim_end_matches('.');
        let b = bare.as_bytes();
        if time.is_none() && b.len() == 8 && b[2] == b':' && b[5] == b':' {
            time = time_of_day(&bare[0..2], &bare[3..5], &bare[6..8]);
        } else if year.is_none() && b.len() == 4 && b.iter().all(u8::is_ascii_digit) {
            year = bare.parse::<i32>().ok();
        } else if day.is_none() && (1..=2).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
            day = bare.parse::<u32>().ok();
        } else if let Some(m) = any_month(bare) {
            // A weekday may read as a month (Spanish `mar`, Tuesday): the weekday comes first.
            other += usize::from(month.is_some());
            month = Some(m);
        } else {
            other += 1; // the weekday, and nothing more
        }
    }
    let (year, month, day, nanos_of_day) = (year?, month?, day?, time?);
    if other > 1 {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)?;
    Some(LineTime::Local {
        year,
        month,
        day,
        nanos_of_day,
    })
}

fn bsd_line(c: &Captures) -> Option<Rec> {
    let day: u32 = c[3].parse().ok()?;
    let frac = c.get(7).map_or(0, |f| frac_nanos(f.as_str()));
    let nanos_of_day = time_of_day(&c[4], &c[5], &c[6])? + frac;
    let time = LineTime::NoYear {
        month: month(&c[2])?,
        day,
        nanos_of_day,
    };
    if !(1..=31).contains(&day) {
        return None;
    }
    Some(syslog_rec(time, pri(c.get(1)), &c[8], &c[9]))
}

/// A syslog line after its time: `host` then `ident[pid]: msg`.
fn syslog_rec(time: LineTime, severity: Severity, host: &str, rest: &str) -> Rec {
    let (ident, pid, body) = match P.ident.captures(rest) {
        Some(c) => (
            c[1].to_string(),
            c.get(2).and_then(|p| p.as_str().parse().ok()).unwrap_or(0),
            c.get(3).map_or("", |b| b.as_str()),
        ),
        None => (String::new(), 0, rest),
    };
    let kernel = ident == "kernel";
    let body = if kernel {
        P.boot_prefix.replace(body, "")
    } else {
        body.into()
    };
    let (body, host) = (body.into_owned(), Some(host.to_string()));
    Rec {
        time,
        severity,
        ident,
        pid,
        body,
        host,
        kernel,
    }
}

fn bcc_line(c: &Captures) -> Option<Item> {
    let mut kill = Report::new().kill;
    kill.killer_pid = c[4].parse().ok()?;
    kill.killer_comm = c[5].to_string().into();
    kill.victim_pid = c[6].parse().ok()?;
    kill.victim_comm = c[7].to_string().into();
    kill.rss_kib = c[8].parse::<u64>().ok()?.saturating_mul(4);
    let nanos_of_day = time_of_day(&c[1], &c[2], &c[3])?;
    let time = LineTime::TimeOfDay { nanos_of_day };
    Some(Item::Kill(time, kill))
}

/// Reads `journalctl -o json`: one object per line.
struct JournalRecords<L> {
    /// The lines, numbered from 0.
    lines: L,
}

impl<S: AsRef<str>, L: Iterator<Item = (usize, S)>> Iterator for JournalRecords<L> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let (i, line) = self.lines.next()?;
            if let Some(item) = journal_record(i, line_text(i, line.as_ref())) {
                return Some(item);
            }
        }
    }
}

/// One line of `journalctl -o json`; `None` for a blank line.
fn journal_record(i: usize, line: &str) -> Option<Item> {
    {
        if line.trim().is_empty() {
            return None;
        }
        let o = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                let why = "not a JSON object (journalctl -o json writes one object per line)";
                return Some(Item::Bad(Location::Line(i + 1), why.to_string()));
            }
            Err(e) => {
                return Some(Item::Bad(
                    Location::Line(i + 1),
                    format!("not valid JSON: {e}"),
                ));
            }
        };
        let s = |k: &str| o.get(k).and_then(Value::as_str);
        let time = s("__REALTIME_TIMESTAMP").and_then(|t| t.trim().parse::<u64>().ok());
        let body = match o.get("MESSAGE") {
            Some(Value::String(m)) => m.clone(),
            Some(Value::Array(a)) => {
                let byte = |b: &Value| b.as_u64().and_then(|b| u8::try_from(b).ok());
                let bytes: Vec<u8> = a.iter().map(|b| byte(b).unwrap_or(b'?')).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => String::new(),
        };
        let pri = s("PRIORITY").and_then(|p| p.trim().parse::<u32>().ok());
        let ident = s("SYSLOG_IDENTIFIER").or_else(|| s("_COMM")).unwrap_or("");
        Some(Item::Rec(Rec {
            time: time.map_or(LineTime::Unknown, |us| {
                LineTime::Absolute(Ts::from_micros(us))
            }),
            severity: pri.map_or(Severity::Unknown, Severity::from_syslog),
            ident: ident.to_string(),
            pid: s("_PID")
                .or_else(|| s("SYSLOG_PID"))
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            body,
            host: s("_HOSTNAME").map(str::to_string),
            kernel: s("_TRANSPORT") == Some("kernel"),
        }))
    }
}

/// Whether a kernel line with no report open starts one (possibly in its middle).
fn opens_report(b: &str) -> bool {
    [&P.invoked, &P.task_in, &P.oom_kill, &P.kill, &P.killed]
        .iter()
        .any(|r| r.is_match(b))
}

/// The lines of one OOM-killer report, and what they said so far.
struct Report {
    lines: Vec<Rec>,
    kill: OomKill,
    /// Past the process table (`oom-kill:` or `Kill process` seen): only kill lines may follow.
    tail: bool,
    /// `Killed process` seen: only `oom_reaper` may follow.
    done: bool,
    killed_time: Option<LineTime>,
    last_time: Option<LineTime>,
    host: Option<String>,
    /// `memory.oom.group`: the cgroup whose every task is killed, and the tasks killed after the
    /// victim (each once; the victim's own line again is not a second kill).
    group: Option<String>,
    members: Vec<(LineTime, OomKill)>,
}

impl Report {
    fn new() -> Report {
        let kill = OomKill {
            victim_pid: 0,
            victim_comm: String::new().into(),
            task_memcg: String::new().into(),
            oom_memcg: String::new().into(),
            constraint: OomConstraint::Unknown,
            rss_kib: 0,
            total_vm_kib: 0,
            memcg_usage_kib: None,
            memcg_limit_kib: None,
            killer_pid: 0,
            killer_comm: String::new().into(),
        };
        let (lines, tail, done, killed_time, last_time, host) =
            (vec![], false, false, None, None, None);
        Report {
            lines,
            kill,
            tail,
            done,
            killed_time,
            last_time,
            host,
            group: None,
            members: Vec::new(),
        }
    }

    /// A `Killed process` line after the group line: one more victim of the same report.
    fn member(&mut self, c: &Captures, time: LineTime) {
        let num = |i: usize| {
            c.get(i)
                .map_or(0, |m| m.as_str().parse::<u64>().unwrap_or(0))
        };
        let Ok(pid @ 1..) = u32::try_from(num(1)) else {
            return;
        };
        if pid == self.kill.victim_pid || self.members.iter().any(|(_, m)| m.victim_pid == pid) {
            return;
        }
        let mut m = self.kill.clone();
        (m.victim_pid, m.victim_comm) = (pid, c[2].into());
        m.task_memcg = self.group.clone().unwrap_or_default().into();
        if c.get(3).is_some() {
            m.total_vm_kib = num(3);
            m.rss_kib = num(4).saturating_add(num(5)).saturating_add(num(6));
        } else {
            (m.total_vm_kib, m.rss_kib) = (0, 0);
        }
        self.members.push((time, m));
    }

    fn absorb(&mut self, r: Rec) {
        let b = r.body.as_str();
        if self.done {
            if let Some(c) = P.group.captures(b) {
                self.group = Some(c[1].to_string());
            } else if let (Some(c), true) = (P.killed.captures(b), self.group.is_some()) {
                self.member(&c, r.time);
            }
            if r.time != LineTime::Unknown {
                self.last_time = Some(r.time);
            }
            self.lines.push(r);
            return;
        }
        let k = &mut self.kill;
        if let Some(c) = P.invoked.captures(b) {
            k.killer_comm = c[1].to_string().into();
        } else if let Some(c) = P.cpu.captures(b) {
            if k.killer_pid == 0 {
                k.killer_pid = c[1].parse().unwrap_or(0);
            }
        } else if let Some(c) = P.task_in.captures(b) {
            k.task_memcg = c[1].to_string().into();
            k.oom_memcg = c[2].to_string().into();
        } else if let Some(c) = P.memory.captures(b) {
            k.memcg_usage_kib = c[1].parse().ok();
            k.memcg_limit_kib = c[2].parse().ok();
        } else if let Some(c) = P.oom_kill.captures(b) {
            self.tail = true;
            let (mut pid, mut task) = (0, "");
            for (key, v) in c[1].split(',').filter_map(|kv| kv.split_once('=')) {
                match key {
                    "constraint" => k.constraint = OomConstraint::from_kernel(v),
                    "oom_memcg" => k.oom_memcg = v.to_string().into(),
                    "task_memcg" => k.task_memcg = v.to_string().into(),
                    "task" => task = v,
                    "pid" => pid = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            if pid != 0 {
                (k.victim_pid, k.victim_comm) = (pid, task.into());
            }
            // Kernels 5.0 and 5.1 print CONSTRAINT_NONE for a cgroup's OOM too: `oom_memcg=`
            // (not `global_oom`) says it was the cgroup's limit.
            if k.constraint != OomConstraint::Memcg
                && c[1].split(',').any(|kv| kv.starts_with("oom_memcg="))
            {
                k.constraint = OomConstraint::Memcg;
            }
        }
        if let Some(c) = P.kill.captures(b) {
            self.tail = true;
            if k.constraint == OomConstraint::Unknown {
                let memcg = &c[1] == "Memory cgroup out of memory";
                k.constraint = if memcg {
                    OomConstraint::Memcg
                } else {
                    OomConstraint::Global
                };
            }
            if k.victim_pid == 0 {
                (k.victim_pid, k.victim_comm) = (c[2].parse().unwrap_or(0), c[3].into());
            }
        }
        if let Some(c) = P.killed.captures(b) {
            let num = |i: usize| {
                c.get(i)
                    .map_or(0, |m| m.as_str().parse::<u64>().unwrap_or(0))
            };
            if let Ok(pid @ 1..) = u32::try_from(num(1)) {
                (k.victim_pid, k.victim_comm) = (pid, c[2].into());
            }
            if c.get(3).is_some() {
                k.total_vm_kib = num(3);
                k.rss_kib = num(4).saturating_add(num(5)).saturating_add(num(6));
            }
            self.done = true;
            self.killed_time = Some(r.time);
        }
        if r.time != LineTime::Unknown {
            self.last_time = Some(r.time);
        }
        if self.host.is_none() {
            self.host.clone_from(&r.host);
        }
        self.lines.push(r);
    }
}

/// The parse result being built, and the node names of its events.
struct Out {
    parsed: Parsed,
    node: Arc<str>,
    from_host: bool,
    /// The last host seen, so that its events share one name.
    host: Option<Arc<str>>,
}

impl Out {
    fn push(&mut self, time: LineTime, host: Option<&str>, body: impl Into<Body>) {
        let node = match host {
            Some(h) if self.from_host && !h.is_empty() => match &self.host {
                Some(a) if &**a == h => a.clone(),
                _ => self.host.insert(Arc::from(h)).clone(),
            },
            _ => self.node.clone(),
        };
        self.parsed
            .push(time, Event::new(Ts(0), node, Source::Import, body));
    }

    fn log(&mut self, r: Rec) {
        let origin = [LogOrigin::Journal, LogOrigin::Kmsg][usize::from(r.kernel)];
        let mut log = Log::new(origin, r.body);
        (log.severity, log.ident, log.pid) = (r.severity, r.ident.into(), r.pid);
        if log.severity == Severity::Unknown {
            log.severity = Severity::sniff(&log.body).unwrap_or(Severity::Unknown);
        }
        self.push(r.time, r.host.as_deref(), log);
    }

    /// Ends a report: one OOM kill when it named a victim, else its lines as logs.
    fn close(&mut self, report: Option<Report>) {
        let Some(p) = report else { return };
        if p.kill.victim_pid == 0 {
            p.lines.into_iter().for_each(|r| self.log(r));
            return;
        }
        let time = p.killed_time.or(p.last_time).unwrap_or(LineTime::Unknown);
        self.push(time, p.host.as_deref(), Kernel::OomKill(Box::new(p.kill)));
        for (t, m) in p.members {
            let t = if t == LineTime::Unknown { time } else { t };
            self.push(t, p.host.as_deref(), Kernel::OomKill(Box::new(m)));
        }
    }
}

/// A month's abbreviated name in the locales `dmesg -T` is run in (glibc's `abmon`: English,
/// German, French, Spanish, Italian, Portuguese, Dutch, Swedish, Polish, Turkish, Russian,
/// Ukrainian), or `N月` / `N월` (Japanese, Chinese, Korean).
pub fn any_month(name: &str) -> Option<u32> {
    const NAMES: [&[&str]; 12] = [
        &["jan", "janv", "ene", "gen", "sty", "oca", "янв", "січ"],
        &["feb", "févr", "fév", "fev", "lut", "şub", "фев", "лют"],
        &["mar", "mär", "mars", "mrt", "мар", "бер"],
        &["apr", "avril", "avr", "abr", "kwi", "nis", "апр", "кві"],
        &["may", "mai", "mag", "mei", "maj", "мая", "май", "тра"],
        &["jun", "juin", "giu", "cze", "haz", "июн", "чер"],
        &["jul", "juil", "lug", "lip", "tem", "июл", "лип"],
        &["aug", "août", "ago", "sie", "ağu", "авг", "сер"],
        &["sep", "sept", "set", "wrz", "eyl", "сен", "вер"],
        &["oct", "okt", "ott", "out", "paź", "eki", "окт", "жов"],
        &["nov", "lis", "kas", "ноя", "лис"],
        &["dec", "dez", "déc", "dic", "gru", "ara", "дек", "гру"],
    ];
    let n = name.trim_end_matches('.').to_lowercase();
    if let Some(num) = n.strip_suffix('月').or_else(|| n.strip_suffix('월')) {
        return num.trim().parse().ok().filter(|m| (1..=12).contains(m));
    }
    (1..=12)
        .zip(NAMES)
        .find(|(_, names)| names.contains(&n.as_str()))
        .map(|(m, _)| m)
}

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// `hh`, `mm`, `ss` (two digits each) as nanoseconds since midnight, if they are a valid time.
fn time_of_day(h: &str, m: &str, s: &str) -> Option<u64> {
    let (h, m, s): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (h < 24 && m < 60 && s <= 60).then_some(((h * 60 + m) * 60 + s) * NANOS)
}

/// Nanoseconds from the digits after a decimal point (at most 9, as the patterns allow).
fn frac_nanos(digits: &str) -> u64 {
    let n = digits.len().min(9);
    digits
        .get(..n)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0)
        * 10u64.pow(9 - n as u32)
}

/// A syslog priority (`<30>`, or the first field of a kmsg record) as a severity.
fn pri(m: Option<Match>) -> Severity {
    let p = m.and_then(|m| m.as_str().parse::<u32>().ok());
    p.map_or(Severity::Unknown, Severity::from_syslog)
}

/// RFC 3339 with `T`, a `,` or `.` fraction and a `Z`, `+hh:mm` or `+hhmm` offset.
fn iso_time(s: &str) -> Option<Ts> {
    let s = s.replace(',', ".");
    let d = DateTime::parse_from_rfc3339(&s)
        .or_else(|_| DateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f%z"));
    d.ok().map(|d| Ts::from_datetime(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> String {
        let p = format!("{}/../shared/data/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// One line per OOM kill, every field.
    fn ooms(p: &Parsed) -> Vec<String> {
        let kills = p.events.iter().filter_map(|e| match &e.event.body {
            Body::Kernel(Kernel::OomKill(k)) => Some((&**k, e.time)),
            _ => None,
        });
        let f = |(k, t): (&OomKill, LineTime)| {
            let (c, u, l) = (k.constraint.as_str(), k.memcg_usage_kib, k.memcg_limit_kib);
            let (v, kp, kc) = (&k.victim_comm, k.killer_pid, &k.killer_comm);
            let (rss, vm) = (k.rss_kib, k.total_vm_kib);
            let (tm, om) = (&k.task_memcg, &k.oom_memcg);
            let id = format!("{} {v} {c} rss={rss} vm={vm} by={kp}/{kc}", k.victim_pid);
            format!("{id} usage={u:?} limit={l:?} task={tm} oom={om} {t:?}")
        };
        kills.map(f).collect()
    }

    /// One line per log event: time, node, origin, ident[pid], severity, body.
    fn logs(p: &Parsed) -> Vec<String> {
        let logs = p.events.iter().filter_map(|e| match &e.event.body {
            Body::Log(l) => Some((&**l, e.time, &e.event.node)),
            _ => None,
        });
        let f = |(l, t, n): (&Log, LineTime, _)| {
            let (o, s) = (l.origin.as_str(), l.severity.as_str());
            format!("{t:?} {n} {o} {}[{}] {s} {}", l.ident, l.pid, l.body)
        };
        logs.map(f).collect()
    }

    #[test]
    fn kernel_log_cadvisor_blocks_give_six_oom_kills() {
        if !crate::shared_data("kernel_log_cadvisor_blocks_give_six_oom_kills") {
            return;
        }
        let text = data("kernel-oom-logs/cadvisor_oomparser_kmsg_blocks.txt");
        let p = parse(&text, Format::KernelLog, "n1");
        assert!(p.rejected.is_empty() && p.warnings.is_empty());
        let pod = "/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012";
        let ctr = "ef807430361e6e82b45db92e2e9b6fbec98f419b12c591e655c1a725565e73a8";
        let d1 = "/docker/2e088fe462e25e60be1dafafe2c05c47bda1a97978648d10ad2b7484fc0b8f50";
        let d2 = "/docker/6c6fcab8562fd3150854986b78552c732f234fd405b624207b8843528a145e70";
        let want = [
            "19667 evil-program2 unknown rss=1414012 vm=1460016 by=0/ usage=None limit=None task= oom= Unknown".to_string(),
            format!("966 manager memcg rss=0 vm=0 by=0/ usage=None limit=None task={pod}/{ctr} oom={pod} Unknown"),
            "13536 memorymonster memcg rss=1372 vm=33558652 by=13536/memorymonster usage=Some(980) limit=Some(980) task=/mem2 oom=/mem2 Unknown".to_string(),
            "1532 badsysprogram global rss=1595240 vm=1641388 by=1532/badsysprogram usage=None limit=None task= oom= Unknown".to_string(),
            format!("1381 gunpowder-memho memcg rss=20764 vm=2121528 by=1381/gunpowder-memho usage=Some(20480) limit=Some(20480) task={d1} oom={d1} Unknown"),
            format!("1667 gunpowder-memho memcg rss=250228 vm=843576 by=1667/gunpowder-memho usage=Some(307112) limit=Some(307200) task={d2} oom={d2} Unknown"),
        ];
        assert_eq!(ooms(&p), want);
        // The lone start and legacy lines stay logs, as do the docker lines; no report line does.
        let l = logs(&p);
        assert_eq!(l.iter().filter(|l| l.contains("docker0: port")).count(), 24);
        assert!(l
            .iter()
            .all(|l| l.starts_with("Unknown n1 kmsg kernel[0] - ")));
        let lone = [
            "ruby invoked oom-killer: gfp",
            "Task in /mem2 killed as a result of limit of /mem3",
        ];
        assert!(lone.iter().all(|s| l.iter().any(|l| l.contains(s))));
        let report = ["process", "Call Trace", "memory: usage", "CPU:"];
        assert!(!l.iter().any(|l| report.iter().any(|r| l.contains(r))));
    }

    #[test]
    fn kernel_log_npd_oom_kill() {
        if !crate::shared_data("kernel_log_npd_oom_kill") {
            return;
        }
        let text = data("kernel-oom-logs/npd_kernel_log_generator_oom_kill.txt");
        let p = parse(&text, Format::KernelLog, "");
        let rss = 306328 + 11132 + 12345;
        let want = format!("1012 heapster memcg rss={rss} vm=327128 by=0/ usage=None limit=None task= oom= Unknown");
        assert_eq!((ooms(&p), p.events.len()), (vec![want], 1));
    }

    #[test]
    fn kernel_log_bcc_oomkill_lines() {
        if !crate::shared_data("kernel_log_bcc_oomkill_lines") {
            return;
        }
        let text = data("kernel-oom-logs/bcc_oomkill_example.txt");
        let p = parse(&text, Format::KernelLog, "");
        let want = [ // at 21:03:39 and 21:03:48
            "22516 perl unknown rss=15402568 vm=0 by=3297/ntpd usage=None limit=None task= oom= TimeOfDay { nanos_of_day: 75819000000000 }",
            "22517 perl unknown rss=15402568 vm=0 by=22517/perl usage=None limit=None task= oom= TimeOfDay { nanos_of_day: 75828000000000 }",
        ];
        assert_eq!(ooms(&p), want);
        assert!(logs(&p).len() > 10); // the prose around them
    }

    #[test]
    fn kernel_log_insights_kubelet_journal() {
        if !crate::shared_data("kernel_log_insights_kubelet_journal") {
            return;
        }
        let path = "insights-operator-archive-sample/config__node__logs__ip-10-0-135-228.us-east-2.compute.internal.log";
        let p = parse(&data(path), Format::Syslog, "");
        let l = logs(&p);
        assert_eq!((l.len(), p.events.len(), p.rejected.len()), (50, 50, 0));
        let node = "ci-ln-b3f5vqb-72292-v2kk6-master-0 journal kubenswrapper[2296] ";
        let first = "NoYear { month: 11, day: 10, nanos_of_day: 51461900439000 }"; // 14:17:41.900439
                                                                                   // The severity comes from the klog header of the message (E = error).
        assert!(l[0].starts_with(&format!(
            "{first} {node}error E1110 14:17:41.900391    2296 pod_"
        )));
        assert!(l
            .iter()
            .all(|l| l.starts_with("NoYear { month: 11, day: 10, ") && l.contains(node)));
        let mine = parse(&data(path), Format::Syslog, "mine");
        assert!(logs(&mine).iter().all(|l| l.contains(" mine journal ")));
    }

    #[test]
    fn kernel_log_raw_dmesg_modern_memcg_report() {
        let pod = "kubepods-burstable-pod3f1c2b7e_9a4d_4c1e_8f2a_5b6c7d8e9f01.slice";
        let cg =
            format!("/kubepods.slice/kubepods-burstable.slice/{pod}/cri-containerd-4d2e.scope");
        let text = format!(
            "[ 5432.000001] IPv6: ADDRCONF(NETDEV_CHANGE): veth1: link becomes ready
[ 5432.100001] stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=985
[ 5432.100020] CPU: 1 PID: 48211 Comm: stress Not tainted 5.15.0-1051-azure #59-Ubuntu
[ 5432.100030] Call Trace:
[ 5432.100031]  <TASK>
[ 5432.100300] memory: usage 262144kB, limit 262144kB, failcnt 87
[ 5432.100351] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
[ 5432.100400] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-4d2e.scope,mems_allowed=0,oom_memcg={cg},task_memcg={cg},task=stress,pid=48213,uid=0
[ 5432.100500] Memory cgroup out of memory: Killed process 48213 (stress) total-vm:273400kB, anon-rss:261800kB, file-rss:1204kB, shmem-rss:8kB, UID:0 pgtables:560kB oom_score_adj:985
[ 5432.110000] oom_reaper: reaped process 48213 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
<4>[ 5433.5] eth0: something else\n"
        );
        let p = parse(&text, Format::KernelLog, "node-a");
        let want = format!("48213 stress memcg rss=263012 vm=273400 by=48211/stress usage=Some(262144) limit=Some(262144) task={cg} oom={cg} SinceBoot(5432100500000)");
        assert_eq!(ooms(&p), [want]);
        let want = [
            "SinceBoot(5432000001000) node-a kmsg kernel[0] - IPv6: ADDRCONF(NETDEV_CHANGE): veth1: link becomes ready",
            "SinceBoot(5433500000000) node-a kmsg kernel[0] warning eth0: something else",
        ];
        assert_eq!(logs(&p), want);
    }

    #[test]
    fn kernel_log_oom_group_kills_every_task_of_the_cgroup_once() {
        let cg = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e.slice";
        let text = format!(
            "[ 812.000100] postgres invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999
[ 812.000200] memory: usage 1048576kB, limit 1048576kB, failcnt 52
[ 812.000300] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={cg},task_memcg={cg}/cri-containerd-aa.scope,task=postgres,pid=4101,uid=999
[ 812.000400] Memory cgroup out of memory: Killed process 4101 (postgres) total-vm:900000kB, anon-rss:700000kB, file-rss:1000kB, shmem-rss:0kB, UID:999 pgtables:1500kB oom_score_adj:999
[ 812.000500] Tasks in {cg} are going to be killed due to memory.oom.group set
[ 812.000600] Memory cgroup out of memory: Killed process 4101 (postgres) total-vm:900000kB, anon-rss:700000kB, file-rss:1000kB, shmem-rss:0kB, UID:999 pgtables:1500kB oom_score_adj:999
[ 812.000700] Memory cgroup out of memory: Killed process 4160 (postgres) total-vm:300000kB, anon-rss:120000kB, file-rss:500kB, shmem-rss:0kB, UID:999 pgtables:400kB oom_score_adj:999
[ 812.000750] oom_reaper: reaped process 4101 (postgres), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
[ 812.000800] Memory cgroup out of memory: Killed process 4161 (pgbouncer) total-vm:20000kB, anon-rss:4000kB, file-rss:100kB, shmem-rss:0kB, UID:999 pgtables:80kB oom_score_adj:999
[ 813.500000] eth0: link up
"
        );
        let p = parse(&text, Format::KernelLog, "node-1");
        let kills: Vec<(u32, String, String)> = p
            .events
            .iter()
            .filter_map(|e| match &e.event.body {
                Body::Kernel(Kernel::OomKill(k)) => Some((
                    k.victim_pid,
                    k.victim_comm.to_string(),
                    k.task_memcg.to_string(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            kills,
            [
                (
                    4101,
                    "postgres".into(),
                    format!("{cg}/cri-containerd-aa.scope")
                ),
                (4160, "postgres".into(), cg.to_string()),
                (4161, "pgbouncer".into(), cg.to_string()),
            ]
        );
        assert_eq!(
            logs(&p),
            ["SinceBoot(813500000000) node-1 kmsg kernel[0] - eth0: link up"]
        );
    }

    #[test]
    fn kernel_log_kmsg_records_and_continuations() {
        let text = "6,1234,5678901,-;usb 1-1: new high-speed USB device number 2\n SUBSYSTEM=usb\n DEVICE=c189:1
3,1235,5679000,c,caller=T12;Out of memory: Killed process 77 (java) total-vm:100kB, anon-rss:10kB, file-rss:5kB, shmem-rss:1kB
12,1236,5680000,-;user message\n";
        let p = parse(text, Format::KernelLog, "");
        let want = "77 java global rss=16 vm=100 by=0/ usage=None limit=None task= oom= SinceBoot(5679000000)";
        assert_eq!(ooms(&p), [want]);
        let want = [
            "SinceBoot(5678901000)  kmsg kernel[0] info usb 1-1: new high-speed USB device number 2\nSUBSYSTEM=usb\nDEVICE=c189:1",
            "SinceBoot(5680000000)  kmsg kernel[0] warning user message",
        ];
        assert_eq!(logs(&p), want);
    }

    #[test]
    fn kernel_log_journal_json_with_bad_lines() {
        let text = r#"{"__REALTIME_TIMESTAMP":"1711449839123456","MESSAGE":"Started kubelet.","PRIORITY":"6","SYSLOG_IDENTIFIER":"systemd","_PID":"1","_HOSTNAME":"worker-1","_TRANSPORT":"journal"}
{not json

{"__REALTIME_TIMESTAMP":"1711449840000000","MESSAGE":[104,105,255],"PRIORITY":"3","_COMM":"app","_HOSTNAME":"worker-1"}
{"__REALTIME_TIMESTAMP":"1711449841000000","MESSAGE":"Out of memory: Killed process 9 (x) total-vm:8kB, anon-rss:4kB, file-rss:0kB","_TRANSPORT":"kernel","_HOSTNAME":"worker-1"}
[1]"#;
        let p = parse(text, Format::JournalJson, "");
        let at: Vec<_> = p.rejected.iter().map(|r| r.at).collect();
        assert_eq!(at, [Location::Line(2), Location::Line(6)]);
        assert!(p.rejected[0].reason.contains("not valid JSON"));
        let want = [
            "Absolute(Ts(1711449839123456000)) worker-1 journal systemd[1] info Started kubelet.",
            "Absolute(Ts(1711449840000000000)) worker-1 journal app[0] error hi\u{fffd}",
        ];
        assert_eq!(logs(&p), want);
        let want = "9 x global rss=4 vm=8 by=0/ usage=None limit=None task= oom= Absolute(Ts(1711449841000000000))";
        assert_eq!(ooms(&p), [want]);
        assert_eq!(p.events.last().map(|e| &*e.event.node), Some("worker-1"));
    }

    #[test]
    fn kernel_log_syslog_kernel_lines_and_iso_times() {
        let text = "Mar  3 10:43:59 node7 kernel: [  123.456789] eth0: link up
2024-03-26T10:43:59.123456+0000 node7 systemd[1]: Started foo.
2024-03-26T10:44:00+01:00 node7 kernel: Out of memory: Killed process 5 (a) total-vm:4kB, anon-rss:4kB, file-rss:0kB
<30>Mar 26 10:44:01 node7 containerd[900]: msg\n   indented continuation\n-- Boot 0123 --\ngarbage without a time\n";
        let p = parse(text, Format::Syslog, "");
        assert!(p.rejected.is_empty());
        let want = [ // 10:43:59 and 10:44:01
            "NoYear { month: 3, day: 3, nanos_of_day: 38639000000000 } node7 kmsg kernel[0] - eth0: link up",
            "Absolute(Ts(1711449839123456000)) node7 journal systemd[1] - Started foo.",
            "NoYear { month: 3, day: 26, nanos_of_day: 38641000000000 } node7 journal containerd[900] info msg\nindented continuation",
            "Unknown  journal [0] - garbage without a time",
        ];
        assert_eq!(logs(&p), want);
        let want = "5 a global rss=4 vm=4 by=0/ usage=None limit=None task= oom= Absolute(Ts(1711446240000000000))";
        assert_eq!(ooms(&p), [want]);
    }

    #[test]
    fn kernel_log_dmesg_t_gives_local_times() {
        let text = "[Tue Nov 10 14:17:41 2020] a\n[Tue Nov  3 01:02:03 2020] b\n";
        let p = parse(text, Format::KernelLog, "");
        assert!(p.warnings.is_empty());
        let want = [
            "Local { year: 2020, month: 11, day: 10, nanos_of_day: 51461000000000 }  kmsg kernel[0] - a",
            "Local { year: 2020, month: 11, day: 3, nanos_of_day: 3723000000000 }  kmsg kernel[0] - b",
        ];
        assert_eq!(logs(&p), want);
    }

    #[test]
    fn kernel_log_dmesg_t_in_other_locales_gives_the_same_local_times() {
        let (t, d) = ((10 * 3600 + 15 * 60 + 2) * NANOS, 4);
        for line in [
            "[Fri Dec  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[Fr Dez  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[ven. déc.  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[vie dic  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[Пт дек  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[金 12月  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[五 12月  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[pią gru  4 10:15:02 2026] Out of memory: Killed process 9 (x)",
            "[Fr,  4. Dez 2026, 10:15:02] Out of memory: Killed process 9 (x)",
            "[mar. 04 dic. 2026 10:15:02] Out of memory: Killed process 9 (x)",
            "[ven. 04 déc. 2026 10:15:02] Out of memory: Killed process 9 (x)",
        ] {
            assert_eq!(
                crate::source::import::detect::detect(line),
                Some(Format::KernelLog),
                "{line}"
            );
            let p = parse(line, Format::KernelLog, "n");
            let times: Vec<LineTime> = p.events.iter().map(|e| e.time).collect();
            assert_eq!(
                times,
                [LineTime::Local {
                    year: 2026,
                    month: 12,
                    day: d,
                    nanos_of_day: t
                }],
                "{line}"
            );
        }
    }

    #[test]
    fn kernel_log_odd_input_never_panics() {
        let odd = "[99999999999999.999999999] x\n<99999>[1.0] y\n6,1,99999999999999999999999,-;z
Feb 30 25:61:61 h x: y\n99:99:99 Triggered by PID 1 (\"a\"), OOM kill of PID 2 (\"b\"), 9 pages
Killed process 99999999999 (x)\nKilled process 3 ((sd-pam)) total-vm:1kB, anon-rss:1kB, file-rss:1kB
x invoked oom-killer: gfp_mask=0, order=0\noom-kill:constraint=X,pid=abc\n[Mon Foo 1 00:00:00 2020] q\n\u{fffd}\u{0}";
        for f in [Format::KernelLog, Format::Syslog, Format::JournalJson] {
            let p = parse(odd, f, "");
            assert!(!p.events.is_empty() || !p.rejected.is_empty());
        }
        let p = parse(odd, Format::KernelLog, "");
        let want = "3 (sd-pam) unknown rss=2 vm=1 by=0/ usage=None limit=None task= oom= Unknown";
        assert_eq!(ooms(&p), [want]);
        // A lone `invoked` line names no victim: it stays a log line.
        assert!(logs(&p).iter().any(|l| l.contains("x invoked oom-killer")));
    }

    #[test]
    fn kernel_log_rfc5424_lines() {
        let text = "<34>1 2024-05-01T10:02:11.003Z node-7 kubelet 2296 - - E0501 10:02:11.003 probe failed\n\
                    <30>1 2024-05-01T10:02:12Z node-7 kernel - - [meta x=\"1\"] [ 123.456] eth0: link up\n";
        let p = parse(text, Format::Syslog, "");
        let l = logs(&p);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(
            l[0].contains("node-7 journal kubelet[2296] crit E0501"),
            "{}",
            l[0]
        );
        assert!(
            l[1].contains("node-7 kmsg kernel[0] info eth0: link up"),
            "{}",
            l[1]
        );
        assert!(
            l[0].starts_with("Absolute(Ts(1714557731003000000))"),
            "{}",
            l[0]
        );
    }
}
