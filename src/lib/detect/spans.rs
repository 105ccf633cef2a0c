//! Error and slow spans, aggregated per service, and what failing spans and logs say.
//!
//! A span with status error is not an outage by itself: HotROD's `redis timeout` spans were
//! retried and the request succeeded. So each error span remembers its trace, and at the end the
//! finding counts the requests whose root span failed (user-facing) apart from those that
//! recovered.

use std::collections::{HashMap, HashSet, VecDeque};

use super::text;
use super::{Detector, Facts, FindingKind};
use crate::event::{AppLog, Event, Log, LogOrigin, Span, TraceId, Ts};
use crate::topology::Entity;

/// Root outcomes are remembered this long (event time), so memory does not grow with the capture.
const ROOT_MEMORY_NS: u64 = 600 * Ts::NANOS_PER_SEC;
/// Error spans of one service within this window form one finding.
const ERROR_WINDOW_NS: u64 = 60 * Ts::NANOS_PER_SEC;
/// Failed roots remembered at most (the oldest are forgotten first).
const MAX_FAILED_ROOTS: usize = 100_000;
/// Traces remembered per error finding, to tell failed requests from recovered ones.
const MAX_TRACES: usize = 10_000;

#[derive(Default)]
pub(crate) struct Traces {
    failed_roots: HashSet<TraceId>,
    /// The failed roots in the order they came, to forget them.
    roots: VecDeque<(Ts, TraceId)>,
    /// finding index → the traces of its error spans already counted.
    pub(crate) error_traces: HashMap<usize, HashSet<TraceId>>,
    last_error: HashMap<Entity, Ts>,
    /// Spans per service and minute.
    per_minute: HashMap<(Entity, u64), u64>,
}

const MINUTE_NS: u64 = 60 * Ts::NANOS_PER_SEC;

impl Detector {
    pub(crate) fn span(&mut self, e: &Event, s: &Span) {
        if s.parent_span_id.is_none() {
            self.remember_root(s);
        }
        let entity = span_entity(s);
        self.service_span(e, s, &entity);
        *self
            .spans
            .per_minute
            .entry((entity.clone(), s.start.0 / MINUTE_NS))
            .or_default() += 1;
        if s.is_error() {
            let at = s.start;
            if self
                .spans
                .last_error
                .get(&entity)
                .is_some_and(|&t| at.saturating_sub(t) > ERROR_WINDOW_NS)
            {
                self.close(FindingKind::ErrorSpans, &entity, "", e.ts);
            }
            self.spans.last_error.insert(entity.clone(), at);
            let summary = format!(
                "{} requests failing: {} {}",
                entity.short(),
                s.service,
                s.name
            );
            let peer = peer_of(s).and_then(|host| self.resolve_host(&host, &entity));
            let base = Facts {
                peer: peer.clone(),
                ..Facts::default()
            };
            let f = self.upsert(FindingKind::ErrorSpans, entity.clone(), "", at, e, || {
                (summary, base.clone())
            });
            let id = f.id;
            // A service's first error is often its own server span: the callee that failed
            // comes with its client spans after.
            if f.facts.peer.is_none() {
                f.facts.peer = peer;
            }
            if f.facts.trace_ids.len() < 3 {
                f.facts.trace_ids.push(s.trace_id.to_string());
            }
            // Spans come in start order, so a trace's root has been seen before its children.
            let traces = self.spans.error_traces.entry(id).or_default();
            if traces.len() < MAX_TRACES && traces.insert(s.trace_id) {
                let failed =
                    s.parent_span_id.is_none() || self.spans.failed_roots.contains(&s.trace_id);
                let f = &mut self.findings[id];
                if failed {
                    f.facts.failed_requests += 1;
                    f.facts.entry_failures += s.parent_span_id.is_none() as u64;
                } else {
                    f.facts.recovered_requests += 1;
                }
            }
            // The message that names a host says the most.
            let mut said: Vec<(text::Cause, String)> = [s.status_message.as_str()]
                .into_iter()
                .chain(
                    s.exceptions()
                        .flat_map(|x| x.attributes.iter().filter_map(|a| a.value.as_str())),
                )
                .filter_map(|m| text::classify(m).map(|c| (c, m.to_string())))
                .collect();
            said.sort_by_key(|(c, _)| !matches!(c, text::Cause::Unreachable { host: Some(_) }));
            let said = said.into_iter().next();
            if let Some((cause, message)) = said {
                self.cause_from_text(e, &entity, at, cause, &message, base);
            }
        }
        if s.duration_ns() > self.cfg.slow_span_ns && s.parent_span_id.is_none() {
            let ms = s.duration_ns() / 1_000_000;
            let summary = format!("{} slow requests: {} took {ms} ms", entity.short(), s.name);
            self.upsert(FindingKind::SlowSpans, entity, "", s.start, e, || {
                (summary, Facts::default())
            });
        }
    }

    /// Remembers a failed root (a request that failed for its user) for `ROOT_MEMORY_NS`, and at
    /// most `MAX_FAILED_ROOTS` of them: only the failed ones matter, so a flood of successful
    /// requests costs nothing.
    fn remember_root(&mut self, s: &Span) {
        let roots = &mut self.spans;
        while let Some(&(t, id)) = roots.roots.front() {
            if s.start.saturating_sub(t) <= ROOT_MEMORY_NS && roots.roots.len() < MAX_FAILED_ROOTS {
                break;
            }
            roots.roots.pop_front();
            roots.failed_roots.remove(&id);
        }
        if s.is_error() && roots.failed_roots.insert(s.trace_id) {
            roots.roots.push_back((s.start, s.trace_id));
        }
    }

