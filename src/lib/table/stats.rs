//! The first questions of an investigation, as tables: `tapio stats`.
//!
//! One pass over the events, in capture order, attributed by the topology as the tables are:
//! restarts, OOM kills and error exits by pod; failed connections by client and destination;
//! requests, errors and latency by service and time bucket; error log lines by container; node
//! conditions and pressure; drops and gaps. Each section is a small polars frame, with a `trend`
//! column (a count per time bucket) that a terminal draws as a sparkline.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::rows;
use crate::event::{Body, Event, Kernel, Kube, Meta, ObjectKind, SpanKind, StatusCode, Ts};
use crate::topology::Topology;

/// The sections, in the order they are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Pods,
    Connections,
    Services,
    ServiceBuckets,
    Logs,
    Nodes,
    Gaps,
}

named!(Section, "section" {
    Pods => "pods",
    Connections => "connections",
    Services => "services",
    ServiceBuckets => "service_buckets",
    Logs => "logs",
    Nodes => "nodes",
    Gaps => "gaps",
});

impl Section {
    /// Its heading.
    pub fn about(self) -> &'static str {
        match self {
            Section::Pods => "Pods: restarts, OOM kills and error exits",
            Section::Connections => "Failed connections: client -> destination",
            Section::Services => "Services: requests, errors and latency (entry spans)",
            Section::ServiceBuckets => "Services per time bucket",
            Section::Logs => "Error log lines by container",
            Section::Nodes => "Nodes: conditions and pressure",
            Section::Gaps => "Drops and gaps: where the evidence is incomplete",
        }
    }
}

/// How the sections are cut.
#[derive(Clone, Debug)]
pub struct Options {
    /// The time bucket of the trends and of `service_buckets`, in nanoseconds.
    pub bucket_ns: u64,
    /// Rows per section at most (the most affected first); 0: all.
    pub top: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bucket_ns: 60 * Ts::NANOS_PER_SEC,
            top: 10,
        }
    }
}

/// A count per time bucket.
#[derive(Clone, Debug, Default)]
struct Trend(BTreeMap<u64, u64>);

impl Trend {
    fn add(&mut self, bucket: u64, n: u64) {
        *self.0.entry(bucket).or_default() += n;
    }
}

#[derive(Default)]
struct Pod {
    node: String,
    restarts: u64,
    restart_count: u64,
    oom_kills_kernel: u64,
    oom_killed: u64,
    error_exits: u64,
    warnings: u64,
    trend: Trend,
}

#[derive(Default)]
struct Conn {
    refused: u64,
    reset: u64,
    timeout: u64,
    connected: u64,
    first: Option<Ts>,
    last: Option<Ts>,
    trend: Trend,
}

#[derive(Default)]
struct Calls {
    requests: u64,
    errors: u64,
    durations: Vec<u64>,
}

#[derive(Default)]
struct Service {
    total: Calls,
    buckets: BTreeMap<u64, Calls>,
}

#[derive(Default)]
struct Logs {
    errors: u64,
    warnings: u64,
    example: Option<String>,
    trend: Trend,
}

#[derive(Default)]
struct Node {
    conditions: Vec<String>,
    oom_kills: u64,
    psi_some_max: f64,
    throttled_periods: u64,
    warnings: u64,
    trend: Trend,
}

struct Gap {
    node: String,
    source: String,
    what: &'static str,
    reason: String,
    lost: Option<u64>,
    from: Ts,
    to: Ts,
}

/// Events in, sections out.
pub struct Stats {
    opts: Options,
    topology: Topology,
    start: Option<u64>,
    end: u64,
    /// The time of the first event, wanted or not.
    first: Option<Ts>,
    /// Restart counts last seen per (namespace, pod, container).
    seen_restarts: HashMap<(String, String, String), u64>,
    pods: HashMap<(String, String), Pod>,
    conns: HashMap<(String, String), Conn>,
    services: HashMap<String, Service>,
    logs: HashMap<(String, String, String), Logs>,
    nodes: BTreeMap<String, Node>,
    gaps: Vec<Gap>,
}

fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").to_string()
}

