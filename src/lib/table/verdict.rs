//! The verdict as rows: `incidents` and `findings`.

use std::collections::HashSet;

use super::rows::{opt, text};
use super::Cell;
use crate::analysis::Incident;
use crate::detect::Finding;
use crate::event::Ts;
use crate::topology::Entity;

/// The common cells: id, ts, end, node, namespace, pod, container, service.
fn common<'a>(
    id: u64,
    start: Ts,
    end: Ts,
    entity: &'a Entity,
    node: Option<&'a str>,
    container: Option<&'a str>,
) -> [Cell<'a>; 8] {
    let (ns, pod, service, node) = match entity {
        Entity::Pod { ns, name } => (Some(ns.as_str()), Some(name.as_str()), None, node),
        Entity::Service { ns, name } => (Some(ns.as_str()), None, Some(name.as_str()), node),
        Entity::Workload { ns, .. } => (Some(ns.as_str()), None, None, node),
        Entity::Node(n) => (None, None, None, Some(n.as_str())),
        Entity::Host { node: n, .. } => (None, None, None, Some(n.as_str())),
    };
    [
        Cell::U64(Some(id)),
        Cell::Time(Some(start)),
        Cell::Time(Some(end)),
        opt(node),
        opt(ns),
        opt(pod),
        opt(container),
        opt(service),
    ]
}

fn joined(entities: &[Entity]) -> Cell<'static> {
    let s: Vec<String> = entities.iter().map(|e| e.to_string()).collect();
    text(s.join(","))
}

/// The place in its incident's chain of each of the incident's findings, if any: a step is the
/// finding of its kind, entity and evidence (a service may have several findings of one kind).
fn steps(inc: &Incident) -> Vec<Option<usize>> {
    let mut of = vec![None; inc.findings.len()];
    for (n, step) in inc.chain.iter().enumerate() {
        let same = |f: &Finding| {
            f.kind == step.kind
                && f.entity == step.entity
                && f.evidence
                    .iter()
                    .map(|e| e.seq)
                    .eq(step.evidence.iter().map(|e| e.seq))
        };
        let free = |i: &usize| of[*i].is_none();
        let found = (0..inc.findings.len())
            .filter(free)
            .find(|&i| same(&inc.findings[i]))
            .or_else(|| {
                (0..inc.findings.len()).filter(free).find(|&i| {
                    inc.findings[i].kind == step.kind && inc.findings[i].entity == step.entity
                })
            });
        if let Some(i) = found {
            of[i] = Some(n);
        }
    }
    of
}

/// The finding of an incident that is its root cause: the first step of its chain.
fn root_finding(inc: &Incident) -> Option<&Finding> {
    let steps = steps(inc);
    let i = steps.iter().position(|s| *s == Some(0))?;
    inc.findings.get(i)
}

/// One row per incident, in the verdict's order.
pub(super) fn incidents(incidents: &[Incident], mut push: impl FnMut(Vec<Cell<'_>>)) {
    for inc in incidents {
        let root = root_finding(inc);
        let facts = root.map(|f| &f.facts);
        let mut seqs: Vec<u64> = inc
            .findings
            .iter()
            .flat_map(|f| f.evidence.iter().map(|e| e.seq))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let chain: Vec<String> = inc
            .chain
            .iter()
            .map(|s| format!("{} {}", s.kind, s.entity))
            .collect();
        let mut cells = Vec::with_capacity(21);
        cells.extend(common(
            inc.id as u64,
            inc.start,
            inc.end,
            &inc.root_cause.entity,
            facts.and_then(|f| f.node.as_deref()),
            facts.and_then(|f| f.container.as_deref()),
        ));
        cells.extend([
            text(inc.severity.as_str().to_ascii_lowercase()),
            Cell::F64(Some(inc.confidence)),
            text(inc.root_cause.kind.as_str()),
            text(inc.root_cause.entity.to_string()),
            text(inc.root_cause.summary.as_str()),
            text(chain.join(" -> ")),
            Cell::U64(Some(inc.findings.len() as u64)),
            joined(&inc.impact.services),
            joined(&inc.impact.pods),
            Cell::U64(Some(inc.impact.failed_requests)),
            Cell::U64(Some(inc.impact.restarts)),
            Cell::Bool(Some(inc.evidence_complete)),
            Cell::Seqs(seqs),
        ]);
        push(cells);
    }
}

/// One row per finding: those of the incidents (in the verdict's order), then those that made
/// no incident.
pub(super) fn findings(
    incidents: &[Incident],
    leftover: &[Finding],
    mut push: impl FnMut(Vec<Cell<'_>>),
) {
    let key = |f: &Finding| (f.kind, f.entity.to_string(), f.start, f.end);
    let mut seen = HashSet::new();
    let mut id = 0u64;
    let mut row = |f: &Finding, incident: Option<&Incident>, step: Option<usize>| {
        id += 1;
        let mut cells = Vec::with_capacity(17);
        cells.extend(common(
            id,
            f.start,
            f.end,
            &f.entity,
            f.facts.node.as_deref(),
            f.facts.container.as_deref(),
        ));
        cells.extend([
            Cell::U64(incident.map(|i| i.id as u64)),
            Cell::U64(step.map(|s| s as u64)),
            text(f.kind.as_str()),
            text(f.layer.as_str()),
            text(f.entity.to_string()),
            Cell::U64(Some(f.count)),
            text(f.summary.as_str()),
            opt(f.facts.message.as_deref()),
            Cell::Seqs(f.evidence.iter().map(|e| e.seq).collect()),
        ]);
        push(cells);
    };
    for inc in incidents {
        for (f, step) in inc.findings.iter().zip(steps(inc)) {
            seen.insert(key(f));
            row(f, Some(inc), step);
        }
    }
    for f in leftover {
        if !seen.contains(&key(f)) {
            row(f, None, None);
        }
    }
}
