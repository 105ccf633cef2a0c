//! What to do about each root-cause kind: one function per kind, named in the kind's row of
//! [`crate::knowledge::RootKind::props`], over the facts of its incident gathered once.

use super::Impact;
use crate::detect::text::{self, Cause};
use crate::detect::{Finding, FindingKind as K};
use crate::topology::{Entity, Topology};
use crate::units::kib;

/// The facts of an incident that actions name.
pub struct Context<'a> {
    pub root: &'a Finding,
    pub members: &'a [&'a Finding],
    pub impact: &'a Impact,
    pub topology: &'a Topology,
    /// The root's entity, short (`shop/cart-7d8f9`).
    pub pod: String,
    /// The root pod's workload (`deployment/shop/cart`), else the root entity.
    pub workload: String,
    pub node: String,
    /// The first message any finding carries (an Event's, a termination's).
    pub message: String,
    pub container: String,
    /// The dependency the root could not reach.
    pub peer: String,
}

impl<'a> Context<'a> {
    pub fn new(
        root: &'a Finding,
        members: &'a [&'a Finding],
        impact: &'a Impact,
        topology: &'a Topology,
    ) -> Context<'a> {
        let workload = match &root.entity {
            Entity::Pod { ns, name } => topology
                .pod_by_name(ns, name)
                .and_then(|p| topology.workload_of(p))
                .map(|w| w.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| root.entity.to_string());
        let node = match &root.entity {
            Entity::Node(n) if !n.is_empty() => Some(n.clone()),
            _ => root.facts.node.clone(),
        }
        .or_else(|| impact.nodes.first().map(Entity::short))
        .unwrap_or_else(|| "the node".into());
        // What says why, before a back-off that only says it keeps failing.
        let message = members
            .iter()
            .filter(|m| m.kind != K::CrashLoop)
            .chain(members.iter().filter(|m| m.kind == K::CrashLoop))
            .find_map(|m| m.facts.message.clone())
            .unwrap_or_default();
        let container = members
            .iter()
            .find_map(|m| m.facts.container.clone())
            .unwrap_or_else(|| "<container>".into());
        // The dependency the root could not reach: its own peer, else the host its message names
        // (outside the cluster), else one a member names.
        let named_host = |m: &Finding| match m.facts.message.as_deref().and_then(text::classify) {
            Some(Cause::Unreachable { host: Some(h) }) => Some(h),
            _ => None,
        };
        let peer = (root.kind == K::DependencyError)
            .then(|| {
                root.facts
                    .peer
                    .as_ref()
                    .map(|p| p.to_string())
                    .or_else(|| named_host(root))
            })
            .flatten()
            .or_else(|| {
                members
                    .iter()
                    .find_map(|m| m.facts.peer.clone())
                    .map(|p| p.to_string())
            })
            .unwrap_or_else(|| "the dependency".into());
        Context {
            root,
            members,
            impact,
            topology,
            pod: root.entity.short(),
            workload,
            node,
            message,
            container,
            peer,
        }
    }

    fn oom_facts(&self) -> &crate::detect::Facts {
        self.members
            .iter()
            .find(|m| m.kind == K::OomKillMemcg)
            .map(|m| &m.facts)
            .unwrap_or(&self.root.facts)
    }
}

