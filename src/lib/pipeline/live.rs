//! Live incidents: opened as soon as they are worth waking someone for, updated when what they say
//! changes, closed when they settle.
//!
//! The core looks at the incidents as they stand (with the findings still forming) whenever its
//! findings changed. An incident **opens** when it reaches medium severity with a known root cause;
//! it is **updated** when its root cause, its severity or its impact (the services, pods and nodes
//! hit, restarts, failed requests doubling) changes; it **closes** when the core closes it — after
//! the quiet period, or at the end of the stream — with the same content replay gives. An incident
//! keeps its id from open to close: it is recognised by the findings it shares with what was said
//! before.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::analysis::{Incident, RootKind, Severity};
use crate::detect::{Finding, FindingKind};
use crate::event::Ts;
use crate::topology::Entity;

/// What happened to an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Update,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "OPEN",
            State::Update => "UPDATE",
            State::Closed => "CLOSED",
        }
    }
}

/// An incident opened, changed or closed.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    pub state: State,
    /// The incident's id in this run, the same from open to close (0 when the run is not live:
    /// replay numbers incidents in its verdict).
    pub id: u64,
    pub incident: &'a Incident,
    /// For an update: what changed, one phrase each.
    pub changed: Vec<String>,
    /// Closed because it turned out to be part of another incident (this id): what it said goes
    /// on under that one.
    pub merged_into: Option<u64>,
    /// Closed because what it was made of did not hold (a burst that ended under its threshold):
    /// there is no incident to report; a pager should resolve it.
    pub withdrawn: bool,
}

impl<'a> Change<'a> {
    pub fn closed(incident: &'a Incident) -> Change<'a> {
        Change {
            state: State::Closed,
            id: 0,
            incident,
            changed: Vec::new(),
            merged_into: None,
            withdrawn: false,
        }
    }
}

/// A finding recognised across looks: its kind, start and first evidence — not its entity, which
/// changes when the objects that explain it arrive later.
type Key = (FindingKind, Ts, u64);

fn keys(inc: &Incident) -> HashSet<Key> {
    inc.findings
        .iter()
        .map(|f| (f.kind, f.start, f.evidence.first().map_or(0, |e| e.seq)))
        .collect()
}

/// What was last said of an incident.
#[derive(Clone, Debug, PartialEq)]
struct Said {
    kind: RootKind,
    entity: Entity,
    severity: Severity,
    services: Vec<Entity>,
    pods: Vec<Entity>,
    nodes: Vec<Entity>,
    restarts: u64,
    failed: u64,
}

impl Said {
    fn of(inc: &Incident) -> Said {
        Said {
            kind: inc.root_cause.kind,
            entity: inc.root_cause.entity.clone(),
            severity: inc.severity,
            services: inc.impact.services.clone(),
            pods: inc.impact.pods.clone(),
            nodes: inc.impact.nodes.clone(),
            restarts: inc.impact.restarts,
            failed: inc.impact.failed_requests,
        }
    }

    /// What changed from `self` to `now`, in words; empty when nothing that matters did.
    fn diff(&self, now: &Said) -> Vec<String> {
        let mut out = Vec::new();
        if (self.kind, &self.entity) != (now.kind, &now.entity) {
            out.push(format!("root cause now {} {}", now.kind, now.entity));
        }
        if self.severity != now.severity {
            out.push(format!(
                "severity {} → {}",
                self.severity.as_str(),
                now.severity.as_str()
            ));
        }
        let grew = |what: &str, before: &[Entity], after: &[Entity], out: &mut Vec<String>| {
            let new: Vec<String> = after
                .iter()
                .filter(|e| !before.contains(e))
                .map(|e| e.short())
                .collect();
            if !new.is_empty() {
                out.push(format!("{what} hit: {}", new.join(", ")));
            }
        };
        grew("services", &self.services, &now.services, &mut out);
        grew("pods", &self.pods, &now.pods, &mut out);
        grew("nodes", &self.nodes, &now.nodes, &mut out);
        if now.restarts > self.restarts {
            out.push(format!("{} restarts", now.restarts));
        }
        if now.failed > 0 && now.failed >= 2 * self.failed.max(5) {
            out.push(format!("{} failed requests", now.failed));
        }
        out
    }
}

struct Tracked {
    id: u64,
    keys: HashSet<Key>,
    said: Said,
    /// What was last said of it, to close it with if it is withdrawn.
    last: Incident,
}

/// The incidents said to be open, and what was said of them.
#[derive(Default)]
pub struct Live {
    next_id: u64,
    open: Vec<Tracked>,
    fingerprint: Option<u64>,
}

impl Live {
    /// Whether the findings changed since the last look (a cheap fingerprint: linking is not).
    pub fn changed(&mut self, findings: &[Finding]) -> bool {
        let mut h = DefaultHasher::new();
        findings.len().hash(&mut h);
        for f in findings {
            (f.kind, &f.entity, f.start, f.end, f.count, f.evidence.len()).hash(&mut h);
        }
        let fp = h.finish();
        let changed = self.fingerprint != Some(fp);
        self.fingerprint = Some(fp);
        changed
    }

    /// The tracked incidents that share findings with these, oldest first.
    fn overlapping(&self, keys: &HashSet<Key>) -> Vec<usize> {
        (0..self.open.len())
            .filter(|&i| !self.open[i].keys.is_disjoint(keys))
            .collect()
    }

