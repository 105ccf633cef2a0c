//! Placing incomplete times on one timeline.
//!
//! Kernel and syslog dumps rarely say exactly when: `dmesg` counts seconds since boot, classic
//! syslog has no year and no zone, bcc's `oomkill` prints a time of day. An incident's events must
//! still land on one timeline, so each incomplete time is completed, in this order, by the user's
//! flag (`--boot-time`, `--year`, `--tz`, `--date`), by the other inputs of the same import (their
//! complete times pin the year and the date), and only then by the input file's modification time.
//! Every assumption is said once per input, so nobody mistakes a guess for evidence.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};

use super::container_log::{Rule, RunKey, Runs};
use super::spill::{self, Sorter};
use super::{LineTime, Parsed};
use crate::capture::Error;
use crate::event::{
    cgroup_container_id, runtime_container_id, Body, Event, Kernel, Kube, ObjectKind, Ts,
};

/// The user's answers to what the inputs do not say.
#[derive(Clone, Debug, Default)]
pub struct ClockOptions {
    /// The year of syslog times that have none.
    pub year: Option<i32>,
    /// The wall-clock time the node booted, for times since boot.
    pub boot_time: Option<Ts>,
    /// The zone of local times (syslog, time-of-day); UTC when unset.
    pub tz: Option<chrono_tz::Tz>,
    /// The date of times of day.
    pub date: Option<NaiveDate>,
}

/// One parsed input and what is known about its file.
pub struct Placement {
    pub name: String,
    /// The file's modification time: the last resort for dates.
    pub modified: Option<Ts>,
    pub parsed: Parsed,
}

/// What placement needs to know of an input's times, gathered as its records are parsed (a
/// spilled input's times are on disk, read in order only when events are placed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The earliest and latest complete time.
    pub range: Option<(Ts, Ts)>,
    /// The latest time since boot.
    pub since_boot: Option<u64>,
    /// The month and day of the first time without a year.
    pub no_year: Option<(u32, u32)>,
    /// Whether any time is a time of day without a date.
    pub time_of_day: bool,
}

