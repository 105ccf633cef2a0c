//! Link: causal rules between findings, incidents, root causes and chains.
//!
//! A rule says that a finding of one kind can cause a finding of another kind when their
//! entities are related (same pod; the pod backs the service; the pod runs on the node; the
//! service is the destination of the failed connections; …) and the cause comes first, within a
//! window. Rules make a graph; an incident is a connected part of it; its root cause is, among the
//! findings nothing else explains, the one with the highest prior (then the earliest); its chain is
//! the path from the root to the most user-facing symptom. `docs/correlation.md` lists the rules.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::detect::{Blind, Finding, FindingKind, View};
use crate::event::Ts;
use crate::knowledge::Harm;
use crate::topology::{Entity, Topology};

/// How two findings' entities must relate for a rule to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The same pod, node or service.
    Same,
    /// The cause's pod is selected by the effect's service.
    PodBacksService,
    /// The effect's pod runs on the cause's node.
    PodOnNode,
    /// A pod of the effect's service runs on the cause's node.
    ServiceOnNode,
    /// The cause's pod belongs to the effect's workload.
    PodOfWorkload,
    /// The effect's failed connections or requests went to the cause's entity (or a pod behind it).
    CauseIsPeer,
    /// The effect's pod (or its service) is a client of the cause's failed connections.
    EffectIsClient,
    /// The cause's service is a client (caller) of the effect's.
    CauseIsClient,
    /// The effect's pod belongs to the ReplicaSet that the cause (a rollout) created.
    NewRevision,
    /// The effect's pod reads the ConfigMap the cause changed; or the effect is a rollout that
    /// changed nothing in the pod template (a restart to pick the change up) of pods that read it.
    ReadsConfig,
    /// The effect's traffic is what the cause (a NetworkPolicy change) restricts: outgoing from
    /// pods it selects (DNS when no rule lets port 53 out), or incoming to pods it selects.
    PolicyBlocks,
    /// The effect (a pod that cannot be scheduled) says the cause's node is cordoned or tainted.
    NodeRefuses,
    /// The effect's pod belongs to the workload the cause scaled.
    ScaledWorkload,
}

pub struct Rule {
    pub causes: &'static [FindingKind],
    pub effects: &'static [FindingKind],
    pub relation: Relation,
    /// How long after the cause the effect may start (it may also have started before the
    /// cause, up to 5 s, or be an aggregate that was still going on when the cause began).
    pub window_s: u64,
    pub why: &'static str,
}

use FindingKind as K;

const POD_DOWN: &[FindingKind] = &[
    K::ReadinessFailed,
    K::VolumeFailure,
    K::OomKillMemcg,
    K::OomKillNode,
    K::ContainerOomKilled,
    K::ContainerError,
    K::CrashLoop,
    K::LivenessKill,
    K::Eviction,
    K::ImagePullFailure,
    K::ConfigError,
    K::FailedScheduling,
];
const CONN: &[FindingKind] = &[K::ConnRefused, K::ConnTimeout, K::ConnReset];
const CRASH: &[FindingKind] = &[K::ContainerError, K::CrashLoop, K::ContainerOomKilled];
/// A service's requests got worse than its own baseline.
const SERVICE_CHANGE: &[FindingKind] = &[
    K::ServiceErrors,
    K::ServiceLatency,
    K::NetworkLatency,
    K::ErrorLogs,
];
/// The changes the traces show: what a service's callers feel (its error logs alone they do not).
const SPAN_CHANGE: &[FindingKind] = &[K::ServiceErrors, K::ServiceLatency, K::NetworkLatency];
/// What the callers of a degraded service show.
const CALLER_SYMPTOMS: &[FindingKind] = &[
    K::ErrorSpans,
    K::SlowSpans,
    K::ServiceErrors,
    K::ErrorLogs,
    K::DependencyError,
];
/// A pod that is down or failing its probes, under a service.
const POD_TROUBLE: &[FindingKind] = &[
    K::ReadinessFailed,
    K::OomKillMemcg,
    K::OomKillNode,
    K::ContainerOomKilled,
    K::ContainerError,
    K::CrashLoop,
    K::LivenessFailed,
    K::LivenessKill,
    K::Eviction,
];

/// How far before a finding of `kind` a window must reach for it to be as a whole read finds
/// it: to its earliest possible cause that a window could miss (Kubernetes causes are always
/// read; a rule's window), and the detectors' baselines before it.
pub fn reach_back_ns(kind: FindingKind) -> u64 {
    longest_window(|r| r.effects.contains(&kind), |r| r.causes) * Ts::NANOS_PER_SEC
        + crate::detect::service::BASELINE_NS
}

/// How far after a finding of `kind` a window must reach: to its latest possible effect that a
/// window could miss, and a detector's burst (an effect may also start a few seconds before its
/// cause).
pub fn reach_ahead_ns(kind: FindingKind) -> u64 {
    (longest_window(|r| r.causes.contains(&kind), |r| r.effects) + 60) * Ts::NANOS_PER_SEC
}

/// The longest window of the rules that `applies` to whose `side` has a kind outside Kubernetes,
/// in seconds.
fn longest_window(
    applies: impl Fn(&Rule) -> bool,
    side: fn(&Rule) -> &'static [FindingKind],
) -> u64 {
    RULES
        .iter()
        .filter(|r| applies(r))
        .filter(|r| {
            side(r)
                .iter()
                .any(|k| k.layer() != crate::knowledge::Layer::K8s)
        })
        .map(|r| r.window_s)
        .max()
        .unwrap_or(0)
}

