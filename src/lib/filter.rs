//! Event filters: the `--kind`, `--source`, `--node`, `--namespace`, `--pod`, `--trace-id`,
//! `--since` and `--until` of `tapio cat` and the commands after it.
//!
//! A filter is plain data built by the binary from its flags. Kernel events do not name their
//! pod; they carry a memory cgroup path whose `pod<uid>` part does, so a `--pod` filter matches
//! kernel events through the uids of the pods of that name seen in the same captures
//! ([`Filter::learn_pod`]).

use std::collections::{BTreeSet, HashSet};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::capture::index::{self, Set, Want};
use crate::event::{Body, Event, Kernel, Kind, Kube, Name, ObjectKind, Source, TraceId, Ts};

/// Which events to keep. Empty sets and `None`s keep everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Ordered sets, not hashed: a handful of kinds at most, looked up for every event read.
    pub kinds: BTreeSet<Kind>,
    pub sources: BTreeSet<Source>,
    pub node: Option<String>,
    pub namespace: Option<String>,
    /// `namespace/name` or just `name`.
    pub pod: Option<String>,
    pub trace_id: Option<TraceId>,
    /// Only spans and application logs of this service (`service.name`).
    pub service: Option<String>,
    pub since: Option<TimeSpec>,
    pub until: Option<TimeSpec>,
    /// The uids of the pods that `pod` names, for kernel events (see [`Filter::learn_pod`]).
    pub pod_uids: HashSet<String>,
}

/// A point in time given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    Absolute(Ts),
    /// Nanoseconds after the start of the capture (`+5m`).
    AfterStart(u64),
    /// A UTC time of day on the capture's first day (`10:02`, `10:02:11.5`).
    TimeOfDay(NaiveTime),
}

impl TimeSpec {
    /// Parses `2024-05-01T10:02:11Z`, `2024-05-01 10:02:11`, `10:02`, `10:02:11.250`, `+90s`, `+5m`, `+1h30m`.
    pub fn parse(s: &str) -> Result<TimeSpec, String> {
        let s = s.trim();
        if let Some(rel) = s.strip_prefix('+') {
            return parse_duration(rel).map(TimeSpec::AfterStart);
        }
        if let Some(t) = Ts::parse_rfc3339(s) {
            return Ok(TimeSpec::Absolute(t));
        }
        for f in [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S%.f",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
                return Ok(TimeSpec::Absolute(Ts::from_datetime(&dt.and_utc())));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(TimeSpec::Absolute(Ts::from_datetime(
                &d.and_time(NaiveTime::MIN).and_utc(),
            )));
        }
        for f in ["%H:%M:%S%.f", "%H:%M"] {
            if let Ok(t) = NaiveTime::parse_from_str(s, f) {
                return Ok(TimeSpec::TimeOfDay(t));
            }
        }
        Err(format!(
            "cannot read time {s:?}: use RFC 3339 (2024-05-01T10:02:11Z), \"2024-05-01 10:02\", a UTC time of day \
             (10:02:11) or an offset from the capture start (+5m, +90s, +1h30m)"
        ))
    }

    /// The instant, given the capture's first event.
    pub fn resolve(self, start: Ts) -> Ts {
        match self {
            TimeSpec::Absolute(t) => t,
            TimeSpec::AfterStart(ns) => Ts(start.0.saturating_add(ns)),
            TimeSpec::TimeOfDay(t) => {
                let day = start.to_datetime().date_naive();
                Ts::from_datetime(&day.and_time(t).and_utc())
            }
        }
    }
}

/// `90s`, `5m`, `1h30m`, `250ms`, `2d` → nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("cannot read duration {s:?}: use units ms, s, m, h, d (90s, 5m, 1h30m)");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            _ => return Err(bad()),
        };
        total = total.saturating_add((n * unit) as u64);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