impl Stats {
    pub fn new(opts: Options) -> Stats {
        Stats {
            opts: Options {
                bucket_ns: opts.bucket_ns.max(1),
                ..opts
            },
            topology: Topology::new(),
            start: None,
            end: 0,
            first: None,
            seen_restarts: HashMap::new(),
            pods: HashMap::new(),
            conns: HashMap::new(),
            services: HashMap::new(),
            logs: HashMap::new(),
            nodes: BTreeMap::new(),
            gaps: Vec::new(),
        }
    }

    fn bucket(&self, ts: Ts) -> u64 {
        ts.0.saturating_sub(self.start.unwrap_or(0)) / self.opts.bucket_ns
    }

    /// Adds an event (in capture order). One not `wanted` (filtered out) counts for nothing, but
    /// the topology still learns from it.
    pub fn add(&mut self, e: &Event, wanted: bool) {
        self.first.get_or_insert(e.ts);
        if let Body::Kube(Kube::Object(o)) = &e.body {
            if o.kind == ObjectKind::Pod {
                // What the Pod said before this change, to count what it adds.
                rows::learn(&mut self.topology, e);
                self.pod_changed(e, &o.namespace, &o.name, wanted);
                return self.node_of_object(e, wanted);
            }
        }
        rows::learn(&mut self.topology, e);
        if !wanted {
            return;
        }
        self.node_of_object(e, wanted);
        // The trends start at the first activity: a listing of objects taken long before says
        // how things stood, not what happened.
        if self.start.is_none() && !matches!(e.body, Body::Kube(Kube::Object(_))) {
            let b = self.opts.bucket_ns;
            self.start = Some(e.ts.0 / b * b);
        }
        self.end = self.end.max(e.ts.0);
        let bucket = self.bucket(e.ts);
        let who = rows::who(&mut self.topology, e).owned();
        match &e.body {
            Body::Kernel(k) => self.kernel(e, k, who, bucket),
            Body::Span(s) => {
                let entry = matches!(s.kind, SpanKind::Server | SpanKind::Consumer)
                    || s.parent_span_id.is_none_or(|p| p.is_zero());
                if !entry || s.service.as_str().is_empty() {
                    return;
                }
                let error =
                    s.status == StatusCode::Error || s.http_status().is_some_and(|c| c >= 500);
                let d = s.duration_ns();
                let svc = self
                    .services
                    .entry(s.service.as_str().to_string())
                    .or_default();
                for calls in [&mut svc.total, svc.buckets.entry(bucket).or_default()] {
                    calls.requests += 1;
                    calls.errors += u64::from(error);
                    calls.durations.push(d);
                }
            }
            Body::Log(_) | Body::AppLog(_) => {
                let log = match &e.body {
                    Body::Log(l) => l,
                    Body::AppLog(a) => &a.log,
                    _ => return,
                };
                use crate::event::Severity as S;
                let (error, warning) = match log.severity {
                    S::Emergency | S::Alert | S::Critical | S::Error => (true, false),
                    S::Warning => (false, true),
                    _ => (false, false),
                };
                if !error && !warning {
                    return;
                }
                let container = who
                    .container
                    .as_deref()
                    .or_else(|| (!log.ident.is_empty()).then(|| log.ident.as_str()));
                let key = (
                    or_dash(who.namespace.as_deref()),
                    or_dash(
                        who.pod
                            .as_deref()
                            .or_else(|| (!e.node.is_empty()).then(|| e.node.as_str())),
                    ),
                    or_dash(container),
                );
                let l = self.logs.entry(key).or_default();
                if error {
                    l.errors += 1;
                    l.trend.add(bucket, 1);
                    if l.example.is_none() {
                        l.example = Some(log.body.chars().take(100).collect());
                    }
                } else {
                    l.warnings += 1;
                }
            }
            Body::Kube(Kube::Event(k)) => {
                if k.type_.as_str() != "Warning" {
                    return;
                }
                let n = u64::from(k.count.max(1));
                match k.involved.kind.as_str() {
                    "Pod" => {
                        let key = (
                            or_dash(who.namespace.as_deref()),
                            k.involved.name.to_string(),
                        );
                        let p = self.pods.entry(key).or_default();
                        p.warnings += n;
                        p.trend.add(bucket, n);
                    }
                    "Node" => {
                        let node = self.nodes.entry(k.involved.name.to_string()).or_default();
                        node.warnings += n;
                        node.trend.add(bucket, n);
                    }
                    _ => {}
                }
            }
            Body::Kube(Kube::Object(_)) => {}
            Body::Meta(m) => {
                let (what, source, reason, lost, range) = match m {
                    Meta::Drop {
                        source,
                        count,
                        range,
                        reason,
                    } => ("drop", source, reason, Some(*count), range),
                    Meta::Gap {
                        source,
                        range,
                        reason,
                    } => ("gap", source, reason, None, range),
                    Meta::Annotation { .. } => return,
                };
                self.gaps.push(Gap {
                    node: e.node.to_string(),
                    source: source.as_str().to_string(),
                    what,
                    reason: reason.clone(),
                    lost,
                    from: range.from,
                    to: range.to,
                });
            }
        }
    }