/// The causal rules, documented in `docs/correlation.md`.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { causes: &[K::OomKillMemcg], effects: &[K::ContainerOomKilled, K::ContainerError, K::CrashLoop], relation: Relation::Same, window_s: 120, why: "the kernel's kill is the container's OOMKilled exit" },
    Rule { causes: &[K::OomKillNode], effects: &[K::ContainerOomKilled, K::ContainerError, K::CrashLoop], relation: Relation::EffectIsClient, window_s: 120, why: "the node's OOM killer picked this container" },
    Rule { causes: &[K::OomKillNode], effects: &[K::ContainerOomKilled, K::Eviction], relation: Relation::PodOnNode, window_s: 300, why: "the node ran out of memory" },
    Rule { causes: &[K::ContainerOomKilled, K::ContainerError, K::LivenessKill, K::ConfigError, K::DependencyError, K::DnsFailure, K::CertificateError], effects: &[K::CrashLoop], relation: Relation::Same, window_s: 900, why: "repeated exits put the container in back-off" },
    Rule { causes: &[K::DependencyError, K::DnsFailure, K::ConfigError, K::CertificateError], effects: &[K::ContainerError, K::LivenessFailed, K::ReadinessFailed], relation: Relation::Same, window_s: 300, why: "the container said why it failed" },
    Rule { causes: &[K::CpuThrottled], effects: &[K::ReadinessFailed], relation: Relation::Same, window_s: 300, why: "a throttled container answers its probes late" },
    Rule { causes: &[K::LivenessFailed], effects: &[K::LivenessKill, K::ContainerError], relation: Relation::Same, window_s: 300, why: "the kubelet restarts a container whose liveness probe keeps failing" },
    Rule { causes: POD_DOWN, effects: &[K::ServiceNoEndpoints], relation: Relation::PodBacksService, window_s: 300, why: "the pod's endpoint left the service" },
    Rule { causes: POD_DOWN, effects: CONN, relation: Relation::CauseIsPeer, window_s: 300, why: "nothing listened where the pod had been" },
    Rule { causes: &[K::ServiceNoEndpoints], effects: CONN, relation: Relation::CauseIsPeer, window_s: 300, why: "the service had no ready endpoint to take the connections" },
    Rule { causes: &[K::ServiceNoEndpoints, K::ConnRefused, K::ConnTimeout, K::ConnReset], effects: &[K::ErrorSpans], relation: Relation::EffectIsClient, window_s: 300, why: "the callers' requests failed" },
    Rule { causes: &[K::ServiceNoEndpoints, K::ErrorSpans, K::OomKillMemcg, K::ContainerOomKilled, K::ContainerError, K::CrashLoop, K::LivenessKill, K::Eviction], effects: &[K::ErrorSpans], relation: Relation::CauseIsPeer, window_s: 300, why: "the requests called what was failing" },
    Rule { causes: POD_DOWN, effects: &[K::ErrorSpans, K::SlowSpans], relation: Relation::PodBacksService, window_s: 300, why: "the service's own requests failed while its pod was down" },
    Rule { causes: &[K::ServiceNoEndpoints, K::ConnRefused, K::ConnTimeout, K::ConnReset, K::RetransmitSpike, K::CrashLoop, K::ContainerError, K::ContainerOomKilled, K::LivenessKill, K::Eviction], effects: &[K::DependencyError, K::DnsFailure], relation: Relation::CauseIsPeer, window_s: 900, why: "the dependency it could not reach was down" },
    Rule { causes: CONN, effects: CRASH, relation: Relation::EffectIsClient, window_s: 300, why: "the pod crashed after its connections failed" },
    Rule { causes: &[K::NodePressure], effects: &[K::Eviction, K::OomKillNode], relation: Relation::PodOnNode, window_s: 900, why: "the kubelet evicts pods to relieve node pressure" },
    Rule { causes: &[K::NodePressure], effects: &[K::OomKillNode, K::Eviction], relation: Relation::Same, window_s: 900, why: "the node was under memory pressure" },
    Rule { causes: &[K::NodeNotReady], effects: &[K::Eviction], relation: Relation::PodOnNode, window_s: 900, why: "pods on a node that stopped reporting are evicted" },
    Rule { causes: &[K::NodeNotReady], effects: &[K::ServiceNoEndpoints], relation: Relation::ServiceOnNode, window_s: 600, why: "endpoints on a not-ready node become not ready at once" },
    Rule { causes: &[K::NodeNotReady], effects: CONN, relation: Relation::CauseIsPeer, window_s: 600, why: "connections to pods on the lost node fail" },
    Rule { causes: &[K::AdmissionDenied], effects: &[K::RolloutStuck], relation: Relation::Same, window_s: 1800, why: "the workload cannot create its pods" },
    Rule { causes: &[K::ImagePullFailure, K::FailedScheduling, K::ConfigError, K::CrashLoop, K::NetworkSetupFailure, K::VolumeFailure], effects: &[K::RolloutStuck], relation: Relation::PodOfWorkload, window_s: 1800, why: "the workload cannot get its replicas available" },
    Rule { causes: &[K::NetworkSetupFailure], effects: &[K::ContainerError, K::CrashLoop], relation: Relation::Same, window_s: 600, why: "the pod has no network" },
    Rule { causes: &[K::RetransmitSpike], effects: &[K::ConnTimeout], relation: Relation::Same, window_s: 120, why: "segments were lost on the way" },
    Rule { causes: &[K::DependencyError, K::DnsFailure, K::CertificateError], effects: &[K::ErrorSpans], relation: Relation::Same, window_s: 300, why: "the requests failed for that reason" },
    Rule { causes: POD_TROUBLE, effects: SERVICE_CHANGE, relation: Relation::PodBacksService, window_s: 300, why: "the service's pod was failing" },
    Rule { causes: &[K::CpuThrottled], effects: &[K::ServiceLatency, K::NetworkLatency, K::SlowSpans, K::ErrorSpans, K::ServiceErrors], relation: Relation::PodBacksService, window_s: 300, why: "its pod was short of CPU: throttled at its limit" },
    Rule { causes: &[K::CpuThrottled], effects: &[K::LivenessFailed, K::LivenessKill], relation: Relation::Same, window_s: 300, why: "a throttled container answers its probes late" },
    Rule { causes: &[K::NodePressure, K::NodeNotReady], effects: SERVICE_CHANGE, relation: Relation::ServiceOnNode, window_s: 600, why: "a node the service runs on was in trouble" },
    Rule { causes: &[K::ServiceErrors, K::ServiceLatency], effects: &[K::ErrorSpans, K::SlowSpans, K::ErrorLogs], relation: Relation::Same, window_s: 300, why: "its own requests failed or slowed" },
    Rule { causes: &[K::ServiceLatency], effects: &[K::NetworkLatency], relation: Relation::Same, window_s: 300, why: "a service short of CPU accepts its calls late" },
    Rule { causes: &[K::ServiceLatency], effects: &[K::NetworkLatency], relation: Relation::CauseIsClient, window_s: 300, why: "a slow caller is slow to send its calls and to read their answers" },
    Rule { causes: SPAN_CHANGE, effects: CALLER_SYMPTOMS, relation: Relation::EffectIsClient, window_s: 300, why: "its callers' requests failed or slowed" },
    Rule { causes: SPAN_CHANGE, effects: CALLER_SYMPTOMS, relation: Relation::CauseIsPeer, window_s: 300, why: "the failing requests called it" },
    Rule { causes: NEW_POD_FAILURES, effects: &[K::JobFailed], relation: Relation::PodOfWorkload, window_s: 3600, why: "its pods failed every retry" },
    Rule { causes: &[K::Rollout], effects: NEW_POD_FAILURES, relation: Relation::NewRevision, window_s: 1800, why: "the pods of the new revision failed" },
    Rule { causes: &[K::ConfigChange], effects: CONFIG_FAILURES, relation: Relation::ReadsConfig, window_s: 1800, why: "its pods read the changed configuration" },
    Rule { causes: &[K::NetworkPolicyChange], effects: &[K::ConnTimeout, K::ConnReset, K::DnsFailure, K::DependencyError], relation: Relation::PolicyBlocks, window_s: 600, why: "the policy stopped that traffic" },
    Rule { causes: &[K::NodeCordoned], effects: &[K::FailedScheduling], relation: Relation::NodeRefuses, window_s: 3600, why: "the scheduler may not place pods on the cordoned or tainted node" },
    Rule { causes: &[K::Scaled], effects: &[K::FailedScheduling, K::AdmissionDenied], relation: Relation::ScaledWorkload, window_s: 900, why: "the new replicas could not be placed" },
];

/// What pods do when their configuration changed for the worse: a restart picks it up.
const CONFIG_FAILURES: &[FindingKind] = &[
    K::Rollout,
    K::ContainerError,
    K::CrashLoop,
    K::ContainerOomKilled,
    K::ConfigError,
    K::LivenessFailed,
    K::LivenessKill,
    K::ReadinessFailed,
    K::DependencyError,
    K::DnsFailure,
    K::CertificateError,
];

