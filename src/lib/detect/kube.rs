//! Detectors over Kubernetes: Pod, Node, workload and EndpointSlice changes, and Events.

use super::text::{self, Cause};
use super::{Detector, Facts, FindingKind, Rollout};
use crate::event::{Event, KubeEvent, Ts};
use crate::topology::{template_diff, Change, Container, Entity, Pod, Termination, Workload};

impl Detector {
    pub(crate) fn object_change(&mut self, e: &Event, change: Change) {
        match change {
            Change::Pod { old, new } => self.pod_change(e, old.as_deref(), &new),
            Change::Node { old, new } => {
                let entity = Entity::Node(new.name.clone());
                if let Some(old) = &old {
                    self.cordon(e, old, &new);
                }
                for (cond, (status, reason, message)) in &new.conditions {
                    let was = old
                        .as_ref()
                        .and_then(|o| o.conditions.get(cond))
                        .map(|c| c.0.as_str());
                    let bad = match cond.as_str() {
                        "Ready" => status != "True",
                        "MemoryPressure" | "DiskPressure" | "PIDPressure" => status == "True",
                        _ => false,
                    };
                    let kind = if cond == "Ready" {
                        FindingKind::NodeNotReady
                    } else {
                        FindingKind::NodePressure
                    };
                    if !bad {
                        self.close(kind, &entity, cond, e.ts);
                        continue;
                    }
                    if was == Some(status.as_str())
                        && self
                            .open
                            .contains_key(&(kind, entity.clone(), cond.clone()))
                    {
                        continue;
                    }
                    let summary = match kind {
                        FindingKind::NodeNotReady => {
                            format!("node {} is not ready ({reason})", new.name)
                        }
                        _ => format!("node {} reports {cond} ({reason})", new.name),
                    };
                    let message = (!message.is_empty()).then(|| message.clone());
                    let node = new.name.clone();
                    self.upsert(kind, entity.clone(), cond, e.ts, e, || {
                        (
                            summary,
                            Facts {
                                node: Some(node),
                                message,
                                ..Facts::default()
                            },
                        )
                    });
                }
            }
            Change::Workload(w, new) => {
                if w.kind == "ReplicaSet" && new {
                    self.rollout(e, &w);
                }
                if let (true, Some((reason, message, since))) = (w.kind == "Job", &w.failed) {
                    self.job_failed(e, &w.ns, &w.name, reason, message, since.unwrap_or(e.ts));
                }
                // ReplicaSets are their Deployment's business; Jobs finish, they are not rolled out.
                if w.kind == "ReplicaSet" || w.kind == "Job" {
                    return;
                }
                let entity = Entity::Workload {
                    kind: w.kind.clone(),
                    ns: w.ns.clone(),
                    name: w.name.clone(),
                };
                if w.available >= w.desired {
                    self.short.remove(&entity);
                    self.close(FindingKind::RolloutStuck, &entity, "", e.ts);
                    return;
                }
                let summary = format!(
                    "{} {}/{}: {} of {} replicas available",
                    w.kind, w.ns, w.name, w.available, w.desired
                );
                // Stuck when Kubernetes says so, or when it has been short for longer than its
                // progress deadline: a rollout that is still starting is healthy.
                if let Some((status, reason, _)) = &w.progressing {
                    if status == "False" {
                        let summary = format!("{summary} ({reason})");
                        self.short.remove(&entity);
                        self.upsert(FindingKind::RolloutStuck, entity, "", e.ts, e, || {
                            (summary, Facts::default())
                        });
                        return;
                    }
                }
                if self.open.contains_key(&(
                    FindingKind::RolloutStuck,
                    entity.clone(),
                    String::new(),
                )) {
                    self.upsert(FindingKind::RolloutStuck, entity, "", e.ts, e, || {
                        (summary, Facts::default())
                    });
                    return;
                }
                let since = w.progressing.as_ref().and_then(|p| p.2).unwrap_or(e.ts);
                let since = self.short.get(&entity).map_or(since, |s| s.0.min(since));
                self.short
                    .insert(entity, (since, w.deadline_s, summary, e.clone()));
                self.rollouts_due(e.ts);
            }
            Change::Endpoints { service, old, new } => {
                // The controller drops the endpoints of deleted and evicted pods: a service can
                // lose its last ready endpoint with the total falling to 0 too.
                if new.ready == 0 && (new.total > 0 || old.ready > 0) {
                    let summary = format!(
                        "service {} has 0 of {} endpoints ready",
                        service.short(),
                        new.total
                    );
                    let f = self.upsert(
                        FindingKind::ServiceNoEndpoints,
                        service,
                        "",
                        e.ts,
                        e,
                        || (summary, Facts::default()),
                    );
                    f.facts.peak_bytes = None;
                    f.count = old.total.max(new.total) as u64;
                } else if old.ready == 0 && new.ready > 0 {
                    self.close(FindingKind::ServiceNoEndpoints, &service, "", e.ts);
                }
            }
            Change::Config {
                ns,
                name,
                keys,
                deleted,
            } => self.config_change(e, &ns, &name, keys, deleted),
            Change::Policy { old, new, deleted } => {
                self.policy_change(e, old.as_deref(), *new, deleted)
            }
            // A scale-up: new replicas that must be placed (a scale-down leaves nothing pending).
            Change::Scale {
                old: Some(old),
                new,
            } if new.desired > old.desired => {
                let entity = Entity::Workload {
                    kind: new.target.0.clone(),
                    ns: new.ns.clone(),
                    name: new.target.1.clone(),
                };
                let summary = format!(
                    "autoscaler {}/{} scaled {}/{} from {} to {} replicas",
                    new.ns,
                    new.name,
                    new.target.0.to_lowercase(),
                    new.target.1,
                    old.desired,
                    new.desired
                );
                let changed = vec![format!("replicas {} → {}", old.desired, new.desired)];
                self.change(FindingKind::Scaled, entity, e.ts, e, summary, changed);
            }
            Change::Scale { .. } | Change::Other => {}
        }
    }