    fn kernel(&mut self, e: &Event, k: &Kernel, who: rows::OwnedWho, bucket: u64) {
        let node = || {
            if e.node.is_empty() {
                who.node.as_deref().unwrap_or_default().to_string()
            } else {
                e.node.to_string()
            }
        };
        match k {
            Kernel::OomKill(x) => {
                let node = node();
                let key = (
                    or_dash(who.namespace.as_deref()),
                    who.pod
                        .as_deref()
                        .map_or_else(|| format!("{} (no pod)", x.victim_comm), str::to_string),
                );
                let p = self.pods.entry(key).or_default();
                p.oom_kills_kernel += 1;
                p.trend.add(bucket, 1);
                if p.node.is_empty() {
                    p.node.clone_from(&node);
                }
                if !node.is_empty() {
                    let n = self.nodes.entry(node).or_default();
                    n.oom_kills += 1;
                    n.trend.add(bucket, 1);
                }
            }
            Kernel::TcpState(x) => {
                use crate::event::TcpMeaning as M;
                let failed = matches!(x.meaning, M::Refused | M::Reset | M::Timeout);
                if !failed && x.meaning != M::Connected {
                    return;
                }
                let client = self
                    .topology
                    .owner_of_ip(x.saddr)
                    .map_or_else(|| x.saddr.to_string(), |o| o.to_string());
                let dest = self.topology.owner_of_ip(x.daddr).map_or_else(
                    || format!("{}:{}", x.daddr, x.dport),
                    |o| format!("{o}:{}", x.dport),
                );
                if !failed && !self.conns.contains_key(&(client.clone(), dest.clone())) {
                    // Successful connections count only where some failed.
                    let c = self.conns.entry((client, dest)).or_default();
                    c.connected += 1;
                    return;
                }
                let c = self.conns.entry((client, dest)).or_default();
                match x.meaning {
                    M::Refused => c.refused += 1,
                    M::Reset => c.reset += 1,
                    M::Timeout => c.timeout += 1,
                    _ => {
                        c.connected += 1;
                        return;
                    }
                }
                c.first.get_or_insert(e.ts);
                c.last = Some(e.ts);
                c.trend.add(bucket, 1);
            }
            Kernel::Pressure(x) => {
                let node = node();
                if !node.is_empty() {
                    let n = self.nodes.entry(node).or_default();
                    n.psi_some_max = n.psi_some_max.max(f64::from(x.some_avg10) / 100.0);
                }
            }
            Kernel::CpuThrottle(x) => {
                let node = node();
                if !node.is_empty() {
                    self.nodes.entry(node).or_default().throttled_periods += x.throttled_periods;
                }
            }
            _ => {}
        }
    }