impl Filter {
    /// Whether the filter needs to know pod uids (a `--pod` filter, with kernel events possible).
    pub fn wants_pod_uids(&self) -> bool {
        self.pod.is_some()
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|k| k.layer() == crate::knowledge::Layer::Kernel))
    }

    /// Remembers the uid of a Pod object that `--pod` names.
    pub fn learn_pod(&mut self, e: &Event) {
        if let (Some(_), Body::Kube(Kube::Object(o))) = (&self.pod, &e.body) {
            if o.kind == ObjectKind::Pod
                && !o.uid.is_empty()
                && self.pod_matches(&o.namespace, &o.name)
            {
                self.pod_uids.insert(o.uid.clone());
            }
        }
    }

    fn pod_matches(&self, ns: &str, name: &str) -> bool {
        match self.pod.as_deref() {
            None => true,
            Some(want) => match want.split_once('/') {
                Some((wns, wname)) => wns == ns && wname == name,
                None => want == name,
            },
        }
    }

    /// The blocks of the index that can hold an event that passes, with `since`/`until` already
    /// resolved. With `--pod`, kernel events are found through the uids learnt so far.
    pub fn want(&self, since: Option<Ts>, until: Option<Ts>) -> Want {
        let mut want = Want {
            from: since,
            to: until,
            kinds: self.kinds.iter().copied().collect(),
            ..Want::default()
        };
        if let Some(t) = &self.trace_id {
            want.traces.push(index::key(Set::Trace, &t.0));
        }
        if let Some(n) = &self.node {
            want.nodes.push(index::key(Set::Node, n.as_bytes()));
        }
        if let Some(s) = &self.service {
            want.services.push(index::key(Set::Service, s.as_bytes()));
        }
        match (&self.pod, &self.namespace) {
            (Some(pod), _) => {
                want.place(&format!("pod:{pod}"));
                for uid in &self.pod_uids {
                    want.place(&format!("uid:{uid}"));
                }
            }
            (None, Some(ns)) => want.place(&format!("ns:{ns}")),
            (None, None) => {}
        }
        want
    }

    /// The blocks that can hold the Pod objects `--pod` names (to learn their uids).
    pub fn want_pods(&self) -> Option<Want> {
        let pod = self.pod.as_ref()?;
        let mut want = Want {
            kinds: [Kind::K8sObject].into(),
            ..Want::default()
        };
        want.place(&format!("pod:{pod}"));
        Some(want)
    }

    /// Whether `e` passes, with `since`/`until` already resolved.
    pub fn matches(&self, e: &Event, since: Option<Ts>, until: Option<Ts>) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind()) {
            return false;
        }
        if !self.sources.is_empty() && !self.sources.contains(&e.source) {
            return false;
        }
        if since.is_some_and(|t| e.ts < t) || until.is_some_and(|t| e.ts > t) {
            return false;
        }
        if let Some(node) = &self.node {
            if *e.node != **node {
                return false;
            }
        }
        if let Some(want) = &self.trace_id {
            if trace_of(e) != Some(*want) {
                return false;
            }
        }
        if let Some(want) = &self.service {
            let service = match &e.body {
                Body::Span(s) => Some(&s.service),
                Body::AppLog(a) => Some(&a.service),
                _ => None,
            };
            if service.is_none_or(|s| **s != **want) {
                return false;
            }
        }
        if self.namespace.is_none() && self.pod.is_none() {
            return true;
        }
        match place_of(e) {
            Place::Pod { ns, name } => {
                self.namespace.as_deref().is_none_or(|w| w == ns) && self.pod_matches(ns, name)
            }
            Place::Namespace(ns) => {
                self.pod.is_none() && self.namespace.as_deref().is_none_or(|w| w == ns)
            }
            Place::Cgroup(path) => {
                self.pod.is_some() && self.pod_uids.iter().any(|uid| cgroup_names_pod(path, uid))
            }
            Place::Nowhere => false,
        }
    }
}

/// The keys of the block index that an event names, for every set but nodes (the caller keys
/// `e.node`) and cgroup paths (see [`cgroup_of`]): what [`Filter::matches`] looks at, so that a
/// block whose keys do not match holds no event that matches.
pub fn index_keys(e: &Event, out: &mut impl FnMut(Set, &[&[u8]])) {
    if let Some(t) = trace_of(e) {
        out(Set::Trace, &[&t.0]);
    }
    match &e.body {
        Body::Span(s) => out(Set::Service, &[s.service.as_bytes()]),
        Body::AppLog(a) => out(Set::Service, &[a.service.as_bytes()]),
        _ => {}
    }
    match place_of(e) {
        Place::Pod { ns, name } => {
            let (ns, name) = (ns.as_bytes(), name.as_bytes());
            out(Set::Place, &[b"pod:", ns, b"/", name]);
            out(Set::Place, &[b"pod:", name]);
            out(Set::Place, &[b"ns:", ns]);
        }
        Place::Namespace(ns) => out(Set::Place, &[b"ns:", ns.as_bytes()]),
        Place::Cgroup(_) | Place::Nowhere => {}
    }
}

