//! Error and slow spans, aggregated per service, and what failing spans and logs say.
//!
//! A span with status error is not an outage by itself: HotROD's `redis timeout` spans were
//! retried and the request succeeded. So each error span remembers its trace, and at the end the
//! finding counts the requests whose root span failed (user-facing) apart from those that
//! recovered.
//!
//! Nor is a service that fails as often as it always did: a busy service's steady fraction of
//! failed requests is its background, and an error finding that took it in would last as long as
//! the capture and join every incident. So each service's spans and error spans are counted per
//! minute, the minutes that were not themselves anomalous make its background rate, and an error
//! span counts only while its minute has more errors so far than that rate explains (a Poisson
//! tail under one in a million), and with it, when the minute crosses that line, as many of the
//! minute's latest errors as it has over the expected count: a burst is found some errors in.
//!
//! A service without that background yet (a short capture, one that starts mid-incident, a
//! recording's first five minutes) is judged the same way against a prior rate of 1 % failing
//! requests, which a healthy service's background rarely exceeds: a steady half percent is no
//! incident there, an outage is one at once. That needs a busy service (100 spans in its first
//! minute; its first errors wait to know); a quieter one has every error span count.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::text;
use super::{Detector, Facts, FindingKind};
use crate::event::{AppLog, Body, Event, Log, LogOrigin, Name, Span, TraceId, Ts};
use crate::topology::Entity;

/// Root outcomes are remembered this long (event time), so memory does not grow with the capture.
const ROOT_MEMORY_NS: u64 = 600 * Ts::NANOS_PER_SEC;
/// Error spans of one service within this window form one finding.
const ERROR_WINDOW_NS: u64 = 60 * Ts::NANOS_PER_SEC;
/// Failed roots remembered at most (the oldest are forgotten first).
const MAX_FAILED_ROOTS: usize = 100_000;
/// Traces remembered per error finding, to tell failed requests from recovered ones.
const MAX_TRACES: usize = 10_000;
/// Complete minutes of a service's background kept, and needed (with so many spans) to judge by it.
const BACKGROUND_MINUTES: usize = 10;
const MIN_BACKGROUND_MINUTES: usize = 5;
const MIN_BACKGROUND_SPANS: u64 = 1_000;
/// Uncounted error spans of a minute kept, to count with the burst that they turn out to begin.
const MAX_PENDING: usize = 64;
/// Until a busy service's own background is known, its errors are judged against this rate of
/// failing requests, which a healthy service's background rarely exceeds: a steady 0.5 % is
/// then no incident in a capture's first minutes, and an outage the capture starts in still is.
const PRIOR_RATE: f64 = 0.01;
/// Spans a service must send in its first minute to be busy (judged by [`PRIOR_RATE`]); a
/// quieter one has every error count until its own background is known.
const PRIOR_MIN_SPANS: u64 = 100;

#[derive(Default)]
pub(crate) struct Traces {
    failed_roots: HashSet<TraceId>,
    /// The failed roots in the order they came, to forget them.
    roots: VecDeque<(Ts, TraceId)>,
    /// finding index → the traces of its error spans already counted.
    pub(crate) error_traces: HashMap<usize, HashSet<TraceId>>,
    last_error: HashMap<Entity, Ts>,
    /// Spans per service, by minute.
    per_minute: hashbrown::HashMap<Entity, HashMap<u64, u64>>,
    /// Each service's error rate over its recent ordinary minutes.
    background: hashbrown::HashMap<Entity, Background>,
    /// The services spans name, by `service.name` then namespace: made once, shared by every
    /// span's trace entry, not built and copied per span.
    services: rustc_hash::FxHashMap<Name, Vec<Arc<Entity>>>,
    /// How many entities `services` holds.
    remembered: usize,
    /// The minute of event time [`Detector::spans_tick`] last ran for.
    ticked: u64,
}

/// Services remembered by [`Traces::service`]; past this many (a stream of made-up names) the
/// memory starts again.
const MAX_SERVICES: usize = 4096;