    /// Application logs that name a cause (the container-log issue attributes them to pods).
    pub(crate) fn log(&mut self, e: &Event, l: &Log) {
        if l.origin != LogOrigin::App {
            return;
        }
        if let Some(cause) = text::classify(&l.body) {
            let entity = Entity::Host {
                node: e.node.to_string(),
                what: l.ident.to_string(),
            };
            self.cause_from_text(e, &entity, e.ts, cause, &l.body, Facts::default());
        }
    }

    /// An application's log record: kept for quoting when its container crashes, and a cause
    /// when it names one, attributed to its pod, else its service.
    pub(crate) fn app_log(&mut self, e: &Event, a: &AppLog) {
        let container = a
            .resource_attr("k8s.container.name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // A structured line is read by its message, once.
        let said = text::readable(&a.log.body);
        let cause = text::classify(&said);
        let notable = cause.is_some()
            || a.log.severity <= crate::event::Severity::Warning
            || text::notable(&said);
        if let (Some((ns, pod)), Some(c), true) = (a.pod(), &container, notable) {
            if self.log_tail.len() >= super::MAX_LOG_CONTAINERS {
                self.log_tail.clear();
            }
            let tail = self.log_tail.entry(format!("{ns}/{pod}/{c}")).or_default();
            if tail.len() == super::LOG_TAIL {
                tail.pop_front();
            }
            let evidence = super::Evidence {
                seq: e.seq,
                ts: e.ts,
                line: e.to_string(),
            };
            tail.push_back((e.ts, text::first_line(&said).to_string(), evidence));
        }
        if !a.service.is_empty() {
            let ns = a
                .resource_attr("k8s.namespace.name")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let at = a.log.trace_id.zip(a.log.span_id);
            let error = a.log.severity <= crate::event::Severity::Error;
            self.service_log(e, &Entity::service(ns, &a.service), &said, error, at);
        }
        let Some(cause) = cause else {
            return;
        };
        let entity = match a.pod() {
            Some((ns, pod)) => Entity::pod(ns, pod),
            None if !a.service.is_empty() => {
                let ns = a
                    .resource_attr("k8s.namespace.name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                Entity::service(ns, &a.service)
            }
            None => Entity::Host {
                node: e.node.to_string(),
                what: "app".to_string(),
            },
        };
        let base = Facts {
            container,
            ..Facts::default()
        };
        self.cause_from_text(e, &entity, e.ts, cause, &said, base);
    }

    /// Counts, for each error finding, the spans of its service in its minutes.
    pub(crate) fn finish_spans(&mut self) {
        let traces = std::mem::take(&mut self.spans.error_traces);
        for i in traces.into_keys() {
            let f = &mut self.findings[i];
            f.facts.requests = (f.start.0 / MINUTE_NS..=f.end.0 / MINUTE_NS)
                .map(|m| {
                    self.spans
                        .per_minute
                        .get(&(f.entity.clone(), m))
                        .copied()
                        .unwrap_or(0)
                })
                .sum();
        }
    }
}

/// The service a span belongs to: `service/<k8s.namespace.name>/<service.name>`.
pub fn span_entity(s: &Span) -> Entity {
    let ns = s
        .resource_attr("k8s.namespace.name")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    Entity::service(ns, &s.service)
}

/// The host a client span called: an address or a name (`cart`, `cart.shop.svc.cluster.local`).
pub(crate) fn peer_of(s: &Span) -> Option<String> {
    if !matches!(
        s.kind,
        crate::event::SpanKind::Client | crate::event::SpanKind::Producer
    ) {
        return None;
    }
    [
        "server.address",
        "net.peer.name",
        "net.peer.ip",
        "network.peer.address",
        "peer.service",
    ]
    .iter()
    .find_map(|k| s.attr(k).and_then(|v| v.as_str()).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Config;
    use crate::event::{SpanId, StatusCode};

    fn root(n: u64, at: Ts, error: bool) -> Span {
        Span {
            trace_id: TraceId(u128::from(n).to_be_bytes()),
            span_id: SpanId(n.to_be_bytes()),
            parent_span_id: None,
            name: "GET /".into(),
            kind: crate::event::SpanKind::Server,
            start: at,
            end: at,
            status: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: String::new(),
            service: "checkout".into(),
            resource: vec![],
            attributes: vec![],
            events: vec![],
        }
    }

    #[test]
    fn only_failed_roots_are_remembered_and_at_most_so_many_for_so_long() {
        let mut d = Detector::new(Config::default());
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC;
        // A flood of successful requests costs nothing.
        for n in 1..=10_000 {
            d.remember_root(&root(n, Ts(t0 + n), false));
        }
        assert_eq!((d.spans.roots.len(), d.spans.failed_roots.len()), (0, 0));
        // Failed ones are remembered, up to the cap: the oldest go first.
        for n in 1..=MAX_FAILED_ROOTS as u64 + 10 {
            d.remember_root(&root(n, Ts(t0 + n), true));
        }
        assert_eq!(d.spans.failed_roots.len(), MAX_FAILED_ROOTS);
        assert!(!d
            .spans
            .failed_roots
            .contains(&root(1, Ts(t0), true).trace_id));
        assert!(d
            .spans
            .failed_roots
            .contains(&root(MAX_FAILED_ROOTS as u64 + 10, Ts(t0), true).trace_id));
        // And for ten minutes of event time.
        d.remember_root(&root(
            0,
            Ts(t0 + ROOT_MEMORY_NS + MAX_FAILED_ROOTS as u64 + 11),
            false,
        ));
        assert_eq!(d.spans.failed_roots.len(), 0);
    }
}
