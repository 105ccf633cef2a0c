//! Service-level detectors: where errors and latency originate, from traces alone.
//!
//! Most incidents of a microservice system show nowhere but in its traces: one service starts
//! failing or gets slow, and every caller suffers. Counting error spans per service blames every
//! service on the path, and whichever erred first; this stage instead assembles each trace and
//! asks, per span, whether the trouble is its own:
//!
//! - **errors that originate** in a service: an error span none of whose children failed (a
//!   client span that failed without reaching its server counts against the callee it named);
//! - **self time**: a server span's duration minus the time its outbound calls took (their union,
//!   so parallel calls count once) — what the service itself spent;
//! - **network gap**: a client span's duration minus its server child's — time between the two
//!   services (the network, a proxy, a full accept queue).
//!
//! Each signal is kept per service in fixed 10-second buckets (counts, and log-scale latency
//! histograms: a few hundred bytes a bucket, 60 buckets a service), and each bucket, once its
//! traces are complete, is tested against a baseline learnt from the same stream: the buckets
//! before it that were not themselves anomalous. The tests and their thresholds are in
//! `docs/correlation.md`; in short, an error rate must rise significantly (binomial z ≥ 4) and
//! substantially (at least twice the baseline and 5 points above it), a latency must have a
//! quarter of its samples above the baseline's 95th percentile (z ≥ 4) and a p90 at least 5 ms and
//! 50 % above it. Errors at the rate they always had are background, not a change. A capture that
//! starts mid-incident has no baseline: a high rate of originating errors from the start is still a
//! finding, and its summary says there was no baseline.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{Detector, Evidence, Facts, FindingKind};
use crate::event::{Event, Span, SpanId, SpanKind, TraceId, Ts};
use crate::topology::Entity;

/// Width of a bucket.
pub(crate) const BUCKET_NS: u64 = 10 * Ts::NANOS_PER_SEC;
/// A trace is complete this long after the latest end of its spans seen so far.
const TRACE_SETTLE_NS: u64 = 10 * Ts::NANOS_PER_SEC;
/// Buckets kept per service: the baseline's reach.
const HISTORY: usize = 60;
/// Buckets tested together (the window): 20 s.
const WINDOW: usize = 2;
/// Traces held open at once; beyond, the oldest are settled early (memory stays bounded).
const MAX_OPEN_TRACES: usize = 50_000;
/// Spans held per trace; a runaway trace keeps its first ones.
const MAX_TRACE_SPANS: usize = 512;
/// Templates counted per bucket; more are counted as error lines but not by template.
const MAX_TEMPLATES: usize = 64;
/// Buckets of baseline a log rate needs before a rise can be judged.
const MIN_LOG_BASELINE: usize = 3;
/// Evaluations without the anomaly after which a finding closes.
const RECOVERED_AFTER: u32 = 3;

/// Thresholds of the change tests (docs/correlation.md explains each).
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Baseline requests needed before a rise can be judged against it.
    pub min_baseline: u64,
    /// Originating errors needed in the window.
    pub min_errors: u64,
    /// Significance (binomial z-score) of a rise.
    pub z: f64,
    /// The window's error rate must reach this many times the baseline's …
    pub error_ratio: f64,
    /// … and exceed it by this much.
    pub error_margin: f64,
    /// Without a baseline (a capture that starts mid-incident): the rate and count that still count.
    pub no_baseline_rate: f64,
    pub no_baseline_errors: u64,
    /// Latency samples needed in the window.
    pub min_samples: u64,
    /// Share of the window's samples above the baseline's 95th percentile.
    pub exceed_share: f64,
    /// The window's p90 must exceed the baseline's by this factor and this much.
    pub latency_ratio: f64,
    pub latency_min_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_baseline: 50,
            min_errors: 5,
            z: 4.0,
            error_ratio: 2.0,
            error_margin: 0.05,
            no_baseline_rate: 0.2,
            no_baseline_errors: 10,
            min_samples: 10,
            exceed_share: 0.25,
            latency_ratio: 1.5,
            latency_min_ns: 20_000_000,
        }
    }
}