impl Traces {
    /// The service `s` belongs to, as [`span_entity`] says.
    fn service(&mut self, s: &Span) -> Arc<Entity> {
        let ns = s
            .resource_attr("k8s.namespace.name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let in_ns = |e: &&Arc<Entity>| matches!(&***e, Entity::Service { ns: n, .. } if n == ns);
        if let Some(e) = self
            .services
            .get(s.service.as_str())
            .and_then(|v| v.iter().find(in_ns))
        {
            return e.clone();
        }
        if self.remembered >= MAX_SERVICES {
            self.services.clear();
            self.remembered = 0;
        }
        let e = Arc::new(Entity::service(ns, &s.service));
        self.services
            .entry(s.service.clone())
            .or_default()
            .push(e.clone());
        self.remembered += 1;
        e
    }
}

/// A service's spans and error spans in its current minute, and in its last ordinary ones.
#[derive(Default)]
struct Background {
    minute: u64,
    spans: u64,
    errors: u64,
    /// The current minute had, at some point, more errors than the background explains.
    anomalous: bool,
    /// Errors of the current minute counted, and the latest of those not counted (bounded).
    counted: u64,
    pending: VecDeque<Event>,
    /// Whether the service is busy enough to be judged by [`PRIOR_RATE`] while it has no
    /// background: not known yet (`None`) in its first minute before [`PRIOR_MIN_SPANS`], its
    /// errors waiting in `pending` meanwhile.
    busy: Option<bool>,
    /// The current minute is judged by [`PRIOR_RATE`]: it joins the background however it went
    /// (the prior decides what is found in a service's first minutes, not what its background
    /// is — a service that always fails 3 % has that background after five minutes).
    by_prior: bool,
    /// (spans, errors) of recent minutes that were not anomalous, oldest first.
    history: VecDeque<(u64, u64)>,
}

impl Background {
    /// Counts a span `e` that started in `minute`. The error spans that count, oldest first: when
    /// this one counts, the error spans of the minute before it that count with it, and it
    /// (last) — a burst is found some errors into it, and those are its errors too, as many of
    /// the latest as the minute has over its expected background. Empty for a success or an
    /// error of the background. A span that started in an earlier minute than the current one
    /// (spans come in the order they ended) counts in the current one.
    fn count(&mut self, minute: u64, e: &Event, error: bool) -> Vec<Event> {
        let mut out = self.tick(minute);
        if minute > self.minute {
            if self.spans > 0 && (!self.anomalous || self.by_prior) {
                if self.history.len() == BACKGROUND_MINUTES {
                    self.history.pop_front();
                }
                self.history.push_back((self.spans, self.errors));
            }
            (self.minute, self.spans, self.errors) = (minute, 0, 0);
            (self.anomalous, self.counted) = (false, 0);
            self.pending.clear();
            self.by_prior = self.rate().is_none() && self.busy == Some(true);
        }
        self.spans += 1;
        self.errors += u64::from(error);
        let became_busy = self.busy.is_none() && self.spans >= PRIOR_MIN_SPANS;
        if became_busy {
            self.busy = Some(true);
            self.by_prior = self.rate().is_none();
        }
        let (rate, prior) = match (self.rate(), self.busy) {
            (Some(rate), _) => (rate, false),
            (None, Some(true)) => (PRIOR_RATE, true),
            // A quiet service without a background: every error counts.
            (None, Some(false)) => {
                if error {
                    out.push(e.clone());
                }
                return out;
            }
            // Not known yet whether it is busy: its errors wait.
            (None, None) => {
                if error {
                    self.hold(e);
                }
                return out;
            }
        };
        if !error && !became_busy {
            return out;
        }
        // An error counts while the minute's errors so far are more than chance: a burst's, and
        // not the background's that follow it in the same minute. A minute that had a burst
        // stays out of the background. (A service just found busy: its first minute's errors so
        // far are judged at once.)
        let expected = self.spans as f64 * rate;
        if !unlikely(self.errors, expected) {
            if error {
                self.hold(e);
            }
            return out;
        }
        self.anomalous = true;
        // The errors a background would have had are not the outage's: as many as expected (at
        // least one). By the prior, no background is known (it may have none): all of them
        // count, as they did before the prior judged.
        let background = if prior { 0.0 } else { expected.ceil() };
        let over = (self.errors as f64 - background).max(0.0) as u64;
        let this = u64::from(error);
        let earlier = (over.saturating_sub(self.counted + this) as usize).min(self.pending.len());
        out.extend(self.pending.drain(self.pending.len() - earlier..));
        self.counted += earlier as u64 + this;
        if error {
            out.push(e.clone());
        }
        out
    }

