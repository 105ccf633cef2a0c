//! Container logs for post-mortems: the kubelet's CRI files and docker's `json-file` files
//! (attributed from their path when it follows the kubelet's layout), and `kubectl logs` output —
//! plain, `--timestamps`, `--previous`, `--all-containers --prefix` — attributed by `--pod
//! NS/NAME [--container C]` when the text does not say whose it is.
//!
//! Lines without a time are left for [`plan_runs`], which puts them just before the end of
//! their container's run (or after its start, while it runs) as the Pod object of the same import
//! states it, and marks them approximate.

use std::collections::HashMap;
use std::path::Path;

use super::{LineTime, Location, Parsed};
use crate::event::{AppLog, AttrValue, Body, Event, Kube, ObjectKind, Source, Ts};
use crate::source::logs::{app_log, parse_line, Joiner, LogPath};

/// Whose logs a `kubectl logs` text holds, when the text does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    /// The lines are from the previous run of the container (`kubectl logs --previous`).
    pub previous: bool,
}

const MAX_LINE: usize = 64 << 10;

pub fn parse(text: &str, path: &Path, owner: Option<&Owner>, node: &str) -> Parsed {
    let mut out = Parsed::default();
    parse_into(text, path, owner, node, &mut out);
    out
}

/// [`parse`] into `out` (which may write its events to disk past a batch).
pub fn parse_into(text: &str, path: &Path, owner: Option<&Owner>, node: &str, out: &mut Parsed) {
    parse_lines(text.lines(), path, owner, node, out);
}

/// [`parse_into`] from lines as they are read (a big input is never held whole).
pub fn parse_lines<S: AsRef<str>>(
    lines: impl Iterator<Item = S>,
    path: &Path,
    owner: Option<&Owner>,
    node: &str,
    out: &mut Parsed,
) {
    let from_path = LogPath::parse(&path.to_string_lossy());
    let base = match (&from_path, owner) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(o)) => Some(LogPath {
            namespace: o.namespace.clone(),
            pod: o.pod.clone(),
            container: o.container.clone().unwrap_or_default(),
            ..LogPath::default()
        }),
        (None, None) => None,
    };
    if base.is_none() {
        out.warnings.push(
            "whose log this is cannot be told from the path or the text: pass --pod NS/NAME [--container C]".to_string(),
        );
    }
    let previous = from_path.is_none() && owner.is_some_and(|o| o.previous);
    let mut joiners: HashMap<String, Joiner> = HashMap::new();
    let mut untimed = 0usize;
    let mut dated = 0usize;
    // The time of the last line that stated one: the untimed lines after it (a stack trace under
    // its dated header) belong with it, not at the run's end.
    let mut last_time: Option<LineTime> = None;
    let mut carried = 0usize;
    for (i, raw) in lines.enumerate() {
        let raw = raw.as_ref();
        let line_no = Location::Line(i + 1);
        if raw.trim().is_empty() {
            continue;
        }
        let raw = &*super::text_time::strip_ansi(raw);
        // `--prefix`: `[pod/NAME/CONTAINER] text`.
        let (who, rest) = match raw.strip_prefix("[pod/").and_then(|r| r.split_once("] ")) {
            Some((who, rest)) => (Some(who), rest),
            None => (None, raw),
        };
        let mut attribution = base.clone().unwrap_or_default();
        if let Some(who) = who {
            if let Some((pod, container)) = who.split_once('/') {
                attribution.pod = pod.to_string();
                attribution.container = container.to_string();
            }
        }
        let resource = attribution.resource();
        let key = format!("{}/{}", attribution.pod, attribution.container);
        if let Some(line) = parse_line(rest) {
            if let Some(why) = super::implausible(line.ts) {
                out.reject(line_no, why);
                continue;
            }
            last_time = None;
            let stream = line.stream;
            let j = joiners.entry(key).or_insert_with(|| Joiner::new(MAX_LINE));
            if let Some(m) = j.push(line) {
                let l = app_log(m.text, Some(stream), &resource, false);
                out.push(LineTime::Absolute(m.ts), event(node, l));
            }
            continue;
        }
        // `kubectl logs --timestamps`: an RFC 3339 time, a space, the line.
        let timed = rest
            .split_once(' ')
            .and_then(|(t, text)| Some((Ts::parse_rfc3339(t)?, text)));
        // Else the time its own text states (Python, klog, syslog, ISO, epoch, JSON).
        let stated = match timed {
            None => super::text_time::line_time(rest),
            Some(_) => None,
        };
        if let Some(why) = timed.and_then(|(ts, _)| super::implausible(ts)) {
            out.reject(line_no, why);
            continue;
        }
        if let Some(why) = match stated {
            Some(LineTime::Absolute(ts)) => super::implausible(ts),
            _ => None,
        } {
            out.reject(line_no, why);
            continue;
        }
        match timed {
            Some((ts, text)) => {
                last_time = Some(LineTime::Absolute(ts));
                let l = app_log(text.to_string(), None, &resource, false);
                out.push(LineTime::Absolute(ts), event(node, l));
            }
            None if base.is_none() && who.is_none() => {
                out.reject(
                    line_no,
                    "a log line of unknown origin: pass --pod NS/NAME to say whose logs these are",
                );
            }
            None if stated.is_some() => {
                dated += 1;
                let lt = stated.unwrap_or(LineTime::Unknown);
                last_time = Some(lt);
                let l = app_log(rest.to_string(), None, &resource, false);
                out.push(lt, event(node, l));
            }
            None if last_time.is_some() => {
                carried += 1;
                let l = app_log(rest.to_string(), None, &resource, true);
                out.push(last_time.unwrap_or(LineTime::Unknown), event(node, l));
            }
            None => {
                untimed += 1;
                let mut l = app_log(rest.to_string(), None, &resource, true);
                if previous {
                    l.attributes.push(crate::event::Attribute::new(
                        "tapio.log.previous",
                        AttrValue::Bool(true),
                    ));
                }
                out.push(LineTime::Unknown, event(node, l));
            }
        }
    }
    for j in joiners.values_mut() {
        for m in j.flush() {
            let l = app_log(
                m.text,
                Some(m.stream),
                &base.clone().unwrap_or_default().resource(),
                false,
            );
            out.push(LineTime::Absolute(m.ts), event(node, l));
        }
    }
    if carried > 0 {
        out.warnings.push(format!(
            "{carried} lines without a time of their own (stack traces, continuations) take the time of the line before them, marked approximate"
        ));
    }
    if dated > 0 && untimed > 0 {
        out.warnings.push(format!(
            "{dated} lines without a kubectl timestamp are dated by the time their text states"
        ));
    }
    if untimed > 0 {
        out.warnings.push(format!(
            "{untimed} lines have no time (kubectl logs without --timestamps): they are placed by their container's {} in the Pod of this import, and marked approximate",
            if previous { "previous run" } else { "run" }
        ));
    }
}