/// A latency histogram: bucket i holds durations in [2^(i/2) µs, 2^((i+1)/2) µs).
#[derive(Clone, Default)]
struct Hist {
    counts: Vec<u32>,
    n: u64,
}

const HIST_BUCKETS: usize = 64;

impl Hist {
    fn index(ns: u64) -> usize {
        let us = (ns / 1000).max(1) as f64;
        ((2.0 * us.log2()).floor() as usize).min(HIST_BUCKETS - 1)
    }

    /// The upper bound of a bucket, in ns.
    fn upper(i: usize) -> u64 {
        (2f64.powf((i + 1) as f64 / 2.0) * 1000.0) as u64
    }

    fn add(&mut self, ns: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; HIST_BUCKETS];
        }
        self.counts[Hist::index(ns)] += 1;
        self.n += 1;
    }

    fn merge(&mut self, o: &Hist) {
        if o.n == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; HIST_BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
    }

    /// The bucket holding the q-quantile.
    fn quantile_bucket(&self, q: f64) -> usize {
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= want {
                return i;
            }
        }
        HIST_BUCKETS - 1
    }

    fn quantile(&self, q: f64) -> u64 {
        Hist::upper(self.quantile_bucket(q))
    }

    fn above(&self, bucket: usize) -> u64 {
        self.counts.iter().skip(bucket + 1).map(|&c| c as u64).sum()
    }
}

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
    service: Entity,
    kind: SpanKind,
    start: Ts,
    end: Ts,
    error: bool,
    /// A client span that got an answer (an HTTP status): it reached its server.
    answered: bool,
    /// The callee a client span named, resolved to a service when known.
    peer: Option<Entity>,
    seq: u64,
    name: String,
    node: String,
}

#[derive(Default)]
struct OpenTrace {
    spans: Vec<Lite>,
    /// Spans inside which an error line was logged.
    error_logs: Vec<SpanId>,
    due: Ts,
}

#[derive(Default)]
pub(crate) struct Services {
    open: HashMap<TraceId, OpenTrace>,
    /// (due, trace) of open traces; a trace's older entries are stale when its due moved.
    due: BTreeSet<(Ts, TraceId)>,
    series: HashMap<Entity, Series>,
    /// The start of the next bucket to evaluate.
    next_eval: Option<u64>,
    pub(crate) thresholds: Thresholds,
}

