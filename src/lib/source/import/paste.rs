//! What people paste into tickets: `kubectl describe` output (pods, nodes, deployments,
//! replicasets, jobs, persistent volume claims; several in one file) and `kubectl get` tables
//! (`pods`, `nodes`, `events`; default and `-o wide`, `-A`), read back into the objects and Events
//! they show, so that the pipeline reads them as it reads `kubectl get -o json`.
//!
//! The text states some times outright (a pod's `Start Time`, a container's `Started`/`Finished`,
//! a node condition's `LastTransitionTime`) and others only as ages (`AGE 5m`, `2m (x5 over 10m)`):
//! ages are counted back from `now` — `--now` when given, else the file's modification time, said
//! as an assumption. The layouts are kubectl's (`pkg/describe/describe.go`, `printers/tablegenerator`):
//! describe's `Key:  value` lines with two-space indented sections and its Events table
//! (`Type Reason Age From Message`, and before Kubernetes 1.14 `FirstSeen LastSeen Count From
//! SubObjectPath Type Reason Message`); get's columns aligned under their header.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::{LineTime, Location, Parsed};
use crate::event::{Event, ObjectAction, ObjectKind, Source, Ts};

/// When the text was captured, and whether that was assumed.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub ts: Ts,
    /// `--now` was given; else it is the file's modification time.
    pub given: bool,
}

/// Whether a text is `kubectl describe` output.
pub fn is_describe(text: &str) -> bool {
    let lines: Vec<&str> = meaningful(text).take(40).map(str::trim_start).collect();
    let described = lines.first().is_some_and(|l| l.starts_with("Name:"))
        && lines.iter().any(|l| {
            ["Namespace:", "Labels:", "Annotations:", "Roles:"]
                .iter()
                .any(|k| l.starts_with(k))
        });
    // An Events section pasted alone.
    let events = lines.first().is_some_and(|l| *l == "Events:")
        && lines
            .get(1)
            .is_some_and(|l| l.starts_with("Type") || l.starts_with("FirstSeen"));
    described || events || (has_command(text) && starts_within(text, |l| l.starts_with("Name:")))
}

/// Whether a text is a `kubectl get` table.
pub fn is_table(text: &str) -> bool {
    meaningful(text)
        .next()
        .is_some_and(|l| table_kind(l).is_some())
        || (has_command(text) && starts_within(text, |l| table_kind(l).is_some()))
}

/// A `kubectl get` table header among the first lines (a report that quotes one).
pub(crate) fn table_within(text: &str) -> bool {
    starts_within(text, |l| table_kind(l).is_some())
}

/// A kubectl command among the first lines: what follows it is its output.
pub(crate) fn has_command(text: &str) -> bool {
    text.lines().take(60).any(|l| command(l).is_some())
}

/// Whether a line within the first ones begins a describe or a table.
fn starts_within(text: &str, start: impl Fn(&str) -> bool) -> bool {
    text.lines()
        .take(60)
        .any(|l| start(l.trim_end_matches('\r')))
}

/// An all-uppercase line of two or more columns apart by two spaces: a table header.
fn looks_like_header(line: &str) -> bool {
    let cols = columns(line);
    cols.len() >= 2
        && line.chars().any(|c| c.is_ascii_uppercase())
        && !line.chars().any(|c| c.is_ascii_lowercase())
        && cols.iter().all(|(_, n)| {
            n.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || " -_()/.%".contains(c))
        })
}

/// Lines after any leading shell prompt or command (`$ kubectl describe pod x`).
fn meaningful(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| l.trim().is_empty() || command(l).is_some())
}

/// `$ kubectl describe pod cart -n shop` → the words after `kubectl`.
fn command(line: &str) -> Option<Vec<&str>> {
    // Whatever prompt precedes it (`$ `, `[user@host dir]$ `, `D:\dir>`, `❯ `, `sudo `): the
    // word `kubectl` (or the usual alias `k`) followed by one of its verbs.
    const VERBS: [&str; 9] = [
        "get",
        "describe",
        "logs",
        "top",
        "events",
        "rollout",
        "explain",
        "-n",
        "--namespace",
    ];
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().enumerate().position(|(i, w)| {
        let w = w.rsplit(['>', '/', '\\']).next().unwrap_or(w);
        let w = w
            .strip_suffix(".exe")
            .or(w.strip_suffix(".sh"))
            .unwrap_or(w);
        (w == "kubectl" || w == "k" || w == "oc")
            && words
                .get(i + 1)
                .is_some_and(|v| VERBS.contains(v) || v.starts_with("--"))
    })?;
    Some(words[at + 1..].to_vec())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Pods,
    Nodes,
    Events,
}

fn table_kind(header: &str) -> Option<Table> {
    let cols = columns(header);
    let names: Vec<&str> = cols.iter().map(|(_, n)| n.as_str()).collect();
    let upper = header.chars().all(|c| !c.is_ascii_lowercase());
    if !upper || names.len() < 3 {
        return None;
    }
    let has = |n: &str| names.contains(&n);
    if has("READY") && has("STATUS") && has("RESTARTS") {
        Some(Table::Pods)
    } else if has("STATUS")
        && (has("ROLES") || has("VERSION") || names == ["NAME", "STATUS", "AGE"])
        && !has("VOLUME")
    {
        // Before 1.8 there was no ROLES column.
        Some(Table::Nodes)
    } else if has("REASON") && (has("OBJECT") || has("KIND") || has("NAME")) && has("MESSAGE") {
        Some(Table::Events)
    } else {
        None
    }
}

/// A header's columns: (start offset in characters, name). Names may hold one space (`LAST SEEN`,
/// `NOMINATED NODE`); columns are apart by two spaces or more.
fn columns(header: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = header.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() {
            let gap = chars[i..]
                .iter()
                .take_while(|c| **c == ' ' || **c == '\t')
                .count();
            if gap >= 2 || (gap >= 1 && chars[i] == '\t') || (gap > 0 && i + gap >= chars.len()) {
                break;
            }
            i += gap.max(1);
        }
        out.push((
            start,
            chars[start..i]
                .iter()
                .collect::<String>()
                .trim()
                .to_string(),
        ));
    }
    out
}

/// A row's cells under a header's columns; the last column takes the rest of the line.
fn cells(row: &str, cols: &[(usize, String)]) -> Vec<String> {
    let chars: Vec<char> = row.chars().collect();
    let mut out = Vec::with_capacity(cols.len());
    for (k, (start, _)) in cols.iter().enumerate() {
        // A cell begins at its column, or a little before when the one before overflowed.
        let from = (*start).min(chars.len());
        let to = cols
            .get(k + 1)
            .map_or(chars.len(), |(s, _)| (*s).min(chars.len()));
        out.push(
            chars[from..to]
                .iter()
                .collect::<String>()
                .trim()
                .to_string(),
        );
    }
    out
}