    /// An error span not counted (yet): the latest are kept, to count with what they begin (all
    /// of them while it is not known whether the service is busy: fewer than
    /// [`PRIOR_MIN_SPANS`]).
    fn hold(&mut self, e: &Event) {
        let most = match self.busy {
            None => PRIOR_MIN_SPANS as usize,
            Some(_) => MAX_PENDING,
        };
        while self.pending.len() >= most {
            self.pending.pop_front();
        }
        self.pending.push_back(e.clone());
    }

    /// Time went on to `minute`: a service whose first minute ended before it was found busy is
    /// a quiet one, and the errors that waited count (even if it sends nothing more).
    fn tick(&mut self, minute: u64) -> Vec<Event> {
        if self.busy.is_none() && self.spans > 0 && minute > self.minute {
            self.busy = Some(false);
            return self.pending.drain(..).collect();
        }
        Vec::new()
    }

    /// The end of the stream: errors still waiting to know whether the service is busy count.
    fn release(&mut self) -> Vec<Event> {
        match self.busy {
            None => self.pending.drain(..).collect(),
            Some(_) => Vec::new(),
        }
    }

    /// The error rate of the recent ordinary minutes, once there are enough of them.
    fn rate(&self) -> Option<f64> {
        let (spans, errors) = self
            .history
            .iter()
            .fold((0, 0), |(s, e), &(s1, e1)| (s + s1, e + e1));
        let enough = self.history.len() >= MIN_BACKGROUND_MINUTES && spans >= MIN_BACKGROUND_SPANS;
        enough.then(|| errors as f64 / spans as f64)
    }
}

/// Whether `k` or more events are too unlikely to be chance when `expected` come on average: a
/// Poisson tail under one in a million. The test is made again at every error of a minute, so it
/// is stricter than a single test would be (at three standard deviations, one minute in sixty of
/// a steady background would be found anomalous at some point; at this bound, none in thousands).
fn unlikely(k: u64, expected: f64) -> bool {
    const P: f64 = 1e-6;
    let kf = k as f64;
    if expected <= 0.0 {
        return k > 0;
    }
    if kf <= expected {
        return false;
    }
    if kf > expected + 10.0 * expected.sqrt() + 10.0 {
        return true;
    }
    // P(X >= k) = P(X = k) (1 + λ/(k+1) + λ²/((k+1)(k+2)) + …), in logarithms where it could
    // underflow.
    let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
    let first = (-expected + kf * expected.ln() - ln_fact).exp();
    let (mut sum, mut ratio, mut i) = (1.0, 1.0, k);
    loop {
        i += 1;
        ratio *= expected / i as f64;
        sum += ratio;
        if ratio < sum * 1e-12 {
            break;
        }
    }
    first * sum < P
}

const MINUTE_NS: u64 = 60 * Ts::NANOS_PER_SEC;

impl Detector {
    pub(crate) fn span(&mut self, e: &Event, s: &Span) {
        // Read once: the attributes are searched for the HTTP status.
        let http_status = s.http_status();
        let error = crate::event::span_is_error(s.status, http_status);
        if s.parent_span_id.is_none() {
            self.remember_root(s, error);
        }
        let entity = self.spans.service(s);
        self.service_span(e, s, &entity, error, http_status);
        let minute = s.start.0 / MINUTE_NS;
        // By service first: the entity is copied once, not for every span.
        *self
            .spans
            .per_minute
            .entry_ref(&*entity)
            .or_default()
            .entry(minute)
            .or_default() += 1;
        let counts = self
            .spans
            .background
            .entry_ref(&*entity)
            .or_default()
            .count(minute, e, error);
        for p in &counts {
            if let Body::Span(ps) = &p.body {
                self.error_span(p, ps, &entity);
            }
        }
        if s.duration_ns() > self.cfg.slow_span_ns && s.parent_span_id.is_none() {
            let ms = s.duration_ns() / 1_000_000;
            let summary = format!("{} slow requests: {} took {ms} ms", entity.short(), s.name);
            self.upsert(
                FindingKind::SlowSpans,
                (*entity).clone(),
                "",
                s.start,
                e,
                || (summary, Facts::default()),
            );
        }
    }