/// What a rollout's new pods do when the revision is bad.
const NEW_POD_FAILURES: &[FindingKind] = &[
    K::ContainerError,
    K::CrashLoop,
    K::ContainerOomKilled,
    K::OomKillMemcg,
    K::ImagePullFailure,
    K::ConfigError,
    K::LivenessFailed,
    K::LivenessKill,
    K::DependencyError,
    K::DnsFailure,
    K::FailedScheduling,
];

/// A causal edge, with the rule that made it.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub cause: usize,
    pub effect: usize,
    pub why: &'static str,
}

fn cause_rank_of(k: FindingKind) -> u8 {
    k.props().cause_rank
}

/// A finding's score, for ordering: a service-level change's significance, else 0.
fn score_of(f: &Finding) -> i64 {
    (f.facts.score * 100.0) as i64
}

fn symptom_rank_of(k: FindingKind) -> u8 {
    k.props().symptom_rank
}

/// A connected part of the graph, with its root and chain.
#[derive(Clone, Debug)]
pub struct Group {
    pub root: usize,
    /// Finding ids from root to symptom.
    pub chain: Vec<usize>,
    /// Every finding of the group, in time order.
    pub members: Vec<usize>,
    pub links: Vec<Link>,
    /// Other roots: causes nothing else explains that explain symptoms the root does not reach,
    /// each with its own chain.
    pub others: Vec<(usize, Vec<usize>)>,
    /// For findings that more than one root reaches: those roots.
    pub shared: BTreeMap<usize, Vec<usize>>,
    /// Other candidate roots, and why they lost.
    pub alternatives: Vec<(usize, String)>,
    /// Drops and gaps inside the group's window.
    pub blind: Vec<Blind>,
}

/// Links the findings and groups them.
pub fn link(d: View<'_>) -> Vec<Group> {
    let f = d.findings;
    let mut links = Vec::new();
    // When each kind of failure was first seen on each entity: a change does not explain a
    // failure that was already there before it.
    let mut first_seen: std::collections::HashMap<(FindingKind, &Entity), Ts> =
        std::collections::HashMap::new();
    for x in f {
        let e = first_seen.entry((x.kind, &x.entity)).or_insert(x.start);
        *e = (*e).min(x.start);
    }
    // Findings are in time order: for each effect, look back over earlier findings only.
    for (j, effect) in f.iter().enumerate() {
        for (i, cause) in f.iter().enumerate() {
            if i == j || cause.start.0 > effect.end.0.saturating_add(5 * Ts::NANOS_PER_SEC) {
                continue;
            }
            if cause.kind.props().nature == crate::knowledge::Nature::Change
                && first_seen[&(effect.kind, &effect.entity)]
                    .0
                    .saturating_add(5 * Ts::NANOS_PER_SEC)
                    < cause.start.0
            {
                continue;
            }
            if let Some(rule) = RULES.iter().find(|r| applies(r, cause, effect, d.topology)) {
                links.push(Link {
                    cause: i,
                    effect: j,
                    why: rule.why,
                });
            }
        }
    }
    groups(f, links, d.blind)
}

fn applies(r: &Rule, cause: &Finding, effect: &Finding, topo: &Topology) -> bool {
    if !r.causes.contains(&cause.kind) || !r.effects.contains(&effect.kind) {
        return false;
    }
    // The effect must begin within the window after the cause — after its start for an event, any
    // time while a state lasted (a service without endpoints for an hour) — or be an aggregate
    // that was still going on then (a service's error spans may have begun from other causes).
    if effect.start.saturating_sub(cause.end.max(cause.start)) > r.window_s * Ts::NANOS_PER_SEC {
        return false;
    }
    // A change explains only what began after it (a few seconds of clock skew aside): a crash
    // loop that was there before a ConfigMap edit — perhaps the edit meant to fix it — is not its
    // doing.
    if cause.kind.props().nature == crate::knowledge::Nature::Change
        && effect.start.0.saturating_add(5 * Ts::NANOS_PER_SEC) < cause.start.0
    {
        return false;
    }
    // A slowdown explains its callers' errors (timeouts) only when they began with it: errors that
    // were there before (a caller's background failures, even towards the same callee) are not
    // its doing.
    if matches!(
        cause.kind,
        K::ServiceLatency | K::NetworkLatency | K::CpuThrottled
    ) && effect.kind.props().nature == crate::knowledge::Nature::Aggregate
        && effect.start.0.saturating_add(10 * Ts::NANOS_PER_SEC) < cause.start.0
    {
        return false;
    }
    related(r.relation, cause, effect, topo)
}

fn related(rel: Relation, cause: &Finding, effect: &Finding, topo: &Topology) -> bool {
    let pod_of = |e: &Entity| match e {
        Entity::Pod { ns, name } => topo.pod_by_name(ns, name),
        _ => None,
    };
    match rel {
        Relation::Same => cause.entity == effect.entity,
        Relation::PodBacksService => backs(topo, &cause.entity, &effect.entity),
        Relation::PodOnNode => {
            let node = match &cause.entity {
                Entity::Node(n) => Some(n.clone()),
                _ => cause.facts.node.clone(),
            };
            let effect_node = pod_of(&effect.entity)
                .map(|p| p.node.clone())
                .or_else(|| effect.facts.node.clone());
            node.is_some() && node == effect_node
        }
        Relation::ServiceOnNode => match (&cause.entity, &effect.entity) {
            (Entity::Node(n), Entity::Service { ns, name }) => {
                topo.pods_of_service(ns, name).iter().any(|p| &p.node == n)
            }
            _ => false,
        },
        // The workload at the top of the pod's owner chain, or its direct owner (a CronJob's
        // Job, a Deployment's ReplicaSet).
        Relation::PodOfWorkload => pod_of(&cause.entity).is_some_and(|p| {
            topo.workload_of(p).is_some_and(|w| w == effect.entity)
                || matches!((&p.owner, &effect.entity), (Some((k, n)), Entity::Workload { kind, ns, name })
                    if k == kind && n == name && *ns == p.ns)
        }),
        Relation::CauseIsPeer => {
            let target = effect.facts.peer.as_ref().unwrap_or(&effect.entity);
            *target == cause.entity
                || backs(topo, &cause.entity, target)
                || matches!(&cause.entity, Entity::Node(n) if pod_of(target).is_some_and(|p| &p.node == n))
        }
        Relation::CauseIsClient => effect.facts.clients.contains(&cause.entity),
        Relation::NewRevision => cause.facts.rollout.as_ref().is_some_and(|r| {
            pod_of(&effect.entity).is_some_and(|p| {
                p.owner
                    .as_ref()
                    .is_some_and(|(k, n)| k == "ReplicaSet" && *n == r.replica_set)
            })
        }),
        Relation::EffectIsClient => cause
            .facts
            .clients
            .iter()
            .any(|c| *c == effect.entity || backs(topo, c, &effect.entity)),
        Relation::ReadsConfig => {
            let Entity::Workload { ns, name, .. } = &cause.entity else {
                return false;
            };
            // Environment variables and `subPath` files are read when a container starts: a pod
            // running since before the change still has the old values, unless it was made after
            // the change, mounts the ConfigMap as a live volume, or keeps failing across restarts.
            let changed_at = cause.start.0.saturating_sub(5 * Ts::NANOS_PER_SEC);
            let reads = |p: &crate::topology::Pod| {
                p.ns == *ns
                    && p.config_maps.contains(name)
                    && (p.created.is_some_and(|c| c.0 >= changed_at)
                        || p.live_config_maps.contains(name)
                        || effect.kind == K::CrashLoop
                        || effect.facts.rollout.is_some())
            };
            match (&effect.entity, &effect.facts.rollout) {
                // A restart (`kubectl rollout restart`): the template's containers are the same.
                (Entity::Workload { ns: wns, name: dep, .. }, Some(r)) => {
                    r.diff.is_empty()
                        && wns == ns
                        && topo.pods().any(|p| {
                            reads(p)
                                && topo
                                    .workload_of(p)
                                    .is_some_and(|w| matches!(w, Entity::Workload { name, .. } if *name == *dep))
                        })
                }
                _ => pod_of(&effect.entity).is_some_and(reads),
            }
        }
        Relation::PolicyBlocks => policy_blocks(cause, effect, topo),
        // `0/3 nodes are available: 1 node(s) were unschedulable, …` for a cordon; a taint by its
        // key (`had untolerated taint {dedicated: gpu}`).
        Relation::NodeRefuses => {
            let said = effect.facts.message.as_deref().unwrap_or(&effect.summary);
            let lower = said.to_lowercase();
            cause.facts.changed.iter().any(|c| {
                if c.starts_with("cordoned") {
                    lower.contains("were unschedulable") || lower.contains("was unschedulable")
                } else if let Some(t) = c.strip_prefix("tainted ") {
                    let key = t.split(['=', ':']).next().unwrap_or(t).to_lowercase();
                    !key.is_empty()
                        && (lower.contains(&format!("{{{key}:"))
                            || lower.contains(&format!("{{{key}="))
                            || lower.contains(&format!("{key}=")))
                } else {
                    false
                }
            })
        }
        Relation::ScaledWorkload => pod_of(&effect.entity)
            .and_then(|p| topo.workload_of(p))
            .is_some_and(|w| w == cause.entity)
            || effect.entity == cause.entity,
    }
}