/// `5m10s`, `3d2h`, `45s`, `2y`, `10m (x5 over 1h)` → nanoseconds (the first age).
pub fn age(text: &str) -> Option<u64> {
    static PART: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(\d+)([ydhms])").expect("static regex"));
    let t = text.trim();
    let first = t.split_whitespace().next()?;
    if first.starts_with('<') {
        return None; // <unknown>, <invalid>
    }
    let mut total = 0u64;
    let mut matched = 0;
    for c in PART.captures_iter(first) {
        let n: u64 = c[1].parse().ok()?;
        let unit = match &c[2] {
            "y" => 365 * 86400,
            "d" => 86400,
            "h" => 3600,
            "m" => 60,
            _ => 1,
        };
        total = total.saturating_add(n.saturating_mul(unit));
        matched += c[0].len();
    }
    (matched == first.len() && matched > 0).then(|| total.saturating_mul(Ts::NANOS_PER_SEC))
}

/// `2m (x5 over 10m)` → (5, the age of the first).
fn series(text: &str) -> Option<(u64, u64)> {
    static SERIES: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\(x(\d+) over ([0-9ydhms]+)\)").expect("static regex"));
    let c = SERIES.captures(text)?;
    Some((c[1].parse().ok()?, age(&c[2])?))
}

fn ago(now: Now, nanos: u64) -> Ts {
    Ts(now.ts.0.saturating_sub(nanos))
}

/// `Mon, 02 Jan 2006 15:04:05 -0700` (describe's times) or RFC 3339.
fn describe_time(s: &str) -> Option<Ts> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|d| Ts::from_datetime(&d.with_timezone(&chrono::Utc)))
        .or_else(|| Ts::parse_rfc3339(s))
}

fn rfc(ts: Ts) -> String {
    ts.rfc3339()
}

/// Reads what a paste holds, `kubectl get` tables and `kubectl describe` output in any order,
/// each part by its own reader; the commands between them say what follows.
pub fn parse(text: &str, now: Now, node: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // A paste indented as a whole (a quote, a list item): dedented.
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or_else(|| l.trim_start()))
        .collect();
    let lines: Vec<&str> = dedented;
    // Parts start at a command line, a table header, or a describe's `Name:` after something
    // that is not a describe.
    let mut parts: Vec<(usize, bool)> = Vec::new(); // (first line, is a describe)
    let mut in_describe = false;
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim_end_matches('\r');
        if command(l).is_some() {
            // `kubectl describe …` then its output: one part, a describe.
            let next = lines[i + 1..].iter().find(|x| !x.trim().is_empty());
            let describes = next.is_some_and(|x| x.starts_with("Name:"));
            parts.push((i, describes));
            in_describe = describes;
        } else if l.starts_with("Name:") && !in_describe {
            parts.push((i, true));
            in_describe = true;
        } else if !in_describe && (table_kind(l).is_some() || looks_like_header(l)) {
            if parts.last().is_none_or(|(at, d)| {
                *d || lines[*at..i]
                    .iter()
                    .any(|x| table_kind(x).is_some() || looks_like_header(x))
            }) {
                parts.push((i, false));
            }
        } else if in_describe && (table_kind(l).is_some() && !l.starts_with(' ')) {
            parts.push((i, false));
            in_describe = false;
        }
    }
    if parts.first().is_none_or(|(at, _)| *at > 0) {
        parts.insert(0, (0, false));
    }
    let mut out = Parsed::default();
    for (k, &(from, describe)) in parts.iter().enumerate() {
        let to = parts.get(k + 1).map_or(lines.len(), |p| p.0);
        let block = lines[from..to].join("\n");
        if block.trim().is_empty() {
            continue;
        }
        // A command line alone before its output starts the part that follows.
        let only_command = lines[from..to]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .all(|l| command(l).is_some());
        if only_command {
            continue;
        }
        // The output of a command tapio does not read (`kubectl config current-context`,
        // `-o jsonpath`, `kubectl top`): said once, skipped.
        let first_output = lines[from..to]
            .iter()
            .position(|l| !l.trim().is_empty() && command(l).is_none())
            .map(|k| from + k);
        if let (false, Some(at)) = (describe, first_output) {
            let l = lines[at].trim_end_matches('\r');
            if l.starts_with("No resources found") {
                continue;
            }
            if table_kind(l).is_none() && !looks_like_header(l) {
                let what = lines[from..at]
                    .iter()
                    .rev()
                    .find_map(|c| command(c).map(|w| w.join(" ")))
                    .map_or(String::new(), |c| format!(" (of `kubectl {c}`)"));
                out.reject(
                    Location::Line(at + 1),
                    format!("output tapio does not read{what}: skipped to the next command"),
                );
                continue;
            }
        }
        let mut p = if describe {
            parse_describe(&block, now, node)
        } else {
            parse_table(&block, now, node)
        };
        for r in &mut p.rejected {
            if let Location::Line(n) = &mut r.at {
                *n += from;
            }
        }
        out.events.append(&mut p.events);
        out.rejected.append(&mut p.rejected);
        for w in p.warnings {
            if !out.warnings.contains(&w) {
                out.warnings.push(w);
            }
        }
    }
    out
}

