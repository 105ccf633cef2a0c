//! Analysis: the decisions about each group of linked findings — root-cause kind, severity,
//! confidence, impact, actions — from the properties of [`crate::knowledge`]. What it builds,
//! [`Incident`], is the stable JSON schema of `replay`/`correlate -o json` (`docs/correlation.md`);
//! [`crate::report`] only renders it.

pub mod actions;
pub mod overview;
pub mod request;
pub mod scope;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::detect::{Evidence, Finding, FindingKind as K, View};
use crate::event::Ts;
pub use crate::knowledge::RootKind;
use crate::knowledge::{Harm, Layer, Nature, Scope};
use crate::link::Group;
use crate::topology::{Entity, Topology};
use crate::units::kib;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootCause {
    pub kind: RootKind,
    pub entity: Entity,
    pub summary: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainStep {
    pub ts: Ts,
    pub layer: Layer,
    pub kind: K,
    pub entity: Entity,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// When several roots of the incident lead here: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<Entity>,
}

/// Another root of the same incident: a cause nothing else explains, with its own chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OtherRoot {
    pub kind: RootKind,
    pub entity: Entity,
    pub summary: String,
    pub chain: Vec<ChainStep>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Impact {
    pub services: Vec<Entity>,
    pub pods: Vec<Entity>,
    pub nodes: Vec<Entity>,
    pub duration_s: f64,
    /// Requests whose trace failed at its root.
    pub failed_requests: u64,
    /// Requests with errors that were retried and succeeded.
    pub recovered_requests: u64,
    /// Requests measurably slower than their service's baseline (service-level latency findings).
    pub slow_requests: u64,
    /// Endpoints lost by the services that lost all of theirs.
    pub endpoints_lost: u64,
    pub restarts: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Action {
    pub urgency: &'static str,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Alternative {
    pub kind: K,
    pub entity: Entity,
    pub why_not: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Incident {
    pub id: usize,
    pub severity: Severity,
    pub confidence: f64,
    pub start: Ts,
    pub end: Ts,
    pub root_cause: RootCause,
    pub chain: Vec<ChainStep>,
    /// The other roots, when independent causes hit the same services (empty: one root).
    pub other_root_causes: Vec<OtherRoot>,
    pub impact: Impact,
    pub actions: Vec<Action>,
    pub evidence_complete: bool,
    pub evidence_gaps: Vec<String>,
    /// What the reader of the evidence should know about it: clock corrections applied to a
    /// node's events by the cluster consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Other candidate causes and why they lost (`--explain`).
    pub alternatives: Vec<Alternative>,
    /// Every finding of the incident (for `--explain` and `correlate`).
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

/// An action read back (a kept verdict, `pipeline::kept`): its urgency is one the actions give.
impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        #[derive(Deserialize)]
        struct Read {
            urgency: String,
            text: String,
        }
        let r = Read::deserialize(d)?;
        let urgency = ["IMMEDIATE", "NEXT", "LATER"]
            .into_iter()
            .find(|u| *u == r.urgency)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown urgency {:?}", r.urgency)))?;
        Ok(Action {
            urgency,
            text: r.text,
        })
    }
}

/// The verdict over a whole input.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub incidents: Vec<Incident>,
}

/// Builds the incidents of the linked groups, most severe first, then by time.
pub fn build(d: View<'_>, groups: &[Group]) -> Verdict {
    verdict(incidents(d, groups))
}

/// The incidents of some linked groups, not yet numbered. A group of changes alone (a rollout
/// that nothing failed after) is no incident.
pub fn incidents(d: View<'_>, groups: &[Group]) -> Vec<Incident> {
    groups
        .iter()
        .filter(|g| {
            g.members
                .iter()
                .any(|&i| d.findings[i].kind.props().nature != Nature::Change)
        })
        .map(|g| incident(d, g))
        .collect()
}

/// Orders incidents — most severe first, then by time, then by root entity and summary, a total
/// order — and numbers them.
pub fn verdict(mut incidents: Vec<Incident>) -> Verdict {
    incidents.sort_by(|a, b| {
        (
            b.severity,
            a.start,
            &a.root_cause.entity,
            &a.root_cause.summary,
        )
            .cmp(&(
                a.severity,
                b.start,
                &b.root_cause.entity,
                &b.root_cause.summary,
            ))
    });
    for (i, inc) in incidents.iter_mut().enumerate() {
        inc.id = i + 1;
    }
    Verdict { incidents }
}

/// The steps of a chain: real times, except for aggregates (a service's error spans, what its
/// requests said), which may have begun before, from background errors, and are shown from the
/// step that caused them.
fn chain_steps(
    f: &[Finding],
    root: usize,
    ids: &[usize],
    shared: &std::collections::BTreeMap<usize, Vec<usize>>,
) -> Vec<ChainStep> {
    let mut prev = f[root].start;
    ids.iter()
        .map(|&i| ChainStep {
            ts: {
                let aggregate = f[i].kind.props().nature == Nature::Aggregate;
                prev = if aggregate {
                    f[i].start.max(prev)
                } else {
                    f[i].start
                };
                prev
            },
            layer: f[i].layer,
            kind: f[i].kind,
            entity: f[i].entity.clone(),
            summary: f[i].summary.clone(),
            evidence: f[i].evidence.clone(),
            caused_by: shared
                .get(&i)
                .map(|roots| roots.iter().map(|&r| f[r].entity.clone()).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn incident(d: View<'_>, g: &Group) -> Incident {
    let f = d.findings;
    let root = &f[g.root];
    let members: Vec<&Finding> = g.members.iter().map(|&i| &f[i]).collect();
    let impact = impact(&members, d.topology);
    let (start, end) = (
        members.iter().map(|m| m.start).min().unwrap_or(root.start),
        members.iter().map(|m| m.end).max().unwrap_or(root.end),
    );
    let chain = chain_steps(f, g.root, &g.chain, &g.shared);
    let layers: BTreeSet<Layer> = members.iter().map(|m| m.layer).collect();
    let complete = g.blind.is_empty();
    let root_kind = root_kind(f, g.root, &g.members);
    let confidence = confidence(root_kind, layers.len(), complete);
    let severity = severity(root_kind, &members, &impact);
    let entity = root_entity(root_kind, root, &members, d.topology);
    Incident {
        id: 0,
        severity,
        confidence,
        start,
        end,
        root_cause: RootCause {
            kind: root_kind,
            summary: root_summary(root_kind, root, &members),
            entity,
        },
        chain,
        other_root_causes: g
            .others
            .iter()
            .map(|(r, ids)| {
                let kind = self::root_kind(f, *r, &g.members);
                OtherRoot {
                    kind,
                    entity: root_entity(kind, &f[*r], &members, d.topology),
                    summary: root_summary(kind, &f[*r], &members),
                    chain: chain_steps(f, *r, ids, &g.shared),
                }
            })
            .collect(),
        actions: {
            let mut a = actions(root_kind, root, &members, &impact, d.topology);
            // Each other root's most urgent action, after the primary's.
            for (r, _) in &g.others {
                let kind = self::root_kind(f, *r, &g.members);
                let ctx = actions::Context::new(&f[*r], &members, &impact, d.topology);
                if let Some((urgency, text)) = (kind.props().actions)(&ctx).into_iter().next() {
                    a.insert(a.len().min(1), Action { urgency, text });
                }
            }
            a
        },
        impact,
        evidence_complete: complete,
        evidence_gaps: g
            .blind
            .iter()
            .map(|b| format!("{} → {}: {}", b.from, b.to, b.what))
            .collect(),
        notes: Vec::new(),
        alternatives: g
            .alternatives
            .iter()
            .map(|(i, why)| Alternative {
                kind: f[*i].kind,
                entity: f[*i].entity.clone(),
                why_not: why.clone(),
            })
            .collect(),
        findings: members.into_iter().cloned().collect(),
    }
}

/// `prior` of the root kind; each further layer that saw the incident halves the remaining doubt
/// (kernel, Kubernetes, network, traces, logs agreeing is stronger than one of them alone); gaps
/// in the evidence take a tenth off. Rounded to two decimals, at most 0.99.
pub fn confidence(kind: RootKind, layers: usize, complete: bool) -> f64 {
    let doubt = (1.0 - kind.prior()) * 0.5f64.powi(layers.saturating_sub(1) as i32);
    let c = (1.0 - doubt) * if complete { 1.0 } else { 0.9 };
    (c.min(0.99) * 100.0).round() / 100.0
}

fn impact(members: &[&Finding], topo: &Topology) -> Impact {
    let mut services = BTreeSet::new();
    let mut pods = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    let mut imp = Impact::default();
    let (mut entry, mut most) = (0, 0);
    for m in members {
        match &m.entity {
            Entity::Pod { ns, name } => {
                pods.insert(m.entity.clone());
                if let Some(p) = topo.pod_by_name(ns, name) {
                    services.extend(topo.services_of(p));
                    if !p.node.is_empty() {
                        nodes.insert(Entity::Node(p.node.clone()));
                    }
                }
            }
            Entity::Service { .. } if m.kind != K::ErrorSpans || m.facts.failed_requests > 0 => {
                services.insert(m.entity.clone());
            }
            Entity::Node(_) => {
                nodes.insert(m.entity.clone());
            }
            _ => {}
        }
        if let Some(n) = &m.facts.node {
            nodes.insert(Entity::Node(n.clone()));
        }
        match m.kind {
            K::ErrorSpans => {
                // The same failed request shows in every service on its path: count it at its
                // entry point (its root span), else once for the service that saw the most.
                entry += m.facts.entry_failures;
                most = most.max(m.facts.failed_requests);
                imp.recovered_requests += m.facts.recovered_requests;
            }
            K::ServiceNoEndpoints => imp.endpoints_lost += m.count,
            K::ServiceLatency | K::NetworkLatency => imp.slow_requests += m.count,
            _ if m.kind.props().harm == Harm::Restart => imp.restarts += 1,
            _ => {}
        }
    }
    imp.failed_requests = entry.max(most);
    let start = members.iter().map(|m| m.start).min().unwrap_or_default();
    let end = members.iter().map(|m| m.end).max().unwrap_or_default();
    imp.duration_s = (end.saturating_sub(start) as f64 / 1e8).round() / 10.0;
    imp.services = services
        .into_iter()
        .filter(|s| matches!(s, Entity::Service { name, .. } if !name.is_empty()))
        .collect();
    imp.pods = pods.into_iter().collect();
    imp.nodes = nodes.into_iter().collect();
    imp
}

/// Critical: a node-level cause hitting services, or ≥ 100 failed requests. High: a service lost
/// every endpoint, ≥ 10 failed requests, or a node-level cause. Medium: containers crashing,
/// restarting, unschedulable or unpullable, or a few failed requests. Low: everything else —
/// errors that were retried and recovered, a lone network blip.
fn severity(kind: RootKind, members: &[&Finding], imp: &Impact) -> Severity {
    let node_level = kind.props().scope == Scope::Node;
    // A cause a log line names is not itself a failure: a container that keeps running, ready and
    // restart-free may quote an error (a retried call, a prompt, a test). It counts once something
    // fails with it.
    let pod_trouble = members.iter().any(|m| {
        matches!(m.kind.props().harm, Harm::Pod | Harm::Restart)
            && !(m.layer == Layer::Log
                && matches!(
                    m.kind,
                    K::ConfigError | K::DependencyError | K::DnsFailure | K::CertificateError
                ))
    });
    // Errors alone, at a low rate among the service's requests, are background noise.
    let only_errors = members
        .iter()
        .all(|m| m.kind.props().harm == Harm::Requests);
    // A service measurably worse than its own baseline is a real change, not background.
    let degraded = members
        .iter()
        .any(|m| m.kind.props().harm == Harm::Degraded);
    let errors: u64 = members.iter().map(|m| m.count).sum();
    let requests: u64 = members.iter().map(|m| m.facts.requests).sum();
    if only_errors && (imp.failed_requests < 5 || errors * 20 < requests) {
        return Severity::Low;
    }
    if (node_level && !imp.services.is_empty()) || imp.failed_requests >= 100 {
        Severity::Critical
    } else if imp.endpoints_lost > 0 || imp.failed_requests >= 10 || node_level {
        Severity::High
    } else if pod_trouble || degraded || imp.failed_requests > 0 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// The entity the root cause is about: the dependency when one is named and known.
fn root_entity(kind: RootKind, root: &Finding, members: &[&Finding], topo: &Topology) -> Entity {
    // An expired certificate is the server's that presents it, when the text names a known one.
    if kind == RootKind::CertificateExpired {
        if let Some(p) = members
            .iter()
            .find(|m| m.kind == K::CertificateError)
            .and_then(|m| m.facts.peer.clone())
        {
            return p;
        }
    }
    if kind == RootKind::DependencyUnreachable && root.kind != K::ServiceErrors {
        let peer = members.iter().find_map(|m| {
            m.facts
                .peer
                .clone()
                .filter(|_| m.kind == K::DependencyError)
        });
        // Blame the dependency only when the incident shows it unhealthy, not merely known.
        if let Some(p @ Entity::Service { ns, name }) = &peer {
            let unhealthy = members.iter().any(|m| {
                m.kind != K::DependencyError
                    && (m.entity == *p || matches!(&m.entity, Entity::Pod { ns: pns, name: pod }
                        if pns == ns && topo.pod_by_name(pns, pod).is_some_and(|x| topo.services_of(x).contains(p))))
            });
            if unhealthy
                && (!topo.pods_of_service(ns, name).is_empty()
                    || topo.endpoints(ns, name).total > 0)
            {
                return p.clone();
            }
        }
    }
    root.entity.clone()
}

fn root_summary(kind: RootKind, root: &Finding, members: &[&Finding]) -> String {
    let f = &root.facts;
    let oom_facts = members
        .iter()
        .find(|m| m.kind == K::OomKillMemcg)
        .map(|m| &m.facts)
        .unwrap_or(f);
    let limit = oom_facts
        .limit_bytes
        .or(members.iter().find_map(|m| m.facts.limit_bytes));
    match kind {
        RootKind::OomContainerLimit => {
            let node = oom_facts
                .node
                .as_deref()
                .or(f.node.as_deref())
                .unwrap_or("?");
            match (oom_facts.peak_bytes, limit) {
                (Some(p), Some(l)) => format!(
                    "{} OOM-killed: memory {} hit its {} limit on {node}",
                    root.entity.short(),
                    kib(p / 1024),
                    kib(l / 1024)
                ),
                _ => format!(
                    "{} OOM-killed at its memory limit on {node}",
                    root.entity.short()
                ),
            }
        }
        // A service-level finding says it best itself: what changed, by how much.
        _ if root.kind.props().harm == crate::knowledge::Harm::Degraded => root.summary.clone(),
        // A change, and the first thing that failed after it, with what that said.
        RootKind::ConfigChange | RootKind::NetworkPolicy | RootKind::SchedulingFailure
            if root.kind.props().nature == crate::knowledge::Nature::Change =>
        {
            let failed = members
                .iter()
                .filter(|m| m.kind.props().nature != crate::knowledge::Nature::Change)
                .min_by_key(|m| (std::cmp::Reverse(m.kind.props().cause_rank), m.start));
            match failed {
                Some(m) => format!(
                    "{}; then {}",
                    first_line_of(&root.summary),
                    first_line_of(&m.summary)
                ),
                None => root.summary.clone(),
            }
        }
        RootKind::JobFailed => {
            let job = members.iter().find(|m| m.kind == K::JobFailed);
            let runs = members
                .iter()
                .filter(|m| m.kind == K::ContainerError)
                .count();
            let said = members
                .iter()
                .filter(|m| matches!(m.entity, Entity::Pod { .. }))
                .find_map(|m| m.facts.message.as_deref())
                .map(crate::detect::text::first_line)
                .filter(|l| !l.is_empty())
                .map(|l| format!(": \"{l}\""))
                .unwrap_or_default();
            match job {
                Some(j) => format!(
                    "{}{}{said}",
                    first_line_of(&j.summary),
                    match runs {
                        0 => String::new(),
                        1 => ", its pod failed".to_string(),
                        n => format!(", all {n} of its pods failed"),
                    }
                ),
                None => first_line_of(&root.summary).to_string(),
            }
        }
        RootKind::BadRollout => {
            // The rollout, and what its new pods did.
            let failed = members
                .iter()
                .filter(|m| m.kind != K::Rollout && matches!(m.entity, Entity::Pod { .. }))
                .min_by_key(|m| (std::cmp::Reverse(m.kind.props().cause_rank), m.start));
            let revision = f.rollout.as_ref().map_or(0, |r| r.revision);
            // What the new pods said when they failed (a back-off is not a reason).
            let said = members
                .iter()
                .filter(|m| m.kind != K::CrashLoop)
                .find_map(|m| m.facts.message.as_deref())
                .map(crate::detect::text::first_line)
                .filter(|l| !l.is_empty())
                .map(|l| format!(": \"{l}\""))
                .unwrap_or_default();
            match failed {
                Some(m) => format!(
                    "{} revision {revision} broke its new pods: {}{said}",
                    root.entity.short(),
                    m.summary
                ),
                None => root.summary.clone(),
            }
        }
        RootKind::DependencyUnreachable
        | RootKind::DnsFailure
        | RootKind::ConfigError
        | RootKind::CertificateExpired => {
            let said = members.iter().find_map(|m| {
                matches!(
                    m.kind,
                    K::DependencyError | K::DnsFailure | K::ConfigError | K::CertificateError
                )
                .then(|| m.summary.clone())
            });
            said.unwrap_or_else(|| root.summary.clone())
        }
        // What the cluster said, when the summary does not already say it.
        _ => match &f.message {
            Some(m)
                if !root
                    .summary
                    .contains(crate::detect::text::first_line(m).trim_end_matches('…')) =>
            {
                format!(
                    "{}: {}",
                    first_line_of(&root.summary),
                    crate::detect::text::first_line(m)
                )
            }
            _ => first_line_of(&root.summary).to_string(),
        },
    }
}

/// A summary stays on one line, whatever a message it quotes held (a Go panic's stack).
fn first_line_of(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn actions(
    kind: RootKind,
    root: &Finding,
    members: &[&Finding],
    imp: &Impact,
    topo: &Topology,
) -> Vec<Action> {
    let ctx = actions::Context::new(root, members, imp, topo);
    let mut out = (kind.props().actions)(&ctx);
    if imp.failed_requests > 0 {
        out.push((
            "LATER",
            format!(
                "{} requests failed: add retries with budgets at the callers",
                imp.failed_requests
            ),
        ));
    }
    out.into_iter()
        .map(|(urgency, text)| Action { urgency, text })
        .collect()
}

/// The root-cause kind: the root finding's own (`knowledge`), refined by what else its group shows
/// — an `OOMKilled` beside a node OOM is the node's, a crash whose container said why is that why.
pub fn root_kind(f: &[Finding], root: usize, members: &[usize]) -> RootKind {
    let r = &f[root];
    let on_root = |k: K| {
        members
            .iter()
            .any(|&i| f[i].kind == k && f[i].entity == r.entity)
    };
    let any = |k: K| members.iter().any(|&i| f[i].kind == k);
    match r.kind {
        K::ContainerOomKilled if any(K::OomKillNode) => RootKind::OomNode,
        K::ContainerError | K::CrashLoop if on_root(K::DnsFailure) => RootKind::DnsFailure,
        K::ContainerError | K::CrashLoop if on_root(K::DependencyError) => {
            RootKind::DependencyUnreachable
        }
        K::ContainerError | K::CrashLoop if on_root(K::ConfigError) => RootKind::ConfigError,
        K::ContainerError | K::CrashLoop if on_root(K::CertificateError) => {
            RootKind::CertificateExpired
        }
        // A Job's pods that fail with no more precise cause: the Job failed.
        K::ContainerError | K::CrashLoop if any(K::JobFailed) => RootKind::JobFailed,
        // Calls into a service that fail before reaching it: it is down or unreachable.
        K::ServiceErrors if r.facts.unreached => RootKind::DependencyUnreachable,
        k => k.props().root,
    }
}
