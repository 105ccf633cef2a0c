//! What a shared report holds: the capture's overview and the incidents in scope, with the blind
//! spots that make evidence missing. `tapio report` builds it; the HTML, Markdown and SVG
//! renderers read it.

use std::collections::BTreeSet;

use crate::analysis::overview::{Histogram, Overview};
use crate::analysis::Incident;
use crate::detect::Blind;
use crate::event::Ts;
use crate::knowledge::Layer;
use crate::topology::Entity;

/// Time slices of the overview's chart.
pub const OVERVIEW_BUCKETS: usize = 60;

#[derive(Clone, Debug, Default)]
pub struct Document {
    /// The captures read, as named on the command line.
    pub captures: Vec<String>,
    pub overview: Overview,
    pub histogram: Option<Histogram>,
    /// How the report was narrowed (`pod shop/cart`, `since 10:02`), empty for all of it.
    pub scope: Vec<String>,
    pub incidents: Vec<Incident>,
    /// Low-severity incidents left out (`--all` includes them).
    pub hidden: usize,
    pub blind: Vec<Blind>,
}

impl Document {
    pub fn new(captures: Vec<String>, mut overview: Overview) -> Document {
        let histogram = overview.histogram(OVERVIEW_BUCKETS);
        Document {
            captures,
            overview,
            histogram,
            ..Document::default()
        }
    }

    /// The blind spots that overlap an incident.
    pub fn blind_in(&self, inc: &Incident) -> Vec<Blind> {
        self.blind
            .iter()
            .filter(|b| b.to >= inc.start && b.from <= inc.end)
            .cloned()
            .collect()
    }
}

/// One row of an incident's evidence table.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceRow<'a> {
    pub ts: Ts,
    pub layer: Layer,
    pub entity: &'a Entity,
    pub line: &'a str,
    pub seq: u64,
}

/// Every evidence event of an incident once, in time order.
pub fn evidence(inc: &Incident) -> Vec<EvidenceRow<'_>> {
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    let steps = inc
        .chain
        .iter()
        .chain(inc.other_root_causes.iter().flat_map(|o| o.chain.iter()))
        .map(|s| (s.layer, &s.entity, &s.evidence));
    let findings = inc
        .findings
        .iter()
        .map(|f| (f.layer, &f.entity, &f.evidence));
    for (layer, entity, evidence) in steps.chain(findings) {
        for e in evidence {
            if seen.insert(e.seq) {
                rows.push(EvidenceRow {
                    ts: e.ts,
                    layer,
                    entity,
                    line: &e.line,
                    seq: e.seq,
                });
            }
        }
    }
    rows.sort_by_key(|r| (r.ts, r.seq));
    rows
}

/// An evidence line without what the table's columns already say (its time and layer): the
/// event's kind, its node, and what happened: `oom on node-3: OOM kill (memcg) victim …`.
pub fn what(line: &str) -> String {
    // `DATE TIME  LAYER kind node summary…`, columns padded with spaces.
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..5 {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    let summary = rest.trim_start();
    match (fields.get(3), fields.get(4)) {
        (Some(kind), Some(node)) if !summary.is_empty() && *node != "-" => {
            format!("{kind} on {node}: {summary}")
        }
        (Some(kind), Some(_)) if !summary.is_empty() => format!("{kind}: {summary}"),
        _ => line.to_string(),
    }
}

/// How many arrows the chains of an incident draw: one a link, cause to effect.
pub fn links(inc: &Incident) -> usize {
    std::iter::once(&inc.chain)
        .chain(inc.other_root_causes.iter().map(|o| &o.chain))
        .map(|c| c.len().saturating_sub(1))
        .sum()
}

/// `2021-05-19 09:40:00 – 09:50:12 UTC (10 min 12 s)`.
pub fn range(from: Ts, to: Ts) -> String {
    let (a, b) = (from.to_datetime(), to.to_datetime());
    let end = if a.date_naive() == b.date_naive() {
        b.format("%H:%M:%S").to_string()
    } else {
        b.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    format!(
        "{} – {end} UTC ({})",
        a.format("%Y-%m-%d %H:%M:%S"),
        duration(to.saturating_sub(from))
    )
}

/// `3 h 2 min`, `10 min 12 s`, `4.2 s`, `120 ms`.
pub fn duration(ns: u64) -> String {
    let s = ns / Ts::NANOS_PER_SEC;
    if s >= 2 * 86_400 {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else if ns >= Ts::NANOS_PER_SEC {
        format!("{:.1} s", ns as f64 / 1e9)
    } else {
        format!("{} ms", ns / 1_000_000)
    }
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(duration(612 * Ts::NANOS_PER_SEC), "10 min 12 s");
        assert_eq!(duration(4_200_000_000), "4.2 s");
        assert_eq!(duration(313 * 3600 * Ts::NANOS_PER_SEC), "13 d 1 h");
        assert_eq!(
            what("2026-03-14 10:00:31.000  KERNEL oom        -            OOM kill (memcg) victim"),
            "oom: OOM kill (memcg) victim"
        );
        assert_eq!(
            what("2026-03-14 10:00:31.600  NET    tcp        node-1       a → b  refused"),
            "tcp on node-1: a → b  refused"
        );
        assert_eq!(what("odd"), "odd");
        assert_eq!(duration(120_000_000), "120 ms");
        assert_eq!(
            range(Ts::from_secs(1621417200), Ts::from_secs(1621417812)),
            "2021-05-19 09:40:00 – 09:50:12 UTC (10 min 12 s)"
        );
    }
}