/// Reads `kubectl describe` output: each object, and its Events.
pub fn parse_describe(text: &str, now: Now, node: &str) -> Parsed {
    let mut out = Parsed::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.lines().any(|l| l.starts_with("Name:")) {
        let events = text.lines().any(|l| l.trim() == "Events:");
        out.reject(
            Location::Line(1),
            if events {
                "an Events table without the object it is about (paste the whole kubectl describe, from its Name: line)"
            } else {
                "no kubectl describe output here: no object starts with `Name:` in the first column"
            },
        );
        return out;
    }
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    // Objects start at `Name:` in the first column.
    let mut starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("Name:"))
        .map(|(i, _)| i)
        .collect();
    starts.push(lines.len());
    let mut hinted: Option<String> = None;
    for l in lines.iter().take(starts[0]) {
        if let Some(words) = command(l) {
            hinted = words.get(1).map(|w| w.to_string());
        }
    }
    let mut ages = false;
    for w in starts.windows(2) {
        let block = &lines[w[0]..w[1]];
        // A command line between two describes names the next one's kind.
        let next_hint = block
            .iter()
            .rev()
            .find_map(|l| command(l))
            .and_then(|c| c.get(1).map(|s| s.to_string()));
        let d = Describe::read(block, w[0]);
        let kind = d.kind(hinted.as_deref());
        hinted = next_hint;
        let Some(kind) = kind else {
            out.reject(
                Location::Line(w[0] + 1),
                "a kubectl describe of a kind tapio does not read (it reads pods, nodes, deployments, replicasets, jobs and persistent volume claims)",
            );
            continue;
        };
        let object = d.object(kind, now);
        let time = crate::source::import::kube::latest_time(&object);
        let obj_node = match kind {
            "Pod" => object["spec"]["nodeName"]
                .as_str()
                .unwrap_or(node)
                .to_string(),
            "Node" => d.name.clone(),
            _ => node.to_string(),
        };
        let Value::Object(map) = object else { continue };
        match super::kube::body(map, ObjectAction::Seen) {
            Ok(b) => out.push(
                time.map_or(LineTime::Unknown, LineTime::Absolute),
                Event::new(Ts(0), obj_node.as_str(), Source::Import, b.kube),
            ),
            Err(reason) => out.reject(Location::Line(w[0] + 1), reason),
        }
        for (at, ev) in d.events(kind, now) {
            ages = true;
            let map = match ev {
                Ok(Value::Object(map)) => map,
                Ok(_) => continue,
                Err(reason) => {
                    out.reject(Location::Line(at + 1), reason);
                    continue;
                }
            };
            match super::kube::body(map, ObjectAction::Seen) {
                Ok(b) => {
                    let t = b.time.map_or(LineTime::Unknown, LineTime::Absolute);
                    out.push(
                        t,
                        Event::new(Ts(0), obj_node.as_str(), Source::Import, b.kube),
                    );
                }
                Err(reason) => out.reject(Location::Line(at + 1), reason),
            }
        }
    }
    if ages {
        out.warnings.push(age_note(now));
    }
    out
}

fn age_note(now: Now) -> String {
    if now.given {
        format!(
            "ages (AGE, \"2m ago\", Events' Age) are counted back from --now {}",
            now.ts.rfc3339()
        )
    } else {
        format!(
            "ages (AGE, \"2m ago\", Events' Age) are counted back from the file's modification time {}, assumed to be when it was captured (pass --now to say when)",
            now.ts.rfc3339()
        )
    }
}

/// One describe block: its top-level fields, its sections (indented lines under a `Key:` with no
/// value), in order.
struct Describe<'a> {
    name: String,
    fields: Vec<(&'a str, String)>,
    sections: Vec<(&'a str, Vec<&'a str>)>,
    /// Line number of the block's first line in the file (0-based).
    first_line: usize,
}

impl<'a> Describe<'a> {
    fn read(block: &[&'a str], first_line: usize) -> Describe<'a> {
        let mut fields = Vec::new();
        let mut sections: Vec<(&'a str, Vec<&'a str>)> = Vec::new();
        let mut current: Option<usize> = None;
        let mut last_field: Option<usize> = None;
        for l in block {
            if l.trim().is_empty() {
                continue;
            }
            let indented = l.starts_with(' ') || l.starts_with('\t');
            if !indented {
                if let Some((k, v)) = l.split_once(':') {
                    let v = v.trim();
                    if v.is_empty() {
                        sections.push((k.trim(), Vec::new()));
                        current = Some(sections.len() - 1);
                        last_field = None;
                    } else {
                        fields.push((k.trim(), v.to_string()));
                        last_field = Some(fields.len() - 1);
                        current = None;
                    }
                    continue;
                }
            }
            match (current, last_field) {
                (Some(s), _) => sections[s].1.push(l),
                // A multi-line value (`Labels:  app=cart` then `         pod-template-hash=…`).
                (None, Some(f)) if indented => {
                    let v = &mut fields[f].1;
                    v.push('\n');
                    v.push_str(l.trim());
                }
                _ => {}
            }
        }
        let name = fields
            .iter()
            .find(|(k, _)| *k == "Name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Describe {
            name,
            fields,
            sections,
            first_line,
        }
    }

    fn field(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| *v != "<none>" && !v.is_empty())
    }

    fn section(&self, k: &str) -> Option<&[&'a str]> {
        self.sections
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_slice())
    }