    /// A Pod changed: the restarts its containers' counts add, and how they ended.
    fn pod_changed(&mut self, e: &Event, ns: &str, name: &str, wanted: bool) {
        let Some(pod) = self.topology.pod_by_name(ns, name) else {
            return;
        };
        let mut added = Vec::new();
        let mut total = 0;
        for c in &pod.containers {
            total += c.restarts;
            let key = (ns.to_string(), name.to_string(), c.name.clone());
            let before = self.seen_restarts.insert(key, c.restarts);
            let how = c
                .last_terminated
                .as_ref()
                .map(|t| (t.reason.clone(), t.exit_code));
            match before {
                Some(before) if c.restarts > before => added.push((c.restarts - before, how)),
                Some(_) => {}
                // The first sight of a pod is a baseline: of the restarts before it, only the
                // last one is known, and is the capture's when it ended within it.
                None => {
                    let ended = c.last_terminated.as_ref().and_then(|t| t.finished);
                    if c.restarts > 0 && ended.is_some_and(|t| self.first.is_some_and(|f| t >= f)) {
                        added.push((1, how));
                    }
                }
            }
        }
        if !wanted {
            return;
        }
        let node = pod.node.clone();
        self.end = self.end.max(e.ts.0);
        let bucket = self.bucket(e.ts);
        let p = self
            .pods
            .entry((ns.to_string(), name.to_string()))
            .or_default();
        p.restart_count = total;
        if !node.is_empty() {
            p.node = node;
        }
        for (n, how) in added {
            p.restarts += n;
            p.trend.add(bucket, n);
            match how {
                Some((reason, _)) if reason == "OOMKilled" => p.oom_killed += n,
                Some((_, code)) if code != 0 => p.error_exits += n,
                _ => {}
            }
        }
    }

    /// A Node object: its conditions as they stand.
    fn node_of_object(&mut self, e: &Event, wanted: bool) {
        let Body::Kube(Kube::Object(o)) = &e.body else {
            return;
        };
        if o.kind != ObjectKind::Node || !wanted {
            return;
        }
        let Some(node) = self.topology.node(&o.name) else {
            return;
        };
        let bad: Vec<String> = node
            .conditions
            .iter()
            .filter_map(|(kind, (status, _, _))| {
                let normal = if kind == "Ready" { "True" } else { "False" };
                (status != normal).then(|| match (kind.as_str(), status.as_str()) {
                    ("Ready", "False") => "NotReady".to_string(),
                    ("Ready", s) => format!("Ready={s}"),
                    (k, "True") => k.to_string(),
                    (k, s) => format!("{k}={s}"),
                })
            })
            .chain(node.unschedulable.then(|| "SchedulingDisabled".to_string()))
            .collect();
        self.nodes.entry(o.name.to_string()).or_default().conditions = bad;
    }