/// Whether the traffic of a failure is what a NetworkPolicy change restricts.
fn policy_blocks(cause: &Finding, effect: &Finding, topo: &Topology) -> bool {
    use crate::topology::{dns_endpoint, Endpoint, Pod, Policy};
    let Some(policy) = cause.facts.policy.as_deref() else {
        return false;
    };
    // A policy created, or one that took allowances away; widening one blocks nothing.
    if !cause.facts.restricts {
        return false;
    }
    let deleted = cause.summary.contains(" deleted (");
    let pods_of = |e: &Entity| -> Vec<&Pod> {
        match e {
            Entity::Pod { ns, name } => topo.pod_by_name(ns, name).into_iter().collect(),
            Entity::Service { ns, name } => topo.pods_of_service(ns, name),
            _ => Vec::new(),
        }
    };
    // Policies add up: traffic passes when any policy selecting the pod lets it, or when none
    // restricts that direction. With the changed policy as it stands (a deleted one removed).
    let passes = |pod: &Pod, egress: bool, other: &Endpoint<'_>, proto: &str, port: Option<u16>| {
        let mut all: Vec<&Policy> = topo
            .policies_of(pod)
            .into_iter()
            .filter(|p| p.name != policy.name || p.ns != policy.ns)
            .collect();
        if !deleted {
            all.push(policy);
        }
        let restricting: Vec<&&Policy> = all
            .iter()
            .filter(|p| if egress { p.egress } else { p.ingress })
            .collect();
        restricting.is_empty()
            || restricting
                .iter()
                .any(|p| p.may_allow(egress, other, proto, port))
    };
    // Whether this policy's change is why it no longer passes.
    let blocked_by_it =
        |pod: &Pod, egress: bool, other: &Endpoint<'_>, proto: &str, port: Option<u16>| {
            let selects = pod.ns == policy.ns && policy.selector.matches(&pod.labels);
            let restricts = if egress {
                policy.egress
            } else {
                policy.ingress
            };
            selects
                && restricts
                && !passes(pod, egress, other, proto, port)
                && (!deleted || policy.may_allow(egress, other, proto, port))
        };
    let endpoint_of = |e: Option<&Entity>| -> Endpoint<'_> {
        match e {
            Some(Entity::Host { what, .. }) => Endpoint {
                ip: what
                    .rsplit_once(':')
                    .and_then(|(ip, _)| ip.trim_matches(['[', ']']).parse().ok()),
                ..Endpoint::default()
            },
            Some(e) => match pods_of(e).first() {
                Some(p) => Endpoint {
                    ns: Some(p.ns.as_str()),
                    labels: Some(&p.labels),
                    ip: p.ip,
                },
                None => Endpoint::default(),
            },
            None => Endpoint::default(),
        }
    };
    // The destination port of failed connections: their summary starts with `ADDR:PORT (`.
    let port = effect
        .summary
        .split_once(" (")
        .and_then(|(a, _)| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok());
    match effect.kind {
        K::DnsFailure => pods_of(&effect.entity)
            .iter()
            .any(|p| blocked_by_it(p, true, &dns_endpoint(), "UDP", Some(53))),
        K::ConnTimeout | K::ConnReset => {
            let server = effect.facts.peer.as_ref().unwrap_or(&effect.entity);
            let to = endpoint_of(Some(server));
            let out = effect
                .facts
                .clients
                .iter()
                .flat_map(&pods_of)
                .any(|p| blocked_by_it(p, true, &to, "TCP", port));
            let inbound = effect.facts.clients.iter().any(|c| {
                let from = endpoint_of(Some(c));
                pods_of(server)
                    .iter()
                    .any(|p| blocked_by_it(p, false, &from, "TCP", port))
            });
            out || inbound
        }
        K::DependencyError => {
            // The dependency the message names: a known pod or service, else its address.
            let named_ip = effect.facts.message.as_deref().and_then(|m| {
                match crate::detect::text::classify(m) {
                    Some(crate::detect::text::Cause::Unreachable { host: Some(h) }) => {
                        h.parse::<std::net::IpAddr>().ok()
                    }
                    _ => None,
                }
            });
            let to = match (&effect.facts.peer, named_ip) {
                (Some(p), _) => endpoint_of(Some(p)),
                (None, Some(ip)) => Endpoint {
                    ip: Some(ip),
                    ..Endpoint::default()
                },
                (None, None) => return false, // nothing to check the rules against
            };
            let out = pods_of(&effect.entity)
                .iter()
                .any(|p| blocked_by_it(p, true, &to, "TCP", None));
            let inbound = effect.facts.peer.as_ref().is_some_and(|server| {
                let from = endpoint_of(Some(&effect.entity));
                pods_of(server)
                    .iter()
                    .any(|p| blocked_by_it(p, false, &from, "TCP", None))
            });
            out || inbound
        }
        _ => false,
    }
}

/// Whether a pod entity is behind a service entity: selected by it, or named after it.
fn backs(topo: &Topology, pod: &Entity, service: &Entity) -> bool {
    let (
        Entity::Pod { ns, name },
        Entity::Service {
            ns: sns,
            name: sname,
        },
    ) = (pod, service)
    else {
        return false;
    };
    if let Some(p) = topo.pod_by_name(ns, name) {
        if topo.services_of(p).contains(service) {
            return true;
        }
    }
    // Spans name services by `service.name`; pods are named after their deployment.
    (sns.is_empty() || sns == ns)
        && name
            .strip_prefix(sname.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
}

fn groups(f: &[Finding], links: Vec<Link>, blind: &[Blind]) -> Vec<Group> {
    let n = f.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        p[x] = r;
        r
    }
    for l in &links {
        let (a, b) = (find(&mut parent, l.cause), find(&mut parent, l.effect));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut parts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        parts.entry(r).or_default().push(i);
    }
    parts
        .into_values()
        .map(|members| {
            let set: BTreeSet<usize> = members.iter().copied().collect();
            let links: Vec<Link> = links
                .iter()
                .filter(|l| set.contains(&l.cause))
                .cloned()
                .collect();
            group(f, members, links, blind)
        })
        .collect()
}