    fn kind(&self, hint: Option<&str>) -> Option<&'static str> {
        let by_hint = hint.and_then(|h| match h.to_ascii_lowercase().trim_end_matches('s') {
            "pod" | "po" => Some("Pod"),
            "node" | "no" => Some("Node"),
            "deployment" | "deploy" => Some("Deployment"),
            "replicaset" | "r" => Some("ReplicaSet"),
            "job" => Some("Job"),
            "persistentvolumeclaim" | "pvc" => Some("PersistentVolumeClaim"),
            _ => None,
        });
        if by_hint.is_some() {
            return by_hint;
        }
        let has = |k: &str| self.field(k).is_some() || self.section(k).is_some();
        let field_has = |k: &str| self.fields.iter().any(|(key, _)| *key == k);
        // Kinds whose describe resembles one read here: a StatefulSet (`Update Strategy`), a
        // CronJob (`Schedule`, its job template's `Parallelism`), a PersistentVolume (`Reclaim
        // Policy`, no namespace). Not read.
        if field_has("Update Strategy")
            || field_has("Schedule")
            || (field_has("Reclaim Policy") && !field_has("Namespace"))
        {
            return None;
        }
        if has("Containers") && (field_has("Node") || field_has("Start Time") || field_has("IP")) {
            Some("Pod")
        } else if field_has("Roles") || has("System Info") || field_has("Taints") {
            Some("Node")
        } else if field_has("StrategyType") || field_has("NewReplicaSet") {
            Some("Deployment")
        } else if field_has("Completions") || field_has("Parallelism") {
            Some("Job")
        } else if field_has("Pods Status") && field_has("Replicas") {
            Some("ReplicaSet")
        } else if field_has("StorageClass")
            && (field_has("Access Modes") || field_has("VolumeMode") || field_has("Used By"))
        {
            Some("PersistentVolumeClaim")
        } else {
            None
        }
    }

    fn metadata(&self, kind: &str, now: Now) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        if let Some(ns) = self.field("Namespace") {
            m.insert("namespace".into(), ns.into());
        }
        m.insert(
            "uid".into(),
            format!(
                "describe:{kind}/{}/{}",
                self.field("Namespace").unwrap_or(""),
                self.name
            )
            .into(),
        );
        let labels = pairs(self.field("Labels").unwrap_or(""), '=');
        if !labels.is_empty() {
            m.insert("labels".into(), Value::Object(labels));
        }
        let annotations = pairs(self.field("Annotations").unwrap_or(""), ':');
        if !annotations.is_empty() {
            m.insert("annotations".into(), Value::Object(annotations));
        }
        if let Some(t) = self.field("CreationTimestamp").and_then(describe_time) {
            m.insert("creationTimestamp".into(), rfc(t).into());
        }
        if let Some((k, n)) = self.field("Controlled By").and_then(|c| c.split_once('/')) {
            m.insert(
                "ownerReferences".into(),
                json!([{"kind": k, "name": n, "controller": true}]),
            );
        }
        let _ = now;
        Value::Object(m)
    }

    fn object(&self, kind: &str, now: Now) -> Value {
        let metadata = self.metadata(kind, now);
        let api = match kind {
            "Deployment" | "ReplicaSet" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        };
        let mut o = json!({"apiVersion": api, "kind": kind, "metadata": metadata});
        match kind {
            "Pod" => self.pod(&mut o),
            "Node" => self.node(&mut o),
            "Deployment" => self.deployment(&mut o),
            "ReplicaSet" => self.replica_set(&mut o),
            "Job" => self.job(&mut o),
            _ => {
                o["status"] = json!({"phase": self.field("Status").unwrap_or("")});
                if let Some(sc) = self.field("StorageClass") {
                    o["spec"] = json!({"storageClassName": sc});
                }
            }
        }
        o
    }

    fn pod(&self, o: &mut Value) {
        let node = self
            .field("Node")
            .map(|n| n.split('/').next().unwrap_or(n).to_string());
        let mut spec = json!({"containers": [], "initContainers": []});
        if let Some(n) = node.filter(|n| n != "<none>") {
            spec["nodeName"] = n.into();
        }
        let mut status = json!({
            "phase": self.field("Status").unwrap_or(""),
            "containerStatuses": [], "initContainerStatuses": []
        });
        if let Some(r) = self.field("Reason") {
            status["reason"] = r.into();
        }
        if let Some(m) = self.field("Message") {
            status["message"] = m.into();
        }
        if let Some(ip) = self.field("IP") {
            status["podIP"] = ip.into();
        }
        if let Some(t) = self.field("Start Time").and_then(describe_time) {
            status["startTime"] = rfc(t).into();
        }
        for (section, init) in [("Init Containers", true), ("Containers", false)] {
            let Some(lines) = self.section(section) else {
                continue;
            };
            for c in containers(lines) {
                let (spec_key, status_key) = if init {
                    ("initContainers", "initContainerStatuses")
                } else {
                    ("containers", "containerStatuses")
                };
                if let Some(a) = spec[spec_key].as_array_mut() {
                    a.push(c.spec());
                }
                if let Some(a) = status[status_key].as_array_mut() {
                    a.push(c.status());
                }
            }
        }
        if let Some(lines) = self.section("Conditions") {
            let conds: Vec<Value> = table_rows(lines)
                .iter()
                .filter(|r| r.len() >= 2)
                .map(|r| json!({"type": r[0], "status": r[1]}))
                .collect();
            status["conditions"] = Value::Array(conds);
        }
        for (k, v) in [("spec", spec), ("status", status)] {
            o[k] = v;
        }
    }

    fn node(&self, o: &mut Value) {
        let unschedulable = self.field("Unschedulable") == Some("true");
        let taints: Vec<Value> = self
            .field("Taints")
            .unwrap_or("")
            .lines()
            .filter_map(|t| {
                let (kv, effect) = t.trim().rsplit_once(':')?;
                let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
                Some(json!({"key": key, "value": value, "effect": effect}))
            })
            .collect();
        let conditions: Vec<Value> = self
            .section("Conditions")
            .map(|lines| {
                let rows = table_rows(lines);
                rows.iter()
                    .filter(|r| r.len() >= 2)
                    .map(|r| {
                        let mut c = json!({"type": r[0], "status": r[1]});
                        if let Some(t) = r.get(2).and_then(|t| describe_time(t)) {
                            c["lastHeartbeatTime"] = rfc(t).into();
                        }
                        if let Some(t) = r.get(3).and_then(|t| describe_time(t)) {
                            c["lastTransitionTime"] = rfc(t).into();
                        }
                        c["reason"] = r.get(4).cloned().unwrap_or_default().into();
                        c["message"] = r.get(5).cloned().unwrap_or_default().into();
                        c
                    })
                    .collect()
            })
            .unwrap_or_default();
        let memory = self.section("Capacity").and_then(|l| {
            l.iter().find_map(|x| {
                x.trim()
                    .strip_prefix("memory:")
                    .map(|m| m.trim().to_string())
            })
        });
        o["spec"] = json!({"unschedulable": unschedulable, "taints": taints});
        o["status"] = json!({"conditions": conditions, "capacity": {"memory": memory}});
    }

    fn deployment(&self, o: &mut Value) {
        // `Replicas: 3 desired | 1 updated | 4 total | 3 available | 1 unavailable`
        let replicas = self.field("Replicas").unwrap_or("");
        let n = |what: &str| {
            replicas.split('|').find_map(|p| {
                let p = p.trim();
                p.strip_suffix(what)
                    .and_then(|x| x.trim().parse::<i64>().ok())
            })
        };
        let conditions: Vec<Value> = self
            .section("Conditions")
            .map(|l| {
                table_rows(l)
                    .iter()
                    .filter(|r| r.len() >= 2)
                    .map(|r| json!({"type": r[0], "status": r[1], "reason": r.get(2).cloned().unwrap_or_default()}))
                    .collect()
            })
            .unwrap_or_default();
        let mut spec = json!({"replicas": n(" desired").unwrap_or(1)});
        if let Some(sel) = self.field("Selector") {
            spec["selector"] =
                json!({"matchLabels": Value::Object(pairs(&sel.replace(',', "\n"), '='))});
        }
        o["spec"] = spec;
        o["status"] = json!({
            "replicas": n(" total"), "updatedReplicas": n(" updated"),
            "availableReplicas": n(" available").unwrap_or(0),
            "unavailableReplicas": n(" unavailable"), "conditions": conditions,
        });
    }

    fn replica_set(&self, o: &mut Value) {
        // `Replicas: 1 current / 3 desired`
        let replicas = self.field("Replicas").unwrap_or("");
        let num = |what: &str| {
            replicas.split('/').find_map(|p| {
                p.trim()
                    .strip_suffix(what)
                    .and_then(|x| x.trim().parse::<i64>().ok())
            })
        };
        // `Pods Status: 1 Running / 0 Waiting / 0 Succeeded / 0 Failed`
        let running = self.field("Pods Status").and_then(|s| {
            s.split('/').find_map(|p| {
                p.trim()
                    .strip_suffix(" Running")
                    .and_then(|x| x.trim().parse::<i64>().ok())
            })
        });
        o["spec"] = json!({"replicas": num(" desired").unwrap_or(1)});
        o["status"] = json!({"replicas": num(" current").unwrap_or(0), "availableReplicas": running.unwrap_or(0)});
    }

    fn job(&self, o: &mut Value) {
        o["spec"] = json!({
            "parallelism": self.field("Parallelism").and_then(|p| p.parse::<i64>().ok()),
            "completions": self.field("Completions").and_then(|p| p.parse::<i64>().ok()),
            "backoffLimit": self.field("Backoff Limit").and_then(|p| p.parse::<i64>().ok()),
        });
        let mut status = json!({});
        if let Some(t) = self.field("Start Time").and_then(describe_time) {
            status["startTime"] = rfc(t).into();
        }
        o["status"] = status;
    }

    /// The Events table under `Events:`, as Event objects about this object.
    fn events(&self, kind: &str, now: Now) -> Vec<(usize, Result<Value, &'static str>)> {
        let Some(lines) = self.section("Events") else {
            return Vec::new();
        };
        let Some(header) = lines.iter().position(|l| {
            let t = l.trim_start();
            t.starts_with("Type") || t.starts_with("FirstSeen")
        }) else {
            return Vec::new();
        };
        let ns = self.field("Namespace").unwrap_or("");
        let old = lines[header].trim_start().starts_with("FirstSeen");
        let cols = columns(lines[header]);
        let mut out = Vec::new();
        for (k, row) in lines.iter().enumerate().skip(header + 1) {
            let t = row.trim();
            if t.is_empty() || t.starts_with("--") {
                continue;
            }
            let e = if old {
                old_event(t)
            } else {
                new_event(row, &cols)
            };
            let Some(e) = e else {
                out.push((
                    self.first_line + k,
                    Err("an Events row that could not be read (expected Type, Reason, Age, From, Message)"),
                ));
                continue;
            };
            let last = e.last_age.map(|a| ago(now, a));
            let first = e.first_age.map(|a| ago(now, a)).or(last);
            let name = format!("{}.{}", self.name, out.len());
            let mut v = json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns, "uid": format!("describe:{ns}/{name}")},
                "involvedObject": {"kind": kind, "namespace": ns, "name": self.name, "fieldPath": e.path},
                "reason": e.reason, "message": e.message, "type": e.type_, "count": e.count,
                "source": {"component": e.from.0, "host": e.from.1},
            });
            if let Some(f) = first {
                v["firstTimestamp"] = rfc(f).into();
            }
            if let Some(l) = last {
                v["lastTimestamp"] = rfc(l).into();
            }
            out.push((self.first_line + k, Ok(v)));
        }
        out
    }
}