    /// Incidents said apart that turn out to be one: the first keeps its id, the others close as
    /// merged into it.
    fn merge(
        &mut self,
        found: &[usize],
        inc: &Incident,
        sink: &mut super::Sink<'_>,
    ) -> Option<usize> {
        let (&first, rest) = found.split_first()?;
        let into = self.open[first].id;
        for &i in rest.iter().rev() {
            let t = self.open.remove(i);
            self.open[first].keys.extend(t.keys);
            sink(Change {
                state: State::Closed,
                id: t.id,
                incident: inc,
                changed: vec![format!("merged into incident {into}")],
                merged_into: Some(into),
                withdrawn: false,
            });
        }
        Some(first)
    }

    /// The incidents as they stand now: opens those worth it, updates those that changed.
    pub fn look(&mut self, mut incidents: Vec<Incident>, sink: &mut super::Sink<'_>) {
        incidents
            .sort_by(|a, b| (a.start, &a.root_cause.entity).cmp(&(b.start, &b.root_cause.entity)));
        for inc in &incidents {
            let ks = keys(inc);
            let now = Said::of(inc);
            let found = self.overlapping(&ks);
            match self.merge(&found, inc, sink) {
                Some(i) => {
                    let t = &mut self.open[i];
                    t.keys.extend(ks);
                    t.last = inc.clone();
                    let changed = t.said.diff(&now);
                    if !changed.is_empty() {
                        t.said = now;
                        sink(Change {
                            state: State::Update,
                            id: t.id,
                            incident: inc,
                            changed,
                            merged_into: None,
                            withdrawn: false,
                        });
                    }
                }
                None if inc.severity >= Severity::Medium
                    && inc.root_cause.kind != RootKind::Unknown =>
                {
                    self.next_id += 1;
                    self.open.push(Tracked {
                        id: self.next_id,
                        keys: ks,
                        said: now,
                        last: inc.clone(),
                    });
                    sink(Change {
                        state: State::Open,
                        id: self.next_id,
                        incident: inc,
                        changed: Vec::new(),
                        merged_into: None,
                        withdrawn: false,
                    });
                }
                None => {}
            }
        }
        // Said to be open, but nothing of it is left in any incident now: withdrawn.
        let all: HashSet<Key> = incidents.iter().flat_map(keys).collect();
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].keys.is_disjoint(&all) {
                let t = self.open.remove(i);
                sink(Change {
                    state: State::Closed,
                    id: t.id,
                    incident: &t.last,
                    changed: vec!["withdrawn: what it was made of did not hold".to_string()],
                    merged_into: None,
                    withdrawn: true,
                });
            } else {
                i += 1;
            }
        }
    }

    /// An incident closed: it keeps the id it opened with (a new one if it never opened); others
    /// it turned out to include close as merged into it.
    pub fn close(&mut self, inc: &Incident, sink: &mut super::Sink<'_>) {
        let ks = keys(inc);
        let found = self.overlapping(&ks);
        let id = match self.merge(&found, inc, sink) {
            Some(i) => self.open.remove(i).id,
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        sink(Change {
            state: State::Closed,
            id,
            incident: inc,
            changed: Vec::new(),
            merged_into: None,
            withdrawn: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Impact, RootCause};
    use crate::detect::{Facts, Finding};

    fn incident(start: u64, severity: Severity) -> Incident {
        let entity = Entity::pod("shop", "cart-7d8f9");
        let finding = Finding {
            id: 0,
            kind: FindingKind::OomKillMemcg,
            layer: FindingKind::OomKillMemcg.layer(),
            entity: entity.clone(),
            start: Ts(start),
            end: Ts(start),
            count: 1,
            summary: "kernel OOM-killed pid 1 (java)".into(),
            facts: Facts::default(),
            evidence: Vec::new(),
        };
        Incident {
            id: 0,
            severity,
            confidence: 0.9,
            start: Ts(start),
            end: Ts(start),
            root_cause: RootCause {
                kind: RootKind::OomContainerLimit,
                entity,
                summary: "cart OOM-killed".into(),
            },
            chain: Vec::new(),
            other_root_causes: Vec::new(),
            impact: Impact::default(),
            actions: Vec::new(),
            evidence_complete: true,
            evidence_gaps: Vec::new(),
            notes: Vec::new(),
            alternatives: Vec::new(),
            findings: vec![finding],
        }
    }

    fn states(live: &mut Live, incidents: Vec<Incident>) -> Vec<(State, u64, bool)> {
        let mut out = Vec::new();
        live.look(incidents, &mut |c| out.push((c.state, c.id, c.withdrawn)));
        out
    }

    #[test]
    fn an_incident_opens_at_medium_updates_on_severity_and_is_withdrawn_when_its_findings_go() {
        let mut live = Live::default();
        assert!(
            states(&mut live, vec![incident(1, Severity::Low)]).is_empty(),
            "low: not yet"
        );
        assert_eq!(
            states(&mut live, vec![incident(1, Severity::Medium)]),
            [(State::Open, 1, false)]
        );
        assert!(
            states(&mut live, vec![incident(1, Severity::Medium)]).is_empty(),
            "no change"
        );
        assert_eq!(
            states(&mut live, vec![incident(1, Severity::High)]),
            [(State::Update, 1, false)]
        );
        // Another incident opens; the first one's findings are gone.
        assert_eq!(
            states(&mut live, vec![incident(2, Severity::High)]),
            [(State::Open, 2, false), (State::Closed, 1, true)]
        );
    }
}