    /// An error span that counts: the service's error finding, and the cause its message names.
    fn error_span(&mut self, e: &Event, s: &Span, entity: &Entity) {
        let entity = entity.clone();
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

    /// Remembers a failed root (a request that failed for its user) for `ROOT_MEMORY_NS`, and at
    /// most `MAX_FAILED_ROOTS` of them: only the failed ones matter, so a flood of successful
    /// requests costs nothing.
    fn remember_root(&mut self, s: &Span, error: bool) {
        let roots = &mut self.spans;
        while let Some(&(t, id)) = roots.roots.front() {
            if s.start.saturating_sub(t) <= ROOT_MEMORY_NS && roots.roots.len() < MAX_FAILED_ROOTS {
                break;
            }
            roots.roots.pop_front();
            roots.failed_roots.remove(&id);
        }
        if error && roots.failed_roots.insert(s.trace_id) {
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

    /// Once a minute of event time: the errors of services still in their first minute when it
    /// ended count (a service that failed at once and then sent nothing more is not held until
    /// the end of the stream).
    pub(crate) fn spans_tick(&mut self, now: Ts) {
        let minute = now.0 / MINUTE_NS;
        if minute <= self.spans.ticked {
            return;
        }
        self.spans.ticked = minute;
        self.count_released(|b| b.tick(minute));
    }

    /// The end of the stream: errors still waiting to know whether their service is busy count.
    pub(crate) fn release_waiting_spans(&mut self) {
        self.count_released(Background::release);
    }

    /// The error spans that `take` releases from each service's background count, in the
    /// stream's order whatever order the services are kept in.
    fn count_released(&mut self, mut take: impl FnMut(&mut Background) -> Vec<Event>) {
        let mut released: Vec<(Entity, Event)> = self
            .spans
            .background
            .iter_mut()
            .flat_map(|(entity, b)| take(b).into_iter().map(|e| (entity.clone(), e)))
            .collect();
        if released.is_empty() {
            return;
        }
        released.sort_by(|(a, x), (b, y)| (x.ts, x.seq, a).cmp(&(y.ts, y.seq, b)));
        for (entity, p) in &released {
            if let Body::Span(ps) = &p.body {
                self.error_span(p, ps, entity);
            }
        }
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
                        .get(&f.entity)
                        .and_then(|minutes| minutes.get(&m))
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

    /// The service of a span is what `span_entity` says, remembered: every pair of namespace and
    /// name is its own, however the two split the same letters.
    #[test]
    fn spans_services_are_remembered_one_per_namespace_and_name() {
        use crate::event::{AttrValue, Attribute};
        let mut traces = Traces::default();
        let span = |ns: Option<&str>, service: &str| {
            let mut s = root(1, Ts(0), false);
            s.service = service.into();
            s.resource = ns
                .map(|ns| {
                    vec![Attribute::new(
                        "k8s.namespace.name",
                        AttrValue::Str(ns.into()),
                    )]
                })
                .unwrap_or_default();
            s
        };
        let pairs = [
            (Some("ab"), "c"),
            (Some("a"), "bc"),
            (Some("abc"), ""),
            (None, "abc"),
            (Some(""), "abc"),
            (Some("a"), "bc"),
        ];
        let got: Vec<Arc<Entity>> = pairs
            .iter()
            .map(|&(ns, name)| traces.service(&span(ns, name)))
            .collect();
        for (g, &(ns, name)) in got.iter().zip(&pairs) {
            assert_eq!(**g, span_entity(&span(ns, name)));
        }
        assert_eq!(traces.remembered, 4);
        assert!(Arc::ptr_eq(&got[1], &got[5]));
        assert!(Arc::ptr_eq(&got[3], &got[4]));
    }

    /// Requests of `checkout`, `per_minute` a minute for `minutes` minutes from `t0`, failing
    /// `fail(minute, n)`.
    fn requests(
        d: &mut Detector,
        t0: u64,
        minutes: u64,
        per_minute: u64,
        fail: impl Fn(u64, u64) -> bool,
    ) {
        let step = MINUTE_NS / per_minute;
        for m in 0..minutes {
            for n in 0..per_minute {
                let at = Ts(t0 + m * MINUTE_NS + n * step);
                let s = root(m * per_minute + n + 1, at, fail(m, n));
                let e = Event::new(at, "n", crate::event::Source::Otlp, s.clone());
                d.span(&e, &s);
            }
        }
    }

    fn error_findings(d: Detector) -> Vec<(u64, u64, u64)> {
        d.finish()
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::ErrorSpans)
            .map(|f| (f.start.0, f.end.0, f.facts.failed_requests))
            .collect()
    }

    #[test]
    fn a_steady_rate_of_errors_is_background_and_a_rise_above_it_a_finding() {
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC / MINUTE_NS * MINUTE_NS;
        let mut d = Detector::new(Config::default());
        // Half a percent of 2,000 requests a minute fail for an hour; in minute 40, one in five.
        requests(&mut d, t0, 60, 2_000, |m, n| {
            n % 200 == 7 || (m == 40 && n % 5 == 0)
        });
        let found = error_findings(d);
        // The first minutes, before its own background is known, are judged by the prior rate:
        // half a percent is below it. Only minute 40 is found.
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, end, failed) = found[0];
        assert!(
            start >= t0 + 40 * MINUTE_NS && end < t0 + 41 * MINUTE_NS,
            "{found:?}"
        );
        // Most of the minute's 400 extra failures, not the background's 10 a minute all hour.
        assert!((300..=410).contains(&failed), "{failed}");
    }

    #[test]
    fn a_burst_counts_and_the_background_after_it_in_its_minute_does_not() {
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC / MINUTE_NS * MINUTE_NS;
        let mut d = Detector::new(Config::default());
        // Five percent fail (100 a minute); in minute 30, 30 of its first 150 requests too.
        requests(&mut d, t0, 40, 2_000, |m, n| {
            n % 20 == 7 || (m == 30 && n < 150 && n % 5 == 0)
        });
        let found = error_findings(d);
        assert_eq!(found.len(), 2, "{found:?}");
        let (start, end, failed) = found[1];
        // Counted while the minute's errors are more than chance: the burst and the background
        // of the next few hundred requests, not the whole minute's 130.
        // Found some errors into the burst, it starts near the burst's start all the same.
        let step = MINUTE_NS / 2_000;
        assert!(start >= t0 + 30 * MINUTE_NS, "{found:?}");
        assert!(start < t0 + 30 * MINUTE_NS + 20 * step, "{found:?}");
        assert!(end < t0 + 30 * MINUTE_NS + MINUTE_NS / 2, "{found:?}");
        assert!((35..=80).contains(&failed), "{failed}");
    }

    /// A capture that starts in an outage: the first minutes are judged by the prior rate, and
    /// the outage found at once, with its failures over it.
    #[test]
    fn an_outage_in_the_first_minutes_is_found_by_the_prior_rate() {
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC / MINUTE_NS * MINUTE_NS;
        let mut d = Detector::new(Config::default());
        // Half a percent of 1,000 requests a minute fail for half an hour; in minute 1, one in
        // four more (255 failures).
        requests(&mut d, t0, 30, 1_000, |m, n| {
            n % 200 == 7 || (m == 1 && n % 4 == 0)
        });
        let found = error_findings(d);
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, end, failed) = found[0];
        assert!(
            start >= t0 + MINUTE_NS && end < t0 + 2 * MINUTE_NS,
            "{found:?}"
        );
        assert!((200..=255).contains(&failed), "{failed}");
        // A service that always fails 3 %: its first minutes are found (above the prior), then
        // they are its background, as its own rate says.
        let mut d = Detector::new(Config::default());
        requests(&mut d, t0, 30, 1_000, |_, n| n % 33 == 7);
        let found = error_findings(d);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1 < t0 + 6 * MINUTE_NS, "{found:?}");
    }