/// The cgroup path of a kernel event, whose pod uid the index keys as `uid:<uid>`.
pub fn cgroup_of(e: &Event) -> Option<&Name> {
    match &e.body {
        Body::Kernel(Kernel::OomKill(o)) => Some(o.cgroup()),
        Body::Kernel(Kernel::Exec(x)) => Some(&x.cgroup),
        Body::Kernel(Kernel::Exit(x)) => Some(&x.cgroup),
        Body::Kernel(Kernel::Task(t)) => Some(&t.cgroup),
        Body::Kernel(Kernel::Pressure(p)) => Some(&p.cgroup),
        Body::Kernel(Kernel::CpuThrottle(t)) => Some(&t.cgroup),
        _ => None,
    }
}

/// The trace an event belongs to.
fn trace_of(e: &Event) -> Option<TraceId> {
    match &e.body {
        Body::Span(s) => Some(s.trace_id),
        Body::Log(l) => l.trace_id,
        Body::AppLog(a) => a.log.trace_id,
        _ => None,
    }
}

enum Place<'a> {
    Pod { ns: &'a str, name: &'a str },
    Namespace(&'a str),
    Cgroup(&'a str),
    Nowhere,
}

/// Where in the cluster an event says it is.
fn place_of(e: &Event) -> Place<'_> {
    match &e.body {
        Body::Kube(Kube::Object(o)) if o.kind == ObjectKind::Pod => Place::Pod {
            ns: &o.namespace,
            name: &o.name,
        },
        Body::Kube(Kube::Object(o)) if !o.namespace.is_empty() => Place::Namespace(&o.namespace),
        Body::Kube(Kube::Event(k)) if k.involved.kind == "Pod" => Place::Pod {
            ns: &k.involved.namespace,
            name: &k.involved.name,
        },
        Body::Kube(Kube::Event(k)) => Place::Namespace(&k.namespace),
        Body::Span(s) => match s.pod() {
            Some((ns, name)) => Place::Pod { ns, name },
            None => Place::Nowhere,
        },
        Body::AppLog(a) => match a.pod() {
            Some((ns, name)) => Place::Pod { ns, name },
            None => Place::Nowhere,
        },
        _ => match cgroup_of(e) {
            Some(c) => Place::Cgroup(c),
            None => Place::Nowhere,
        },
    }
}

/// Whether a cgroup path names the pod with this uid, in the cgroupfs (`pod<uid>`) or the systemd
/// (`pod<uid with _>.slice`) layout.
pub fn cgroup_names_pod(path: &str, uid: &str) -> bool {
    crate::topology::pod_uid_in_cgroup(path).is_some_and(|u| u == uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_specs_and_durations_parse() {
        let start = Ts::parse_rfc3339("2024-05-01T09:00:00Z").unwrap();
        assert_eq!(
            TimeSpec::parse("+1h30m").unwrap().resolve(start).rfc3339(),
            "2024-05-01T10:30:00.000000000Z"
        );
        assert_eq!(
            TimeSpec::parse("10:02").unwrap().resolve(start).rfc3339(),
            "2024-05-01T10:02:00.000000000Z"
        );
        assert_eq!(
            TimeSpec::parse("2024-05-02 00:00:01.5")
                .unwrap()
                .resolve(start)
                .rfc3339(),
            "2024-05-02T00:00:01.500000000Z"
        );
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert!(TimeSpec::parse("yesterday").unwrap_err().contains("+5m"));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn cgroup_paths_name_pods_in_both_layouts() {
        let uid = "fbdfe8e3-1c87-4ff2-907c-b2ec8e25d012";
        assert!(cgroup_names_pod(
            "/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012/ef80",
            uid
        ));
        assert!(cgroup_names_pod(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podfbdfe8e3_1c87_4ff2_907c_b2ec8e25d012.slice/cri-containerd-ef80.scope",
            uid
        ));
        assert!(!cgroup_names_pod("/kubepods/burstable/podother/ef80", uid));
    }
}