    /// A change made to the cluster: a finding that opens and closes at once.
    fn change(
        &mut self,
        kind: FindingKind,
        entity: Entity,
        at: Ts,
        e: &Event,
        summary: String,
        changed: Vec<String>,
    ) -> &mut crate::detect::Finding {
        let key = at.0.to_string();
        let i = self
            .upsert(kind, entity.clone(), &key, at, e, || {
                (
                    summary,
                    Facts {
                        changed,
                        ..Facts::default()
                    },
                )
            })
            .id;
        self.close(kind, &entity, &key, at);
        &mut self.findings[i]
    }

    /// A node cordoned, or tainted by hand so that pods cannot be scheduled or stay: the node
    /// controller's own taints (`node.kubernetes.io/…`) follow a condition and are not changes.
    fn cordon(&mut self, e: &Event, old: &crate::topology::Node, new: &crate::topology::Node) {
        let mut changed = Vec::new();
        if new.unschedulable && !old.unschedulable {
            changed.push("cordoned (unschedulable)".to_string());
        }
        for t in &new.taints {
            // The node controller's condition taints, and the autoscalers' own.
            let by_hand = ![
                "node.kubernetes.io/",
                "node.cloudprovider.kubernetes.io/",
                "ToBeDeletedByClusterAutoscaler",
                "DeletionCandidateOfClusterAutoscaler",
                "karpenter.sh/",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if by_hand && !old.taints.contains(t) && !t.ends_with(":PreferNoSchedule") {
                changed.push(format!("tainted {t}"));
            }
        }
        if changed.is_empty() {
            return;
        }
        let summary = format!("node {} {}", new.name, changed.join(", "));
        self.change(
            FindingKind::NodeCordoned,
            Entity::Node(new.name.clone()),
            e.ts,
            e,
            summary,
            changed,
        );
    }

    /// A ConfigMap's data changed (or it is gone): a cause of what fails next in the pods that
    /// read it.
    fn config_change(&mut self, e: &Event, ns: &str, name: &str, keys: Vec<String>, deleted: bool) {
        let readers: Vec<String> = self
            .topo
            .pods()
            .filter(|p| p.ns == ns && !p.deleted && p.config_maps.iter().any(|c| c == name))
            .map(|p| p.name.clone())
            .collect();
        // Status and lock objects that controllers rewrite every few seconds
        // (`cluster-autoscaler-status`, leader election): not configuration anyone changed.
        let bookkeeping = ["status", "leader", "lock", "heartbeat"]
            .iter()
            .any(|w| name.contains(w));
        if readers.is_empty() && bookkeeping {
            return;
        }
        let read_by = match readers.len() {
            0 => String::new(),
            1 => format!(" (read by {})", readers[0]),
            n => format!(" (read by {n} pods)"),
        };
        let summary = if deleted {
            format!("configmap {ns}/{name} deleted{read_by}")
        } else {
            let shown: Vec<&str> = keys.iter().take(4).map(String::as_str).collect();
            let more = keys.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "configmap {ns}/{name} changed: {}{more}{read_by}",
                shown.join(", ")
            )
        };
        let entity = Entity::Workload {
            kind: "ConfigMap".into(),
            ns: ns.to_string(),
            name: name.to_string(),
        };
        let changed = if deleted {
            vec!["deleted".into()]
        } else {
            keys
        };
        self.change(FindingKind::ConfigChange, entity, e.ts, e, summary, changed);
    }