    /// A service that sends fewer than 100 spans in its first minute is quiet: every error
    /// counts until its own background is known — once its first minute is over, even if it
    /// sends nothing more, as event time goes on.
    #[test]
    fn a_quiet_services_errors_count_once_its_first_minute_is_over() {
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC / MINUTE_NS * MINUTE_NS;
        let mut d = Detector::new(Config::default());
        let span = |n: u64, at: u64, error: bool, service: &str| {
            let mut s = root(n, Ts(at), error);
            s.service = service.into();
            Event::new(Ts(at), "n", crate::event::Source::Otlp, s)
        };
        for n in 0..40 {
            d.observe(&span(n + 1, t0 + n * 1_000_000_000, n % 2 == 0, "checkout"));
        }
        let errors = |d: &Detector| {
            d.findings
                .iter()
                .filter(|f| f.kind == FindingKind::ErrorSpans)
                .map(|f| f.facts.failed_requests)
                .collect::<Vec<_>>()
        };
        assert!(errors(&d).is_empty(), "waiting to know whether it is busy");
        d.observe(&span(100, t0 + MINUTE_NS + 1, false, "cart"));
        assert_eq!(errors(&d), [20]);
    }

    #[test]
    fn without_a_background_a_quiet_services_errors_count_and_a_busy_ones_by_the_prior() {
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC / MINUTE_NS * MINUTE_NS;
        let mut d = Detector::new(Config::default());
        // Three minutes of a quiet service: too short to know a background; one failure.
        requests(&mut d, t0, 3, 50, |m, n| m == 1 && n == 3);
        assert_eq!(error_findings(d).len(), 1);
        // A busy one: one failure in 6,000 requests is below the prior rate.
        let mut d = Detector::new(Config::default());
        requests(&mut d, t0, 3, 2_000, |m, n| m == 1 && n == 3);
        assert_eq!(error_findings(d).len(), 0);
        // An hour without failures, then one: a service that never fails, failing.
        let mut d = Detector::new(Config::default());
        requests(&mut d, t0, 60, 500, |m, n| m == 50 && n == 3);
        let found = error_findings(d);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0 >= t0 + 50 * MINUTE_NS);
    }

