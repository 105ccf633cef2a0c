//! Detect: rules that turn raw events into findings — symptoms with their evidence.
//!
//! A finding says *what* went wrong with *which* entity and *when*, and keeps references to the
//! events that show it (their sequence numbers and one readable line each). Findings do not yet
//! say *why*: linking them into causal chains is the next stage ([`crate::link`]). The detector
//! reads the topology store as it goes, so every finding names a pod, service or node, not a pid
//! or an IP address.

mod kube;
mod net;
pub mod service;
pub(crate) mod spans;
pub mod text;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use self::spans::span_entity;
use crate::event::{Body, Event, Kernel, Kube, Meta, Name, OomConstraint, Source, Ts};
pub use crate::knowledge::FindingKind;
use crate::knowledge::Layer;
use crate::topology::{Entity, Topology};

/// One event that shows a finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub seq: u64,
    pub ts: Ts,
    /// The event's line, as `tapio cat` prints it.
    pub line: String,
}

/// Numbers and names a finding carries for the summary and the actions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The memory limit hit, and the usage or rss at the kill, in bytes.
    pub limit_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
    pub exit_code: Option<i64>,
    pub container: Option<String>,
    /// The node the entity runs on.
    pub node: Option<String>,
    /// The other side: the destination of failed connections, the host an application could not reach.
    pub peer: Option<Entity>,
    /// Where the failed connections or requests came from.
    pub clients: Vec<Entity>,
    /// The kernel's memory cgroup path of the victim, to attribute it once its Pod is known.
    pub cgroup: Option<String>,
    /// The message that says it best (an Event's message, a termination message, a log line).
    pub message: Option<String>,
    /// For error spans: requests whose trace failed at its root (user-facing), and those whose
    /// error was retried and recovered.
    pub failed_requests: u64,
    pub recovered_requests: u64,
    /// For error spans: failed requests whose root span is the service's own (it is the entry
    /// point users called).
    pub entry_failures: u64,
    /// For error spans: all spans of the service in the finding's minutes, to judge the error rate.
    pub requests: u64,
    pub trace_ids: Vec<String>,
    /// For service-level changes: how significant the change is (a z-score), to rank candidates.
    pub score: f64,
    /// For originating errors: most were calls that never reached the service (it is down).
    pub unreached: bool,
    /// For a rollout: the new ReplicaSet, its revision, the one before, and what changed.
    pub rollout: Option<Rollout>,
    /// For a change to configuration, a network policy, a node or a scale: what changed, one
    /// phrase each (a ConfigMap's keys: `~DATABASE_URL`, `+FEATURE_X`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// For a NetworkPolicy change: the policy as it stands after it (as it was, when deleted),
    /// to tell which pods and which traffic it restricts.
    #[serde(skip)]
    pub policy: Option<Box<crate::topology::Policy>>,
    /// Whether a NetworkPolicy change can block traffic: a policy created, narrowed, or deleted
    /// (with a default deny in place, what it allowed is then blocked). Widening one cannot.
    #[serde(skip)]
    pub restricts: bool,
}

/// A Deployment's new revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub replica_set: String,
    pub revision: u64,
    pub previous: Option<u64>,
    pub previous_replica_set: Option<String>,
    /// What changed in the pod template, one phrase each (`image cart:1.9.3 → 1.9.4`).
    pub diff: Vec<String>,
}

/// A symptom with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: usize,
    pub kind: FindingKind,
    /// The layer that saw it: the kind's, except for causes read from text, which take the layer
    /// of what said it (a Pod's termination message is Kubernetes, a span's exception is a trace).
    pub layer: Layer,
    pub entity: Entity,
    pub start: Ts,
    pub end: Ts,
    /// How many times it was seen (events, connections, spans).
    pub count: u64,
    pub summary: String,
    pub facts: Facts,
    pub evidence: Vec<Evidence>,
}

/// Evidence kept per finding; a burst of 10,000 refused connections needs a few examples, not all.
pub const MAX_EVIDENCE: usize = 8;