type Actions = Vec<(&'static str, String)>;

pub fn oom_container_limit(c: &Context) -> Actions {
    let peak = c
        .oom_facts()
        .peak_bytes
        .map(|b| kib(b / 1024))
        .unwrap_or_else(|| "observed".into());
    let limit = c
        .members
        .iter()
        .find_map(|m| m.facts.limit_bytes)
        .map(|b| kib(b / 1024))
        .unwrap_or_else(|| "current".into());
    vec![
        ("IMMEDIATE", format!("raise the memory limit of {} above its {peak} peak (limit {limit}), or find the leak", c.workload)),
        ("NEXT", format!("compare the memory growth of {} before the kill with its traffic; a steady climb is a leak", c.pod)),
        ("LATER", "set memory requests equal to limits for critical workloads (Guaranteed QoS)".into()),
    ]
}

pub fn oom_node(c: &Context) -> Actions {
    let node = &c.node;
    vec![
        ("IMMEDIATE", format!("node {node} ran out of memory: cordon it and move load off (kubectl cordon {node})")),
        ("NEXT", format!("find the largest consumers on {node} and give every pod a memory limit")),
        ("LATER", "reserve memory for the system (kubelet --system-reserved, eviction thresholds)".into()),
    ]
}

pub fn eviction_node_pressure(c: &Context) -> Actions {
    let evicted = c
        .members
        .iter()
        .find(|m| m.kind == K::Eviction)
        .and_then(|m| match &m.entity {
            Entity::Pod { ns, name } => c
                .topology
                .pod_by_name(ns, name)
                .and_then(|p| c.topology.workload_of(p)),
            _ => None,
        });
    let who = evicted.map_or_else(|| "the evicted pods".to_string(), |w| w.to_string());
    vec![
        ("IMMEDIATE", format!("relieve pressure on {}: {}", c.node, c.message)),
        ("NEXT", format!("raise the memory requests of {who} to what it really uses, so the scheduler accounts for it")),
    ]
}

pub fn liveness_probe_kill(c: &Context) -> Actions {
    vec![
        ("IMMEDIATE", format!("see why the liveness endpoint of {} stops answering: {}", c.pod, c.message)),
        ("NEXT", format!("raise timeoutSeconds/failureThreshold of the liveness probe of {}, or move slow checks to a readiness probe", c.workload)),
    ]
}

pub fn crash_loop_app_error(c: &Context) -> Actions {
    vec![
        (
            "IMMEDIATE",
            format!(
                "read why it exited: kubectl logs -n {} {} -c {} --previous",
                ns_of(&c.root.entity),
                c.pod,
                c.container
            ),
        ),
        (
            "NEXT",
            format!(
                "roll back {} if a recent change started the crashes",
                c.workload
            ),
        ),
    ]
}

pub fn dependency_unreachable(c: &Context) -> Actions {
    let peer = &c.peer;
    let client = c
        .members
        .iter()
        .find(|m| m.kind == K::DependencyError)
        .map_or(c.pod.clone(), |m| m.entity.short());
    vec![
        (
            "IMMEDIATE",
            if peer.starts_with("service/") || peer == "the dependency" {
                format!("restore {peer}: check that it has ready endpoints and that its pods are running")
            } else {
                format!("restore {peer}, outside the cluster: check that it is up and reachable from the pod's node (address, port, firewall)")
            },
        ),
        (
            "NEXT",
            format!("make {client} retry with backoff instead of failing when {peer} is away"),
        ),
    ]
}

pub fn image_pull_failure(c: &Context) -> Actions {
    vec![(
        "IMMEDIATE",
        format!(
            "fix the image reference or the registry credentials of {}: {}",
            c.workload, c.message
        ),
    )]
}

pub fn scheduling_failure(c: &Context) -> Actions {
    // The pods that could not be placed, and whose they are.
    let pending = c.members.iter().find(|m| m.kind == K::FailedScheduling);
    let workload = pending
        .and_then(|m| match &m.entity {
            Entity::Pod { ns, name } => c
                .topology
                .pod_by_name(ns, name)
                .and_then(|p| c.topology.workload_of(p))
                .map(|w| w.to_string())
                .or_else(|| Some(m.entity.to_string())),
            _ => None,
        })
        .unwrap_or_else(|| c.workload.clone());
    let said = pending
        .and_then(|m| m.facts.message.as_deref())
        .unwrap_or(&c.message);
    let lower = said.to_lowercase();
    let quoted = text::shorten(said.split(". preemption:").next().unwrap_or(said), 160);
    let mut a = Vec::new();
    match (&c.root.kind, &c.root.entity) {
        (K::NodeCordoned, Entity::Node(n)) => {
            let taints: Vec<&str> = c
                .root
                .facts
                .changed
                .iter()
                .filter_map(|t| t.strip_prefix("tainted "))
                .collect();
            let undo = if c.root.facts.changed.iter().any(|t| t.starts_with("cordoned")) {
                format!("uncordon {n} once its maintenance is done (kubectl uncordon {n})")
            } else {
                let keys: Vec<String> = taints
                    .iter()
                    .map(|t| format!("{}-", t.split(['=', ':']).next().unwrap_or(t)))
                    .collect();
                format!(
                    "remove the taint if it was not meant for these pods (kubectl taint nodes {n} {}), or let them tolerate it",
                    keys.join(" ")
                )
            };
            a.push((
                "IMMEDIATE",
                format!("{undo}: {workload} cannot be placed without it (the scheduler said: {quoted})"),
            ));
        }
        (K::Scaled, _) => a.push((
            "IMMEDIATE",
            format!(
                "{}: the new replicas of {workload} fit nowhere (the scheduler said: {quoted}); add nodes (or let the cluster autoscaler), or cap the autoscaler's maxReplicas",
                super::first_line_of(&c.root.summary)
            ),
        )),
        _ => {
            let what = if lower.contains("insufficient") {
                format!("make room for {workload}: add nodes or free capacity (kubectl describe nodes: Allocated resources), or lower its requests")
            } else if lower.contains("taint") {
                format!("let {workload} tolerate the nodes' taints, or untaint the nodes it should run on")
            } else if lower.contains("affinity") || lower.contains("selector") {
                format!("relax the nodeSelector or affinity of {workload}, or label nodes to match it")
            } else if lower.contains("persistentvolumeclaim") || lower.contains("unbound") {
                format!("bind the claims of {workload}: kubectl get pvc -n {} (a StorageClass, a matching volume)", ns_of(&c.root.entity))
            } else {
                format!("read why {workload} cannot be placed: kubectl describe pod -n {} …", ns_of(&c.root.entity))
            };
            a.push(("IMMEDIATE", format!("{what} (the scheduler said: {quoted})")));
        }
    }
    a.push((
        "NEXT",
        format!("keep headroom for {workload}: requests that fit a node with room to spare, PodDisruptionBudgets before draining, a cluster autoscaler"),
    ));
    a
}

pub fn node_not_ready(c: &Context) -> Actions {
    vec![
        ("IMMEDIATE", format!("check node {} and its kubelet (journalctl -u kubelet); pods move after the 300 s toleration", c.node)),
        ("NEXT", "spread replicas across nodes (topologySpreadConstraints, PodDisruptionBudgets)".into()),
    ]
}

pub fn dns_failure(c: &Context) -> Actions {
    vec![
        (
            "IMMEDIATE",
            "check cluster DNS: kubectl -n kube-system get pods -l k8s-app=kube-dns".into(),
        ),
        (
            "NEXT",
            format!(
                "check the name {} resolves and NetworkPolicies allowing egress to DNS: {}",
                c.pod, c.message
            ),
        ),
    ]
}

pub fn network_unreachable(c: &Context) -> Actions {
    vec![(
        "IMMEDIATE",
        format!(
            "check the network path to {}: NetworkPolicies, the CNI on {}",
            c.peer, c.node
        ),
    )]
}

pub fn config_error(c: &Context) -> Actions {
    vec![(
        "IMMEDIATE",
        format!(
            "create what is missing or fix the reference in {}: {}",
            c.workload, c.message
        ),
    )]
}

pub fn service_errors(c: &Context) -> Actions {
    let svc = c.root.entity.short();
    vec![
        ("IMMEDIATE", format!("read what {svc} logged and traced when its errors began: tapio cat CAPTURE --service {} --since {}", service_name(&c.root.entity), c.root.start.rfc3339())),
        ("NEXT", format!("roll back {svc} if it changed just before (kubectl rollout history deployment/{svc}); else check what it depends on that spans do not show (a database, a queue, a feature flag)")),
    ]
}

pub fn service_latency(c: &Context) -> Actions {
    let svc = c.root.entity.short();
    vec![
        ("IMMEDIATE", format!("check CPU throttling and saturation of {svc}'s pods (cpu.stat nr_throttled, kubectl top pod), garbage collection and locks: its own processing got slower while its calls did not")),
        ("NEXT", format!("raise the CPU limit or scale out {svc} if it is throttled; profile the slow endpoint otherwise")),
    ]
}

pub fn cpu_throttling(c: &Context) -> Actions {
    vec![
        ("IMMEDIATE", format!("raise the CPU limit of {} (or remove it and keep the request): its quota runs out and its requests wait", c.workload)),
        ("NEXT", format!("see what uses the CPU in {} (a hot loop, garbage collection, a neighbour process in the container) before scaling out", c.pod)),
    ]
}

pub fn network_latency(c: &Context) -> Actions {
    let svc = c.root.entity.short();
    let callers: Vec<String> = c.root.facts.clients.iter().map(Entity::short).collect();
    let callers = if callers.is_empty() {
        "its callers".to_string()
    } else {
        callers.join(", ")
    };
    vec![
        ("IMMEDIATE", format!("calls from {callers} into {svc} wait before {svc} sees them: check the proxy or sidecar in front of it, its accept queue (ss -lnt: Recv-Q), the network between the nodes")),
        ("NEXT", format!("compare with {svc}'s own processing time, which did not change: the delay is on the way, not in the service")),
    ]
}

pub fn volume_failure(c: &Context) -> Actions {
    let m = c.message.to_lowercase();
    let mut a = vec![(
        "IMMEDIATE",
        format!("see what its volume says: kubectl describe pod {} and kubectl get pvc,pv,volumeattachments (then the CSI driver's logs): {}", c.pod, c.message),
    )];
    if m.contains("multi-attach") {
        a.push(("NEXT", "a ReadWriteOnce volume is still attached to another node: delete the old pod (or wait for its node to release it) before the new one can mount it".to_string()));
    } else if m.contains("storageclass") || m.contains("provision") {
        a.push(("NEXT", "the claim cannot be provisioned: check its storageClassName exists (kubectl get storageclass) and the provisioner runs".to_string()));
    } else {
        a.push(("NEXT", "check the volume's backend (the disk, the NFS server, the CSI driver) from the pod's node".to_string()));
    }
    a
}

pub fn admission_denied(c: &Context) -> Actions {
    let m = c.message.to_lowercase();
    let ns = match &c.root.entity {
        Entity::Workload { ns, .. } | Entity::Pod { ns, .. } => ns.clone(),
        _ => String::new(),
    };
    let fix = if m.contains("exceeded quota") {
        format!("raise the quota or lower the pods' requests and limits: kubectl describe resourcequota -n {ns}")
    } else if m.contains("podsecurity") {
        format!("make the pod template meet the namespace's Pod Security level (securityContext: runAsNonRoot, no privilege escalation, dropped capabilities, seccomp), or change the pod-security labels of namespace {ns}")
    } else if m.contains("webhook") {
        "read the policy the admission webhook applies (kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations; the policy engine's report) and fix the template or the policy".to_string()
    } else {
        "read why the API server refused the pods and fix the template or the policy".to_string()
    };
    vec![
        ("IMMEDIATE", fix),
        (
            "NEXT",
            format!(
                "every refusal: kubectl get events -n {ns} --field-selector reason=FailedCreate"
            ),
        ),
    ]
}

pub fn certificate_expired(c: &Context) -> Actions {
    let whose = if c.peer.is_empty() {
        "the server it calls (or its own client certificate)".to_string()
    } else {
        c.peer.clone()
    };
    vec![
        ("IMMEDIATE", format!("renew the TLS certificate of {whose} and reload what serves it: {}", c.message)),
        ("NEXT", "if cert-manager issues it: kubectl get certificates,certificaterequests -A and kubectl describe the one that did not renew (its issuer, its ACME challenge)".to_string()),
        ("LATER", "alert on days until notAfter for every certificate in use, well before it expires".to_string()),
    ]
}

pub fn readiness_failure(c: &Context) -> Actions {
    vec![
        ("IMMEDIATE", format!("see why {} answers its readiness probe with a failure ({}): it runs, but gets no traffic until it passes; kubectl describe pod {}", c.pod, c.message, c.pod)),
        ("NEXT", format!("check what the readiness check of {} depends on (a database, a cache, a warm-up) and whether that is down", c.workload)),
        ("LATER", format!("keep the readiness probe of {} about the pod itself, so that one slow dependency does not take every replica out", c.workload)),
    ]
}

pub fn job_failed(c: &Context) -> Actions {
    let job = c
        .members
        .iter()
        .find(|m| m.kind == crate::detect::FindingKind::JobFailed)
        .map(|m| m.entity.clone())
        .unwrap_or_else(|| c.root.entity.clone());
    let (ns, name) = match &job {
        Entity::Workload { ns, name, .. } => (ns.clone(), name.clone()),
        other => (String::new(), other.short()),
    };
    // What its pods said, and the CronJob it came from.
    let said = c
        .members
        .iter()
        .filter(|m| matches!(m.entity, Entity::Pod { .. }))
        .find_map(|m| m.facts.message.as_deref())
        .map(crate::detect::text::first_line)
        .map(|l| format!(" (its pods said: {l})"))
        .unwrap_or_default();
    let cronjob = c.members.iter().find_map(|m| match &m.entity {
        Entity::Pod { ns, name } => c
            .topology
            .pod_by_name(ns, name)
            .and_then(|p| c.topology.workload_of(p))
            .and_then(|w| match w {
                Entity::Workload { kind, name, .. } if kind == "CronJob" => Some(name),
                _ => None,
            }),
        _ => None,
    });
    let rerun = match cronjob {
        Some(cj) => format!("kubectl create job {cj}-manual -n {ns} --from=cronjob/{cj}"),
        None => format!("re-create job/{name} in {ns}"),
    };
    vec![
        ("IMMEDIATE", format!("see why its pods failed: kubectl logs job/{name} -n {ns}, kubectl describe job/{name} -n {ns}{said}")),
        ("NEXT", format!("once fixed, run it again ({rerun}); check that a half-done run is safe to repeat")),
        ("LATER", "alert on failed Jobs (kube_job_status_failed), not only on missing results".to_string()),
    ]
}

pub fn bad_rollout(c: &Context) -> Actions {
    let (Entity::Workload { ns, name, .. }, Some(r)) = (&c.root.entity, &c.root.facts.rollout)
    else {
        return unknown(c);
    };
    let mut a = Vec::new();
    match r.previous {
        Some(prev) => a.push(("IMMEDIATE", format!(
            "roll back: kubectl rollout undo deployment/{name} -n {ns} --to-revision={prev} (revision {} broke its pods; {prev} ran)",
            r.revision
        ))),
        None => a.push(("IMMEDIATE", format!(
            "roll back: kubectl rollout undo deployment/{name} -n {ns} (revision {} broke its pods)",
            r.revision
        ))),
    }
    if !r.diff.is_empty() {
        a.push((
            "NEXT",
            format!(
                "what changed in revision {}: {}",
                r.revision,
                r.diff.join("; ")
            ),
        ));
    }
    a.push(("LATER", format!(
        "let deployment/{ns}/{name} stop a bad revision early: readiness probes, maxUnavailable 0, progressDeadlineSeconds, a canary"
    )));
    a
}

pub fn config_change(c: &Context) -> Actions {
    let Entity::Workload { ns, name, .. } = &c.root.entity else {
        return unknown(c);
    };
    let changed = &c.root.facts.changed;
    let readers: Vec<String> = c
        .members
        .iter()
        .filter_map(|m| match &m.entity {
            Entity::Pod { ns, name } => c
                .topology
                .pod_by_name(ns, name)
                .and_then(|p| c.topology.workload_of(p))
                .map(|w| w.to_string()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let restart = match readers.first() {
        Some(w) => {
            let (kind, rest) = w.split_once('/').unwrap_or(("deployment", w));
            let wname = rest.rsplit('/').next().unwrap_or(rest);
            format!("kubectl rollout restart {kind}/{wname} -n {ns}")
        }
        None => format!("restart the pods that read configmap/{name}"),
    };
    let what = if changed.iter().any(|k| k == "deleted") {
        format!("re-create configmap/{name} in {ns} (it was deleted)")
    } else {
        format!(
            "put back the previous data of configmap/{name} in {ns} (keys changed: {}) from where it is kept (Git, helm rollback, kubectl apply of the previous manifest)",
            changed.join(", ")
        )
    };
    // What its pods said when they failed (a back-off is not a reason).
    let said = c
        .members
        .iter()
        .filter(|m| {
            m.kind != K::CrashLoop && m.kind.props().nature != crate::knowledge::Nature::Change
        })
        .find_map(|m| m.facts.message.as_deref())
        .map(|m| format!(" (its pods said: {})", text::first_line(m)))
        .unwrap_or_default();
    vec![
        ("IMMEDIATE", format!("{what}, then {restart}{said}")),
        ("NEXT", format!("check the new values against what the application expects: kubectl get configmap/{name} -n {ns} -o yaml; kubectl logs -p on a pod that reads it")),
        ("LATER", "make a configuration change a rollout of its own: immutable ConfigMaps named by a hash of their content (kustomize configMapGenerator, a Helm checksum annotation), so it is rolled back like an image".to_string()),
    ]
}

pub fn network_policy(c: &Context) -> Actions {
    let (Entity::Workload { ns, name, .. }, Some(p)) =
        (&c.root.entity, c.root.facts.policy.as_deref())
    else {
        return unknown(c);
    };
    let dns = c.members.iter().any(|m| m.kind == K::DnsFailure);
    let summary = &c.root.summary;
    let immediate = if summary.contains(" deleted ") {
        format!("re-create networkpolicy/{name} in {ns}: with a default deny in place, what it allowed is blocked now")
    } else if summary.contains(" changed: ") {
        format!("restore the previous rules of networkpolicy/{name} in {ns} (kubectl edit networkpolicy/{name} -n {ns}): it now {}", p.describe())
    } else {
        format!(
            "undo it: kubectl delete networkpolicy/{name} -n {ns} (it {}), or add the rule below",
            p.describe()
        )
    };
    let next = if dns {
        format!("let DNS out: an egress rule of networkpolicy/{name} to namespace kube-system, pods k8s-app=kube-dns, on UDP 53 and TCP 53")
    } else if !c.peer.is_empty() {
        format!("allow what it blocked: an egress rule to {} (or, on the receiving side, an ingress rule from the pods it selects) in networkpolicy/{name}", c.peer)
    } else {
        format!("allow what it blocked: see which connections fail (tapio cat CAPTURE --kind tcp --since {}), and add rules for them", c.root.start.rfc3339())
    };
    vec![
        ("IMMEDIATE", immediate),
        ("NEXT", next),
        ("LATER", "check a policy against the traffic in use before it applies (a policy audit mode, a staging namespace, a default deny introduced with its allow rules)".to_string()),
    ]
}

fn service_name(e: &Entity) -> String {
    match e {
        Entity::Service { name, .. } => name.clone(),
        other => other.short(),
    }
}

pub fn unknown(c: &Context) -> Actions {
    vec![(
        "NEXT",
        format!(
            "read the evidence: tapio cat CAPTURE --since {} --pod …",
            c.root.start.rfc3339()
        ),
    )]
}

fn ns_of(e: &Entity) -> &str {
    match e {
        Entity::Pod { ns, .. } | Entity::Service { ns, .. } | Entity::Workload { ns, .. } => ns,
        _ => "default",
    }
}