    /// A NetworkPolicy created, changed or deleted. A policy first seen is a change only when it
    /// was created within the hour before (else it is the listing of what was always there),
    /// dated at its creation.
    fn policy_change(
        &mut self,
        e: &Event,
        old: Option<&crate::topology::Policy>,
        new: crate::topology::Policy,
        deleted: bool,
    ) {
        let (at, what) = match (old, deleted) {
            (_, true) => (e.ts, format!("deleted (it {})", new.describe())),
            (Some(o), false) => (
                e.ts,
                format!("changed: it {} (before: {})", new.describe(), o.describe()),
            ),
            (None, false) => match new.created {
                Some(c) if c.0 <= e.ts.0 && e.ts.0 - c.0 <= 3600 * Ts::NANOS_PER_SEC => {
                    (c, format!("created: it {}", new.describe()))
                }
                _ => return,
            },
        };
        // What the change took away: everything, for a deletion; a narrower rule set otherwise.
        let restricts = deleted
            || old.is_none_or(|o| {
                o.allows_in.iter().any(|r| !new.allows_in.contains(r))
                    || o.allows_out.iter().any(|r| !new.allows_out.contains(r))
                    || (!o.egress && new.egress)
                    || (!o.ingress && new.ingress)
            });
        let summary = format!("networkpolicy {}/{} {what}", new.ns, new.name);
        let entity = Entity::Workload {
            kind: "NetworkPolicy".into(),
            ns: new.ns.clone(),
            name: new.name.clone(),
        };
        let changed = vec![new.describe()];
        let f = self.change(
            FindingKind::NetworkPolicyChange,
            entity,
            at,
            e,
            summary,
            changed,
        );
        f.facts.restricts = restricts;
        f.facts.policy = Some(Box::new(new));
    }

    /// A Job that gave up: what its Failed condition or its Event says.
    fn job_failed(&mut self, e: &Event, ns: &str, name: &str, reason: &str, message: &str, at: Ts) {
        let entity = Entity::Workload {
            kind: "Job".into(),
            ns: ns.to_string(),
            name: name.to_string(),
        };
        let summary = format!("job {ns}/{name} failed: {reason} ({message})");
        let message = (!message.is_empty()).then(|| message.to_string());
        self.upsert(FindingKind::JobFailed, entity.clone(), "", at, e, || {
            (
                summary,
                Facts {
                    message,
                    ..Facts::default()
                },
            )
        });
        self.close(FindingKind::JobFailed, &entity, "", at);
    }