impl Services {
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
    pub(crate) fn service_span(&mut self, e: &Event, s: &Span, entity: &Entity) {
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
            error: s.is_error(),
            answered: s.http_status().is_some(),
            peer,
            seq: e.seq,
            name: s.name.clone(),
            node: e.node.to_string(),
        };
        let sv = &mut self.services;
        let t = sv.open.entry(s.trace_id).or_default();
        if t.spans.len() < MAX_TRACE_SPANS {
            t.spans.push(lite);
        }
        let due = Ts(s.end.max(s.start).0.saturating_add(TRACE_SETTLE_NS));
        if due > t.due {
            sv.due.remove(&(t.due, s.trace_id));
            t.due = due;
            sv.due.insert((due, s.trace_id));
        }
        self.service_tick(e.ts);
    }

    /// Counts an application's error-level log line against its service, by template.
    pub(crate) fn service_log(
        &mut self,
        e: &Event,
        service: &Entity,
        text: &str,
        at: Option<(TraceId, SpanId)>,
    ) {
        // An error line written inside a span: if that span says it succeeded, the request was
        // answered as a success while the service knew it failed.
        if let Some((trace, span)) = at {
            let t = self.services.open.entry(trace).or_default();
            if t.error_logs.len() < MAX_TRACE_SPANS {
                t.error_logs.push(span);
            }
            if t.due == Ts(0) {
                t.due = Ts(e.ts.0.saturating_add(TRACE_SETTLE_NS));
                self.services.due.insert((t.due, trace));
            }
        }
        let template = template(text);
        let line = crate::report::event_line(e);
        let b = self.bucket(service, e.ts);
        b.log_errors += 1;
        b.log_span = Some(match b.log_span {
            Some((a, z)) => (a.min(e.ts), z.max(e.ts)),
            None => (e.ts, e.ts),
        });
        if b.templates.len() < MAX_TEMPLATES || b.templates.contains_key(&template) {
            *b.templates.entry(template).or_default() += 1;
        }
        let series = self.services.series.entry(service.clone()).or_default();
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
        loop {
            let sv = &mut self.services;
            let first = match sv.due.first() {
                Some(&(due, id)) if due <= now || sv.open.len() > MAX_OPEN_TRACES => (due, id),
                _ => break,
            };
            sv.due.remove(&first);
            if let Some(t) = sv.open.remove(&first.1) {
                self.settle(t.spans, &t.error_logs);
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
        let mut traces: Vec<OpenTrace> = self.services.open.drain().map(|(_, t)| t).collect();
        self.services.due.clear();
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
        let by_id: HashMap<SpanId, usize> =
            spans.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, s) in spans.iter().enumerate() {
            if let Some(&p) = s.parent.as_ref().and_then(|p| by_id.get(p)) {
                if p != i {
                    children[p].push(i);
                }
            }
        }
        let mut origins: BTreeSet<Entity> = BTreeSet::new();
        for (i, s) in spans.iter().enumerate() {
            let entry = matches!(s.kind, SpanKind::Server | SpanKind::Consumer)
                || s.parent.is_none_or(|p| !by_id.contains_key(&p));
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
                        let caller = s.service.clone();
                        let series = self.services.series.entry(callee.clone()).or_default();
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
                    _ => s.service.clone(),
                };
                if origins.insert(at.clone()) {
                    let b = self.bucket(&at, s.start);
                    b.origin += 1;
                    b.origin_span = Some(match b.origin_span {
                        Some((a, z)) => (a.min(s.start), z.max(s.start)),
                        None => (s.start, s.start),
                    });
                    // A call that never reached its callee is a request of the callee that failed.
                    if at != s.service {
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
                        .map(|&c| spans[c].service.clone())
                        .find(|c| *c != s.service)
                        .or_else(|| s.peer.clone().filter(|p| *p != at))
                    {
                        let series = self.services.series.entry(at.clone()).or_default();
                        *series.callee_errors.entry(callee).or_default() += 1;
                    }
                }
            }
        }
    }

    fn bucket(&mut self, service: &Entity, at: Ts) -> &mut Bucket {
        let start = at.0 / BUCKET_NS * BUCKET_NS;
        let series = self.services.series.entry(service.clone()).or_default();
        let pos = series.buckets.iter().rposition(|b| b.start <= start);
        match pos {
            Some(p) if series.buckets[p].start == start => &mut series.buckets[p],
            Some(p) => {
                series.buckets.insert(
                    p + 1,
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
            None => {
                series.buckets.push_front(Bucket {
                    start,
                    ..Bucket::default()
                });
                trim(&mut series.buckets);
                let p = series
                    .buckets
                    .iter()
                    .position(|b| b.start == start)
                    .unwrap_or(0);
                &mut series.buckets[p]
            }
        }
    }

    fn example(&mut self, service: &Entity, signal: Signal, s: &Lite, value: u64, what: &str) {
        let series = self.services.series.entry(service.clone()).or_default();
        let ex = &mut series.examples[signal.index()];
        // Keep the most recent errors, and the largest recent values of a latency.
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
        if signal == Signal::Errors {
            ex.push_back(item);
            if ex.len() > super::MAX_EVIDENCE {
                ex.pop_front();
            }
            return;
        }
        // Latency: the largest of the last bucket or so.
        ex.retain(|x| s.start.saturating_sub(x.ts) <= BUCKET_NS * WINDOW as u64);
        if ex.len() < 4 {
            ex.push_back(item);
        } else if let Some(min) = ex.iter().enumerate().min_by_key(|(_, x)| x.value) {
            if min.1.value < value {
                let i = min.0;
                ex[i] = item;
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
                logs_changed(&th, k, window.len(), k0, baseline.len(), fresh, top).map(|mut c| {
                    c.silent = silent;
                    c.from = first.unwrap_or(Ts(win_start));
                    c.to = last.unwrap_or(Ts(b + BUCKET_NS));
                    c
                })
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
                let series = self.services.series.entry(service.clone()).or_default();
                series.quiet[signal.index()] += 1;
                if series.quiet[signal.index()] >= RECOVERED_AFTER {
                    series.quiet[signal.index()] = 0;
                    self.close(kind, service, key, Ts(b));
                }
            }
            return;
        };
        let series = self.services.series.entry(service.clone()).or_default();
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

/// A change found by a test.
#[derive(Clone, Debug)]
struct Change {
    from: Ts,
    to: Ts,
    /// How many requests were hit in the window.
    count: u64,
    /// Of those, in the newest bucket.
    added: u64,
    /// For latency: the baseline's p95 bucket, above which a sample counts as hit.
    threshold_bucket: usize,
    /// The size of the change, for ranking candidates (a z-score).
    score: f64,
    before: f64,
    after: f64,
    /// The baseline was missing (a capture that starts mid-incident).
    no_baseline: bool,
    /// Most errors were calls that never reached the service.
    unreached: bool,
    /// For logs: the new error template that says the most.
    template: Option<String>,
    /// For logs: requests answered as a success inside which the error was logged.
    silent: u64,
    detail: String,
}

impl Change {
    fn summary(&self, service: &Entity, signal: Signal) -> String {
        let s = service.short();
        let since = if self.no_baseline {
            " (no baseline: the capture starts mid-incident)".to_string()
        } else {
            String::new()
        };
        match signal {
            Signal::Errors if self.unreached => format!(
                "calls into {s} fail before reaching it: {:.1} % of its requests, was {:.1} %{since}",
                self.after * 100.0,
                self.before * 100.0
            ),
            Signal::Errors => format!(
                "errors originate in {s}: {:.1} % of its requests fail in its own code, was {:.1} %{since}",
                self.after * 100.0,
                self.before * 100.0
            ),
            Signal::SelfTime => format!(
                "{s} got slower in its own processing: self time p90 {} ms, was {} ms",
                ms(self.after),
                ms(self.before)
            ),
            Signal::Gap => format!(
                "calls into {s} are delayed between caller and server: network gap p90 {} ms, was {} ms",
                ms(self.after),
                ms(self.before)
            ),
            Signal::Logs => format!(
                "{s} logs errors: {:.0} a minute, was {:.1}{}{}",
                self.after,
                self.before,
                if self.silent > 0 {
                    format!(
                        "; {} request{} answered as a success",
                        self.silent,
                        if self.silent == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                self.template
                    .as_ref()
                    .map(|t| format!("; new: \"{}\"", crate::detect::text::first_line(t)))
                    .unwrap_or_default()
            ),
        }
    }
}

fn ms(ns: f64) -> String {
    let m = ns / 1e6;
    if m >= 10.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// A rise of originating errors: significant (binomial z) and substantial (ratio and margin).
fn errors_changed(th: &Thresholds, k: u64, n: u64, k0: u64, n0: u64) -> Option<Change> {
    if n == 0 || k < th.min_errors {
        return None;
    }
    let rate = k as f64 / n as f64;
    if n0 < th.min_baseline {
        // No baseline: only a high rate from the start counts.
        return (k >= th.no_baseline_errors && rate >= th.no_baseline_rate).then(|| Change {
            from: Ts(0),
            to: Ts(0),
            count: k,
            added: 0,
            threshold_bucket: 0,
            score: (k as f64).sqrt(),
            before: 0.0,
            after: rate,
            no_baseline: true,
            unreached: false,
            template: None,
            silent: 0,
            detail: format!(
                "{k} of {n} requests failed where they were served; no baseline before"
            ),
        });
    }
    let p0 = (k0 as f64 + 0.5) / (n0 as f64 + 1.0);
    let z = (k as f64 - n as f64 * p0) / (n as f64 * p0 * (1.0 - p0)).sqrt();
    let substantial = rate >= th.error_ratio * p0 && rate >= p0 + th.error_margin;
    (z >= th.z && substantial).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: 0,
        score: z,
        before: k0 as f64 / n0 as f64,
        after: rate,
        no_baseline: false,
        unreached: false,
        template: None,
        silent: 0,
        detail: format!(
            "{k} of {n} requests failed where they were served (baseline {k0} of {n0}); z = {z:.1}"
        ),
    })
}

/// A rise of error-level log lines: significant against the baseline's rate per bucket (Poisson
/// z), and either mostly lines of templates the baseline never had, or four times the usual rate.
fn logs_changed(
    th: &Thresholds,
    k: u64,
    window: usize,
    k0: u64,
    baseline: usize,
    fresh: u64,
    top: Option<(String, u64)>,
) -> Option<Change> {
    if k < th.min_errors || baseline < MIN_LOG_BASELINE || window == 0 {
        return None;
    }
    let per_bucket = (k0 as f64 + 1.0) / baseline as f64;
    let expected = per_bucket * window as f64;
    let z = (k as f64 - expected) / expected.sqrt();
    let new_lines = fresh * 2 >= k;
    let risen = k as f64 >= th.error_ratio * expected && (new_lines || k as f64 >= 4.0 * expected);
    let per_minute = |n: f64, buckets: f64| n / buckets * (60e9 / BUCKET_NS as f64);
    (z >= th.z && risen).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: 0,
        score: z,
        before: per_minute(k0 as f64, baseline as f64),
        after: per_minute(k as f64, window as f64),
        no_baseline: false,
        unreached: false,
        template: top.as_ref().filter(|_| new_lines).map(|(t, _)| t.clone()),
        silent: 0,
        detail: format!(
            "{k} error lines in {} s (baseline {k0} in {} s); {fresh} of a template never seen before{}; z = {z:.1}",
            window as u64 * BUCKET_NS / Ts::NANOS_PER_SEC,
            baseline as u64 * BUCKET_NS / Ts::NANOS_PER_SEC,
            top.map(|(t, n)| format!(" (\"{t}\" ×{n})")).unwrap_or_default()
        ),
    })
}

/// A log message with its variable parts masked: words with digits, quoted strings and long hex
/// become `<*>`, so that one statement's lines share one template.
pub(crate) fn template(text: &str) -> String {
    let line = crate::detect::text::first_line(text);
    let mut out = String::with_capacity(line.len().min(200));
    for (i, word) in line.split_whitespace().take(24).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let variable = word.chars().any(|c| c.is_ascii_digit())
            || word.starts_with(['\'', '"'])
            || (word.len() >= 8 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        out.push_str(if variable { "<*>" } else { word });
    }
    out
}

/// A latency shift: many samples above the baseline's p95 (binomial z against 5 %), and a p90
/// that rose by a ratio and an absolute amount.
fn latency_changed(th: &Thresholds, w: &Hist, base: &Hist) -> Option<Change> {
    if w.n < th.min_samples || base.n < th.min_baseline {
        return None;
    }
    let p95 = base.quantile_bucket(0.95);
    let k = w.above(p95);
    let share = k as f64 / w.n as f64;
    let p = 0.05;
    let z = (k as f64 - w.n as f64 * p) / (w.n as f64 * p * (1.0 - p)).sqrt();
    let (before, after) = (base.quantile(0.9) as f64, w.quantile(0.9) as f64);
    let shifted = after >= th.latency_ratio * before && after - before >= th.latency_min_ns as f64;
    (share >= th.exceed_share && z >= th.z && shifted).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: p95,
        score: z,
        before,
        after,
        no_baseline: false,
        unreached: false,
        template: None,
        silent: 0,
        detail: format!(
            "{k} of {} samples above the baseline's p95 ({} ms); p90 {} ms, was {} ms; z = {z:.1}",
            w.n,
            ms(Hist::upper(p95) as f64),
            ms(after),
            ms(before)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_errors_at_the_same_rate_are_no_change() {
        let th = Thresholds::default();
        // 3 % before, 3 % now: nothing, however many requests.
        assert!(errors_changed(&th, 30, 1000, 300, 10_000).is_none());
        // 3 % before, 40 % now: a change.
        let c = errors_changed(&th, 400, 1000, 300, 10_000).expect("a rise");
        assert!(c.score > 10.0, "{c:?}");
        // A handful of errors is not enough, however rare they were.
        assert!(errors_changed(&th, 3, 100, 0, 10_000).is_none());
    }

    #[test]
    fn a_capture_that_starts_mid_incident_needs_a_high_rate() {
        let th = Thresholds::default();
        let c = errors_changed(&th, 50, 100, 0, 0).expect("no baseline, but half fail");
        assert!(c.no_baseline);
        assert!(errors_changed(&th, 5, 100, 0, 0).is_none());
    }

    #[test]
    fn a_latency_shift_needs_many_samples_above_the_old_tail_and_a_real_rise() {
        let th = Thresholds::default();
        let mut base = Hist::default();
        for i in 0..1000 {
            base.add(10_000_000 + (i % 50) * 100_000); // 10–15 ms
        }
        let mut same = Hist::default();
        for i in 0..100 {
            same.add(10_000_000 + (i % 50) * 100_000);
        }
        assert!(latency_changed(&th, &same, &base).is_none());
        let mut slow = Hist::default();
        for i in 0..100 {
            slow.add(60_000_000 + (i % 50) * 100_000); // 60–65 ms
        }
        let c = latency_changed(&th, &slow, &base).expect("a shift");
        assert!(c.after > 2.0 * c.before, "{c:?}");
    }

    #[test]
    fn log_templates_mask_what_varies() {
        assert_eq!(
            template("exception while pricing cart: KeyError 'sku-20233'"),
            "exception while pricing cart: KeyError <*>"
        );
        assert_eq!(
            template("request 7f3a9c0e12 failed after 3 retries\n  at foo()"),
            "request <*> failed after <*> retries"
        );
        assert_eq!(
            template("upstream quota check failed: limit exceeded for tenant 4711"),
            template("upstream quota check failed: limit exceeded for tenant 12")
        );
    }

    #[test]
    fn union_counts_parallel_calls_once() {
        let u = union_ns(&[(10, 50), (20, 40), (60, 70)], Ts(0), Ts(100));
        assert_eq!(u, 50);
        assert_eq!(union_ns(&[(0, 200)], Ts(10), Ts(100)), 90);
    }
}

#[cfg(test)]
mod scenarios {
    //! Whole traces through three services (a → b → c), a baseline, then one fault: the verdict
    //! names the service where it originates, and background noise stays background.

    use crate::detect::Config;
    use crate::event::{
        AttrValue, Attribute, Event, Source, Span, SpanId, SpanKind, StatusCode, TraceId, Ts,
    };
    use crate::knowledge::RootKind;
    use crate::pipeline::run_events;

    const T0: u64 = 1_773_482_400 * Ts::NANOS_PER_SEC;
    const MS: u64 = 1_000_000;

    /// How one request goes: each service's own time, the gap into b, and who fails.
    #[derive(Clone, Copy, Default)]
    struct Req {
        b_self_ms: u64,
        gap_b_ms: u64,
        b_fails: bool,
        c_fails: bool,
        c_down: bool,
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        trace: u128,
        id: u64,
        parent: u64,
        svc: &str,
        kind: SpanKind,
        start: u64,
        end: u64,
        error: bool,
    ) -> Event {
        let mut attrs = vec![];
        if kind == SpanKind::Client {
            let callee = if svc == "a" { "b" } else { "c" };
            attrs.push(Attribute::new(
                "server.address",
                AttrValue::Str(format!("{callee}.shop.svc.cluster.local")),
            ));
        }
        let s = Span {
            trace_id: TraceId(trace.to_be_bytes()),
            span_id: SpanId(id.to_be_bytes()),
            parent_span_id: (parent != 0).then(|| SpanId(parent.to_be_bytes())),
            name: format!(
                "{} /x",
                if kind == SpanKind::Client {
                    "GET"
                } else {
                    "serve"
                }
            ),
            kind,
            start: Ts(start),
            end: Ts(end),
            status: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: String::new(),
            service: svc.into(),
            resource: vec![Attribute::new(
                "k8s.namespace.name",
                AttrValue::Str("shop".into()),
            )],
            attributes: attrs,
            events: vec![],
        };
        Event::new(Ts(start), "node-1", Source::Otlp, s)
    }

    /// One trace: a serves, calls b; b serves, calls c; c serves.
    fn trace(n: u128, at: u64, r: Req) -> Vec<Event> {
        let id = |k: u64| (n as u64) * 10 + k;
        let c_start = at + 2 * MS + r.gap_b_ms * MS + MS + r.b_self_ms * MS / 2;
        let c_end = c_start + 3 * MS;
        let b_start = at + 2 * MS + r.gap_b_ms * MS;
        let b_end = c_end + r.b_self_ms * MS / 2 + MS;
        let a_end = b_end + 2 * MS;
        let c_err = r.c_fails;
        let b_err = r.b_fails || (c_err || r.c_down);
        let mut v = vec![
            span(n, id(1), 0, "a", SpanKind::Server, at, a_end, b_err),
            span(
                n,
                id(2),
                id(1),
                "a",
                SpanKind::Client,
                at + MS,
                b_end + MS,
                b_err,
            ),
            span(
                n,
                id(3),
                id(2),
                "b",
                SpanKind::Server,
                b_start,
                b_end,
                b_err,
            ),
            span(
                n,
                id(4),
                id(3),
                "b",
                SpanKind::Client,
                c_start - MS,
                c_end + MS / 2,
                c_err || r.c_down,
            ),
        ];
        if !r.c_down {
            v.push(span(
                n,
                id(5),
                id(4),
                "c",
                SpanKind::Server,
                c_start,
                c_end,
                c_err,
            ));
        }
        v
    }

    /// 60 s of baseline (10 requests a second; c fails 3 % of the time, always), then 40 s of `fault`.
    fn run(fault: impl Fn(u128) -> Req) -> Vec<(RootKind, String)> {
        let mut events = Vec::new();
        for n in 0..1000u128 {
            let at = T0 + n as u64 * 100 * MS;
            let background = Req {
                b_self_ms: 5,
                gap_b_ms: 1,
                c_fails: n % 33 == 0,
                ..Req::default()
            };
            let r = if n >= 600 { fault(n) } else { background };
            events.extend(trace(n + 1, at, r));
        }
        events.sort_by_key(|e| e.ts);
        let (v, _) = run_events([events], Config::default());
        v.incidents
            .iter()
            .filter(|i| i.severity >= crate::analysis::Severity::Medium)
            .map(|i| (i.root_cause.kind, i.root_cause.entity.to_string()))
            .collect()
    }

    fn normal(n: u128) -> Req {
        Req {
            b_self_ms: 5,
            gap_b_ms: 1,
            c_fails: n % 33 == 0,
            ..Req::default()
        }
    }

    #[test]
    fn background_errors_that_never_change_are_no_incident() {
        assert_eq!(run(normal), []);
    }

    #[test]
    fn errors_are_blamed_where_they_originate_not_on_the_callers() {
        let v = run(|n| Req {
            b_fails: n % 2 == 0,
            ..normal(n)
        });
        assert_eq!(v, [(RootKind::ServiceErrors, "service/shop/b".to_string())]);
    }

    #[test]
    fn a_service_that_got_slower_itself_is_the_root_not_its_callers() {
        let v = run(|n| Req {
            b_self_ms: 80,
            ..normal(n)
        });
        assert_eq!(
            v,
            [(RootKind::ServiceLatency, "service/shop/b".to_string())]
        );
    }

    #[test]
    fn a_delay_between_caller_and_server_is_network_latency_into_the_server() {
        let v = run(|n| Req {
            gap_b_ms: 120,
            ..normal(n)
        });
        assert_eq!(
            v,
            [(RootKind::NetworkLatency, "service/shop/b".to_string())]
        );
    }

    #[test]
    fn calls_that_never_reach_a_service_say_it_is_down() {
        let v = run(|n| Req {
            c_down: true,
            ..normal(n)
        });
        assert_eq!(
            v,
            [(
                RootKind::DependencyUnreachable,
                "service/shop/c".to_string()
            )]
        );
    }
}