fn event(node: &str, l: AppLog) -> Event {
    Event::new(Ts(0), node, Source::Import, l)
}

/// The container run that a log line without a time belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The container's previous run (`kubectl logs --previous`).
    pub previous: bool,
}

/// The run of a container log line (an application log), to place it when it has no time.
pub fn run_key(e: &Event) -> Option<RunKey> {
    let Body::AppLog(a) = &e.body else {
        return None;
    };
    let attr = |k| {
        a.resource_attr(k)
            .and_then(AttrValue::as_str)
            .unwrap_or("")
            .to_string()
    };
    Some(RunKey {
        namespace: attr("k8s.namespace.name"),
        pod: attr("k8s.pod.name"),
        container: attr("k8s.container.name"),
        previous: a
            .attributes
            .iter()
            .any(|x| x.key.as_str() == "tapio.log.previous"),
    })
}

/// Where the lines without times of one container run go, a microsecond apart in their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The `n` lines end just before the run ended.
    Before { end: Ts, n: u64 },
    /// The lines start just after the run started.
    After { start: Ts },
}

impl Rule {
    /// The time of the `k`-th line (0-based) of the run.
    pub fn at(self, k: u64) -> Ts {
        match self {
            Rule::Before { end, n } => Ts(end.0.saturating_sub(n.saturating_sub(k) * 1_000)),
            Rule::After { start } => Ts(start.0.saturating_add((k + 1) * 1_000)),
        }
    }

    /// The first and last times it gives to `n` lines.
    pub fn range(self, n: u64) -> (Ts, Ts) {
        (self.at(0), self.at(n.saturating_sub(1)))
    }
}