    /// The sections, each a frame; those with no rows are left out.
    pub fn finish(self) -> PolarsResult<Vec<(Section, DataFrame)>> {
        let n_buckets = match self.start {
            Some(s) => (self.end.saturating_sub(s) / self.opts.bucket_ns + 1) as usize,
            None => 0,
        };
        let top = |n: usize| {
            if self.opts.top == 0 {
                n
            } else {
                n.min(self.opts.top)
            }
        };
        let trend = |t: &Trend| -> Vec<u64> {
            let mut v = vec![0; n_buckets];
            for (&b, &n) in &t.0 {
                if let Some(x) = v.get_mut(b as usize) {
                    *x += n;
                }
            }
            v
        };
        let mut out = Vec::new();

        // Pods.
        let mut pods: Vec<_> = self
            .pods
            .iter()
            .map(|(k, p)| (k, p, p.oom_kills_kernel.max(p.oom_killed)))
            .filter(|(_, p, oom)| p.restarts + oom + p.error_exits + p.warnings > 0)
            .collect();
        pods.sort_by(|a, b| {
            let score =
                |(_, p, oom): &(_, &Pod, u64)| (p.restarts + oom + p.error_exits, p.warnings);
            score(b).cmp(&score(a)).then_with(|| a.0.cmp(b.0))
        });
        pods.truncate(top(pods.len()));
        out.push((
            Section::Pods,
            df_with_trend(
                vec![
                    text_col("namespace", pods.iter().map(|x| x.0 .0.clone())),
                    text_col("pod", pods.iter().map(|x| x.0 .1.clone())),
                    text_col("node", pods.iter().map(|x| x.1.node.clone())),
                    u64_col("restarts", pods.iter().map(|x| x.1.restarts)),
                    u64_col("oom_kills", pods.iter().map(|x| x.2)),
                    u64_col("error_exits", pods.iter().map(|x| x.1.error_exits)),
                    u64_col("warnings", pods.iter().map(|x| x.1.warnings)),
                    u64_col("restart_count", pods.iter().map(|x| x.1.restart_count)),
                ],
                pods.iter().map(|x| trend(&x.1.trend)),
            )?,
        ));

        // Connections.
        let mut conns: Vec<_> = self
            .conns
            .iter()
            .map(|(k, c)| (k, c, c.refused + c.reset + c.timeout))
            .filter(|x| x.2 > 0)
            .collect();
        conns.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(b.0)));
        conns.truncate(top(conns.len()));
        out.push((
            Section::Connections,
            df_with_trend(
                vec![
                    text_col("client", conns.iter().map(|x| x.0 .0.clone())),
                    text_col("destination", conns.iter().map(|x| x.0 .1.clone())),
                    u64_col("failed", conns.iter().map(|x| x.2)),
                    u64_col("refused", conns.iter().map(|x| x.1.refused)),
                    u64_col("reset", conns.iter().map(|x| x.1.reset)),
                    u64_col("timeout", conns.iter().map(|x| x.1.timeout)),
                    u64_col("connected", conns.iter().map(|x| x.1.connected)),
                    time_col("first", conns.iter().map(|x| x.1.first)),
                    time_col("last", conns.iter().map(|x| x.1.last)),
                ],
                conns.iter().map(|x| trend(&x.1.trend)),
            )?,
        ));

        // Services, and per bucket.
        let mut services: Vec<_> = self.services.iter().collect();
        services.sort_by(|a, b| {
            (b.1.total.errors, b.1.total.requests, a.0).cmp(&(
                a.1.total.errors,
                a.1.total.requests,
                b.0,
            ))
        });
        services.truncate(top(services.len()));
        let mut rows = Vec::new();
        let mut trends = Vec::new();
        for (name, s) in &services {
            let mut errors = Trend::default();
            for (&b, c) in &s.buckets {
                errors.add(b, c.errors);
            }
            rows.push(((*name).clone(), calls_row(&s.total)));
            trends.push(trend(&errors));
        }
        out.push((
            Section::Services,
            df_with_trend(calls_columns("service", None, &rows), trends.into_iter())?,
        ));
        let mut rows = Vec::new();
        let mut starts = Vec::new();
        for (name, s) in &services {
            for (&b, c) in &s.buckets {
                rows.push(((*name).clone(), calls_row(c)));
                starts.push(Ts(self.start.unwrap_or(0) + b * self.opts.bucket_ns));
            }
        }
        out.push((
            Section::ServiceBuckets,
            DataFrame::new_infer_height(calls_columns("service", Some(&starts), &rows))?,
        ));

        // Logs.
        let mut logs: Vec<_> = self.logs.iter().filter(|x| x.1.errors > 0).collect();
        logs.sort_by(|a, b| b.1.errors.cmp(&a.1.errors).then_with(|| a.0.cmp(b.0)));
        logs.truncate(top(logs.len()));
        out.push((
            Section::Logs,
            df_with_trend(
                vec![
                    text_col("namespace", logs.iter().map(|x| x.0 .0.clone())),
                    text_col("pod", logs.iter().map(|x| x.0 .1.clone())),
                    text_col("container", logs.iter().map(|x| x.0 .2.clone())),
                    u64_col("errors", logs.iter().map(|x| x.1.errors)),
                    u64_col("warnings", logs.iter().map(|x| x.1.warnings)),
                    text_col(
                        "example",
                        logs.iter().map(|x| x.1.example.clone().unwrap_or_default()),
                    ),
                ],
                logs.iter().map(|x| trend(&x.1.trend)),
            )?,
        ));

        // Nodes.
        let mut nodes: Vec<_> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                !n.conditions.is_empty()
                    || n.oom_kills + n.warnings + n.throttled_periods > 0
                    || n.psi_some_max > 0.0
            })
            .collect();
        nodes.sort_by(|a, b| {
            let score = |n: &Node| (n.conditions.len() as u64, n.oom_kills + n.warnings);
            score(b.1).cmp(&score(a.1)).then_with(|| a.0.cmp(b.0))
        });
        nodes.truncate(top(nodes.len()));
        out.push((
            Section::Nodes,
            df_with_trend(
                vec![
                    text_col("node", nodes.iter().map(|x| x.0.clone())),
                    text_col("conditions", nodes.iter().map(|x| x.1.conditions.join(","))),
                    u64_col("oom_kills", nodes.iter().map(|x| x.1.oom_kills)),
                    u64_col("warnings", nodes.iter().map(|x| x.1.warnings)),
                    Column::new(
                        "memory_psi_max".into(),
                        nodes.iter().map(|x| x.1.psi_some_max).collect::<Vec<_>>(),
                    ),
                    u64_col(
                        "throttled_periods",
                        nodes.iter().map(|x| x.1.throttled_periods),
                    ),
                ],
                nodes.iter().map(|x| trend(&x.1.trend)),
            )?,
        ));

        // Drops and gaps.
        let gaps = &self.gaps;
        out.push((
            Section::Gaps,
            DataFrame::new_infer_height(vec![
                text_col("node", gaps.iter().map(|g| g.node.clone())),
                text_col("source", gaps.iter().map(|g| g.source.clone())),
                text_col("what", gaps.iter().map(|g| g.what.to_string())),
                text_col("reason", gaps.iter().map(|g| g.reason.clone())),
                Column::new(
                    "lost".into(),
                    gaps.iter().map(|g| g.lost).collect::<Vec<_>>(),
                ),
                time_col("from", gaps.iter().map(|g| Some(g.from))),
                time_col("to", gaps.iter().map(|g| Some(g.to))),
            ])?,
        ));
        Ok(out.into_iter().filter(|(_, df)| df.height() > 0).collect())
    }
}

