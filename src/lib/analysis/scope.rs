//! Which incidents a question is about: those that involve a pod, a service, a node or the
//! services of one request, active in a time range. `tapio correlate` and `tapio report` narrow
//! the verdict with it.

use crate::detect::{span_entity, FindingKind};
use crate::event::{Span, Ts};
use crate::filter::TimeSpec;
use crate::topology::Entity;

use super::request::{self, Request};
use super::Incident;

/// How near a request an incident must go on to explain it: the common reach of a causal rule.
/// An incident that ended longer before (the same service failing at its start, say) is another
/// story.
pub const REQUEST_REACH_NS: u64 = 300 * Ts::NANOS_PER_SEC;

/// What to keep; an empty scope keeps everything.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Incidents whose findings touch one of these (as subject, peer or client).
    pub entities: Vec<Entity>,
    pub since: Option<TimeSpec>,
    pub until: Option<TimeSpec>,
    /// The request of `--trace-id`: a request that succeeded is blamed on nothing but a slowdown
    /// it went through.
    pub request: Option<Request>,
}

impl Scope {
    /// Adds the request of a trace and the services and pods of its failing spans (all its
    /// spans when none failed). `None` when the trace has no span.
    pub fn trace(&mut self, spans: Vec<Span>) -> Option<&Request> {
        let failing: Vec<&Span> = spans.iter().filter(|s| s.is_error()).collect();
        let chosen: Vec<&Span> = if failing.is_empty() {
            spans.iter().collect()
        } else {
            failing
        };
        for s in chosen {
            self.entities.push(span_entity(s));
            if let Some((pns, pod)) = s.pod() {
                self.entities.push(Entity::pod(pns, pod));
            }
        }
        self.entities.sort();
        self.entities.dedup();
        // What can explain a request is an incident going on around it: an incident holds its
        // causes with their effects, so one that explains the request still goes on near it,
        // however long before its root cause came.
        let start = spans.iter().map(|s| s.start).min();
        let end = spans.iter().map(|s| s.end.max(s.start)).max();
        if let (None, Some(t)) = (self.since, start) {
            self.since = Some(TimeSpec::Absolute(Ts(t.0.saturating_sub(REQUEST_REACH_NS))));
        }
        if let (None, Some(t)) = (self.until, end) {
            self.until = Some(TimeSpec::Absolute(Ts(t.0.saturating_add(REQUEST_REACH_NS))));
        }
        self.request = request::explain(spans);
        self.request.as_ref()
    }

    /// The incidents in scope, in their order: those with a finding going on in the time range
    /// (an incident whose findings were all before and after it is not). `start` resolves
    /// relative times (`+5m`, `10:02`): the first finding's time.
    pub fn keep(&self, incidents: Vec<Incident>, start: Ts) -> Vec<Incident> {
        let (since, until) = (
            self.since.map(|s| s.resolve(start)),
            self.until.map(|s| s.resolve(start)),
        );
        incidents
            .into_iter()
            .filter(|i| self.entities.is_empty() || involves(i, &self.entities))
            .filter(|i| {
                let within =
                    |(a, b): (Ts, Ts)| since.is_none_or(|t| b >= t) && until.is_none_or(|t| a <= t);
                if i.findings.is_empty() {
                    within((i.start, i.end))
                } else {
                    i.findings.iter().any(|f| within((f.start, f.end)))
                }
            })
            .filter(|i| {
                self.request
                    .as_ref()
                    .is_none_or(|r| r.failed || slowed(i, r))
            })
            .collect()
    }
}

/// Whether a slowdown of the incident covers one of the request's services while it ran.
fn slowed(i: &Incident, r: &Request) -> bool {
    let at = r.steps.first().map(|s| s.start).unwrap_or_default();
    i.findings.iter().any(|f| {
        matches!(
            f.kind,
            FindingKind::ServiceLatency | FindingKind::NetworkLatency | FindingKind::SlowSpans
        ) && f.start <= at
            && at <= f.end
            && r.steps.iter().any(|s| s.service == f.entity)
    })
}

/// Whether an incident's findings touch one of the entities (as subject, peer or client).
fn involves(i: &Incident, wanted: &[Entity]) -> bool {
    let hit = |e: &Entity| wanted.contains(e);
    hit(&i.root_cause.entity)
        || i.impact.services.iter().any(hit)
        || i.impact.pods.iter().any(hit)
        || i.impact.nodes.iter().any(hit)
        || i.findings.iter().any(|f| {
            hit(&f.entity)
                || f.facts.peer.as_ref().is_some_and(hit)
                || f.facts.clients.iter().any(hit)
        })
}