struct DescribedEvent {
    type_: String,
    reason: String,
    message: String,
    count: u64,
    last_age: Option<u64>,
    first_age: Option<u64>,
    from: (String, String),
    path: String,
}

/// `Warning  BackOff  2m (x10 over 4m)  kubelet  Back-off restarting failed container`
fn new_event(row: &str, cols: &[(usize, String)]) -> Option<DescribedEvent> {
    let c = cells(row, cols);
    let get = |name: &str| {
        cols.iter()
            .position(|(_, n)| n == name)
            .and_then(|i| c.get(i).cloned())
            .unwrap_or_default()
    };
    let age_text = get("Age");
    let (count, first_age) = series(&age_text).map_or((1, None), |(n, a)| (n, Some(a)));
    // `kubelet, node-1` (1.10–1.13) or `kubelet` (later); `{kubelet node-1}` older still.
    let from_text = get("From");
    let from = from_text
        .trim_matches(['{', '}'])
        .split_once([',', ' '])
        .map_or(
            (
                from_text.trim_matches(['{', '}']).to_string(),
                String::new(),
            ),
            |(a, b)| (a.trim().to_string(), b.trim().to_string()),
        );
    let type_ = get("Type");
    if type_ != "Normal" && type_ != "Warning" {
        return None;
    }
    Some(DescribedEvent {
        type_,
        reason: get("Reason"),
        message: get("Message"),
        count,
        last_age: age(&age_text),
        first_age,
        from,
        path: String::new(),
    })
}

/// `1m  1m  1  {kubelet node-1}  spec.containers{cart}  Warning  BackOff  Back-off …`
fn old_event(row: &str) -> Option<DescribedEvent> {
    static OLD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\S+)\s+(\S+)\s+(\d+)\s+(\{[^}]*\}|\S+?,\s\S+|\S+)\s+(?:(\S+)\s+)?(Normal|Warning)\s+(\S+)\s+(.*)$")
            .expect("static regex")
    });
    let c = OLD.captures(row)?;
    let from = c[4].trim_matches(['{', '}']).trim();
    let (component, host) = from.split_once([' ', ',']).unwrap_or((from, ""));
    Some(DescribedEvent {
        type_: c[6].to_string(),
        reason: c[7].to_string(),
        message: c[8].trim().to_string(),
        count: c[3].parse().unwrap_or(1),
        last_age: age(&c[2]),
        first_age: age(&c[1]),
        from: (component.trim().to_string(), host.trim().to_string()),
        path: c.get(5).map_or(String::new(), |m| m.as_str().to_string()),
    })
}

/// The rows of a table inside a describe section (`Type  Status  …` then `----  ------`).
fn table_rows(lines: &[&str]) -> Vec<Vec<String>> {
    let Some(h) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return Vec::new();
    };
    let cols = columns(lines[h]);
    lines[h + 1..]
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        .map(|l| cells(l, &cols))
        .collect()
}

/// `app=cart\npod-template-hash=7d8f9` → a map.
fn pairs(text: &str, sep: char) -> Map<String, Value> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(sep)?;
            Some((k.trim().to_string(), Value::String(v.trim().to_string())))
        })
        .filter(|(k, _)| !k.is_empty() && k != "<none>")
        .collect()
}

/// A container as describe prints it.
#[derive(Default)]
struct Container {
    name: String,
    id: String,
    image: String,
    state: Value,
    last: Value,
    ready: bool,
    restarts: u64,
    memory_limit: Option<String>,
}