impl Finding {
    pub(crate) fn add_evidence_at(&mut self, e: &Event, ts: Ts) {
        if self.evidence.len() < MAX_EVIDENCE && !self.evidence.iter().any(|x| x.seq == e.seq) {
            self.evidence.push(Evidence {
                seq: e.seq,
                ts,
                line: e.to_string(),
            });
        }
    }
}

/// A time range in which the evidence is known to be incomplete (drops, watch gaps).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Blind {
    pub from: Ts,
    pub to: Ts,
    pub what: String,
    /// For losses: who lost what, why and how many; the losses of one source and reason that
    /// follow each other make one blind spot (a flood gives one line, not one a second).
    pub lost: Option<(Source, String, u64)>,
}

impl Blind {
    /// Adds a loss to the blind spots, joining the last one of the same source and reason when
    /// they overlap or are less than 5 s apart.
    fn lost(blind: &mut Vec<Blind>, source: Source, count: u64, from: Ts, to: Ts, reason: &str) {
        const NEAR: u64 = 5 * Ts::NANOS_PER_SEC;
        let near = blind.iter_mut().rev().find(|b| {
            b.lost
                .as_ref()
                .is_some_and(|(s, r, _)| *s == source && r == reason)
                && from.0 <= b.to.0.saturating_add(NEAR)
                && to.0.saturating_add(NEAR) >= b.from.0
        });
        match near {
            Some(b) => {
                b.from = b.from.min(from);
                b.to = b.to.max(to);
                if let Some((_, _, n)) = b.lost.as_mut() {
                    *n = n.saturating_add(count);
                    b.what = format!("{n} events lost by {source} ({reason})");
                }
            }
            None => blind.push(Blind {
                from,
                to,
                what: format!("{count} events lost by {source} ({reason})"),
                lost: Some((source, reason.to_string(), count)),
            }),
        }
    }
}

/// Tunables of the detectors.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connection failures towards one destination within this window form one burst.
    pub burst_window_ns: u64,
    /// How many failures make a burst.
    pub burst_min: u64,
    /// Retransmits towards one destination within the window that make a spike.
    pub retransmit_min: u64,
    /// A span longer than this is slow.
    pub slow_span_ns: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            burst_window_ns: 10 * Ts::NANOS_PER_SEC,
            burst_min: 3,
            retransmit_min: 100,
            slow_span_ns: 10 * Ts::NANOS_PER_SEC,
        }
    }
}

/// The detect stage: feed it events in time order, then take its findings.
pub struct Detector {
    pub(crate) cfg: Config,
    pub(crate) topo: Topology,
    pub(crate) findings: Vec<Finding>,
    /// Open findings by key, so repeats extend one finding instead of making many.
    pub(crate) open: HashMap<(FindingKind, Entity, String), usize>,
    pub(crate) net: net::Bursts,
    pub(crate) spans: spans::Traces,
    pub(crate) services: service::Services,
    pub blind: Vec<Blind>,
    pub last_ts: Ts,
    /// The cgroup of each live process, learned from exec events: for kernel events that name a
    /// pid but no cgroup (and for reports whose cgroup line was lost).
    pub(crate) pids: rustc_hash::FxHashMap<u32, crate::event::Name>,
    /// Insertion order of `pids`, to forget the oldest when a capture misses exits.
    pub(crate) pid_order: std::collections::VecDeque<u32>,
    /// The last meaningful log lines of each container (`ns/pod/container`), to quote when it
    /// crashes: (time, text, evidence).
    pub(crate) log_tail: HashMap<String, std::collections::VecDeque<(Ts, String, Evidence)>>,
    /// Workloads with fewer available replicas than desired, not stuck yet: since when, how long
    /// they may take, their summary and the event that showed them.
    pub(crate) short: HashMap<Entity, (Ts, u64, String, Event)>,
}

/// Log lines kept per container for quoting, and containers remembered.
pub(crate) const LOG_TAIL: usize = 3;
pub(crate) const MAX_LOG_CONTAINERS: usize = 4096;

/// A cgroup counts as CPU-throttled when its quota ran out in this share of the periods of a
/// sample (percent) and its tasks waited at least this long (µs).
const THROTTLED_SHARE_PCT: u64 = 10;
const THROTTLED_MIN_US: u64 = 100_000;

