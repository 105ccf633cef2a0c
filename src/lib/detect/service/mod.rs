//! Service-level detectors: where errors and latency originate, from traces and logs alone.
//!
//! Most incidents of a microservice system show nowhere but in its traces and logs: one service
//! starts failing or gets slow, and every caller suffers. Counting error spans per service blames
//! every service on the path, and whichever erred first; this stage instead assembles each trace
//! and asks, per span, whether the trouble is its own:
//!
//! - **errors that originate** in a service: an error span none of whose children failed (a
//!   client span that failed with no server span under it counts against the callee it named);
//! - **self time**: a server span's duration minus the time its outbound calls took (their union,
//!   so parallel calls count once) — what the service itself spent;
//! - **network gap**: a client span's duration minus its server child's — time between the two
//!   services (the network, a proxy, a full accept queue);
//! - **log lines** by template: error lines that rise or are new, lines it always wrote that stop,
//!   error lines inside spans that answered as a success.
//!
//! Each signal is kept per service in fixed 10-second buckets (counts, and log-scale latency
//! histograms: a few kilobytes a bucket at most, 60 buckets a service), and each bucket, once its
//! traces are complete, is tested with the one before it against a baseline learnt from the same
//! stream: the buckets before them that were not themselves anomalous. The tests (`change.rs`) and
//! their thresholds are explained in `docs/correlation.md`. Errors at the rate they always had are
//! background, not a change. A capture that starts mid-incident has no baseline: a high rate of
//! originating errors from the start is still a finding, and its summary says there was no
//! baseline.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

mod change;
#[cfg(test)]
mod scenarios;

pub(crate) use self::change::template;
pub use self::change::Thresholds;
use self::change::{errors_changed, latency_changed, logs_changed, Change, Hist};
use super::{Detector, Evidence, Facts, FindingKind};
use crate::event::{Event, Span, SpanId, SpanKind, TraceId, Ts};
use crate::topology::Entity;

/// Width of a bucket.
pub(crate) const BUCKET_NS: u64 = 10 * Ts::NANOS_PER_SEC;
/// A trace is complete this long after the latest end of its spans seen so far.
const TRACE_SETTLE_NS: u64 = 10 * Ts::NANOS_PER_SEC;
/// Buckets kept per service: the baseline's reach.
const HISTORY: usize = 60;
/// How far back in event time a service's baseline reaches.
pub const BASELINE_NS: u64 = HISTORY as u64 * BUCKET_NS;
/// Buckets tested together (the window): 20 s.
const WINDOW: usize = 2;
/// Traces held open at once; beyond, the oldest are settled early (memory stays bounded).
const MAX_OPEN_TRACES: usize = 50_000;
/// Spans held per trace; a runaway trace keeps its first ones.
const MAX_TRACE_SPANS: usize = 512;
/// Up to this many spans, a trace's spans are found by id without a map.
const FEW_SPANS: usize = 16;
/// Templates counted per bucket; more are counted as error lines but not by template.
const MAX_TEMPLATES: usize = 64;
/// Buckets of baseline, and lines expected in the window, before a line can be said to have
/// stopped.
const MIN_VANISH_BASELINE: usize = 6;
const MIN_VANISH_EXPECTED: f64 = 10.0;
/// Buckets of baseline a log rate needs before a rise can be judged.
const MIN_LOG_BASELINE: usize = 3;
/// Evaluations without the anomaly after which a finding closes.
const RECOVERED_AFTER: u32 = 3;

/// One service's signals over one bucket.
#[derive(Clone, Default)]
struct Bucket {
    start: u64,
    requests: u64,
    errors: u64,
    /// Errors that originated in the service.
    origin: u64,
    /// Of those, calls that failed before reaching it (refused, unresolved, timed out connecting).
    unreached: u64,
    /// When the first and the last of them began.
    origin_span: Option<(Ts, Ts)>,
    self_time: Hist,
    /// Gaps of calls into the service.
    gap: Hist,
    /// Requests it answered as a success inside which it logged an error.
    silent: u64,
    /// Log lines of the service, and how many of each template (bounded).
    lines: u64,
    line_templates: HashMap<String, u64>,
    /// Error-level log lines of the service, and how many of each template (bounded).
    log_errors: u64,
    /// When the first and the last of them were written.
    log_span: Option<(Ts, Ts)>,
    templates: HashMap<String, u64>,
    /// Set once an evaluation found this bucket anomalous: it stays out of the baseline.
    anomalous: [bool; 4],
}

/// The service-level signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Signal {
    Errors,
    SelfTime,
    Gap,
    Logs,
}