impl Container {
    fn spec(&self) -> Value {
        let mut c = json!({"name": self.name, "image": self.image});
        if let Some(m) = &self.memory_limit {
            c["resources"] = json!({"limits": {"memory": m}});
        }
        c
    }

    fn status(&self) -> Value {
        json!({
            "name": self.name, "containerID": self.id, "image": self.image,
            "ready": self.ready, "restartCount": self.restarts,
            "state": self.state, "lastState": self.last,
        })
    }
}

/// The containers of a `Containers:` section: each starts at a two-space indented `name:`.
fn containers(lines: &[&str]) -> Vec<Container> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out: Vec<Container> = Vec::new();
    let mut state_of: Option<&'static str> = None; // "state" or "last"
    let mut in_limits = false;
    let base = lines.iter().map(|l| indent(l)).min().unwrap_or(2);
    for l in lines {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        let depth = indent(l);
        if depth == base && t.ends_with(':') && !t.contains(' ') {
            out.push(Container {
                name: t.trim_end_matches(':').to_string(),
                ..Container::default()
            });
            state_of = None;
            in_limits = false;
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        let (k, v) = match t.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => continue,
        };
        match k {
            "Container ID" => c.id = v.to_string(),
            "Image" => c.image = v.to_string(),
            "Ready" => c.ready = v == "True",
            "Restart Count" => c.restarts = v.parse().unwrap_or(0),
            "State" | "Last State" => {
                let which = if k == "State" { "state" } else { "last" };
                state_of = Some(which);
                in_limits = false;
                let phase = v.to_ascii_lowercase();
                let slot = if which == "state" {
                    &mut c.state
                } else {
                    &mut c.last
                };
                *slot = if phase.is_empty() {
                    json!({})
                } else {
                    json!({ phase: {} })
                };
            }
            "Limits" => in_limits = true,
            "Requests" | "Environment" | "Mounts" | "Liveness" | "Readiness" | "Command"
            | "Args" => {
                in_limits = false;
                state_of = None;
            }
            "memory" if in_limits => c.memory_limit = Some(v.to_string()),
            "Reason" | "Exit Code" | "Started" | "Finished" | "Message" | "Signal" => {
                let Some(which) = state_of else { continue };
                let slot = if which == "state" {
                    &mut c.state
                } else {
                    &mut c.last
                };
                let Some((_, inner)) = slot.as_object_mut().and_then(|m| m.iter_mut().next())
                else {
                    continue;
                };
                let key = match k {
                    "Reason" => "reason",
                    "Exit Code" => "exitCode",
                    "Started" => "startedAt",
                    "Finished" => "finishedAt",
                    "Signal" => "signal",
                    _ => "message",
                };
                let value = match key {
                    "exitCode" | "signal" => {
                        v.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
                    }
                    "startedAt" | "finishedAt" => describe_time(v)
                        .map(|t| Value::from(rfc(t)))
                        .unwrap_or(Value::Null),
                    _ => Value::from(v),
                };
                inner[key] = value;
            }
            _ => {}
        }
    }
    out
}

/// Reads `kubectl get pods|nodes|events` tables (several in one file, each under its header).
pub fn parse_table(text: &str, now: Now, node: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut current: Option<(Table, Vec<(usize, String)>)> = None;
    let mut hinted_ns: Option<String> = None;
    let mut rows = 0usize;
    // Rows under a header tapio does not read (`kubectl get all`, `get svc`), or after a command
    // whose output is not a table it knows: skipped, said once per block.
    let mut skipping = false;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(words) = command(line) {
            hinted_ns = words.windows(2).find_map(|w| {
                if w[0] == "-n" || w[0] == "--namespace" {
                    Some(w[1].to_string())
                } else {
                    None
                }
            });
            hinted_ns = hinted_ns.or_else(|| {
                words
                    .iter()
                    .find_map(|w| w.strip_prefix("--namespace=").map(str::to_string))
            });
            current = None;
            skipping = false;
            continue;
        }
        if line.starts_with("No resources found") {
            continue;
        }
        if let Some(kind) = table_kind(line) {
            current = Some((kind, columns(line)));
            skipping = false;
            continue;
        }
        if looks_like_header(line) {
            current = None;
            skipping = true;
            out.reject(
                Location::Line(i + 1),
                "a kubectl get table of a kind tapio does not read (it reads pods, nodes and events); its rows are skipped",
            );
            continue;
        }
        if skipping {
            continue;
        }
        let Some((kind, cols)) = &current else {
            out.reject(
                Location::Line(i + 1),
                "a line before any kubectl get header",
            );
            continue;
        };
        let c = cells(line, cols);
        let get = |name: &str| {
            cols.iter()
                .position(|(_, n)| n == name)
                .and_then(|k| c.get(k).cloned())
                .filter(|v| !v.is_empty() && v != "<none>")
        };
        // Without `-A` or `-n` the table does not say its namespace: left empty, it is taken
        // from the other inputs of the import that name the same pod (see `adopt_namespaces`).
        let ns = get("NAMESPACE").or(hinted_ns.clone()).unwrap_or_default();
        // `pod/cart-…` (`kubectl get all`, `-o name` habits); a NAME with spaces or a colon is a
        // line of something else.
        if let Some(name) = get("NAME") {
            if name.contains(char::is_whitespace) || name.contains(':') {
                out.reject(Location::Line(i + 1), "not a row of the table above it");
                continue;
            }
        }
        let (object, at) = match kind {
            Table::Pods => pod_row(&get, &ns, now),
            Table::Nodes => node_row(&get, now),
            Table::Events => match event_row(&get, &ns, now) {
                Some(e) => e,
                None => {
                    out.reject(
                        Location::Line(i + 1),
                        "an event row without REASON and OBJECT",
                    );
                    continue;
                }
            },
        };
        rows += 1;
        let obj_node = object["spec"]["nodeName"]
            .as_str()
            .unwrap_or(node)
            .to_string();
        let Value::Object(map) = object else { continue };
        match super::kube::body(map, ObjectAction::Seen) {
            Ok(b) => {
                let t = LineTime::Absolute(at.or(b.time).unwrap_or(now.ts));
                let n = if b.node.is_empty() {
                    obj_node
                } else {
                    b.node.clone()
                };
                out.push(t, Event::new(Ts(0), n.as_str(), Source::Import, b.kube));
            }
            Err(reason) => out.reject(Location::Line(i + 1), reason),
        }
    }
    if rows > 0 {
        out.warnings.push(age_note(now));
    }
    out
}