    /// Workloads short of replicas for longer than their progress deadline: stuck, dated when the
    /// deadline passed.
    pub(crate) fn rollouts_due(&mut self, now: Ts) {
        let due: Vec<Entity> = self
            .short
            .iter()
            .filter(|(_, (since, deadline, _, _))| {
                now.0 >= since.0.saturating_add(deadline * Ts::NANOS_PER_SEC)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for entity in due {
            if let Some((since, deadline, summary, ev)) = self.short.remove(&entity) {
                let at = Ts(since.0.saturating_add(deadline * Ts::NANOS_PER_SEC));
                let summary =
                    format!("{summary} for more than {deadline} s (its progress deadline)");
                self.upsert(FindingKind::RolloutStuck, entity, "", at, &ev, || {
                    (summary, Facts::default())
                });
            }
        }
    }

    /// A Deployment's new ReplicaSet: a rollout, with what changed since the revision before. A
    /// change, not a failure: it becomes part of an incident only when what fails after it is
    /// its new pods.
    fn rollout(&mut self, e: &Event, rs: &Workload) {
        let (Some(("Deployment", dep)), Some(revision)) = (
            rs.owner.as_ref().map(|(k, n)| (k.as_str(), n.clone())),
            rs.revision,
        ) else {
            return;
        };
        if revision < 2 {
            return; // the Deployment's creation, not a change
        }
        let previous = self
            .topo
            .replica_sets_of(&rs.ns, &dep)
            .into_iter()
            .filter(|o| o.name != rs.name && o.revision.is_some_and(|r| r < revision))
            .max_by_key(|o| o.revision)
            .cloned();
        let diff = previous
            .as_ref()
            .map(|p| template_diff(&p.template, &rs.template))
            .unwrap_or_default();
        let at = rs.created.unwrap_or(e.ts);
        let entity = Entity::Workload {
            kind: "Deployment".into(),
            ns: rs.ns.clone(),
            name: dep.clone(),
        };
        let what = match diff.len() {
            0 => String::new(),
            1 => format!(": {}", diff[0]),
            n => format!(
                ": {}, and {} more change{}",
                diff[0],
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        let summary = format!(
            "deployment {}/{dep} rolled out revision {revision} (ReplicaSet {}){what}",
            rs.ns, rs.name
        );
        let facts = Facts {
            rollout: Some(Rollout {
                replica_set: rs.name.clone(),
                revision,
                previous: previous.as_ref().and_then(|p| p.revision),
                previous_replica_set: previous.map(|p| p.name),
                diff,
            }),
            ..Facts::default()
        };
        self.upsert(
            FindingKind::Rollout,
            entity.clone(),
            &rs.name,
            at,
            e,
            || (summary, facts),
        );
        self.close(FindingKind::Rollout, &entity, &rs.name, at);
    }

    fn pod_change(&mut self, e: &Event, old: Option<&Pod>, pod: &Pod) {
        let entity = pod.entity();
        let node = Some(pod.node.clone()).filter(|n| !n.is_empty());
        for c in &pod.containers {
            let before = old.and_then(|o| o.containers.iter().find(|x| x.name == c.name));
            for t in [&c.last_terminated, &c.terminated].into_iter().flatten() {
                let seen = before.is_some_and(|b| {
                    b.last_terminated.as_ref() == Some(t) || b.terminated.as_ref() == Some(t)
                });
                if !seen {
                    self.termination(e, pod, c, t);
                }
            }
            match &c.waiting {
                Some((reason, message)) => {
                    let kind = match reason.as_str() {
                        "CrashLoopBackOff" => Some(FindingKind::CrashLoop),
                        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                            Some(FindingKind::ImagePullFailure)
                        }
                        "CreateContainerConfigError"
                        | "CreateContainerError"
                        | "RunContainerError" => Some(FindingKind::ConfigError),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        let summary = format!(
                            "{} {} of pod {} is waiting: {reason}",
                            c.what(),
                            c.name,
                            pod.name
                        );
                        let facts = Facts {
                            container: Some(c.name.clone()),
                            node: node.clone(),
                            message: (!message.is_empty()).then(|| message.clone()),
                            ..Facts::default()
                        };
                        let f = self
                            .upsert(kind, entity.clone(), &c.name, e.ts, e, || (summary, facts));
                        f.facts.exit_code = f
                            .facts
                            .exit_code
                            .or(c.last_terminated.as_ref().map(|t| t.exit_code));
                    }
                }
                None => {
                    for kind in [
                        FindingKind::CrashLoop,
                        FindingKind::ImagePullFailure,
                        FindingKind::ConfigError,
                    ] {
                        if c.ready {
                            self.close(kind, &entity, &c.name, e.ts);
                        }
                    }
                }
            }
        }
        if pod.reason == "Evicted" && old.is_none_or(|o| o.reason != "Evicted") {
            let summary = format!("pod {} evicted: {}", pod.name, pod.message);
            let facts = Facts {
                node: node.clone(),
                message: Some(pod.message.clone()),
                ..Facts::default()
            };
            self.upsert(FindingKind::Eviction, entity.clone(), "", e.ts, e, || {
                (summary, facts)
            });
        }
        if let Some((reason, message)) = &pod.unschedulable {
            if reason == "Unschedulable" {
                let summary = format!("pod {} cannot be scheduled: {message}", pod.name);
                let facts = Facts {
                    message: Some(message.clone()),
                    ..Facts::default()
                };
                self.upsert(FindingKind::FailedScheduling, entity, "", e.ts, e, || {
                    (summary, facts)
                });
            }
        }
    }

    /// A container's termination, reported once per (container, finish time).
    fn termination(&mut self, e: &Event, pod: &Pod, c: &Container, t: &Termination) {
        // A pod being deleted (a rollout, a scale-down) or evicted is stopped on purpose: only an
        // OOM kill on its way out is news.
        let stopped = pod.terminating || pod.deleted || pod.reason == "Evicted";
        if stopped && t.reason != "OOMKilled" {
            return;
        }
        let at = t.finished.unwrap_or(e.ts);
        let entity = pod.entity();
        let node = Some(pod.node.clone()).filter(|n| !n.is_empty());
        let key = format!("{}@{}", c.name, at.0);
        let base = Facts {
            container: Some(c.name.clone()),
            exit_code: Some(t.exit_code),
            node,
            message: (!t.message.is_empty()).then(|| t.message.trim().to_string()),
            limit_bytes: c.memory_limit,
            ..Facts::default()
        };
        let (kind, summary) = match (t.reason.as_str(), t.exit_code) {
            ("OOMKilled", _) => (
                FindingKind::ContainerOomKilled,
                format!(
                    "{} {} of pod {} terminated OOMKilled ({}), restart {}",
                    c.what(),
                    c.name,
                    pod.name,
                    t.exit_code,
                    c.restarts
                ),
            ),
            ("Completed", 0) | (_, 0) => return,
            // 143 = SIGTERM handled: a stop from outside (a rollout, a scale-down, a drain, or
            // kubelet after failed liveness probes, which its own Events show), not the app failing.
            (_, 143) => return,
            ("StartError" | "ContainerCannotRun", _) => (
                FindingKind::ConfigError,
                format!(
                    "{} {} of pod {} could not start: {}",
                    c.what(),
                    c.name,
                    pod.name,
                    t.message.trim()
                ),
            ),
            ("Evicted" | "ContainerStatusUnknown", _) => return,
            (reason, code) => {
                let reason = if reason.is_empty() { "Error" } else { reason };
                (
                    FindingKind::ContainerError,
                    format!(
                        "{} {} of pod {} exited {reason} ({code}), restart {}",
                        c.what(),
                        c.name,
                        pod.name,
                        c.restarts
                    ),
                )
            }
        };
        // What its log said last, before the end: the crash's own words.
        let quote: Vec<(String, super::Evidence)> = self
            .log_tail
            .get(&format!("{}/{}/{}", pod.ns, pod.name, c.name))
            .map(|tail| {
                tail.iter()
                    .filter(|(ts, _, _)| ts.0 <= at.0 + 1_000_000_000)
                    .map(|(_, text, ev)| (text.clone(), ev.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let f = self.upsert(kind, entity.clone(), &key, at, e, || {
            let summary = match quote.last() {
                Some((text, _)) => format!("{summary}; its last log line: \"{text}\""),
                None => summary,
            };
            (summary, base.clone())
        });
        for (_, ev) in quote {
            if f.evidence.len() < super::MAX_EVIDENCE && !f.evidence.iter().any(|x| x.seq == ev.seq)
            {
                f.evidence.push(ev);
            }
        }
        // What the container said on its way out (`terminationMessagePolicy`) may name the cause.
        if let Some(cause) = text::classify(&t.message) {
            self.cause_from_text(e, &entity, at, cause, &t.message, base);
        }
    }

    /// A finding for what a message says went wrong (`base.container` keys it per container).
    pub(crate) fn cause_from_text(
        &mut self,
        e: &Event,
        entity: &Entity,
        at: Ts,
        cause: Cause,
        message: &str,
        base: Facts,
    ) {
        let (kind, what) = match cause {
            Cause::Dns => (FindingKind::DnsFailure, "cannot resolve a name"),
            Cause::Unreachable { .. } => {
                (FindingKind::DependencyError, "cannot reach a dependency")
            }
            Cause::Config => (FindingKind::ConfigError, "is missing configuration"),
            Cause::Certificate { .. } => (
                FindingKind::CertificateError,
                "cannot connect: a certificate has expired",
            ),
        };
        let peer = match &cause {
            // The host the text names, else the one the caller knows (a client span's peer).
            Cause::Unreachable { host } | Cause::Certificate { host } => host
                .as_deref()
                .and_then(|h| self.resolve_host(h, entity))
                .or_else(|| base.peer.clone()),
            _ => None,
        };
        let line = text::first_line(message);
        let summary = format!("{} {what}: {line}", entity.short());
        let container = base.container.clone().unwrap_or_default();
        let facts = Facts {
            peer: peer.clone(),
            message: Some(line.to_string()),
            ..base
        };
        let f = self.upsert(kind, entity.clone(), &container, at, e, || {
            (summary.clone(), facts)
        });
        // Who said it: a Pod's termination message (K8S), a span (TRACE), a log line (LOG).
        if f.count == 1 {
            f.layer = e.kind().layer();
        }
        // A later message that names the host says more than an earlier one that did not.
        if f.facts.peer.is_none() && peer.is_some() {
            f.facts.peer = peer;
            f.facts.message = Some(line.to_string());
            f.summary = summary;
        }
    }

    /// A host named in a message → the service or pod it is: an IP, `svc`, `svc.ns`, `svc.ns.svc.cluster.local`.
    pub(crate) fn resolve_host(&self, host: &str, from: &Entity) -> Option<Entity> {
        if let Ok(ip) = host.parse() {
            return self.topo.owner_of_ip(ip);
        }
        let ns_default = match from {
            Entity::Pod { ns, .. } | Entity::Service { ns, .. } if !ns.is_empty() => ns.as_str(),
            _ => "default",
        };
        // `cart`, `cart.shop`, `cart.shop.svc.cluster.local`: a Service when the name says so
        // (`.svc`) or when one of that name is known; any other name is outside the cluster.
        let mut parts = host.split('.');
        let name = parts.next()?;
        let ns = parts.next().unwrap_or(ns_default);
        (host.contains(".svc") || self.topo.has_service(ns, name))
            .then(|| Entity::service(ns, name))
    }

    pub(crate) fn kube_event(&mut self, e: &Event, k: &KubeEvent) {
        let pod_entity = || Entity::pod(&k.involved.namespace, &k.involved.name);
        let container = k
            .involved
            .field_path
            .split_once('{')
            .map_or("", |(_, c)| c.trim_end_matches('}'))
            .to_string();
        let at = k.last.unwrap_or(e.ts);
        let msg = k.message.trim();
        let facts = || Facts {
            message: Some(msg.to_string()),
            container: Some(container.clone()).filter(|c| !c.is_empty()),
            node: Some(k.host.clone()).filter(|h| !h.is_empty()),
            ..Facts::default()
        };
        let on_pod = k.involved.kind == "Pod";
        let (kind, entity, summary) = match k.reason.as_str() {
            "Unhealthy" if msg.starts_with("Liveness probe failed") && on_pod => (
                FindingKind::LivenessFailed,
                pod_entity(),
                format!("liveness probe of {} failed: {msg}", k.involved.name),
            ),
            "Unhealthy" if msg.starts_with("Readiness probe failed") && on_pod => (
                FindingKind::ReadinessFailed,
                pod_entity(),
                format!("{} runs but is not ready: {msg}", k.involved.name),
            ),
            "Killing" if msg.contains("failed liveness probe") && on_pod => (
                FindingKind::LivenessKill,
                pod_entity(),
                format!(
                    "kubelet killed container {container} of {}: failed liveness probe",
                    k.involved.name
                ),
            ),
            "BackOff" if msg.contains("restarting failed container") && on_pod => (
                FindingKind::CrashLoop,
                pod_entity(),
                format!("{}: {msg}", k.involved.name),
            ),
            "BackOff" | "Failed" | "ErrImagePull" | "ImagePullBackOff"
                if on_pod && (msg.contains("pull") || msg.contains("ImagePull")) =>
            {
                (
                    FindingKind::ImagePullFailure,
                    pod_entity(),
                    format!("{}: {msg}", k.involved.name),
                )
            }
            "Failed" | "FailedMount" | "CreateContainerConfigError"
                if on_pod && text::classify(msg) == Some(Cause::Config) =>
            {
                (
                    FindingKind::ConfigError,
                    pod_entity(),
                    format!("{}: {msg}", k.involved.name),
                )
            }
            "FailedMount" | "FailedAttachVolume" if on_pod => (
                FindingKind::VolumeFailure,
                pod_entity(),
                format!("{}: {msg}", k.involved.name),
            ),
            "ProvisioningFailed" if k.involved.kind == "PersistentVolumeClaim" => (
                FindingKind::VolumeFailure,
                Entity::Workload {
                    kind: "PersistentVolumeClaim".into(),
                    ns: k.involved.namespace.clone(),
                    name: k.involved.name.clone(),
                },
                format!(
                    "claim {}/{} cannot be provisioned: {msg}",
                    k.involved.namespace, k.involved.name
                ),
            ),
            "FailedCreate"
                if !on_pod
                    && [
                        "exceeded quota",
                        "denied the request",
                        "violates podsecurity",
                        "is forbidden",
                    ]
                    .iter()
                    .any(|w| msg.to_lowercase().contains(w)) =>
            {
                // Said of a ReplicaSet: the Deployment above it is what people know.
                let (kind, name) = self
                    .topo
                    .owner_of(&k.involved.kind, &k.involved.namespace, &k.involved.name)
                    .unwrap_or_else(|| (k.involved.kind.clone(), k.involved.name.clone()));
                (
                    FindingKind::AdmissionDenied,
                    Entity::Workload {
                        kind,
                        ns: k.involved.namespace.clone(),
                        name: name.clone(),
                    },
                    format!("{}/{name} cannot create pods: {msg}", k.involved.namespace),
                )
            }
            "FailedScheduling" if on_pod => (
                FindingKind::FailedScheduling,
                pod_entity(),
                format!("{} cannot be scheduled: {msg}", k.involved.name),
            ),
            "Evicted" if on_pod => (
                FindingKind::Eviction,
                pod_entity(),
                format!("{} evicted: {msg}", k.involved.name),
            ),
            "TaintManagerEviction" if on_pod => (
                FindingKind::Eviction,
                pod_entity(),
                format!("{} marked for deletion: node unreachable", k.involved.name),
            ),
            "EvictionThresholdMet" => (
                FindingKind::NodePressure,
                Entity::Node(k.involved.name.clone()),
                format!("node {}: {msg}", k.involved.name),
            ),
            // The node controller also writes `NodeNotReady` on every pod of the node: the node's
            // own event is the finding.
            "NodeNotReady" if k.involved.kind == "Node" => (
                FindingKind::NodeNotReady,
                Entity::Node(k.involved.name.clone()),
                msg.to_string(),
            ),
            "SystemOOM" => (
                FindingKind::OomKillNode,
                Entity::Node(k.involved.name.clone()),
                format!("node {}: {msg}", k.involved.name),
            ),
            "OOMKilling" => {
                let kind = if msg.contains("Memory cgroup out of memory") {
                    FindingKind::OomKillMemcg
                } else {
                    FindingKind::OomKillNode
                };
                (
                    kind,
                    Entity::Node(k.involved.name.clone()),
                    format!("node {}: {msg}", k.involved.name),
                )
            }
            "BackoffLimitExceeded" | "DeadlineExceeded" if k.involved.kind == "Job" => {
                let (ns, name) = (k.involved.namespace.clone(), k.involved.name.clone());
                return self.job_failed(e, &ns, &name, &k.reason, msg, at);
            }
            "FailedCreatePodSandBox" if on_pod && msg.contains("network") => (
                FindingKind::NetworkSetupFailure,
                pod_entity(),
                format!("{}: {msg}", k.involved.name),
            ),
            _ => return,
        };
        let key = if kind == FindingKind::OomKillNode || kind == FindingKind::OomKillMemcg {
            format!("{}", at.0)
        } else {
            container.clone()
        };
        let f = self.upsert(kind, entity, &key, at, e, || (summary, facts()));
        f.count = f.count.max(u64::from(k.count));
        if let Some(first) = k.first {
            f.start = f.start.min(first);
        }
    }
}
