//! One request, read as a tree: did it fail or get slow, and where did that originate?
//!
//! `tapio correlate --trace-id` starts from one request. Its spans become a tree (parent to
//! child); the span where a failure originates is the error span none of whose children failed
//! (a client span that failed with no server span under it failed on the way to the callee it
//! names); the span where the time went is the one with the largest self time (its duration minus
//! the union of its children's). A request that succeeded is said to have succeeded, and no
//! incident is blamed on it unless one touched its spans.

use std::collections::HashMap;

use serde::Serialize;

use crate::event::{Span, SpanKind, Ts};
use crate::topology::Entity;

/// A span of the request, in tree order.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub depth: usize,
    pub service: Entity,
    pub name: String,
    pub kind: &'static str,
    pub start: Ts,
    pub duration_ns: u64,
    /// Its duration minus the time its children covered.
    pub self_ns: u64,
    pub error: bool,
    pub status: String,
    /// Why this span is marked: where the failure originates, or where the time went.
    pub mark: Option<String>,
}

/// The request and what it says.
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    pub trace_id: String,
    pub steps: Vec<Step>,
    pub failed: bool,
    /// Index into `steps` of the span where the failure originates.
    pub origin: Option<usize>,
    /// Index into `steps` of the span with the largest self time.
    pub slowest: Option<usize>,
    pub duration_ns: u64,
}

impl Request {
    /// The services where something went wrong (the origin), else every service of the request.
    pub fn suspects(&self) -> Vec<Entity> {
        let mut out: Vec<Entity> = match self.origin {
            Some(i) => vec![self.steps[i].service.clone()],
            None => self.steps.iter().map(|s| s.service.clone()).collect(),
        };
        out.sort();
        out.dedup();
        out
    }
}

/// Builds the tree of one trace's spans.
pub fn explain(mut spans: Vec<Span>) -> Option<Request> {
    if spans.is_empty() {
        return None;
    }
    spans.sort_by_key(|s| (s.start, s.span_id));
    let index: HashMap<_, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    let mut steps = Vec::with_capacity(spans.len());
    let mut order = Vec::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if order.len() > spans.len() {
            break;
        }
        order.push(i);
        let s = &spans[i];
        let covered: Vec<(u64, u64)> = children[i]
            .iter()
            .map(|&c| (spans[c].start.0, spans[c].end.0))
            .collect();
        let busy = crate::detect::service::union_ns(&covered, s.start, s.end);
        steps.push(Step {
            depth,
            service: crate::detect::span_entity(s),
            name: s.name.to_string(),
            kind: s.kind.as_str(),
            start: s.start,
            duration_ns: s.duration_ns(),
            self_ns: s.duration_ns().saturating_sub(busy),
            error: s.is_error(),
            status: match (s.http_status(), s.is_error()) {
                (Some(c), _) => format!("HTTP {c}"),
                (None, true) => format!("ERROR {}", s.status_message).trim_end().to_string(),
                (None, false) => "OK".into(),
            },
            mark: None,
        });
        for &c in children[i].iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    let pos: HashMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    // The deepest error span none of whose children failed.
    let origin = order
        .iter()
        .filter(|&&i| spans[i].is_error() && !children[i].iter().any(|&c| spans[c].is_error()))
        .max_by_key(|&&i| (steps[pos[&i]].depth, std::cmp::Reverse(spans[i].start)))
        .map(|&i| pos[&i]);
    if let Some(k) = origin {
        let i = order[k];
        let s = &spans[i];
        let unreached = s.kind == SpanKind::Client
            && !children[i]
                .iter()
                .any(|&c| spans[c].kind == SpanKind::Server);
        steps[k].mark = Some(if unreached {
            "← the failure originates here: the call got no answer from a traced server".into()
        } else {
            "← the failure originates here".into()
        });
    }
    let slowest = (0..steps.len()).max_by_key(|&k| (steps[k].self_ns, std::cmp::Reverse(k)));
    let failed = roots.iter().any(|&r| spans[r].is_error());
    let start = spans.iter().map(|s| s.start).min().unwrap_or_default();
    let end = spans.iter().map(|s| s.end).max().unwrap_or_default();
    // Where the time went, when one span took a good part of it by itself.
    let duration = end.saturating_sub(start);
    let slowest = slowest.filter(|&k| steps[k].self_ns * 10 >= duration * 3);
    if let Some(k) = slowest.filter(|&k| Some(k) != origin && steps.len() > 1) {
        steps[k].mark = Some(format!(
            "← most of its time: {:.1} ms of its own",
            steps[k].self_ns as f64 / 1e6
        ));
    }
    Some(Request {
        trace_id: spans[0].trace_id.to_string(),
        steps,
        failed,
        origin,
        slowest,
        duration_ns: duration,
    })
}