type Get<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// `cart-7d8f9-x  0/1  CrashLoopBackOff  5 (2m ago)  10m  10.244.1.7  node-1  <none>  <none>`
fn pod_row(get: &Get<'_>, ns: &str, now: Now) -> (Value, Option<Ts>) {
    let name = get("NAME").unwrap_or_default();
    let name = name.strip_prefix("pod/").unwrap_or(&name).to_string();
    let status = get("STATUS").unwrap_or_default();
    let (ready, total) = get("READY")
        .and_then(|r| {
            let (a, b) = r.split_once('/')?;
            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
        })
        .unwrap_or((0, 1));
    let restarts_text = get("RESTARTS").unwrap_or_default();
    let restarts: u64 = restarts_text
        .split_whitespace()
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    // `5 (2m ago)`: when the last restart happened.
    let last_restart = restarts_text
        .split_once('(')
        .and_then(|(_, r)| age(r.trim_end_matches(')').trim_end_matches(" ago")))
        .map(|a| ago(now, a));
    let created = get("AGE").and_then(|a| age(&a)).map(|a| ago(now, a));
    let init = status.starts_with("Init:");
    let reason = status.trim_start_matches("Init:").to_string();
    let waiting = [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "ContainerCreating",
        "PodInitializing",
        "RunContainerError",
    ]
    .contains(&reason.as_str());
    let terminated = [
        "Error",
        "OOMKilled",
        "Completed",
        "ContainerCannotRun",
        "DeadlineExceeded",
    ]
    .contains(&reason.as_str());
    let phase = match status.as_str() {
        "Running" | "Terminating" | "NotReady" | "CrashLoopBackOff" => "Running",
        "Completed" | "Succeeded" => "Succeeded",
        "Evicted" | "Failed" | "Error" | "OOMKilled" => {
            if restarts == 0 && status != "OOMKilled" {
                "Failed"
            } else {
                "Running"
            }
        }
        _ => "Pending",
    };
    // `kubectl get pods` does not name containers: one per READY count, named after the pod's
    // workload (its name without the generated suffixes).
    let base = workload_name(&name);
    let containers: Vec<String> = (0..total.max(1))
        .map(|k| {
            if total <= 1 {
                base.clone()
            } else {
                format!("{base}-{}", k + 1)
            }
        })
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let is_ready = k < ready;
            let mut s = json!({"name": c, "ready": is_ready, "restartCount": if k == 0 { restarts } else { 0 }, "state": {"running": {}}, "lastState": {}});
            if k == 0 && !is_ready {
                if waiting {
                    s["state"] = json!({"waiting": {"reason": reason}});
                } else if terminated {
                    s["state"] = json!({"terminated": {"reason": reason}});
                }
            }
            if k == 0 {
                if let (Some(t), true) = (last_restart, reason == "OOMKilled" || reason == "Error") {
                    s["lastState"] = json!({"terminated": {"reason": reason, "finishedAt": rfc(t)}});
                }
            }
            s
        })
        .collect();
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("get:Pod/{ns}/{name}")},
        "spec": {"containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()},
        "status": {"phase": phase, (if init { "initContainerStatuses" } else { "containerStatuses" }): statuses},
    });
    if status == "Evicted" {
        pod["status"]["reason"] = "Evicted".into();
    }
    if let Some(t) = created {
        pod["metadata"]["creationTimestamp"] = rfc(t).into();
    }
    if let Some(n) = get("NODE") {
        pod["spec"]["nodeName"] = n.into();
    }
    if let Some(ip) = get("IP") {
        pod["status"]["podIP"] = ip.into();
    }
    (pod, Some(now.ts))
}

/// Objects and Events of `kubectl get` tables that did not say their namespace take the one the
/// other inputs give the same pod (or object); else `default`, said once per table file.
pub fn adopt_namespaces(parsed: &mut [super::Placement]) -> Vec<String> {
    use crate::event::{Body, Kube};
    let mut known: std::collections::HashMap<String, std::collections::BTreeSet<String>> =
        std::collections::HashMap::new();
    for p in parsed.iter().flat_map(|p| p.parsed.events.iter()) {
        match &p.event.body {
            Body::Kube(Kube::Object(o)) if !o.namespace.is_empty() => {
                known
                    .entry(o.name.clone())
                    .or_default()
                    .insert(o.namespace.clone());
            }
            Body::Kube(Kube::Event(e)) if !e.involved.namespace.is_empty() => {
                known
                    .entry(e.involved.name.clone())
                    .or_default()
                    .insert(e.involved.namespace.clone());
            }
            _ => {}
        }
    }
    let namespace_of = |name: &str| -> Option<String> {
        known
            .get(name)
            .filter(|s| s.len() == 1)
            .and_then(|s| s.iter().next().cloned())
    };
    let mut described_objects = std::collections::HashSet::new();
    let mut described_events = std::collections::HashSet::new();
    for p in parsed.iter().flat_map(|p| p.parsed.events.iter()) {
        match &p.event.body {
            Body::Kube(Kube::Object(o)) if o.uid.starts_with("describe:") => {
                described_objects.insert((o.namespace.clone(), o.name.clone()));
            }
            Body::Kube(Kube::Event(e)) if e.uid.starts_with("describe:") => {
                described_events.insert((
                    e.involved.namespace.clone(),
                    e.involved.name.clone(),
                    e.reason.clone(),
                ));
            }
            _ => {}
        }
    }
    let mut notes = Vec::new();
    for p in parsed.iter_mut() {
        let mut defaulted = 0usize;
        for pending in p.parsed.events.iter_mut() {
            match &mut pending.event.body {
                Body::Kube(Kube::Object(o))
                    if o.namespace.is_empty() && o.uid.starts_with("get:Pod/") =>
                {
                    let ns = namespace_of(&o.name).unwrap_or_else(|| {
                        defaulted += 1;
                        "default".into()
                    });
                    if let Ok(mut v) = o.json.parse() {
                        v["metadata"]["namespace"] = ns.clone().into();
                        o.json = crate::event::RawJson::from_value(&v);
                    }
                    o.namespace = ns;
                }
                Body::Kube(Kube::Event(e))
                    if e.namespace.is_empty() && e.uid.starts_with("get:Event/") =>
                {
                    let ns = namespace_of(&e.involved.name).unwrap_or_else(|| {
                        defaulted += 1;
                        "default".into()
                    });
                    e.involved.namespace = ns.clone();
                    e.namespace = ns;
                }
                _ => {}
            }
        }
        // A row says less than a describe of the same pod or the same Event in the import.
        let described = |pending: &super::Pending| match &pending.event.body {
            Body::Kube(Kube::Object(o)) if o.uid.starts_with("get:") => {
                described_objects.contains(&(o.namespace.clone(), o.name.clone()))
            }
            Body::Kube(Kube::Event(e)) if e.uid.starts_with("get:") => {
                described_events.contains(&(
                    e.involved.namespace.clone(),
                    e.involved.name.clone(),
                    e.reason.clone(),
                ))
            }
            _ => false,
        };
        p.parsed.events.retain(|e| !described(e));
        if defaulted > 0 {
            notes.push(format!(
                "{}: {defaulted} rows do not say their namespace (no -A, no -n in the paste) and no other input names them: assumed \"default\"",
                p.name
            ));
        }
    }
    notes
}