fn group(f: &[Finding], members: Vec<usize>, links: Vec<Link>, blind: &[Blind]) -> Group {
    let explained: BTreeSet<usize> = links.iter().map(|l| l.effect).collect();
    let mut candidates: Vec<usize> = members
        .iter()
        .copied()
        .filter(|i| !explained.contains(i))
        .collect();
    if candidates.is_empty() {
        candidates = members.clone();
    }
    // Highest rank first; among equals, the most significant change (service-level findings carry
    // a score), then the earliest, then id: deterministic.
    candidates.sort_by_key(|&i| {
        (
            std::cmp::Reverse(cause_rank_of(f[i].kind)),
            std::cmp::Reverse(score_of(&f[i])),
            f[i].start,
            i,
        )
    });
    let root = candidates[0];
    // Every other cause that nothing explains and that explains symptoms the roots before it do
    // not reach is a root too: two independent faults that hit the same service are both named.
    let mut reached = reach(root, &links);
    let mut roots = vec![(root, reached.clone())];
    for &c in &candidates[1..] {
        if cause_rank_of(f[c].kind) < MIN_OTHER_ROOT_RANK {
            continue;
        }
        let r = reach(c, &links);
        if r.iter().any(|x| *x != c && !reached.contains(x)) {
            reached.extend(r.iter().copied());
            roots.push((c, r));
        }
    }
    let mut shared: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for m in &members {
        let by: Vec<usize> = roots
            .iter()
            .filter(|(_, r)| r.contains(m))
            .map(|(x, _)| *x)
            .collect();
        if by.len() > 1 {
            shared.insert(*m, by);
        }
    }
    let others: Vec<(usize, Vec<usize>)> = roots[1..]
        .iter()
        .map(|&(r, _)| (r, chain(f, r, &members, &links)))
        .collect();
    let alternatives = candidates[1..]
        .iter()
        .filter(|i| !others.iter().any(|(r, _)| r == *i))
        .map(|&i| {
            let why = if cause_rank_of(f[i].kind) < cause_rank_of(f[root].kind) {
                format!(
                    "{} explains less than {} (weaker cause)",
                    f[i].kind, f[root].kind
                )
            } else if score_of(&f[i]) < score_of(&f[root]) {
                format!(
                    "{} of {} is a smaller change ({}) than {} of {} ({})",
                    f[i].kind,
                    f[i].entity.short(),
                    f[i].facts.message.as_deref().unwrap_or("?"),
                    f[root].kind,
                    f[root].entity.short(),
                    f[root].facts.message.as_deref().unwrap_or("?"),
                )
            } else {
                format!("{} began later than {}", f[i].kind, f[root].kind)
            };
            (i, why)
        })
        .collect();
    let chain = chain(f, root, &members, &links);
    let (start, end) = members.iter().fold((Ts(u64::MAX), Ts(0)), |(a, b), &i| {
        (a.min(f[i].start), b.max(f[i].end))
    });
    let margin = 60 * Ts::NANOS_PER_SEC;
    let blind = blind
        .iter()
        .filter(|b| {
            b.to.0.saturating_add(margin) >= start.0 && b.from.0 <= end.0.saturating_add(margin)
        })
        .cloned()
        .collect();
    Group {
        root,
        chain,
        others,
        shared,
        members,
        links,
        alternatives,
        blind,
    }
}

/// Causes weaker than this (a user-facing symptom, a stuck rollout) are never another root.
const MIN_OTHER_ROOT_RANK: u8 = 3;

/// Every finding reachable from `root` along the links, itself included.
fn reach(root: usize, links: &[Link]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([root]);
    let mut queue = VecDeque::from([root]);
    while let Some(x) = queue.pop_front() {
        for l in links.iter().filter(|l| l.cause == x) {
            if seen.insert(l.effect) {
                queue.push_back(l.effect);
            }
        }
    }
    seen
}