impl Summary {
    pub fn add(&mut self, t: LineTime) {
        match t {
            LineTime::Absolute(t) => {
                self.range = Some(self.range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
            LineTime::SinceBoot(ns) => {
                self.since_boot = Some(self.since_boot.map_or(ns, |m| m.max(ns)))
            }
            LineTime::NoYear { month, day, .. } => {
                self.no_year.get_or_insert((month, day));
            }
            LineTime::TimeOfDay { .. } => self.time_of_day = true,
            LineTime::Local { .. } | LineTime::Unknown | LineTime::Run { .. } => {}
        }
    }
}

/// Resolves every pending time and gives all events to `out`, which orders them by time (ties
/// keep input order); container log lines without times go where `runs` says. The assumptions
/// made, one sentence each. The error is one of a scratch file.
pub fn place(
    inputs: Vec<Placement>,
    opts: &ClockOptions,
    runs: &Runs,
    out: &mut Sorter,
) -> Result<Vec<String>, Error> {
    let anchors = anchor_range(&inputs, runs);
    let oom_ends = oom_terminations(&inputs);
    let mut notes = Vec::new();
    // Lines of each run already placed, across inputs in input order.
    let mut run_seen: HashMap<RunKey, u64> = HashMap::new();
    for mut input in inputs {
        let summary = input.parsed.summary();
        // This input's runs: each with its rule and the lines of it in the inputs before.
        let rules: Vec<Option<(Rule, u64)>> = input
            .parsed
            .runs()
            .iter()
            .map(|(key, n)| {
                let seen = run_seen.entry(key.clone()).or_insert(0);
                let before = *seen;
                *seen += n;
                runs.rules.get(key).map(|&(rule, _)| (rule, before))
            })
            .collect();
        let name = std::mem::take(&mut input.name);
        let mut ctx = Context {
            name: &name,
            modified: input.modified,
            opts,
            anchors,
            oom_ends: &oom_ends,
            notes: Vec::new(),
            fallback_note: None,
        };
        let mut walk = ctx.start(&input.parsed, &summary, rules);
        // Records before the first with a time take its time: find it first.
        let first = {
            let mut ahead = walk.clone();
            let mut first = None;
            for t in input.parsed.times()? {
                if let Some(ts) = ahead.step(&mut ctx, t?) {
                    first = Some(ts);
                    break;
                }
            }
            first
        };
        let fallback = ctx.fallback(first);
        // Records without a time of their own take the time of the record before them.
        let mut last: Option<Ts> = None;
        let mut place = |mut e: Event, time: LineTime| {
            let ts = walk.step(&mut ctx, time).or(last);
            last = ts;
            e.ts = ts.unwrap_or(fallback);
            if matches!(time, LineTime::Unknown) {
                if let Body::Log(l) = &mut e.body {
                    l.approximate_time = true;
                }
            }
            e
        };
        if let Some(spill) = input.parsed.spill.take() {
            // Written to disk: read back in parse order, a block at a time, with their times.
            let mut events = spill.read()?;
            let mut times = spill::Times::new(Some(&spill), &[])?;
            while let Some(e) = events.next_event()? {
                let time = times.next().transpose()?.unwrap_or(LineTime::Unknown);
                out.push(place(e, time))?;
            }
        }
        for p in std::mem::take(&mut input.parsed.events) {
            out.push(place(p.event, p.time))?;
        }
        let walk_impossible = walk.impossible;
        if walk_impossible > 0 {
            ctx.note(format!(
                "{walk_impossible} lines have dates that do not exist (such as February 30): each was placed after the line before it"
            ));
        }
        notes.append(&mut ctx.notes);
        notes.append(&mut ctx.fallback_note.take().into_iter().collect());
    }
    Ok(notes)
}

/// The earliest and latest complete time across all inputs, with the container log lines that
/// their runs place.
fn anchor_range(inputs: &[Placement], runs: &Runs) -> Option<(Ts, Ts)> {
    let ranges = inputs
        .iter()
        .filter_map(|i| i.parsed.summary().range)
        .chain(runs.rules.values().map(|&(rule, n)| rule.range(n)));
    ranges.reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
}

/// When each container that Kubernetes reports as OOM-killed finished, by container id: a kernel
/// OOM kill of that container in a `dmesg` of the same import pins the node's boot time exactly.
fn oom_terminations(inputs: &[Placement]) -> HashMap<String, Ts> {
    let mut out = HashMap::new();
    for p in inputs.iter().flat_map(|i| i.parsed.looked_at()) {
        let Body::Kube(Kube::Object(o)) = &p.event.body else {
            continue;
        };
        if o.kind != ObjectKind::Pod {
            continue;
        }
        let Ok(v) = o.json.parse() else { continue };
        let v: serde_json::Value = v;
        for key in ["containerStatuses", "initContainerStatuses"] {
            for c in v["status"][key].as_array().into_iter().flatten() {
                let id = runtime_container_id(c["containerID"].as_str().unwrap_or(""));
                for state in [&c["lastState"]["terminated"], &c["state"]["terminated"]] {
                    if state["reason"] != "OOMKilled" || id.is_empty() {
                        continue;
                    }
                    if let Some(t) = state["finishedAt"].as_str().and_then(Ts::parse_rfc3339) {
                        out.insert(id.to_string(), t);
                    }
                }
            }
        }
    }
    out
}

struct Context<'a> {
    /// The input's name and its file's modification time.
    name: &'a str,
    modified: Option<Ts>,
    opts: &'a ClockOptions,
    anchors: Option<(Ts, Ts)>,
    oom_ends: &'a HashMap<String, Ts>,
    notes: Vec<String>,
    fallback_note: Option<String>,
}

/// The state of resolving one input's times in order.
#[derive(Clone)]
struct Walk {
    boot: Option<Ts>,
    year: Option<i32>,
    date: Option<NaiveDate>,
    last_month: Option<u32>,
    last_nod: Option<u64>,
    impossible: usize,
    /// By run index: its rule and how many of its lines are placed.
    runs: Vec<Option<(Rule, u64)>>,
}

impl Context<'_> {
    /// What resolving starts from: the boot time, year and date that the input's times need.
    fn start(
        &mut self,
        parsed: &Parsed,
        summary: &Summary,
        runs: Vec<Option<(Rule, u64)>>,
    ) -> Walk {
        let boot = summary.since_boot.map(|last| self.boot_time(parsed, last));
        let year = summary.no_year.map(|(m, d)| self.year(m, d));
        let date = summary.time_of_day.then(|| self.date());
        Walk {
            boot,
            year,
            date,
            last_month: None,
            last_nod: None,
            impossible: 0,
            runs,
        }
    }