/// Processes remembered for pid → cgroup attribution (a node runs far fewer at once).
const MAX_PIDS: usize = 1 << 16;

/// The findings and what they were found against, borrowed: what the link stage reads.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub findings: &'a [Finding],
    pub topology: &'a Topology,
    pub blind: &'a [Blind],
}

impl Detected {
    pub fn view(&self) -> View<'_> {
        View {
            findings: &self.findings,
            topology: &self.topology,
            blind: &self.blind,
        }
    }
}

/// What the detect stage hands to the link stage.
pub struct Detected {
    pub findings: Vec<Finding>,
    pub topology: Topology,
    pub blind: Vec<Blind>,
    /// The time of the last event seen.
    pub last_ts: Ts,
}

impl Detected {
    /// When the first finding began (relative times such as `--since +5m` count from it).
    pub fn first_finding(&self) -> Ts {
        self.findings
            .iter()
            .map(|f| f.start)
            .min()
            .unwrap_or_default()
    }
}

impl Detector {
    pub fn new(cfg: Config) -> Detector {
        Detector {
            cfg,
            topo: Topology::new(),
            findings: Vec::new(),
            open: HashMap::new(),
            net: net::Bursts::default(),
            spans: spans::Traces::default(),
            services: service::Services::default(),
            blind: Vec::new(),
            last_ts: Ts(0),
            pids: Default::default(),
            pid_order: std::collections::VecDeque::new(),
            log_tail: HashMap::new(),
            short: HashMap::new(),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The findings so far, for linking while the stream goes on.
    pub fn view(&self) -> View<'_> {
        View {
            findings: &self.findings,
            topology: &self.topo,
            blind: &self.blind,
        }
    }

    /// The findings so far with those still forming (bursts that go on), numbered, for a live
    /// look at the incidents while the stream goes on. The detector is not changed.
    pub fn live_findings(&self) -> Vec<Finding> {
        let mut all = self.findings.clone();
        all.extend(self.open_bursts());
        reattribute(&mut all, &self.topo);
        for (i, f) in all.iter_mut().enumerate() {
            f.id = i;
        }
        all
    }

    /// The findings that may still change (a state not recovered, a repeat still counted).
    pub fn open_findings(&self) -> HashSet<usize> {
        self.open.values().copied().collect()
    }

    /// Forgets findings whose incident has been closed and reported, so that memory does not grow
    /// with the length of the stream.
    pub fn forget(&mut self, ids: &HashSet<usize>) {
        let mut remap = HashMap::new();
        let mut kept = Vec::with_capacity(self.findings.len() - ids.len().min(self.findings.len()));
        for (i, mut f) in std::mem::take(&mut self.findings).into_iter().enumerate() {
            if !ids.contains(&i) {
                remap.insert(i, kept.len());
                f.id = kept.len();
                kept.push(f);
            }
        }
        self.findings = kept;
        self.open.retain(|_, i| match remap.get(i) {
            Some(&j) => {
                *i = j;
                true
            }
            None => false,
        });
        let traces = std::mem::take(&mut self.spans.error_traces);
        self.spans.error_traces = traces
            .into_iter()
            .filter_map(|(i, t)| remap.get(&i).map(|&j| (j, t)))
            .collect();
    }

    /// Remembers the cgroup of a pid (from its exec, or from the recorder's first sight of it).
    fn pid_cgroup(&mut self, pid: u32, cgroup: &Name) {
        if self.pids.insert(pid, cgroup.clone()).is_none() {
            self.pid_order.push_back(pid);
        }
        while self.pids.len() > MAX_PIDS {
            match self.pid_order.pop_front() {
                Some(old) => {
                    self.pids.remove(&old);
                }
                None => break,
            }
        }
        // Exited pids leave stale entries in the order queue: keep it near the map's size.
        if self.pid_order.len() > 2 * MAX_PIDS {
            let pids = &self.pids;
            self.pid_order.retain(|p| pids.contains_key(p));
        }
    }

    /// Looks at one event (events must come in time order for bursts to be right).
    pub fn observe(&mut self, e: &Event) {
        self.last_ts = self.last_ts.max(e.ts);
        self.service_tick(e.ts);
        self.spans_tick(e.ts);
        // A workload's own change decides for itself (it may say why it is stuck).
        if !self.short.is_empty() && !matches!(e.body, Body::Kube(Kube::Object(_))) {
            self.rollouts_due(e.ts);
        }
        match &e.body {
            Body::Kernel(Kernel::OomKill(o)) => self.oom_kill(e, o),
            Body::Kernel(Kernel::TcpState(t)) => self.tcp_state(e, t),
            Body::Kernel(Kernel::TcpRetransmit(r)) => self.retransmit(e, r),
            Body::Kernel(Kernel::Exec(x)) if !x.cgroup.is_empty() => {
                self.pid_cgroup(x.pid, &x.cgroup)
            }
            Body::Kernel(Kernel::Task(t)) if !t.cgroup.is_empty() => {
                self.pid_cgroup(t.pid, &t.cgroup)
            }
            Body::Kernel(Kernel::CpuThrottle(t)) => self.cpu_throttle(e, t),
            Body::Kernel(Kernel::Exit(x)) => {
                self.pids.remove(&x.pid);
            }
            Body::Kernel(_) => {}
            Body::Kube(Kube::Object(o)) => {
                let change = self.topo.apply(o);
                self.object_change(e, change);
            }
            Body::Kube(Kube::Event(k)) => self.kube_event(e, k),
            Body::Span(s) => self.span(e, s),
            Body::Log(l) => self.log(e, l),
            Body::AppLog(a) => self.app_log(e, a),
            Body::Meta(Meta::Drop {
                source,
                count,
                range,
                reason,
            }) => Blind::lost(
                &mut self.blind,
                *source,
                *count,
                range.from,
                range.to,
                reason,
            ),
            Body::Meta(Meta::Gap {
                source,
                range,
                reason,
            }) => self.blind.push(Blind {
                from: range.from,
                to: range.to,
                what: format!("{source} saw nothing ({reason})"),
                lost: None,
            }),
            Body::Meta(Meta::Annotation { .. }) => {}
        }
    }

    /// Ends the stream: closes open bursts and span aggregates.
    pub fn finish(mut self) -> Detected {
        self.release_waiting_spans();
        self.finish_services();
        // States that never recovered last to the end of the evidence.
        for (&(kind, _, _), &i) in &self.open {
            if kind.is_state() {
                self.findings[i].end = self.findings[i].end.max(self.last_ts);
            }
        }
        self.close_bursts(None);
        self.finish_spans();
        self.reattribute();
        let mut findings = self.findings;
        // A total order, so that events at the same instant arriving in another order (captures
        // split or merged differently) give the same findings in the same order.
        findings.sort_by(|a, b| {
            (a.start, a.kind, &a.entity, &a.summary, a.end, a.count)
                .cmp(&(b.start, b.kind, &b.entity, &b.summary, b.end, b.count))
        });
        for (i, f) in findings.iter_mut().enumerate() {
            f.id = i;
        }
        Detected {
            findings,
            topology: self.topo,
            blind: self.blind,
            last_ts: self.last_ts,
        }
    }

    /// Findings made before the objects that explain them arrived (a post-mortem import places a
    /// Pod at the latest time its status states, often after the kernel saw its container die):
    /// attribute them now, with everything known.
    fn reattribute(&mut self) {
        reattribute(&mut self.findings, &self.topo);
    }

    /// Starts a finding, or extends the open one with the same kind, entity and key.
    pub(crate) fn upsert(
        &mut self,
        kind: FindingKind,
        entity: Entity,
        key: &str,
        at: Ts,
        e: &Event,
        make: impl FnOnce() -> (String, Facts),
    ) -> &mut Finding {
        // What says a container's state without naming the container (an Event with no field
        // path) is the same finding as what names it: one crash loop, however many ways
        // Kubernetes reports it.
        let per_container = entity.is_pod()
            && matches!(
                kind,
                FindingKind::CrashLoop | FindingKind::ImagePullFailure | FindingKind::ConfigError
            );
        let key = if !per_container {
            key.to_string()
        } else if key.is_empty() {
            self.open
                .keys()
                .filter(|(k, e, _)| *k == kind && *e == entity)
                .map(|(_, _, c)| c.as_str())
                .min()
                .unwrap_or("")
                .to_string()
        } else {
            if let Some(i) = self.open.remove(&(kind, entity.clone(), String::new())) {
                self.open.insert((kind, entity.clone(), key.to_string()), i);
            }
            key.to_string()
        };
        let k = (kind, entity.clone(), key);
        let i = match self.open.get(&k) {
            Some(&i) => {
                let f = &mut self.findings[i];
                f.count += 1;
                f.start = f.start.min(at);
                f.end = f.end.max(at);
                i
            }
            None => {
                let (summary, facts) = make();
                self.findings.push(Finding {
                    id: self.findings.len(),
                    kind,
                    layer: kind.layer(),
                    entity,
                    start: at,
                    end: at,
                    count: 1,
                    summary,
                    facts,
                    evidence: Vec::new(),
                });
                self.open.insert(k, self.findings.len() - 1);
                self.findings.len() - 1
            }
        };
        let f = &mut self.findings[i];
        f.add_evidence_at(e, at);
        f
    }

    /// Closes an open finding so that the next occurrence starts a new one.
    /// Closes an open finding so that the next occurrence starts a new one. A state (no endpoints,
    /// not ready, crash-looping …) lasted until `at`, when it recovered.
    pub(crate) fn close(&mut self, kind: FindingKind, entity: &Entity, key: &str, at: Ts) {
        if let Some(i) = self.open.remove(&(kind, entity.clone(), key.to_string())) {
            if kind.is_state() {
                let f = &mut self.findings[i];
                f.end = f.end.max(at);
            }
        }
    }

    /// A pod at its CPU limit: the quota ran out in a good share of the periods.
    fn cpu_throttle(&mut self, e: &Event, t: &crate::event::CpuThrottle) {
        if t.periods == 0
            || t.throttled_periods * 100 < t.periods * THROTTLED_SHARE_PCT
            || t.throttled_us < THROTTLED_MIN_US
        {
            return;
        }
        let pod = self
            .topo
            .pod_of_cgroup(&t.cgroup)
            .map(|p| (p.entity(), p.node.clone()));
        let node = e.node.to_string();
        let (entity, node) = match pod {
            Some((p, n)) => (p, if node.is_empty() { n } else { node }),
            None => (
                Entity::Host {
                    node: node.clone(),
                    what: t.cgroup.to_string(),
                },
                node,
            ),
        };
        let pct = t.throttled_periods * 100 / t.periods;
        let summary = format!(
            "{} CPU-throttled: its quota ran out in {pct} % of periods, its threads held back {:.1} s in {:.0} s",
            entity.short(),
            t.throttled_us as f64 / 1e6,
            t.interval_ms as f64 / 1e3
        );
        let cgroup = Some(t.cgroup.to_string());
        let f = self.upsert(FindingKind::CpuThrottled, entity, "", e.ts, e, || {
            (
                summary.clone(),
                Facts {
                    node: Some(node).filter(|n| !n.is_empty()),
                    cgroup,
                    ..Facts::default()
                },
            )
        });
        // The worst sample describes it.
        if t.throttled_us as f64 > f.facts.score {
            f.facts.score = t.throttled_us as f64;
            f.summary = summary;
        }
    }

    fn oom_kill(&mut self, e: &Event, o: &crate::event::OomKill) {
        // The victim's cgroup, else the one its pid ran in when it was exec'd.
        let learned = self
            .pids
            .get(&o.victim_pid)
            .filter(|_| o.cgroup().is_empty())
            .cloned();
        let cgroup_path = learned.unwrap_or_else(|| o.cgroup().clone());
        let pod = self
            .topo
            .pod_of_cgroup(&cgroup_path)
            .map(|p| (p.entity(), p.node.clone()));
        let node = if e.node.is_empty() {
            pod.as_ref().map(|p| p.1.clone()).unwrap_or_default()
        } else {
            e.node.to_string()
        };
        // The cgroup that hit its limit may be an ancestor of the pod's: all pods of the node
        // together at their allocatable (`oom_memcg=/kubepods.slice`), not the pod's own limit.
        let oom_memcg = o.oom_memcg.as_str();
        let above_pods = o.constraint == OomConstraint::Memcg
            && !oom_memcg.is_empty()
            && oom_memcg != cgroup_path.as_str()
            && cgroup_path.as_str().starts_with(oom_memcg)
            && oom_memcg.contains("kubepods")
            // No pod's own level (`pod<uid>`, `kubepods-burstable-pod<uid>.slice`).
            && !oom_memcg
                .split('/')
                .any(|seg| seg.starts_with("pod") || seg.contains("-pod"));
        let victim_pod = pod.as_ref().map(|p| p.0.clone());
        let (kind, entity) = match (o.constraint, pod) {
            (OomConstraint::Global, _) => (FindingKind::OomKillNode, Entity::Node(node.clone())),
            _ if above_pods => (FindingKind::OomKillNode, Entity::Node(node.clone())),
            (_, Some((p, _))) => (FindingKind::OomKillMemcg, p),
            (_, None) => (
                FindingKind::OomKillMemcg,
                Entity::Host {
                    node: node.clone(),
                    what: if cgroup_path.is_empty() {
                        o.victim_comm.to_string()
                    } else {
                        cgroup_path.to_string()
                    },
                },
            ),
        };
        let key = format!("{}@{}", o.victim_pid, e.ts.0);
        // Kilobytes from a kernel log can be anything: saturate, never overflow.
        let limit = o.memcg_limit_kib.map(|k| k.saturating_mul(1024));
        let peak = o
            .memcg_usage_kib
            .map(|k| k.saturating_mul(1024))
            .or((o.rss_kib > 0).then_some(o.rss_kib.saturating_mul(1024)));
        let what = match kind {
            FindingKind::OomKillNode if above_pods => format!(
                "the node's pods together hit their memory limit ({oom_memcg}), not the pod's own"
            ),
            FindingKind::OomKillNode => "the node ran out of memory".to_string(),
            _ => "its memory cgroup hit its limit".to_string(),
        };
        let summary = format!(
            "kernel OOM-killed pid {} ({}): {what}",
            o.victim_pid, o.victim_comm
        );
        // A node-level kill names the pod it hit, for the impact and the chain.
        let clients: Vec<Entity> = match (kind, victim_pod) {
            (FindingKind::OomKillNode, Some(p)) => vec![p],
            _ => Vec::new(),
        };
        let node_c = node.clone();
        let cgroup = Some(cgroup_path.to_string()).filter(|c| !c.is_empty());
        self.upsert(kind, entity, &key, e.ts, e, || {
            (
                summary,
                Facts {
                    limit_bytes: limit,
                    peak_bytes: peak,
                    node: Some(node_c).filter(|n| !n.is_empty()),
                    cgroup,
                    clients,
                    ..Facts::default()
                },
            )
        });
    }
}

/// Findings made before the objects that explain them arrived, attributed with what is known now.
fn reattribute(findings: &mut [Finding], topo: &Topology) {
    for f in findings.iter_mut() {
        let pod = f
            .facts
            .cgroup
            .as_ref()
            .and_then(|c| topo.peek_pod_of_cgroup(&c.as_str().into()))
            .cloned();
        if let Some(p) = pod {
            if f.facts.node.is_none() && !p.node.is_empty() {
                f.facts.node = Some(p.node.clone());
            }
            match &f.entity {
                Entity::Host { .. } => f.entity = p.entity(),
                Entity::Node(n) if n.is_empty() && !p.node.is_empty() => {
                    f.entity = Entity::Node(p.node.clone())
                }
                _ => {}
            }
            if f.kind == FindingKind::OomKillNode && !f.facts.clients.contains(&p.entity()) {
                f.facts.clients.push(p.entity());
            }
        }
        if let Entity::Host { what, .. } = &f.entity {
            let ip = what
                .rsplit_once(':')
                .and_then(|(ip, _)| ip.trim_matches(['[', ']']).parse().ok());
            if let Some(owner) = ip.and_then(|ip| topo.owner_of_ip(ip)) {
                f.facts.peer = Some(owner.clone());
                f.entity = owner;
            }
        }
    }
}