/// `cart-7d8f9c6b5-x2x9k` → `cart`; `web-0` → `web`.
fn workload_name(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    let alnum = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let mut keep = parts.len();
    // `<deployment>-<template hash>-<5>`, `<job or daemonset>-<5>`, `<statefulset>-<ordinal>`.
    if keep > 1 && parts[keep - 1].len() == 5 && alnum(parts[keep - 1]) {
        keep -= 1;
        let hash = parts[keep - 1];
        if keep > 1
            && (6..=10).contains(&hash.len())
            && alnum(hash)
            && hash.chars().any(|c| c.is_ascii_digit())
        {
            keep -= 1;
        }
    } else if keep > 1 && parts[keep - 1].chars().all(|c| c.is_ascii_digit()) {
        keep -= 1;
    }
    parts[..keep].join("-")
}

/// `node-3  NotReady,SchedulingDisabled  worker  20d  v1.29.4`
fn node_row(get: &Get<'_>, now: Now) -> (Value, Option<Ts>) {
    let name = get("NAME").unwrap_or_default();
    let name = name.strip_prefix("node/").unwrap_or(&name).to_string();
    let status = get("STATUS").unwrap_or_default();
    let parts: Vec<&str> = status.split(',').collect();
    let ready = match parts.first().copied() {
        Some("Ready") => "True",
        Some("NotReady") => "False",
        _ => "Unknown",
    };
    let created = get("AGE").and_then(|a| age(&a)).map(|a| ago(now, a));
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("get:Node/{name}")},
        "spec": {"unschedulable": parts.contains(&"SchedulingDisabled")},
        "status": {"conditions": [{"type": "Ready", "status": ready,
            "reason": if ready == "True" { "KubeletReady" } else { "NodeStatusUnknown" },
            "message": format!("kubectl get nodes said {status}")}]},
    });
    if let Some(t) = created {
        node["metadata"]["creationTimestamp"] = rfc(t).into();
    }
    (node, Some(now.ts))
}

/// `5m  Warning  BackOff  pod/cart-7d8f9  Back-off restarting failed container`, and the older
/// `LASTSEEN FIRSTSEEN COUNT NAME KIND SUBOBJECT TYPE REASON SOURCE MESSAGE`.
fn event_row(get: &Get<'_>, ns: &str, now: Now) -> Option<(Value, Option<Ts>)> {
    let reason = get("REASON")?;
    let (kind, name) = match get("OBJECT") {
        Some(o) => {
            let (k, n) = o.split_once('/')?;
            (ObjectKind::spelled(k), n.to_string())
        }
        // The old table's NAME is the Event's: `<object>.<hex>`, and the object may hold dots.
        None => {
            let n = get("NAME")?;
            (
                get("KIND")?,
                n.rsplit_once('.').map_or(n.clone(), |(o, _)| o.to_string()),
            )
        }
    };
    let last_text = get("LAST SEEN").or(get("LASTSEEN")).unwrap_or_default();
    let last = age(&last_text).map(|a| ago(now, a));
    let (count, over) = series(&last_text).map_or((None, None), |(n, a)| (Some(n), Some(a)));
    let first = get("FIRST SEEN")
        .or(get("FIRSTSEEN"))
        .and_then(|f| age(&f))
        .or(over)
        .map(|a| ago(now, a))
        .or(last);
    let count = count
        .or_else(|| get("COUNT").and_then(|c| c.parse().ok()))
        .unwrap_or(1);
    let source = get("SOURCE").unwrap_or_default();
    let (component, host) = source.split_once(", ").unwrap_or((source.as_str(), ""));
    let message = get("MESSAGE").unwrap_or_default();
    let ename = format!("{name}.{}", h(&format!("{reason}|{last_text}|{message}")));
    let mut ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": ename, "namespace": ns, "uid": format!("get:Event/{ns}/{ename}")},
        "involvedObject": {"kind": kind, "namespace": ns, "name": name, "fieldPath": get("SUBOBJECT").unwrap_or_default()},
        "reason": reason, "message": get("MESSAGE").unwrap_or_default(),
        "type": get("TYPE").unwrap_or_else(|| "Normal".into()), "count": count,
        "source": {"component": component, "host": host},
    });
    if let Some(f) = first {
        ev["firstTimestamp"] = rfc(f).into();
    }
    if let Some(l) = last {
        ev["lastTimestamp"] = rfc(l).into();
    }
    Some((ev, last))
}

fn h(s: &str) -> String {
    format!("{:08x}", crc32fast::hash(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let s = Ts::NANOS_PER_SEC;
        assert_eq!(age("5m10s"), Some(310 * s));
        assert_eq!(age("3d2h"), Some((3 * 86400 + 7200) * s));
        assert_eq!(age("45s"), Some(45 * s));
        assert_eq!(age("2m (x5 over 10m)"), Some(120 * s));
        assert_eq!(series("2m (x5 over 10m)"), Some((5, 600 * s)));
        assert_eq!(age("<unknown>"), None);
        assert_eq!(age("Running"), None);
    }

    #[test]
    fn columns_keep_names_with_one_space() {
        let cols = columns("LAST SEEN   TYPE      REASON    OBJECT             MESSAGE");
        let names: Vec<&str> = cols.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
        let row = "2m          Warning   BackOff   pod/cart-7d8f9-x   Back-off restarting failed container";
        assert_eq!(cells(row, &cols)[4], "Back-off restarting failed container");
    }

    #[test]
    fn workload_names_drop_the_generated_suffixes() {
        assert_eq!(workload_name("cart-7d8f9c6b5-x2x9k"), "cart");
        assert_eq!(workload_name("web-0"), "web");
        assert_eq!(workload_name("coredns-5dd5756b68-abcde"), "coredns");
        assert_eq!(workload_name("my-app"), "my-app");
    }
}