    /// The time of records before any with a time (`first`, else the other inputs' start, else
    /// the file's modification time).
    fn fallback(&mut self, first: Option<Ts>) -> Ts {
        let (t, note) = match (first, self.anchors, self.modified) {
            (Some(t), _, _) => (t, None),
            (None, Some((lo, _)), _) => (
                lo,
                Some(format!(
                    "its lines carry no time: placed at {lo}, the start of the other inputs"
                )),
            ),
            (None, None, Some(m)) => (
                m,
                Some(format!(
                    "its lines carry no time: placed at {m}, the file's modification time"
                )),
            ),
            (None, None, None) => (Ts(0), None),
        };
        self.fallback_note = note.map(|n| format!("{}: {n}", self.name));
        t
    }
}

impl Walk {
    /// The time of the next record; `None` when it has none of its own.
    fn step(&mut self, ctx: &mut Context, t: LineTime) -> Option<Ts> {
        // Logs run forward: a month that falls back (Dec → Jan) starts the next year, and a time
        // of day that falls back by more than half a day starts the next day.
        match t {
            LineTime::Absolute(t) => Some(t),
            LineTime::SinceBoot(ns) => self.boot.map(|b| Ts(b.0.saturating_add(ns))),
            LineTime::NoYear {
                month,
                day,
                nanos_of_day,
            } => {
                if self.last_month.is_some_and(|m| m >= month + 6) {
                    self.year = self.year.map(|y| y + 1);
                }
                self.last_month = Some(month);
                let d = self
                    .year
                    .and_then(|y| NaiveDate::from_ymd_opt(y, month, day));
                self.impossible += usize::from(d.is_none());
                d.map(|d| ctx.local(d, nanos_of_day))
            }
            LineTime::TimeOfDay { nanos_of_day } => {
                if self
                    .last_nod
                    .is_some_and(|n| n > nanos_of_day + 12 * 3600 * Ts::NANOS_PER_SEC)
                {
                    self.date = self.date.and_then(|d| d.succ_opt());
                }
                self.last_nod = Some(nanos_of_day);
                self.date.map(|d| ctx.local(d, nanos_of_day))
            }
            LineTime::Local {
                year,
                month,
                day,
                nanos_of_day,
            } => NaiveDate::from_ymd_opt(year, month, day).map(|d| ctx.local(d, nanos_of_day)),
            LineTime::Unknown => None,
            LineTime::Run { group } => {
                let (rule, k) = self.runs.get_mut(group as usize)?.as_mut()?;
                let t = rule.at(*k);
                *k += 1;
                Some(t)
            }
        }
    }
}