/// The placed runs: each with its rule and its line count.
#[derive(Clone, Debug, Default)]
pub struct Runs {
    pub rules: HashMap<RunKey, (Rule, u64)>,
}

/// Plans where the untimed lines of each run go (`lines`: each run with its line count), from
/// the Pods among `all_pods` (every input of the import). Returns what was assumed, one sentence
/// per container; a run whose Pod is absent or states no times has no rule.
pub fn plan_runs(lines: &[(RunKey, u64)], all_pods: &[&Event]) -> (Runs, Vec<String>) {
    let mut said = Vec::new();
    let mut runs = Runs::default();
    for (key, n) in lines {
        let RunKey {
            namespace: ns,
            pod,
            container,
            previous,
        } = key;
        let status = all_pods.iter().find_map(|e| match &e.body {
            Body::Kube(Kube::Object(o))
                if o.kind == ObjectKind::Pod && &o.namespace == ns && &o.name == pod =>
            {
                o.json.parse().ok()
            }
            _ => None,
        });
        let Some(status) = status else {
            said.push(format!(
                "no Pod {ns}/{pod} in this import: its {n} lines without times stay where the file's time puts them"
            ));
            continue;
        };
        let status: serde_json::Value = status;
        let statuses = status["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let cs = statuses
            .iter()
            .find(|c| container.is_empty() || c["name"].as_str() == Some(container.as_str()))
            .cloned()
            .unwrap_or_default();
        let t = |v: &serde_json::Value| v.as_str().and_then(Ts::parse_rfc3339);
        // A container waiting to start again (CrashLoopBackOff) has no run of its own yet:
        // `kubectl logs` shows its last terminated run, as `--previous` does.
        let waiting = !cs["state"]["waiting"].is_null() && !cs["lastState"]["terminated"].is_null();
        let (state, run) = if *previous {
            (&cs["lastState"], "previous run")
        } else if waiting {
            (&cs["lastState"], "last run (it is waiting to restart)")
        } else {
            (&cs["state"], "run")
        };
        let (rule, how) = if let Some(end) = t(&state["terminated"]["finishedAt"]) {
            (
                Rule::Before { end, n: *n },
                format!("just before its {run} ended at {end}"),
            )
        } else if let Some(start) =
            t(&state["running"]["startedAt"]).or_else(|| t(&state["terminated"]["startedAt"]))
        {
            (
                Rule::After { start },
                format!("just after its {run} started at {start}"),
            )
        } else {
            said.push(format!(
                "Pod {ns}/{pod} states no times for container {container}: its {n} lines without times stay where the file's time puts them"
            ));
            continue;
        };
        runs.rules.insert(key.clone(), (rule, *n));
        said.push(format!(
            "{n} log lines of {ns}/{pod} {container} without times placed {how} (approximate)"
        ));
    }
    said.sort();
    (runs, said)
}

#[cfg(test)]
mod plausible_tests {
    use super::*;

    #[test]
    fn a_line_dated_1754_or_next_century_is_rejected_with_its_line_and_moves_nothing() {
        let text = "2024-05-01T10:00:00.000000000Z stdout F first\n\
                    1754-08-30T22:43:41.128654848Z stdout F null time\n\
                    2024-05-01T10:00:01.000000000Z stdout F second\n\
                    2096-01-01T00:00:00.000000000Z stdout F a flipped bit\n\
                    1754-08-30T22:43:41Z kubectl logs --timestamps, null time\n";
        let p = parse(
            text,
            Path::new("/var/log/pods/shop_api-1_uid/api/0.log"),
            None,
            "",
        );
        let lines: Vec<(Location, bool)> = p
            .rejected
            .iter()
            .map(|r| {
                let why = r.reason.contains("before 2000") || r.reason.contains("year from now");
                (r.at, why)
            })
            .collect();
        assert_eq!(
            lines,
            [
                (Location::Line(2), true),
                (Location::Line(4), true),
                (Location::Line(5), true)
            ]
        );
        assert_eq!(p.events.len(), 2);
        for e in &p.events {
            assert!(matches!(e.time, LineTime::Absolute(ts) if ts.0 > 1_700_000_000_000_000_000));
        }
    }
}