/// Requests, errors, and p50, p95, p99 in nanoseconds.
type CallsRow = (u64, u64, [u64; 3]);

fn calls_row(c: &Calls) -> CallsRow {
    let mut d = c.durations.clone();
    d.sort_unstable();
    let q = |p: f64| -> u64 {
        if d.is_empty() {
            return 0;
        }
        // Nearest rank.
        let rank = (p * d.len() as f64).ceil() as usize;
        d[rank.clamp(1, d.len()) - 1]
    };
    (c.requests, c.errors, [q(0.50), q(0.95), q(0.99)])
}

fn calls_columns(key: &str, starts: Option<&[Ts]>, rows: &[(String, CallsRow)]) -> Vec<Column> {
    let ms = |ns: u64| (ns as f64 / 1e6 * 1000.0).round() / 1000.0;
    let mut cols = vec![text_col(key, rows.iter().map(|r| r.0.clone()))];
    if let Some(starts) = starts {
        cols.push(time_col("bucket", starts.iter().map(|t| Some(*t))));
    }
    cols.extend([
        u64_col("requests", rows.iter().map(|r| r.1 .0)),
        u64_col("errors", rows.iter().map(|r| r.1 .1)),
        Column::new(
            "error_rate".into(),
            rows.iter()
                .map(|r| {
                    if r.1 .0 == 0 {
                        0.0
                    } else {
                        r.1 .1 as f64 / r.1 .0 as f64
                    }
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "p50_ms".into(),
            rows.iter().map(|r| ms(r.1 .2[0])).collect::<Vec<_>>(),
        ),
        Column::new(
            "p95_ms".into(),
            rows.iter().map(|r| ms(r.1 .2[1])).collect::<Vec<_>>(),
        ),
        Column::new(
            "p99_ms".into(),
            rows.iter().map(|r| ms(r.1 .2[2])).collect::<Vec<_>>(),
        ),
    ]);
    cols
}

fn text_col(name: &str, v: impl Iterator<Item = String>) -> Column {
    Column::new(name.into(), v.collect::<Vec<_>>())
}

fn u64_col(name: &str, v: impl Iterator<Item = u64>) -> Column {
    Column::new(name.into(), v.collect::<Vec<_>>())
}

fn time_col(name: &str, v: impl Iterator<Item = Option<Ts>>) -> Column {
    let nanos: Vec<Option<i64>> = v.map(|t| t.map(|t| t.0 as i64)).collect();
    Series::new(name.into(), nanos)
        .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
        .into_column()
}

fn df_with_trend(
    mut cols: Vec<Column>,
    trends: impl Iterator<Item = Vec<u64>>,
) -> PolarsResult<DataFrame> {
    let lists: ListChunked = trends
        .map(|t| Some(Series::new(PlSmallStr::EMPTY, t)))
        .collect();
    let lists = lists
        .with_name("trend".into())
        .into_series()
        .cast(&DataType::List(Box::new(DataType::UInt64)))?;
    cols.push(lists.into_column());
    DataFrame::new_infer_height(cols)
}