    #[test]
    fn unlikely_is_a_poisson_tail_under_one_in_a_million() {
        // None expected: any is unlikely.
        assert!(!unlikely(0, 0.0) && unlikely(1, 0.0));
        // Exact tails: P(X >= 9 | 1) = 1.1e-6, P(X >= 10 | 1) = 1.1e-7.
        assert!(!unlikely(9, 1.0) && unlikely(10, 1.0));
        // A tiny mean early in a minute: a few errors are chance.
        assert!(!unlikely(3, 0.04) && unlikely(4, 0.04));
        assert!(!unlikely(59, 29.9) && unlikely(60, 29.9));
        assert!(!unlikely(151, 100.0) && unlikely(152, 100.0));
        // Means where e^-λ underflows.
        assert!(!unlikely(5_000, 5_000.0) && !unlikely(5_300, 5_000.0));
        assert!(unlikely(5_400, 5_000.0) && unlikely(50_000, 5_000.0));
    }

    #[test]
    fn only_failed_roots_are_remembered_and_at_most_so_many_for_so_long() {
        let mut d = Detector::new(Config::default());
        let t0 = 1_773_482_400 * Ts::NANOS_PER_SEC;
        // A flood of successful requests costs nothing.
        for n in 1..=10_000 {
            let r = root(n, Ts(t0 + n), false);
            d.remember_root(&r, r.is_error());
        }
        assert_eq!((d.spans.roots.len(), d.spans.failed_roots.len()), (0, 0));
        // Failed ones are remembered, up to the cap: the oldest go first.
        for n in 1..=MAX_FAILED_ROOTS as u64 + 10 {
            let r = root(n, Ts(t0 + n), true);
            d.remember_root(&r, r.is_error());
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
        let r = root(
            0,
            Ts(t0 + ROOT_MEMORY_NS + MAX_FAILED_ROOTS as u64 + 11),
            false,
        );
        d.remember_root(&r, r.is_error());
        assert_eq!(d.spans.failed_roots.len(), 0);
    }
}