impl Context<'_> {
    /// The boot time of times since boot, the latest of which is `last_uptime`.
    fn boot_time(&mut self, parsed: &Parsed, last_uptime: u64) -> Ts {
        if let Some(b) = self.opts.boot_time {
            return b;
        }
        if let Some(b) = self.boot_from_oom_kill(parsed) {
            return b;
        }
        // The dump was taken after its last line: the end of the other inputs, else the file's
        // modification time, is the best stand-in for the time of that last line.
        let (end, why) = match (self.anchors, self.modified) {
            (Some((_, hi)), _) => (hi, "the end of the other inputs"),
            (None, Some(m)) => (m, "the file's modification time"),
            (None, None) => (Ts(last_uptime), "the Unix epoch"),
        };
        let boot = Ts(end.0.saturating_sub(last_uptime));
        self.note(format!(
            "times are seconds since boot: assumed the node booted at {boot}, so that its last line is at {why}; \
             pass --boot-time to set it"
        ));
        boot
    }

    /// A kernel OOM kill (in seconds since boot) of a container that a Pod of the same import
    /// reports as `OOMKilled` at a wall-clock time: the two are the same moment.
    fn boot_from_oom_kill(&mut self, parsed: &Parsed) -> Option<Ts> {
        let (id, uptime, finished) = parsed.looked_at().find_map(|p| {
            let (LineTime::SinceBoot(ns), Body::Kernel(Kernel::OomKill(o))) =
                (p.time, &p.event.body)
            else {
                return None;
            };
            let id = cgroup_container_id(o.cgroup())?;
            Some((id, ns, *self.oom_ends.get(id)?))
        })?;
        let boot = Ts(finished.0.saturating_sub(uptime));
        self.note(format!(
            "times are seconds since boot: the node booted at {boot}, pinned by the OOM kill of container {} \
             that its Pod reports as OOMKilled at {finished} (within the second)",
            &id[..12]
        ));
        Some(boot)
    }

    fn year(&mut self, month: u32, day: u32) -> i32 {
        if let Some(y) = self.opts.year {
            return y;
        }
        // The other inputs bracket the incident: the year nearest their middle. A modification
        // time (or now) comes after the log was written: the latest year not after it.
        let (reference, why, nearest) = match (self.anchors, self.modified) {
            (Some((lo, hi)), _) => (Ts(lo.0 / 2 + hi.0 / 2), "from the other inputs", true),
            (None, Some(m)) => (m, "from the file's modification time", false),
            (None, None) => (
                Ts::from_datetime(&chrono::Utc::now()),
                "the current year",
                false,
            ),
        };
        let r = reference.to_datetime().date_naive();
        let candidates = [r.year() - 1, r.year(), r.year() + 1]
            .into_iter()
            .filter_map(|y| Some((y, NaiveDate::from_ymd_opt(y, month, day)?)));
        let year = if nearest {
            candidates
                .min_by_key(|(_, d)| d.signed_duration_since(r).num_days().abs())
                .map_or(r.year(), |(y, _)| y)
        } else {
            candidates
                .filter(|(_, d)| *d <= r)
                .map(|(y, _)| y)
                .max()
                .unwrap_or(r.year() - 1)
        };
        self.note(format!(
            "times have no year: assumed {year} ({why}); pass --year to set it"
        ));
        year
    }

    fn date(&mut self) -> NaiveDate {
        if let Some(d) = self.opts.date {
            return d;
        }
        let (reference, why) = match (self.anchors, self.modified) {
            (Some((lo, _)), _) => (lo, "the first day of the other inputs"),
            (None, Some(m)) => (m, "the file's modification date"),
            (None, None) => (Ts(0), "no other date was known"),
        };
        let d = reference.to_datetime().date_naive();
        self.note(format!(
            "times have no date: assumed {d} ({why}); pass --date to set it"
        ));
        d
    }

    fn local(&mut self, date: NaiveDate, nanos_of_day: u64) -> Ts {
        let secs = (nanos_of_day / Ts::NANOS_PER_SEC) as i64;
        let naive: NaiveDateTime = date.and_hms_opt(0, 0, 0).unwrap_or_default()
            + chrono::Duration::seconds(secs)
            + chrono::Duration::nanoseconds((nanos_of_day % Ts::NANOS_PER_SEC) as i64);
        match self.opts.tz {
            Some(tz) => tz.from_local_datetime(&naive).earliest().map_or_else(
                || Ts::from_datetime(&naive.and_utc()),
                |d| Ts::from_datetime(&d),
            ),
            None => {
                self.note_once_utc();
                Ts::from_datetime(&naive.and_utc())
            }
        }
    }

    fn note_once_utc(&mut self) {
        let note = "local times were taken as UTC; pass --tz to give their zone".to_string();
        if !self.notes.iter().any(|n| n.ends_with(&note)) {
            self.note(note);
        }
    }

    fn note(&mut self, what: String) {
        self.notes.push(format!("{}: {what}", self.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places in memory: the events in time order and the notes.
    fn place(inputs: Vec<Placement>, opts: &ClockOptions) -> (Vec<Event>, Vec<String>) {
        let mut sorter = Sorter::new(None);
        let notes = super::place(inputs, opts, &Runs::default(), &mut sorter).unwrap();
        (sorter.into_memory(), notes)
    }
    use crate::event::{Log, LogOrigin, Source};

    fn log(time: LineTime) -> super::super::Pending {
        super::super::Pending {
            time,
            event: Event::new(Ts(0), "n", Source::Import, Log::new(LogOrigin::Kmsg, "x")),
        }
    }

    fn input(name: &str, times: &[LineTime]) -> Placement {
        let parsed = Parsed {
            events: times.iter().map(|&t| log(t)).collect(),
            ..Parsed::default()
        };
        Placement {
            name: name.into(),
            modified: None,
            parsed,
        }
    }

    #[test]
    fn syslog_year_comes_from_the_other_inputs() {
        let pod = input(
            "pod.json",
            &[LineTime::Absolute(
                Ts::parse_rfc3339("2024-11-10T14:00:00Z").unwrap(),
            )],
        );
        let sys = input(
            "kubelet.log",
            &[LineTime::NoYear {
                month: 11,
                day: 10,
                nanos_of_day: 14 * 3600 * Ts::NANOS_PER_SEC + 5,
            }],
        );
        let (events, notes) = place(vec![pod, sys], &ClockOptions::default());
        assert_eq!(events[1].ts.rfc3339(), "2024-11-10T14:00:00.000000005Z");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("assumed 2024 (from the other inputs)")),
            "{notes:?}"
        );
    }

    #[test]
    fn flags_win_and_unknown_times_follow_their_predecessor() {
        let opts = ClockOptions {
            boot_time: Ts::parse_rfc3339("2026-01-01T00:00:00Z"),
            tz: Some(chrono_tz::Europe::Berlin),
            year: Some(2025),
            ..Default::default()
        };
        let k = input(
            "dmesg",
            &[LineTime::SinceBoot(1_500_000_000), LineTime::Unknown],
        );
        let s = input(
            "syslog",
            &[LineTime::NoYear {
                month: 7,
                day: 1,
                nanos_of_day: 12 * 3600 * Ts::NANOS_PER_SEC,
            }],
        );
        let (events, notes) = place(vec![k, s], &opts);
        assert_eq!(events[0].ts.rfc3339(), "2025-07-01T10:00:00.000000000Z");
        assert_eq!(events[1].ts.rfc3339(), "2026-01-01T00:00:01.500000000Z");
        assert_eq!(events[2].ts, events[1].ts);
        let Body::Log(l) = &events[2].body else {
            panic!()
        };
        assert!(l.approximate_time);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn years_and_days_roll_over_and_impossible_dates_are_said() {
        let nod = |h: u64| h * 3600 * Ts::NANOS_PER_SEC;
        let syslog = input(
            "syslog",
            &[
                LineTime::NoYear {
                    month: 12,
                    day: 31,
                    nanos_of_day: nod(23),
                },
                LineTime::NoYear {
                    month: 1,
                    day: 1,
                    nanos_of_day: nod(0),
                },
                LineTime::NoYear {
                    month: 2,
                    day: 30,
                    nanos_of_day: nod(1),
                },
            ],
        );
        let bcc = input(
            "oomkill",
            &[
                LineTime::TimeOfDay {
                    nanos_of_day: nod(23),
                },
                LineTime::TimeOfDay {
                    nanos_of_day: nod(1),
                },
            ],
        );
        let opts = ClockOptions {
            year: Some(2023),
            date: NaiveDate::from_ymd_opt(2024, 2, 28),
            ..Default::default()
        };
        let (events, notes) = place(vec![syslog, bcc], &opts);
        let t: Vec<String> = events
            .iter()
            .map(|e| e.ts.rfc3339()[..13].to_string())
            .collect();
        assert_eq!(
            t,
            [
                "2023-12-31T23",
                "2024-01-01T00",
                "2024-01-01T00",
                "2024-02-28T23",
                "2024-02-29T01"
            ]
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("1 lines have dates that do not exist")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_modification_time_never_puts_a_log_in_the_future() {
        let mut syslog = input(
            "syslog",
            &[LineTime::NoYear {
                month: 3,
                day: 26,
                nanos_of_day: 0,
            }],
        );
        syslog.modified = Ts::parse_rfc3339("2026-11-26T10:00:00Z");
        let (events, _) = place(vec![syslog], &ClockOptions::default());
        assert_eq!(events[0].ts.rfc3339()[..10], *"2026-03-26");
        let mut syslog = input(
            "syslog",
            &[LineTime::NoYear {
                month: 12,
                day: 30,
                nanos_of_day: 0,
            }],
        );
        syslog.modified = Ts::parse_rfc3339("2026-01-02T10:00:00Z");
        let (events, _) = place(vec![syslog], &ClockOptions::default());
        assert_eq!(events[0].ts.rfc3339()[..10], *"2025-12-30");
    }
}