/// The path from the root to the most user-facing symptom it reaches: breadth first, so each
/// finding's shortest path; among equally user-facing symptoms, the farthest, then the latest.
fn chain(f: &[Finding], root: usize, members: &[usize], links: &[Link]) -> Vec<usize> {
    // Drop shortcuts (a → c where a → b → c exists) so the chain shows every step: OOM kill →
    // OOMKilled → endpoint lost → connections refused, not OOM kill → connections refused.
    let edges: BTreeSet<(usize, usize)> = links.iter().map(|l| (l.cause, l.effect)).collect();
    let links: Vec<&Link> = links
        .iter()
        .filter(|l| {
            !edges
                .iter()
                .any(|&(a, b)| a == l.cause && b != l.effect && edges.contains(&(b, l.effect)))
        })
        .collect();
    let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
    let mut depth: BTreeMap<usize, usize> = BTreeMap::from([(root, 0)]);
    let mut queue = VecDeque::from([root]);
    while let Some(x) = queue.pop_front() {
        let mut next: Vec<usize> = links
            .iter()
            .filter(|l| l.cause == x)
            .map(|l| l.effect)
            .collect();
        // Concrete steps before the service-level changes derived from them, when both lead on.
        next.sort_by_key(|&i| (f[i].kind.props().harm == Harm::Degraded, f[i].start, i));
        for y in next {
            if !depth.contains_key(&y) {
                depth.insert(y, depth[&x] + 1);
                prev.insert(y, x);
                queue.push_back(y);
            }
        }
    }
    let target = members
        .iter()
        .copied()
        .filter(|i| depth.contains_key(i))
        .max_by_key(|&i| {
            (
                symptom_rank_of(f[i].kind),
                // Of the failing services, the entry point: the one whose own root spans failed.
                f[i].facts.entry_failures,
                depth[&i],
                f[i].start,
                std::cmp::Reverse(i),
            )
        })
        .unwrap_or(root);
    let mut path = vec![target];
    while let Some(&p) = prev.get(path.last().unwrap_or(&root)) {
        path.push(p);
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    //! The distinctions SREs get wrong at 3 a.m., on small hand-made streams.

    use serde_json::json;

    use crate::detect::Config;
    use crate::event::{
        Event, EventApi, Kernel, Kube, KubeEvent, Object, ObjectAction, ObjectKind, ObjectRef,
        OomConstraint, OomKill, RawJson, Source, Ts,
    };
    use crate::knowledge::RootKind;
    use crate::pipeline::run_events;

    const UID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
    const CID: &str = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12";

    fn at(s: u64) -> Ts {
        Ts(1_773_482_400 * Ts::NANOS_PER_SEC + s * Ts::NANOS_PER_SEC)
    }

    fn pod(s: u64, last: serde_json::Value) -> Event {
        let v = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "cart-7d8f9", "namespace": "shop", "uid": UID, "labels": {"app": "cart"}},
            "spec": {"nodeName": "node-7", "containers": [{"name": "cart", "resources": {"limits": {"memory": "2Gi"}}}]},
            "status": {"phase": "Running", "podIP": "10.244.1.7", "containerStatuses": [{"name": "cart", "restartCount": 1,
                "containerID": format!("containerd://{CID}"), "ready": true, "state": {"running": {}}, "lastState": last}]}});
        let o = Object {
            action: ObjectAction::Changed,
            kind: ObjectKind::Pod,
            namespace: "shop".into(),
            name: "cart-7d8f9".into(),
            uid: UID.into(),
            resource_version: "9".into(),
            node: "node-7".into(),
            json: RawJson::from_value(&v),
        };
        Event::new(at(s), "node-7", Source::Kube, Kube::from(o))
    }

    fn deployment(s: u64, available: i64, progressing: (&str, &str, u64)) -> Event {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop", "uid": "dep-uid"},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 600},
            "status": {"replicas": 3, "availableReplicas": available, "conditions": [
                {"type": "Progressing", "status": progressing.0, "reason": progressing.1,
                 "lastUpdateTime": at(progressing.2).rfc3339()}]}});
        let o = Object {
            action: ObjectAction::Changed,
            kind: ObjectKind::Deployment,
            namespace: "shop".into(),
            name: "cart".into(),
            uid: "dep-uid".into(),
            resource_version: s.to_string(),
            node: String::new(),
            json: RawJson::from_value(&v),
        };
        Event::new(at(s), "", Source::Kube, Kube::from(o))
    }

    fn stuck(events: Vec<Event>) -> Vec<(Ts, String)> {
        let (_, d) = run_events([events], crate::detect::Config::default());
        d.findings
            .iter()
            .filter(|f| f.kind == crate::detect::FindingKind::RolloutStuck)
            .map(|f| (f.start, f.summary.clone()))
            .collect()
    }

    #[test]
    fn a_rollout_is_stuck_when_kubernetes_says_so_or_past_its_deadline_not_while_it_starts() {
        // Starting: 2 of 3 for a minute, then all 3.
        let starting = vec![
            deployment(0, 2, ("True", "ReplicaSetUpdated", 0)),
            deployment(60, 3, ("True", "NewReplicaSetAvailable", 60)),
        ];
        assert!(stuck(starting).is_empty());
        // Kubernetes gave up on it.
        let said = stuck(vec![
            deployment(0, 2, ("True", "ReplicaSetUpdated", 0)),
            deployment(601, 2, ("False", "ProgressDeadlineExceeded", 601)),
        ]);
        assert_eq!(said.len(), 1);
        assert!(said[0].1.contains("ProgressDeadlineExceeded"), "{said:?}");
        assert_eq!(said[0].0, at(601));
        // Short for longer than its deadline, whatever the condition says (an old snapshot, a
        // StatefulSet): stuck from when the deadline passed.
        let late = stuck(vec![
            deployment(0, 2, ("True", "ReplicaSetUpdated", 0)),
            deployment(900, 2, ("True", "ReplicaSetUpdated", 0)),
        ]);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, at(600));
    }

    fn terminated(reason: &str, code: i64, s: u64, message: &str) -> serde_json::Value {
        json!({"terminated": {"reason": reason, "exitCode": code, "finishedAt": at(s).rfc3339(), "message": message}})
    }

    fn kube_event(s: u64, reason: &str, message: &str) -> Event {
        let e = KubeEvent {
            api: EventApi::CoreV1,
            namespace: "shop".into(),
            name: format!("cart.{s}"),
            uid: String::new(),
            type_: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            involved: ObjectRef {
                kind: "Pod".into(),
                namespace: "shop".into(),
                name: "cart-7d8f9".into(),
                uid: UID.into(),
                field_path: "spec.containers{cart}".into(),
            },
            count: 1,
            first: Some(at(s)),
            last: Some(at(s)),
            component: "kubelet".into(),
            host: "node-7".into(),
        };
        Event::new(at(s), "node-7", Source::Kube, Kube::from(e))
    }

    fn oom(s: u64, constraint: OomConstraint) -> Event {
        let cg = format!("/kubepods/burstable/pod{UID}/{CID}");
        Event::new(
            at(s),
            "node-7",
            Source::Ebpf,
            Kernel::OomKill(Box::new(OomKill {
                victim_pid: 4711,
                victim_comm: "java".into(),
                task_memcg: cg.as_str().into(),
                oom_memcg: if constraint == OomConstraint::Memcg {
                    cg.as_str().into()
                } else {
                    "/".into()
                },
                constraint,
                rss_kib: 2 << 20,
                total_vm_kib: 0,
                memcg_usage_kib: Some(2 << 20),
                memcg_limit_kib: Some(2 << 20),
                killer_pid: 4711,
                killer_comm: "java".into(),
            })),
        )
    }

    fn verdict(events: Vec<Event>) -> Vec<(RootKind, String)> {
        let (v, _) = run_events([events], Config::default());
        v.incidents
            .iter()
            .map(|i| (i.root_cause.kind, i.root_cause.entity.to_string()))
            .collect()
    }

    fn object(s: u64, kind: ObjectKind, action: ObjectAction, v: serde_json::Value) -> Event {
        let o = Object {
            action,
            kind,
            namespace: v["metadata"]["namespace"].as_str().unwrap_or("").into(),
            name: v["metadata"]["name"].as_str().unwrap_or("").into(),
            uid: v["metadata"]["uid"].as_str().unwrap_or("").into(),
            resource_version: s.to_string(),
            node: String::new(),
            json: RawJson::from_value(&v),
        };
        Event::new(at(s), "", Source::Kube, Kube::from(o))
    }

    fn egress_policy(s: u64, selector: serde_json::Value, allow_dns: bool) -> Event {
        let mut egress = vec![
            json!({"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                                     "ports": [{"protocol": "TCP", "port": 5432}]}),
        ];
        if allow_dns {
            egress.push(json!({"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}));
        }
        object(
            s,
            ObjectKind::NetworkPolicy,
            ObjectAction::Seen,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "lock-down", "namespace": "shop", "uid": "np-uid",
                             "creationTimestamp": at(s).rfc3339()},
                "spec": {"podSelector": selector, "policyTypes": ["Egress"], "egress": egress}}),
        )
    }

    const LOOKUP: &str = "dial tcp: lookup cart-db.shop.svc.cluster.local on 10.96.0.10:53: read udp 10.244.1.7:41873->10.96.0.10:53: i/o timeout";

    #[test]
    fn a_policy_is_the_cause_only_of_what_it_blocks_for_the_pods_it_selects() {
        let failing = |policy: Event| {
            verdict(vec![
                pod(0, json!({})),
                policy,
                pod(40, terminated("Error", 1, 40, LOOKUP)),
            ])
        };
        // Selects the pod, restricts its egress, lets no DNS out: its lookups time out.
        let v = failing(egress_policy(
            10,
            json!({"matchLabels": {"app": "cart"}}),
            false,
        ));
        assert_eq!(
            v,
            [(
                RootKind::NetworkPolicy,
                "networkpolicy/shop/lock-down".into()
            )]
        );
        // An empty selector is every pod of the namespace.
        let v = failing(egress_policy(10, json!({}), false));
        assert_eq!(v[0].0, RootKind::NetworkPolicy);
        // It lets DNS out: the lookups failed for another reason.
        let v = failing(egress_policy(
            10,
            json!({"matchLabels": {"app": "cart"}}),
            true,
        ));
        assert_eq!(v, [(RootKind::DnsFailure, "pod/shop/cart-7d8f9".into())]);
        // Another app's pods.
        let v = failing(egress_policy(
            10,
            json!({"matchLabels": {"app": "web"}}),
            false,
        ));
        assert_eq!(v[0].0, RootKind::DnsFailure);
        let v = failing(egress_policy(
            10,
            json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["cart"]}]}),
            false,
        ));
        assert_eq!(v[0].0, RootKind::DnsFailure);
        // Policies add up: another policy already lets the pod's DNS out.
        let allow_dns = |s: u64, action: ObjectAction| {
            object(
                s,
                ObjectKind::NetworkPolicy,
                action,
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "allow-dns", "namespace": "shop", "uid": "np-dns",
                                 "creationTimestamp": at(0).rfc3339()},
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                             "egress": [{"ports": [{"protocol": "UDP"}]}]}}),
            )
        };
        let v = verdict(vec![
            pod(0, json!({})),
            allow_dns(0, ObjectAction::Seen),
            egress_policy(10, json!({"matchLabels": {"app": "cart"}}), false),
            pod(40, terminated("Error", 1, 40, LOOKUP)),
        ]);
        assert_eq!(v[0].0, RootKind::DnsFailure, "{v:?}");
        // Deleting a policy that let DNS out, with a default deny (there for long) still in
        // place, blocks it…
        let mut old_deny = egress_policy(0, json!({}), false);
        if let crate::event::Body::Kube(Kube::Object(o)) = &mut old_deny.body {
            let mut v: serde_json::Value = o.json.parse().unwrap();
            v["metadata"]["creationTimestamp"] =
                Ts(at(0).0 - 86_400 * Ts::NANOS_PER_SEC).rfc3339().into();
            o.json = RawJson::from_value(&v);
        }
        let v = verdict(vec![
            pod(0, json!({})),
            old_deny.clone(),
            allow_dns(1, ObjectAction::Seen),
            allow_dns(10, ObjectAction::Deleted),
            pod(40, terminated("Error", 1, 40, LOOKUP)),
        ]);
        assert_eq!(
            v,
            [(
                RootKind::NetworkPolicy,
                "networkpolicy/shop/allow-dns".into()
            )]
        );
        // …deleting the default deny only opens traffic.
        let v = verdict(vec![
            pod(0, json!({})),
            old_deny,
            object(
                10,
                ObjectKind::NetworkPolicy,
                ObjectAction::Deleted,
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "lock-down", "namespace": "shop", "uid": "np-uid"},
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}}),
            ),
            pod(40, terminated("Error", 1, 40, LOOKUP)),
        ]);
        assert!(
            v.iter().all(|(k, _)| *k != RootKind::NetworkPolicy),
            "{v:?}"
        );
        // Long before: the failure is not its doing.
        let v = verdict(vec![
            pod(0, json!({})),
            egress_policy(10, json!({}), false),
            pod(1000, terminated("Error", 1, 1000, LOOKUP)),
        ]);
        assert_eq!(v[0].0, RootKind::DnsFailure);
    }

    fn config_map(s: u64, action: ObjectAction, pool: &str) -> Event {
        object(
            s,
            ObjectKind::ConfigMap,
            action,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cart-config", "namespace": "shop", "uid": "cm-uid"},
                "data": {"POOL": crate::source::import::kube::value_hash(pool.as_bytes()), "MODE": "sha256:00"}}),
        )
    }

    /// A pod that mounts the ConfigMap as a volume (its files follow changes), or, with `env`,
    /// takes its environment from it (read once, when the container starts).
    fn reading_pod_by(s: u64, config: &str, last: serde_json::Value, env: bool) -> Event {
        let mut e = pod(s, last);
        if let crate::event::Body::Kube(Kube::Object(o)) = &mut e.body {
            let mut v: serde_json::Value = o.json.parse().unwrap();
            if env {
                v["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": config}}]);
            } else {
                v["spec"]["volumes"] = json!([{"name": "cfg", "configMap": {"name": config}}]);
                v["spec"]["containers"][0]["volumeMounts"] =
                    json!([{"name": "cfg", "mountPath": "/etc/cart"}]);
            }
            o.json = RawJson::from_value(&v);
        }
        e
    }

    fn reading_pod(s: u64, config: &str, last: serde_json::Value) -> Event {
        reading_pod_by(s, config, last, false)
    }

    #[test]
    fn a_config_change_is_the_cause_of_what_fails_next_in_the_pods_that_read_it() {
        let crash = terminated(
            "Error",
            1,
            60,
            "invalid configuration: POOL must be at least 1",
        );
        let v = verdict(vec![
            reading_pod(0, "cart-config", json!({})),
            config_map(1, ObjectAction::Seen, "20"),
            config_map(30, ObjectAction::Changed, "0"),
            reading_pod(60, "cart-config", crash.clone()),
        ]);
        assert_eq!(
            v,
            [(RootKind::ConfigChange, "configmap/shop/cart-config".into())]
        );
        // A pod that reads another ConfigMap.
        let v = verdict(vec![
            reading_pod(0, "web-config", json!({})),
            config_map(1, ObjectAction::Seen, "20"),
            config_map(30, ObjectAction::Changed, "0"),
            reading_pod(60, "web-config", crash.clone()),
        ]);
        assert_eq!(v[0].0, RootKind::ConfigError);
        // Written again with the same data (a label, an annotation): no change.
        let v = verdict(vec![
            reading_pod(0, "cart-config", json!({})),
            config_map(1, ObjectAction::Seen, "20"),
            config_map(30, ObjectAction::Changed, "20"),
            reading_pod(60, "cart-config", crash.clone()),
        ]);
        assert_eq!(v[0].0, RootKind::ConfigError);
        // Taken as environment by a container running since before the change: it still has the
        // old values, so a crash of that run is not the change's doing.
        let v = verdict(vec![
            reading_pod_by(0, "cart-config", json!({}), true),
            config_map(1, ObjectAction::Seen, "20"),
            config_map(30, ObjectAction::Changed, "0"),
            reading_pod_by(60, "cart-config", crash.clone(), true),
        ]);
        assert_eq!(v[0].0, RootKind::ConfigError);
        // A crash loop that was there before the change (an edit meant to fix it) is not its doing.
        let v = verdict(vec![
            reading_pod(0, "cart-config", json!({})),
            config_map(1, ObjectAction::Seen, "20"),
            reading_pod(
                20,
                "cart-config",
                terminated(
                    "Error",
                    1,
                    20,
                    "invalid configuration: POOL must be at least 1",
                ),
            ),
            config_map(30, ObjectAction::Changed, "0"),
            reading_pod(60, "cart-config", crash.clone()),
        ]);
        assert!(v.iter().all(|(k, _)| *k != RootKind::ConfigChange), "{v:?}");
        // A change and nothing failing: no incident.
        let v = verdict(vec![
            reading_pod(0, "cart-config", json!({})),
            config_map(1, ObjectAction::Seen, "20"),
            config_map(30, ObjectAction::Changed, "0"),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    fn node(s: u64, unschedulable: bool, taints: serde_json::Value) -> Event {
        let mut e = object(
            s,
            ObjectKind::Node,
            if s == 0 {
                ObjectAction::Seen
            } else {
                ObjectAction::Changed
            },
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-7", "uid": "node-uid"},
                "spec": {"unschedulable": unschedulable, "taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}),
        );
        if let crate::event::Body::Kube(Kube::Object(o)) = &mut e.body {
            o.node = "node-7".into();
        }
        e
    }

    fn chain_kinds(events: Vec<Event>) -> Vec<Vec<String>> {
        let (v, _) = run_events([events], Config::default());
        v.incidents
            .iter()
            .map(|i| i.chain.iter().map(|c| c.kind.to_string()).collect())
            .collect()
    }

    #[test]
    fn a_cordon_heads_the_chain_of_the_pods_it_leaves_unschedulable_and_the_controllers_taints_do_not(
    ) {
        let pending = |s| {
            kube_event(
                s,
                "FailedScheduling",
                "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
            )
        };
        let cordoned = chain_kinds(vec![
            node(0, false, json!([])),
            node(
                10,
                true,
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
            ),
            pending(40),
        ]);
        assert_eq!(cordoned[0][0], "node_cordoned", "{cordoned:?}");
        // The node controller's own taint follows a condition: not a change anyone made.
        let controller = chain_kinds(vec![
            node(0, false, json!([])),
            node(
                10,
                false,
                json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
            ),
            pending(40),
        ]);
        assert!(
            controller.iter().all(|c| c[0] != "node_cordoned"),
            "{controller:?}"
        );
        // A cordon and nothing to place: no incident.
        assert!(chain_kinds(vec![node(0, false, json!([])), node(10, true, json!([]))]).is_empty());
    }

    #[test]
    fn exit_137_after_failed_liveness_probes_is_a_liveness_kill_not_an_oom() {
        let v = verdict(vec![
            pod(0, json!({})),
            kube_event(
                10,
                "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500",
            ),
            kube_event(
                30,
                "Killing",
                "Container cart failed liveness probe, will be restarted",
            ),
            pod(31, terminated("Error", 137, 31, "")),
        ]);
        assert_eq!(
            v,
            [(RootKind::LivenessProbeKill, "pod/shop/cart-7d8f9".into())]
        );
    }

    #[test]
    fn a_kernel_memcg_kill_of_the_container_is_its_own_limit() {
        let v = verdict(vec![
            pod(0, json!({})),
            oom(20, OomConstraint::Memcg),
            pod(21, terminated("OOMKilled", 137, 20, "")),
        ]);
        assert_eq!(
            v,
            [(RootKind::OomContainerLimit, "pod/shop/cart-7d8f9".into())]
        );
    }

    #[test]
    fn a_global_kill_on_the_node_makes_the_same_oomkilled_a_node_oom() {
        let v = verdict(vec![
            pod(0, json!({})),
            oom(20, OomConstraint::Global),
            pod(21, terminated("OOMKilled", 137, 20, "")),
        ]);
        assert_eq!(v, [(RootKind::OomNode, "node/node-7".into())]);
    }

    #[test]
    fn a_crash_that_names_an_unreachable_dependency_is_not_an_application_bug() {
        let dep = verdict(vec![
            pod(0, json!({})),
            pod(
                40,
                terminated(
                    "Error",
                    1,
                    40,
                    "could not connect to redis:6379: connection refused",
                ),
            ),
        ]);
        assert_eq!(
            dep,
            [(
                RootKind::DependencyUnreachable,
                "pod/shop/cart-7d8f9".into()
            )]
        );
        let bug = verdict(vec![
            pod(0, json!({})),
            pod(
                40,
                terminated(
                    "Error",
                    2,
                    40,
                    "panic: runtime error: index out of range [3] with length 3",
                ),
            ),
        ]);
        assert_eq!(
            bug,
            [(RootKind::CrashLoopAppError, "pod/shop/cart-7d8f9".into())]
        );
    }

    #[test]
    fn a_kill_without_a_cgroup_is_attributed_through_the_pid_exec_saw() {
        let cg = format!("/kubepods/burstable/pod{UID}/{CID}");
        let exec = Event::new(
            at(5),
            "node-7",
            Source::Ebpf,
            Kernel::Exec(crate::event::Exec {
                pid: 4711,
                ppid: 1,
                comm: "java".into(),
                filename: "/usr/bin/java".into(),
                cgroup: cg.as_str().into(),
            }),
        );
        let mut kill = oom(20, OomConstraint::Memcg);
        if let crate::event::Body::Kernel(Kernel::OomKill(o)) = &mut kill.body {
            o.task_memcg = "".into();
            o.oom_memcg = "".into();
        }
        let v = verdict(vec![pod(0, json!({})), exec, kill]);
        assert_eq!(
            v,
            [(RootKind::OomContainerLimit, "pod/shop/cart-7d8f9".into())]
        );
    }

    #[test]
    fn an_oom_at_the_pods_common_limit_is_the_nodes_not_the_pods_own_limit() {
        // `oom_memcg=/kubepods`: every pod of the node together hit their allocatable; the victim
        // is one pod's process. A global OOM that kills a pod's process names the pod too.
        for (constraint, oom_memcg) in [
            (OomConstraint::Memcg, "/kubepods"),
            (OomConstraint::Global, "/"),
        ] {
            let mut kill = oom(20, constraint);
            if let crate::event::Body::Kernel(Kernel::OomKill(o)) = &mut kill.body {
                o.oom_memcg = oom_memcg.into();
            }
            let (v, d) = run_events([vec![pod(0, json!({})), kill]], Config::default());
            let f = d
                .findings
                .iter()
                .find(|f| f.kind == crate::detect::FindingKind::OomKillNode)
                .expect("a node-level kill");
            assert_eq!(f.entity.to_string(), "node/node-7");
            assert!(
                f.facts
                    .clients
                    .iter()
                    .any(|c| c.to_string() == "pod/shop/cart-7d8f9"),
                "{f:?}"
            );
            if constraint == OomConstraint::Memcg {
                assert!(
                    f.summary
                        .contains("pods together hit their memory limit (/kubepods)"),
                    "{}",
                    f.summary
                );
            }
            assert!(
                v.incidents
                    .iter()
                    .all(|i| i.root_cause.kind != RootKind::OomContainerLimit),
                "not the pod's own limit"
            );
        }
    }

    #[test]
    fn a_crash_loop_reported_by_its_state_and_by_an_event_without_a_container_is_one_incident() {
        let waiting = |s: u64| {
            // A snapshot that shows the back-off but not the termination before it.
            let mut p = pod(s, json!({}));
            if let crate::event::Body::Kube(Kube::Object(o)) = &mut p.body {
                let mut v = o.json.parse().unwrap();
                v["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=cart"}});
                v["status"]["containerStatuses"][0]["ready"] = json!(false);
                o.json = RawJson::from_value(&v);
            }
            p
        };
        let mut backoff = kube_event(
            45,
            "BackOff",
            "Back-off restarting failed container cart in pod cart-7d8f9_shop(0a1b2c3d)",
        );
        if let crate::event::Body::Kube(Kube::Event(k)) = &mut backoff.body {
            k.involved.field_path.clear();
        }
        let v = verdict(vec![pod(0, json!({})), waiting(40), backoff]);
        assert_eq!(
            v,
            [(RootKind::CrashLoopAppError, "pod/shop/cart-7d8f9".into())]
        );
    }

    #[test]
    fn a_clean_exit_or_a_graceful_stop_is_no_finding() {
        let v = verdict(vec![
            pod(0, json!({})),
            pod(40, terminated("Completed", 0, 40, "")),
        ]);
        assert!(v.is_empty(), "{v:?}");
        let v = verdict(vec![
            pod(0, json!({})),
            pod(40, terminated("Error", 143, 40, "")),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }
}