impl Signal {
    const ALL: [Signal; 4] = [Signal::Errors, Signal::SelfTime, Signal::Gap, Signal::Logs];

    fn kind(self) -> FindingKind {
        match self {
            Signal::Errors => FindingKind::ServiceErrors,
            Signal::SelfTime => FindingKind::ServiceLatency,
            Signal::Gap => FindingKind::NetworkLatency,
            Signal::Logs => FindingKind::ErrorLogs,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Examples kept per service, for evidence.
#[derive(Clone)]
struct Example {
    ts: Ts,
    seq: u64,
    line: String,
    value: u64,
}

#[derive(Default)]
struct Series {
    buckets: VecDeque<Bucket>,
    /// Callers seen (service entities), for linking their symptoms to this service.
    callers: BTreeSet<Entity>,
    /// The callee most often named by errors that originated here in a client span.
    callee_errors: HashMap<Entity, u64>,
    /// Recent examples: originating errors, slowest self times, largest gaps.
    examples: [VecDeque<Example>; 4],
    /// Open findings per signal, and evaluations since they were last anomalous.
    quiet: [u32; 4],
}

/// A span as the trace assembler keeps it.
#[derive(Clone)]
struct Lite {
    id: SpanId,
    parent: Option<SpanId>,
    service: Arc<Entity>,
    kind: SpanKind,
    start: Ts,
    end: Ts,
    error: bool,
    /// A client span that got an answer (an HTTP status): it reached its server.
    answered: bool,
    /// The callee a client span named, resolved to a service when known.
    peer: Option<Entity>,
    seq: u64,
    name: crate::event::Name,
    node: crate::event::Name,
}

/// A trace's spans by id; of spans with the same id, the last. Most traces a node sees hold a
/// span or two: those are searched, faster than a map is built.
struct ById<'a> {
    spans: &'a [Lite],
    map: Option<FxHashMap<SpanId, usize>>,
}

impl<'a> ById<'a> {
    fn new(spans: &'a [Lite]) -> ById<'a> {
        let map = (spans.len() > FEW_SPANS)
            .then(|| spans.iter().enumerate().map(|(i, s)| (s.id, i)).collect());
        ById { spans, map }
    }

    fn position(&self, id: &SpanId) -> Option<usize> {
        match &self.map {
            Some(m) => m.get(id).copied(),
            None => self.spans.iter().rposition(|s| s.id == *id),
        }
    }
}

#[derive(Default)]
struct OpenTrace {
    spans: Vec<Lite>,
    /// Spans inside which an error line was logged.
    error_logs: Vec<SpanId>,
    due: Ts,
}

/// The open traces: by id, a slot in a slab. The map's entries stay small (a busy node holds
/// thousands of traces open, looked up at random by id): most of them fit in the cache, and a
/// slot freed by a settled trace is taken by the next new one while it is still in the cache.
#[derive(Default)]
struct OpenTraces {
    slot: FxHashMap<TraceId, u32>,
    traces: Vec<OpenTrace>,
    free: Vec<u32>,
}

impl OpenTraces {
    fn len(&self) -> usize {
        self.slot.len()
    }

    /// The trace, opened (empty) if it is not.
    fn open(&mut self, id: TraceId) -> &mut OpenTrace {
        let i = *self
            .slot
            .entry(id)
            .or_insert_with(|| match self.free.pop() {
                Some(i) => i,
                None => {
                    self.traces.push(OpenTrace::default());
                    (self.traces.len() - 1) as u32
                }
            });
        &mut self.traces[i as usize]
    }

    /// The trace, closed.
    fn close(&mut self, id: &TraceId) -> Option<OpenTrace> {
        let i = self.slot.remove(id)?;
        self.free.push(i);
        Some(std::mem::take(&mut self.traces[i as usize]))
    }

    /// Every open trace, closed.
    fn drain(&mut self) -> Vec<OpenTrace> {
        let traces = &mut self.traces;
        let open = self
            .slot
            .drain()
            .map(|(_, i)| std::mem::take(&mut traces[i as usize]))
            .collect();
        self.traces.clear();
        self.free.clear();
        open
    }
}

#[derive(Default)]
pub(crate) struct Services {
    open: OpenTraces,
    /// (due, trace) of open traces; a trace's older entries are stale when its due moved.
    due: BTreeSet<(Ts, TraceId)>,
    /// No trace is due before this (the first of `due`, or earlier): most events pass the check
    /// for settled traces on this alone.
    earliest: Ts,
    series: hashbrown::HashMap<Entity, Series>,
    /// The start of the next bucket to evaluate.
    next_eval: Option<u64>,
    pub(crate) thresholds: Thresholds,
}

impl Services {
    /// Settles the trace at `due` (its entry in `due`, and `earliest` kept at or before it).
    fn schedule(&mut self, due: Ts, trace: TraceId) {
        self.due.insert((due, trace));
        self.earliest = self.earliest.min(due);
    }

    /// The series of a service, made on first use (the entity is copied only then).
    fn series_of(&mut self, service: &Entity) -> &mut Series {
        self.series.entry_ref(service).or_default()
    }

    /// The services with samples of a latency signal in bucket `b`.
    fn active(&self, b: u64, signal: Signal) -> usize {
        self.series
            .values()
            .filter(|s| {
                s.buckets.iter().any(|x| {
                    x.start == b
                        && match signal {
                            Signal::SelfTime => x.self_time.n > 0,
                            Signal::Gap => x.gap.n > 0,
                            _ => x.requests > 0,
                        }
                })
            })
            .count()
    }
}

impl Detector {
    /// Takes a span into its trace; settles traces and evaluates buckets as time goes on.
    /// `error` and `http_status` are the span's, read once by the caller.
    pub(crate) fn service_span(
        &mut self,
        e: &Event,
        s: &Span,
        entity: &Arc<Entity>,
        error: bool,
        http_status: Option<i64>,
    ) {
        let peer = if matches!(s.kind, SpanKind::Client | SpanKind::Producer) {
            super::spans::peer_of(s).and_then(|h| self.resolve_host(&h, entity))
        } else {
            None
        };
        let lite = Lite {
            id: s.span_id,
            parent: s.parent_span_id,
            service: entity.clone(),
            kind: s.kind,
            start: s.start,
            end: s.end,
            error,
            answered: http_status.is_some(),
            peer,
            seq: e.seq,
            name: s.name.clone(),
            node: e.node.clone(),
        };
        let sv = &mut self.services;
        let t = sv.open.open(s.trace_id);
        if t.spans.len() < MAX_TRACE_SPANS {
            // Most traces seen by one node hold a span or two: no room for four.
            if t.spans.capacity() == 0 {
                t.spans.reserve_exact(1);
            }
            t.spans.push(lite);
        }
        let due = Ts(s.end.max(s.start).0.saturating_add(TRACE_SETTLE_NS));
        if due > t.due {
            sv.due.remove(&(t.due, s.trace_id));
            t.due = due;
            sv.schedule(due, s.trace_id);
        }
        self.service_tick(e.ts);
    }

    /// Counts an application's log line against its service, by template; error-level lines
    /// apart.
    pub(crate) fn service_log(
        &mut self,
        e: &Event,
        service: &Entity,
        text: &str,
        error: bool,
        at: Option<(TraceId, SpanId)>,
    ) {
        let template = template(text);
        let b = self.bucket(service, e.ts);
        b.lines += 1;
        if b.line_templates.len() < MAX_TEMPLATES || b.line_templates.contains_key(&template) {
            *b.line_templates.entry(template.clone()).or_default() += 1;
        }
        if !error {
            return;
        }
        // An error line written inside a span: if that span says it succeeded, the request was
        // answered as a success while the service knew it failed.
        if let Some((trace, span)) = at {
            let t = self.services.open.open(trace);
            if t.error_logs.len() < MAX_TRACE_SPANS {
                t.error_logs.push(span);
            }
            if t.due == Ts(0) {
                t.due = Ts(e.ts.0.saturating_add(TRACE_SETTLE_NS));
                let due = t.due;
                self.services.schedule(due, trace);
            }
        }
        let line = e.to_string();
        let b = self.bucket(service, e.ts);
        b.log_errors += 1;
        b.log_span = Some(match b.log_span {
            Some((a, z)) => (a.min(e.ts), z.max(e.ts)),
            None => (e.ts, e.ts),
        });
        if b.templates.len() < MAX_TEMPLATES || b.templates.contains_key(&template) {
            *b.templates.entry(template).or_default() += 1;
        }
        let series = self.services.series_of(service);
        let ex = &mut series.examples[Signal::Logs.index()];
        ex.push_back(Example {
            ts: e.ts,
            seq: e.seq,
            line,
            value: 1,
        });
        if ex.len() > super::MAX_EVIDENCE {
            ex.pop_front();
        }
    }

    /// Settles the traces that are due and evaluates the buckets that are complete.
    pub(crate) fn service_tick(&mut self, now: Ts) {
        if now >= self.services.earliest || self.services.open.len() > MAX_OPEN_TRACES {
            loop {
                let sv = &mut self.services;
                let first = match sv.due.first() {
                    Some(&(due, id)) if due <= now || sv.open.len() > MAX_OPEN_TRACES => (due, id),
                    Some(&(due, _)) => {
                        sv.earliest = due;
                        break;
                    }
                    None => {
                        sv.earliest = Ts(u64::MAX);
                        break;
                    }
                };
                sv.due.remove(&first);
                if let Some(t) = sv.open.close(&first.1) {
                    self.settle(t.spans, &t.error_logs);
                }
            }
        }
        // A bucket is complete once every trace that began in it has settled: its end plus the
        // settling time (traces longer than that are rare and land in their own bucket anyway).
        let Some(first) = self.services.next_eval.or_else(|| {
            self.services
                .series
                .values()
                .filter_map(|s| s.buckets.front().map(|b| b.start))
                .min()
        }) else {
            return;
        };
        let mut b = first;
        while b + BUCKET_NS + TRACE_SETTLE_NS <= now.0 {
            self.evaluate(b);
            b += BUCKET_NS;
        }
        self.services.next_eval = Some(b);
    }

    /// Ends the stream: settles every trace and evaluates every bucket.
    pub(crate) fn finish_services(&mut self) {
        let mut traces = self.services.open.drain();
        self.services.due.clear();
        self.services.earliest = Ts(u64::MAX);
        traces.sort_by_key(|t| t.spans.first().map(|s| (s.start, s.seq)));
        for t in traces {
            self.settle(t.spans, &t.error_logs);
        }
        let starts = || {
            self.services
                .series
                .values()
                .flat_map(|s| s.buckets.front().zip(s.buckets.back()))
        };
        let first = starts().map(|(a, _)| a.start).min();
        let last = starts().map(|(_, b)| b.start).max();
        let (Some(first), Some(last)) = (self.services.next_eval.or(first), last) else {
            return;
        };
        let mut b = first;
        while b <= last {
            self.evaluate(b);
            b += BUCKET_NS;
        }
        self.services.next_eval = Some(b);
    }

    /// Turns one complete trace into observations of its services.
    fn settle(&mut self, mut spans: Vec<Lite>, error_logs: &[SpanId]) {
        spans.sort_by_key(|s| (s.start, s.seq));
        let by_id = ById::new(&spans);
        let position = |id: &SpanId| by_id.position(id);
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, s) in spans.iter().enumerate() {
            if let Some(p) = s.parent.as_ref().and_then(position) {
                if p != i {
                    children[p].push(i);
                }
            }
        }
        let mut origins: BTreeSet<Entity> = BTreeSet::new();
        for (i, s) in spans.iter().enumerate() {
            let entry = matches!(s.kind, SpanKind::Server | SpanKind::Consumer)
                || s.parent.is_none_or(|p| position(&p).is_none());
            if entry {
                let silent = !s.error && error_logs.contains(&s.id);
                let own_calls = calls_of(&spans, &children, i);
                let busy = union_ns(&own_calls, s.start, s.end);
                let self_ns = s.end.saturating_sub(s.start).saturating_sub(busy);
                let b = self.bucket(&s.service, s.start);
                b.requests += 1;
                b.errors += s.error as u64;
                b.silent += silent as u64;
                b.self_time.add(self_ns);
                self.example(&s.service, Signal::SelfTime, s, self_ns, "self time");
            }
            // A call into another service: the gap between the client's and the server's view.
            if s.kind == SpanKind::Client {
                if let Some(&c) = children[i]
                    .iter()
                    .find(|&&c| spans[c].kind == SpanKind::Server)
                {
                    let server = &spans[c];
                    let gap = s
                        .end
                        .saturating_sub(s.start)
                        .saturating_sub(server.end.saturating_sub(server.start));
                    let callee = server.service.clone();
                    if callee != s.service {
                        self.bucket(&callee, s.start).gap.add(gap);
                        let caller = (*s.service).clone();
                        let series = self.services.series_of(&callee);
                        series.callers.insert(caller);
                        self.example(&callee, Signal::Gap, s, gap, "network gap");
                    }
                }
            }
            if s.error && !children[i].iter().any(|&c| spans[c].error) {
                // A client call that failed with no server span under it: the callee it named, when
                // known, is where it failed — it answered with an error without tracing it, or the
                // call never reached it (refused, unresolved); else the caller itself.
                let traced = children[i]
                    .iter()
                    .any(|&c| spans[c].kind == SpanKind::Server);
                let reached = traced || s.answered;
                let at = match (&s.peer, s.kind, traced) {
                    (Some(p), SpanKind::Client, false) => p.clone(),
                    _ => (*s.service).clone(),
                };
                if origins.insert(at.clone()) {
                    let b = self.bucket(&at, s.start);
                    b.origin += 1;
                    b.origin_span = Some(match b.origin_span {
                        Some((a, z)) => (a.min(s.start), z.max(s.start)),
                        None => (s.start, s.start),
                    });
                    // A call that never reached its callee is a request of the callee that failed.
                    if at != *s.service {
                        b.requests += 1;
                        b.unreached += !reached as u64;
                    }
                    self.example(&at, Signal::Errors, s, 1, "error");
                }
                // A caller's own error on a call that reached its callee (a timeout, a bad
                // answer): remember the callee, for linking it to the callee's slowdown.
                if reached || s.kind == SpanKind::Client {
                    if let Some(callee) = children[i]
                        .iter()
                        .map(|&c| &spans[c].service)
                        .find(|&c| *c != s.service)
                        .map(|c| (**c).clone())
                        .or_else(|| s.peer.clone().filter(|p| *p != at))
                    {
                        let series = self.services.series_of(&at);
                        *series.callee_errors.entry(callee).or_default() += 1;
                    }
                }
            }
        }
    }

    fn bucket(&mut self, service: &Entity, at: Ts) -> &mut Bucket {
        let start = at.0 / BUCKET_NS * BUCKET_NS;
        let series = self.services.series_of(service);
        let pos = series.buckets.iter().rposition(|b| b.start <= start);
        if let Some(p) = pos.filter(|&p| series.buckets[p].start == start) {
            return &mut series.buckets[p];
        }
        let at = pos.map_or(0, |p| p + 1);
        series.buckets.insert(
            at,
            Bucket {
                start,
                ..Bucket::default()
            },
        );
        trim(&mut series.buckets);
        let p = series
            .buckets
            .iter()
            .position(|b| b.start == start)
            .unwrap_or(0);
        &mut series.buckets[p]
    }

    fn example(&mut self, service: &Entity, signal: Signal, s: &Lite, value: u64, what: &str) {
        let series = self.services.series_of(service);
        let ex = &mut series.examples[signal.index()];
        // Keep the most recent errors, and the largest recent values of a latency. Where it
        // goes is decided first: most latency samples are not kept, and their line is not made.
        let slot = if signal == Signal::Errors {
            None
        } else {
            ex.retain(|x| s.start.saturating_sub(x.ts) <= BUCKET_NS * WINDOW as u64);
            if ex.len() < 4 {
                None
            } else {
                match ex.iter().enumerate().min_by_key(|(_, x)| x.value) {
                    Some((i, min)) if min.value < value => Some(i),
                    _ => return,
                }
            }
        };
        let line = format!(
            "{}  TRACE  span  {:<12} {} {} {} ({what} {:.1} ms){}",
            s.start,
            if s.node.is_empty() { "-" } else { &s.node },
            s.service.short(),
            s.kind.as_str(),
            s.name,
            value as f64 / 1e6,
            if s.error { " ERROR" } else { "" }
        );
        let item = Example {
            ts: s.start,
            seq: s.seq,
            line,
            value,
        };
        match slot {
            Some(i) => ex[i] = item,
            None => {
                ex.push_back(item);
                if signal == Signal::Errors && ex.len() > super::MAX_EVIDENCE {
                    ex.pop_front();
                }
            }
        }
    }

    /// Tests the window that ends with bucket `b` for every service and signal.
    fn evaluate(&mut self, b: u64) {
        let mut services: Vec<Entity> = self.services.series.keys().cloned().collect();
        services.sort();
        for signal in Signal::ALL {
            let outcomes: Vec<Option<Change>> = services
                .iter()
                .map(|service| self.test(service, signal, b))
                .collect();
            // A latency that shifts in most services at once is the node's (CPU contention of the
            // whole machine, a clock step), not one service's: no single service is blamed.
            let shifted = outcomes.iter().filter(|c| c.is_some()).count();
            let active = self.services.active(b, signal);
            let shared = signal != Signal::Errors
                && signal != Signal::Logs
                && shifted >= 3
                && shifted * 5 >= active * 3;
            for (service, outcome) in services.iter().zip(outcomes) {
                self.apply(service, signal, b, outcome.filter(|_| !shared));
            }
        }
    }

    fn test(&mut self, service: &Entity, signal: Signal, b: u64) -> Option<Change> {
        let th = self.services.thresholds.clone();
        let series = self.services.series.get_mut(service)?;
        let win_start = b.saturating_sub(BUCKET_NS * (WINDOW as u64 - 1));
        let (window, baseline): (Vec<&Bucket>, Vec<&Bucket>) = series
            .buckets
            .iter()
            .filter(|x| x.start <= b)
            .partition(|x| x.start >= win_start);
        let baseline: Vec<&Bucket> = baseline
            .into_iter()
            .filter(|x| !x.anomalous[signal.index()])
            .collect();
        let change = match signal {
            Signal::Errors => {
                let n: u64 = window.iter().map(|x| x.requests).sum();
                let k: u64 = window.iter().map(|x| x.origin).sum();
                let n0: u64 = baseline.iter().map(|x| x.requests).sum();
                let k0: u64 = baseline.iter().map(|x| x.origin).sum();
                let unreached: u64 = window.iter().map(|x| x.unreached).sum();
                let first = window
                    .iter()
                    .filter_map(|x| x.origin_span)
                    .map(|x| x.0)
                    .min();
                let last = window
                    .iter()
                    .filter_map(|x| x.origin_span)
                    .map(|x| x.1)
                    .max();
                errors_changed(&th, k, n, k0, n0).map(|mut c| {
                    c.unreached = unreached * 2 > k;
                    c.from = first.unwrap_or(Ts(win_start));
                    c.to = last.unwrap_or(Ts(b + BUCKET_NS));
                    c
                })
            }
            Signal::Logs => {
                let k: u64 = window.iter().map(|x| x.log_errors).sum();
                let k0: u64 = baseline.iter().map(|x| x.log_errors).sum();
                let known: BTreeSet<&String> =
                    baseline.iter().flat_map(|x| x.templates.keys()).collect();
                let mut new: HashMap<&String, u64> = HashMap::new();
                for x in &window {
                    for (t, n) in &x.templates {
                        if !known.contains(t) {
                            *new.entry(t).or_default() += n;
                        }
                    }
                }
                let top = new
                    .iter()
                    .max_by_key(|(t, n)| (**n, std::cmp::Reverse(**t)))
                    .map(|(t, n)| ((*t).clone(), *n));
                let fresh: u64 = new.values().sum();
                let silent: u64 = window.iter().map(|x| x.silent).sum();
                let first = window.iter().filter_map(|x| x.log_span).map(|x| x.0).min();
                let last = window.iter().filter_map(|x| x.log_span).map(|x| x.1).max();
                let rose = logs_changed(&th, k, window.len(), k0, baseline.len(), fresh, top).map(
                    |mut c| {
                        c.silent = silent;
                        c.from = first.unwrap_or(Ts(win_start));
                        c.to = last.unwrap_or(Ts(b + BUCKET_NS));
                        c
                    },
                );
                rose.or_else(|| vanished(&window, &baseline))
            }
            Signal::SelfTime | Signal::Gap => {
                let pick = |x: &Bucket| {
                    if signal == Signal::SelfTime {
                        x.self_time.clone()
                    } else {
                        x.gap.clone()
                    }
                };
                let mut w = Hist::default();
                window.iter().for_each(|x| w.merge(&pick(x)));
                let mut h = Hist::default();
                baseline.iter().for_each(|x| h.merge(&pick(x)));
                latency_changed(&th, &w, &h)
            }
        };
        // What the newest bucket adds, so that a finding extended window after window counts each
        // request once.
        let newest = series.buckets.iter().find(|x| x.start == b);
        let added = match (&change, newest, signal) {
            (Some(_), Some(x), Signal::Errors) => x.origin,
            (Some(_), Some(x), Signal::Logs) => x.log_errors,
            (Some(c), Some(x), _) => {
                let h = if signal == Signal::SelfTime {
                    &x.self_time
                } else {
                    &x.gap
                };
                if h.n == 0 {
                    0
                } else {
                    h.above(c.threshold_bucket)
                }
            }
            _ => 0,
        };
        let change = change.map(|mut c| {
            c.added = added;
            c
        });
        if change.is_some() {
            // The window's buckets stay out of the baseline of what comes next.
            for x in series.buckets.iter_mut() {
                if x.start >= win_start && x.start <= b {
                    x.anomalous[signal.index()] = true;
                }
            }
        }
        // Errors are placed by their own times; a latency shift by its window.
        change.map(|mut c| {
            if c.from == Ts(0) {
                c.from = Ts(win_start);
                c.to = Ts(b + BUCKET_NS);
            }
            c
        })
    }

    fn apply(&mut self, service: &Entity, signal: Signal, b: u64, change: Option<Change>) {
        let kind = signal.kind();
        let key = "";
        let open = self
            .open
            .contains_key(&(kind, service.clone(), key.to_string()));
        let Some(c) = change else {
            if open {
                let series = self.services.series_of(service);
                series.quiet[signal.index()] += 1;
                if series.quiet[signal.index()] >= RECOVERED_AFTER {
                    series.quiet[signal.index()] = 0;
                    self.close(kind, service, key, Ts(b));
                }
            }
            return;
        };
        let series = self.services.series_of(service);
        series.quiet[signal.index()] = 0;
        let clients: Vec<Entity> = series.callers.iter().cloned().collect();
        let peer = series
            .callee_errors
            .iter()
            .max_by_key(|(e, n)| (**n, std::cmp::Reverse((*e).clone())))
            .map(|(e, _)| e.clone());
        let examples: Vec<Example> = series.examples[signal.index()].iter().cloned().collect();
        let summary = c.summary(service, signal);
        let score = c.score;
        let i = match self.open.get(&(kind, service.clone(), key.to_string())) {
            Some(&i) => {
                let f = &mut self.findings[i];
                f.end = f.end.max(c.to);
                f.count += c.added;
                // The strongest window describes the change.
                if score > f.facts.score {
                    f.summary = summary;
                    f.facts.score = score;
                    f.facts.message = Some(c.detail.clone());
                }
                i
            }
            None => {
                let facts = Facts {
                    clients: clients.clone(),
                    peer: peer.clone().filter(|_| signal == Signal::Errors),
                    message: Some(c.detail.clone()),
                    score,
                    ..Facts::default()
                };
                self.findings.push(super::Finding {
                    id: self.findings.len(),
                    kind,
                    layer: kind.layer(),
                    entity: service.clone(),
                    start: c.from,
                    end: c.to,
                    count: c.count,
                    summary,
                    facts,
                    evidence: Vec::new(),
                });
                let i = self.findings.len() - 1;
                self.open
                    .insert((kind, service.clone(), key.to_string()), i);
                i
            }
        };
        let f = &mut self.findings[i];
        f.facts.clients = clients;
        f.facts.unreached |= c.unreached;
        if signal == Signal::Errors && peer.is_some() {
            f.facts.peer = peer;
        }
        for x in examples {
            if f.evidence.len() < super::MAX_EVIDENCE && !f.evidence.iter().any(|e| e.seq == x.seq)
            {
                f.evidence.push(Evidence {
                    seq: x.seq,
                    ts: x.ts,
                    line: x.line,
                });
            }
        }
    }

    /// For tests and tuning: the thresholds in force.
    pub fn service_thresholds(&mut self) -> &mut Thresholds {
        &mut self.services.thresholds
    }
}

/// A line the service wrote steadily (in at least 80 % of the baseline's buckets, 10 or more
/// expected in the window) that it stopped writing while it went on writing others: a code path no
/// longer taken, often a swallowed exception that logs nothing.
fn vanished(window: &[&Bucket], baseline: &[&Bucket]) -> Option<Change> {
    let active: u64 = window.iter().map(|x| x.lines).sum();
    if baseline.len() < MIN_VANISH_BASELINE || active == 0 {
        return None;
    }
    let mut seen: HashMap<&String, (usize, u64)> = HashMap::new();
    for x in baseline {
        for (t, n) in &x.line_templates {
            let e = seen.entry(t).or_default();
            e.0 += 1;
            e.1 += n;
        }
    }
    let (template, expected) = seen
        .into_iter()
        .filter(|(_, (buckets, _))| buckets * 5 >= baseline.len() * 4)
        .map(|(t, (_, n))| (t, n as f64 / baseline.len() as f64 * window.len() as f64))
        .filter(|(t, expected)| {
            *expected >= MIN_VANISH_EXPECTED
                && window.iter().all(|x| !x.line_templates.contains_key(*t))
                && window
                    .iter()
                    .all(|x| x.line_templates.len() < MAX_TEMPLATES)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))?;
    let per_minute = expected / window.len() as f64 * (60e9 / BUCKET_NS as f64);
    let start = window.first().map_or(0, |x| x.start);
    Some(Change {
        from: Ts(start),
        to: Ts(start + BUCKET_NS * window.len() as u64),
        count: expected.round() as u64,
        added: 0,
        threshold_bucket: 0,
        // P(none | Poisson(expected)) = e^-expected: as significant as a z of sqrt(2 expected).
        score: (2.0 * expected).sqrt(),
        before: per_minute,
        after: 0.0,
        no_baseline: false,
        unreached: false,
        template: Some(template.clone()),
        silent: 0,
        vanished: true,
        detail: format!(
            "\"{template}\" written {expected:.0} times per {} s before, none now, while it logs {active} other lines",
            window.len() as u64 * BUCKET_NS / Ts::NANOS_PER_SEC
        ),
    })
}

fn trim(buckets: &mut VecDeque<Bucket>) {
    while buckets.len() > HISTORY {
        buckets.pop_front();
    }
}

/// The calls a span's service made while serving it: its client children, and those of its
/// internal children in the same service, recursively.
fn calls_of(spans: &[Lite], children: &[Vec<usize>], i: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut stack: Vec<usize> = children[i].clone();
    let mut seen = 0;
    while let Some(c) = stack.pop() {
        seen += 1;
        if seen > MAX_TRACE_SPANS {
            break;
        }
        let s = &spans[c];
        match s.kind {
            SpanKind::Client | SpanKind::Producer => out.push((s.start.0, s.end.0)),
            _ if s.service == spans[i].service
                && !matches!(s.kind, SpanKind::Server | SpanKind::Consumer) =>
            {
                stack.extend(children[c].iter().copied())
            }
            _ => {}
        }
    }
    out
}

/// The time covered by intervals, clipped to [from, to].
pub(crate) fn union_ns(intervals: &[(u64, u64)], from: Ts, to: Ts) -> u64 {
    let mut v: Vec<(u64, u64)> = intervals
        .iter()
        .map(|&(a, b)| (a.max(from.0), b.min(to.0)))
        .filter(|(a, b)| b > a)
        .collect();
    v.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None;
    for (a, b) in v {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans are found by id the same with a map (long traces) and without (short ones): of
    /// spans with the same id, the last.
    #[test]
    fn spans_by_id_are_the_last_of_an_id_with_or_without_a_map() {
        for n in [1, 3, FEW_SPANS, FEW_SPANS + 1, 40] {
            let spans: Vec<Lite> = (0..n)
                .map(|i| Lite {
                    id: SpanId(((i % 5) as u64).to_be_bytes()),
                    parent: None,
                    service: Arc::new(Entity::service("shop", "cart")),
                    kind: SpanKind::Server,
                    start: Ts(i as u64),
                    end: Ts(i as u64),
                    error: false,
                    answered: false,
                    peer: None,
                    seq: i as u64,
                    name: "GET /".into(),
                    node: "node-1".into(),
                })
                .collect();
            let by_id = ById::new(&spans);
            assert_eq!(by_id.map.is_some(), n > FEW_SPANS);
            for k in 0..7u64 {
                let want = (0..n).rev().find(|i| (i % 5) as u64 == k);
                assert_eq!(
                    by_id.position(&SpanId(k.to_be_bytes())),
                    want,
                    "{n} spans, id {k}"
                );
            }
        }
    }

    fn bucket(i: u64, lines: &[(&str, u64)]) -> Bucket {
        Bucket {
            start: i * BUCKET_NS,
            lines: lines.iter().map(|(_, n)| n).sum(),
            line_templates: lines.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            ..Bucket::default()
        }
    }

    #[test]
    fn a_line_always_written_that_stops_is_a_change_and_a_rare_one_is_not() {
        let steady = [("order <*> priced", 8), ("GET /list", 20)];
        let base: Vec<Bucket> = (0..10).map(|i| bucket(i, &steady)).collect();
        let base: Vec<&Bucket> = base.iter().collect();
        let stopped = [
            bucket(10, &[("GET /list", 20)]),
            bucket(11, &[("GET /list", 19)]),
        ];
        let w: Vec<&Bucket> = stopped.iter().collect();
        let c = vanished(&w, &base).expect("the priced line stopped");
        assert_eq!(c.template.as_deref(), Some("order <*> priced"));
        assert!(c
            .summary(&Entity::service("shop", "catalog"), Signal::Logs)
            .contains("stopped logging"));
        // Still written, if less: no change of this kind.
        let fewer = [
            bucket(10, &[("order <*> priced", 2), ("GET /list", 20)]),
            bucket(11, &steady),
        ];
        let w: Vec<&Bucket> = fewer.iter().collect();
        assert!(vanished(&w, &base).is_none());
        // A line written now and then (in half the buckets) is not missed when absent.
        let sometimes: Vec<Bucket> = (0..10)
            .map(|i| bucket(i, if i % 2 == 0 { &steady } else { &steady[1..] }))
            .collect();
        let sometimes: Vec<&Bucket> = sometimes.iter().collect();
        let w: Vec<&Bucket> = stopped.iter().collect();
        assert!(vanished(&w, &sometimes).is_none());
        // A service that went silent altogether is not "a line stopped".
        let silent = [bucket(10, &[]), bucket(11, &[])];
        let w: Vec<&Bucket> = silent.iter().collect();
        assert!(vanished(&w, &base).is_none());
    }
}
