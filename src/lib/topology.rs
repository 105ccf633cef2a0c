//! The topology store: what the Kubernetes objects seen so far say about the cluster.
//!
//! Attribution reads it to turn "kernel pid 4711 in cgroup …/pod<uid>/<id>" into "pod
//! shop/cart-7d8f9 of deployment shop/cart on node-7, behind service shop/cart". It is built from
//! the object events in the stream, in order, so at any moment it reflects what was known then
//! (vector's `kubernetes_logs` annotator works the same way: a store that the stage reads, never
//! an API call).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use serde_json::Value;

use crate::event::{
    cgroup_container_id, runtime_container_id, Name, Object, ObjectAction, ObjectKind, Ts,
};

/// Something a finding or an incident is about, written `pod/NS/NAME`, `node/NAME`,
/// `service/NS/NAME`, `deployment/NS/NAME` (also `statefulset/…`, `daemonset/…`, `job/…`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Pod {
        ns: String,
        name: String,
    },
    Node(String),
    Service {
        ns: String,
        name: String,
    },
    Workload {
        kind: String,
        ns: String,
        name: String,
    },
    /// A process or cgroup that no Kubernetes object explains (a system daemon, a bare container).
    Host {
        node: String,
        what: String,
    },
}

impl From<&Entity> for Entity {
    fn from(e: &Entity) -> Entity {
        e.clone()
    }
}

impl Entity {
    pub fn pod(ns: &str, name: &str) -> Entity {
        Entity::Pod {
            ns: ns.into(),
            name: name.into(),
        }
    }
    pub fn service(ns: &str, name: &str) -> Entity {
        Entity::Service {
            ns: ns.into(),
            name: name.into(),
        }
    }
    pub fn is_pod(&self) -> bool {
        matches!(self, Entity::Pod { .. })
    }
    /// The short name people use: `cart-7d8f9`, `node-7`, `shop/cart`.
    pub fn short(&self) -> String {
        match self {
            Entity::Pod { name, .. } | Entity::Node(name) => name.clone(),
            Entity::Service { ns, name } | Entity::Workload { ns, name, .. } if !ns.is_empty() => {
                format!("{ns}/{name}")
            }
            Entity::Service { name, .. } | Entity::Workload { name, .. } => name.clone(),
            Entity::Host { what, .. } => what.clone(),
        }
    }
}

/// Entities travel as their `kind/ns/name` string, the form the JSON schema documents.
impl serde::Serialize for Entity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back from that string (a kept verdict, `pipeline::kept`). A workload's kind is written
/// in lower case; it is read back as Kubernetes spells it.
impl<'de> serde::Deserialize<'de> for Entity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entity, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Entity, String> {
        let mut parts = s.splitn(3, '/');
        let (kind, a, b) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
        Ok(match (kind, a, b) {
            ("node", Some(n), None) => Entity::Node(n.into()),
            ("pod", Some(ns), Some(name)) => Entity::pod(ns, name),
            ("service", Some(ns), Some(name)) => Entity::service(ns, name),
            ("host", Some(node), Some(what)) => Entity::Host {
                node: node.into(),
                what: what.into(),
            },
            (kind, Some(ns), Some(name)) if !kind.is_empty() => Entity::Workload {
                kind: crate::event::ObjectKind::spelled(kind),
                ns: ns.into(),
                name: name.into(),
            },
            _ => {
                return Err(format!(
                    "{s:?} is not an entity (KIND/NS/NAME or node/NAME)"
                ))
            }
        })
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Pod { ns, name } => write!(f, "pod/{ns}/{name}"),
            Entity::Node(n) => write!(f, "node/{n}"),
            Entity::Service { ns, name } => write!(f, "service/{ns}/{name}"),
            Entity::Workload { kind, ns, name } => {
                write!(f, "{}/{ns}/{name}", kind.to_ascii_lowercase())
            }
            Entity::Host { node, what } => write!(f, "host/{node}/{what}"),
        }
    }
}

/// A container's last termination, as the Pod status reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i64,
    pub signal: i64,
    pub message: String,
    pub finished: Option<Ts>,
}

/// One container of a Pod, from its status.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub init: bool,
    pub restarts: u64,
    pub ready: bool,
    pub waiting: Option<(String, String)>,
    pub terminated: Option<Termination>,
    pub last_terminated: Option<Termination>,
    /// `resources.limits.memory` in bytes, from the spec.
    pub memory_limit: Option<u64>,
}

impl Container {
    /// "init container" or "container", for what people read.
    pub fn what(&self) -> &'static str {
        if self.init {
            "init container"
        } else {
            "container"
        }
    }
}

/// What the store knows of a Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    pub ns: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
    /// The controller owning it: (`ReplicaSet`, name) and so on.
    pub owner: Option<(String, String)>,
    pub phase: String,
    pub reason: String,
    pub message: String,
    /// `PodScheduled` condition when false: (reason, message).
    pub unschedulable: Option<(String, String)>,
    pub containers: Vec<Container>,
    pub deleted: bool,
    /// `metadata.deletionTimestamp` is set: the pod is being stopped on purpose.
    pub terminating: bool,
    /// The ConfigMaps it mounts or takes environment from.
    pub config_maps: Vec<String>,
    /// Those it mounts as a volume (not by `subPath`): the kubelet updates their files in place.
    pub live_config_maps: Vec<String>,
    pub created: Option<Ts>,
}

impl Pod {
    pub fn entity(&self) -> Entity {
        Entity::pod(&self.ns, &self.name)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub ns: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub cluster_ip: Option<IpAddr>,
}

/// A workload controller's replica counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Workload {
    pub kind: String,
    pub ns: String,
    pub name: String,
    pub desired: i64,
    pub available: i64,
    pub owner: Option<(String, String)>,
    /// A ReplicaSet's revision of its Deployment (`deployment.kubernetes.io/revision`).
    pub revision: Option<u64>,
    pub created: Option<Ts>,
    /// The pod template's containers, as far as a rollout's diff needs them.
    pub template: Vec<TemplateContainer>,
    /// A Deployment's `Progressing` condition: status, reason, and since when (lastUpdateTime).
    pub progressing: Option<(String, String, Option<Ts>)>,
    /// How long a rollout may take before it is stuck (`progressDeadlineSeconds`; 600 s, the
    /// Deployment default, for the others).
    pub deadline_s: u64,
    /// A Job's `Failed` condition: reason, message, since when.
    pub failed: Option<(String, String, Option<Ts>)>,
}

/// A container of a pod template: what a rollout changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateContainer {
    pub name: String,
    pub image: String,
    /// `command` and `args`, joined.
    pub command: String,
    /// The names of its environment variables and of the ConfigMaps/Secrets it takes them from;
    /// never their values.
    pub env: Vec<String>,
    /// Limits and requests, compact.
    pub resources: String,
    /// Liveness, readiness and startup probes, compact.
    pub probes: Vec<(String, String)>,
}

impl TemplateContainer {
    fn of(c: &Value) -> TemplateContainer {
        let words = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let mut command = words(&c["command"]);
        command.extend(words(&c["args"]));
        let mut env: Vec<String> = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect();
        for from in c["envFrom"].as_array().into_iter().flatten() {
            for (k, what) in [("configMapRef", "configmap"), ("secretRef", "secret")] {
                if let Some(n) = from[k]["name"].as_str() {
                    env.push(format!("{what}/{n}"));
                }
            }
        }
        env.sort();
        let compact = |v: &Value| {
            if v.is_null() {
                String::new()
            } else {
                v.to_string()
            }
        };
        TemplateContainer {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            image: c["image"].as_str().unwrap_or_default().to_string(),
            command: command.join(" "),
            env,
            resources: compact(&c["resources"]),
            probes: ["livenessProbe", "readinessProbe", "startupProbe"]
                .iter()
                .filter(|k| !c[**k].is_null())
                .map(|k| (k.trim_end_matches("Probe").to_string(), compact(&c[*k])))
                .collect(),
        }
    }
}

/// What changed from one pod template to the next, one phrase each.
pub fn template_diff(old: &[TemplateContainer], new: &[TemplateContainer]) -> Vec<String> {
    let mut out = Vec::new();
    for n in new {
        let Some(o) = old.iter().find(|o| o.name == n.name) else {
            out.push(format!("container {} added ({})", n.name, n.image));
            continue;
        };
        if o.image != n.image {
            // The same repository: the tags say it.
            let split = |i: &str| {
                i.rsplit_once(':')
                    .filter(|(_, t)| !t.contains('/'))
                    .map(|(r, t)| (r.to_string(), t.to_string()))
            };
            match (split(&o.image), split(&n.image)) {
                (Some((r1, t1)), Some((r2, t2))) if r1 == r2 => {
                    out.push(format!("image of {}: {r1} {t1} → {t2}", n.name))
                }
                _ => out.push(format!("image of {}: {} → {}", n.name, o.image, n.image)),
            }
        }
        if o.command != n.command {
            out.push(format!(
                "command of {}: `{}` → `{}`",
                n.name,
                if o.command.is_empty() {
                    "(image default)"
                } else {
                    &o.command
                },
                if n.command.is_empty() {
                    "(image default)"
                } else {
                    &n.command
                }
            ));
        }
        let added: Vec<&String> = n.env.iter().filter(|e| !o.env.contains(e)).collect();
        let removed: Vec<&String> = o.env.iter().filter(|e| !n.env.contains(e)).collect();
        if !added.is_empty() || !removed.is_empty() {
            let mut parts: Vec<String> = added.iter().map(|e| format!("+{e}")).collect();
            parts.extend(removed.iter().map(|e| format!("-{e}")));
            out.push(format!("environment of {}: {}", n.name, parts.join(" ")));
        }
        if o.resources != n.resources {
            out.push(format!(
                "resources of {}: {} → {}",
                n.name, o.resources, n.resources
            ));
        }
        for (k, v) in &n.probes {
            match o.probes.iter().find(|(ok, _)| ok == k) {
                None => out.push(format!("{k} probe of {} added", n.name)),
                Some((_, ov)) if ov != v => {
                    out.push(format!("{k} probe of {}: {ov} → {v}", n.name))
                }
                _ => {}
            }
        }
        for (k, _) in o
            .probes
            .iter()
            .filter(|(k, _)| !n.probes.iter().any(|(nk, _)| nk == k))
        {
            out.push(format!("{k} probe of {} removed", n.name));
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|n| n.name == o.name)) {
        out.push(format!("container {} removed", o.name));
    }
    out
}

/// Ready and total endpoints of one Service, summed over its EndpointSlices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub ready: usize,
    pub total: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    /// Condition type → (status, reason, message).
    pub conditions: BTreeMap<String, (String, String, String)>,
    pub memory_capacity: Option<u64>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// `key=value:Effect`, as `kubectl describe node` prints them.
    pub taints: Vec<String>,
}

#[derive(Default)]
pub struct Topology {
    pods: HashMap<String, Pod>,
    pod_by_name: HashMap<(String, String), String>,
    pod_by_ip: HashMap<IpAddr, String>,
    pod_by_container: HashMap<String, String>,
    services: HashMap<(String, String), Service>,
    service_by_ip: HashMap<IpAddr, (String, String)>,
    workloads: HashMap<(String, String, String), Workload>,
    /// (namespace, service) → slice name → its endpoints.
    slices: HashMap<(String, String), HashMap<String, Endpoints>>,
    nodes: HashMap<String, Node>,
    config_maps: HashMap<(String, String), ConfigMap>,
    policies: HashMap<(String, String), Policy>,
    autoscalers: HashMap<(String, String), Autoscaler>,
    /// cgroup path → pod uid, remembered per distinct path (there are few, and events are many).
    cgroups: HashMap<Name, Option<String>>,
}

/// The state of an object before and after an update, for the detectors.
pub enum Change {
    Pod {
        old: Option<Box<Pod>>,
        new: Box<Pod>,
    },
    Node {
        old: Option<Box<Node>>,
        new: Box<Node>,
    },
    /// A workload, and whether it was seen for the first time.
    Workload(Box<Workload>, bool),
    /// A ConfigMap's data changed or it was deleted: which keys (`+new`, `-gone`, `~changed`).
    Config {
        ns: String,
        name: String,
        keys: Vec<String>,
        deleted: bool,
    },
    /// A NetworkPolicy created (first seen), changed or deleted; with the version before a change.
    Policy {
        old: Option<Box<Policy>>,
        new: Box<Policy>,
        deleted: bool,
    },
    /// An autoscaler changed its desired replicas.
    Scale {
        old: Option<Box<Autoscaler>>,
        new: Box<Autoscaler>,
    },
    Endpoints {
        service: Entity,
        old: Endpoints,
        new: Endpoints,
    },
    Other,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::default()
    }

    /// Applies one object event and says what changed.
    pub fn apply(&mut self, o: &Object) -> Change {
        let Ok(v) = o.json.parse() else {
            return Change::Other;
        };
        let deleted = o.action == ObjectAction::Deleted;
        match o.kind {
            ObjectKind::Pod => {
                let pod = parse_pod(o, &v, deleted);
                let uid = if pod.uid.is_empty() {
                    format!("{}/{}", pod.ns, pod.name)
                } else {
                    pod.uid.clone()
                };
                self.pod_by_name
                    .insert((pod.ns.clone(), pod.name.clone()), uid.clone());
                if let Some(ip) = pod.ip {
                    self.pod_by_ip.insert(ip, uid.clone());
                }
                for c in &pod.containers {
                    if !c.id.is_empty() {
                        self.pod_by_container.insert(c.id.clone(), uid.clone());
                    }
                }
                if !pod.uid.is_empty() {
                    // A cgroup seen before its Pod may now be explained.
                    self.cgroups.retain(|_, v| v.is_some());
                }
                let new = Box::new(pod.clone());
                let old = self.pods.insert(uid, pod).map(Box::new);
                Change::Pod { old, new }
            }
            ObjectKind::Node => {
                let node = parse_node(o, &v);
                let new = Box::new(node.clone());
                let old = self.nodes.insert(node.name.clone(), node).map(Box::new);
                Change::Node { old, new }
            }
            ObjectKind::Service => {
                let s = Service {
                    ns: o.namespace.clone(),
                    name: o.name.clone(),
                    selector: string_map(&v["spec"]["selector"]),
                    cluster_ip: v["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok()),
                };
                if let Some(ip) = s.cluster_ip {
                    self.service_by_ip
                        .insert(ip, (s.ns.clone(), s.name.clone()));
                }
                self.services.insert((s.ns.clone(), s.name.clone()), s);
                Change::Other
            }
            ObjectKind::EndpointSlice => {
                let service = v["metadata"]["labels"]["kubernetes.io/service-name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let mut eps = Endpoints::default();
                if !deleted {
                    for e in v["endpoints"].as_array().into_iter().flatten() {
                        eps.total += 1;
                        // `ready` absent means ready (EndpointConditions docs).
                        eps.ready +=
                            usize::from(e["conditions"]["ready"].as_bool().unwrap_or(true));
                    }
                }
                let key = (o.namespace.clone(), service.clone());
                let old_total = self.endpoints(&key.0, &key.1);
                self.slices
                    .entry(key.clone())
                    .or_default()
                    .insert(o.name.clone(), eps);
                let new_total = self.endpoints(&key.0, &key.1);
                Change::Endpoints {
                    service: Entity::service(&key.0, &key.1),
                    old: old_total,
                    new: new_total,
                }
            }
            ObjectKind::ReplicaSet
            | ObjectKind::Deployment
            | ObjectKind::StatefulSet
            | ObjectKind::DaemonSet
            | ObjectKind::Job => {
                let kind = o.kind.as_str().to_string();
                let (desired, available) = match o.kind {
                    ObjectKind::DaemonSet => (
                        v["status"]["desiredNumberScheduled"].as_i64().unwrap_or(0),
                        v["status"]["numberAvailable"].as_i64().unwrap_or(0),
                    ),
                    _ => (
                        v["spec"]["replicas"].as_i64().unwrap_or(1),
                        v["status"]["availableReplicas"].as_i64().unwrap_or(0),
                    ),
                };
                let w = Workload {
                    kind: kind.clone(),
                    ns: o.namespace.clone(),
                    name: o.name.clone(),
                    desired,
                    available,
                    owner: controller(&v),
                    revision: v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .and_then(|r| r.parse().ok()),
                    created: v["metadata"]["creationTimestamp"]
                        .as_str()
                        .and_then(Ts::parse_rfc3339),
                    template: v["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(TemplateContainer::of)
                        .collect(),
                    progressing: v["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["type"] == "Progressing")
                        .map(|c| {
                            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                            let since = c["lastUpdateTime"]
                                .as_str()
                                .or(c["lastTransitionTime"].as_str())
                                .and_then(Ts::parse_rfc3339);
                            (s("status"), s("reason"), since)
                        }),
                    deadline_s: v["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600),
                    failed: v["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["type"] == "Failed" && c["status"] == "True")
                        .map(|c| {
                            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                            let since =
                                c["lastTransitionTime"].as_str().and_then(Ts::parse_rfc3339);
                            (s("reason"), s("message"), since)
                        }),
                };
                let key = (kind, o.namespace.clone(), o.name.clone());
                let new = self.workloads.insert(key, w.clone()).is_none();
                Change::Workload(Box::new(w), new)
            }
            ObjectKind::ConfigMap => {
                let key = (o.namespace.clone(), o.name.clone());
                let mut keys = string_map(&v["data"]);
                keys.extend(string_map(&v["binaryData"]));
                let new = ConfigMap { keys };
                let old = if deleted {
                    self.config_maps.remove(&key)
                } else {
                    self.config_maps.insert(key.clone(), new.clone())
                };
                let Some(old) = old else {
                    return Change::Other; // first seen: nothing to compare with
                };
                let mut diff: Vec<String> = Vec::new();
                if !deleted {
                    // Hashes compare only when made with the same key (`hmac-sha256:<id>:…`).
                    let key_id = |h: &str| {
                        h.strip_prefix("hmac-sha256:")
                            .and_then(|r| r.split(':').next())
                            .map(str::to_string)
                    };
                    for (k, h) in &new.keys {
                        match old.keys.get(k) {
                            None => diff.push(format!("+{k}")),
                            Some(oh) if oh != h && key_id(oh) == key_id(h) => {
                                diff.push(format!("~{k}"))
                            }
                            _ => {}
                        }
                    }
                    diff.extend(
                        old.keys
                            .keys()
                            .filter(|k| !new.keys.contains_key(*k))
                            .map(|k| format!("-{k}")),
                    );
                    if diff.is_empty() {
                        return Change::Other; // labels, annotations: not the data
                    }
                }
                Change::Config {
                    ns: key.0,
                    name: key.1,
                    keys: diff,
                    deleted,
                }
            }
            ObjectKind::NetworkPolicy => {
                let key = (o.namespace.clone(), o.name.clone());
                let p = Policy::of(o, &v);
                let old = if deleted {
                    self.policies.remove(&key)
                } else {
                    self.policies.insert(key, p.clone())
                };
                if !deleted && old.as_ref() == Some(&p) {
                    return Change::Other;
                }
                Change::Policy {
                    old: old.map(Box::new),
                    new: Box::new(p),
                    deleted,
                }
            }
            ObjectKind::HorizontalPodAutoscaler => {
                let a = Autoscaler {
                    ns: o.namespace.clone(),
                    name: o.name.clone(),
                    target: (
                        v["spec"]["scaleTargetRef"]["kind"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        v["spec"]["scaleTargetRef"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    current: v["status"]["currentReplicas"].as_i64().unwrap_or(0),
                    desired: v["status"]["desiredReplicas"].as_i64().unwrap_or(0),
                };
                let key = (a.ns.clone(), a.name.clone());
                if deleted {
                    self.autoscalers.remove(&key);
                    return Change::Other;
                }
                let old = self.autoscalers.insert(key, a.clone());
                if old.as_ref().is_some_and(|o| o.desired == a.desired) {
                    return Change::Other;
                }
                Change::Scale {
                    old: old.map(Box::new),
                    new: Box::new(a),
                }
            }
            _ => Change::Other,
        }
    }

    /// Ready and total endpoints of a service, over all its slices.
    pub fn endpoints(&self, ns: &str, service: &str) -> Endpoints {
        self.slices
            .get(&(ns.to_string(), service.to_string()))
            .into_iter()
            .flat_map(|s| s.values())
            .fold(Endpoints::default(), |a, e| Endpoints {
                ready: a.ready + e.ready,
                total: a.total + e.total,
            })
    }

    pub fn pod(&self, uid: &str) -> Option<&Pod> {
        self.pods.get(uid)
    }

    pub fn pod_by_name(&self, ns: &str, name: &str) -> Option<&Pod> {
        self.pod_by_name
            .get(&(ns.to_string(), name.to_string()))
            .and_then(|u| self.pods.get(u))
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values()
    }

    /// A NetworkPolicy as last seen (a deleted one is forgotten).
    pub fn policy(&self, ns: &str, name: &str) -> Option<&Policy> {
        self.policies.get(&(ns.to_string(), name.to_string()))
    }

    /// The NetworkPolicies that select a pod (a deleted one is forgotten).
    pub fn policies_of(&self, pod: &Pod) -> Vec<&Policy> {
        self.policies
            .values()
            .filter(|p| p.ns == pod.ns && p.selector.matches(&pod.labels))
            .collect()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The pod a cgroup path belongs to: by the `pod<uid>` in the path, else by its container id.
    pub fn pod_of_cgroup(&mut self, path: &Name) -> Option<&Pod> {
        if path.is_empty() {
            return None;
        }
        if let Some(uid) = self.cgroups.get(path) {
            return uid.as_ref().and_then(|u| self.pods.get(u));
        }
        let uid = self.cgroup_owner(path);
        self.cgroups.insert(path.clone(), uid.clone());
        uid.and_then(|u| self.pods.get(&u))
    }

    /// [`Topology::pod_of_cgroup`] without remembering the answer (for a look that changes nothing).
    pub fn peek_pod_of_cgroup(&self, path: &Name) -> Option<&Pod> {
        if path.is_empty() {
            return None;
        }
        let uid = match self.cgroups.get(path) {
            Some(uid) => uid.clone(),
            None => self.cgroup_owner(path),
        };
        uid.and_then(|u| self.pods.get(&u))
    }

    fn cgroup_owner(&self, path: &Name) -> Option<String> {
        pod_uid_in_cgroup(path)
            .filter(|u| self.pods.contains_key(u))
            .or_else(|| {
                cgroup_container_id(path).and_then(|id| self.pod_by_container.get(id).cloned())
            })
    }

    /// The pod or service that owns an IP address.
    pub fn owner_of_ip(&self, ip: IpAddr) -> Option<Entity> {
        if let Some((ns, name)) = self.service_by_ip.get(&ip) {
            return Some(Entity::service(ns, name));
        }
        self.pod_by_ip
            .get(&ip)
            .and_then(|u| self.pods.get(u))
            .map(Pod::entity)
    }

    /// The services whose selector matches a pod.
    pub fn services_of(&self, pod: &Pod) -> Vec<Entity> {
        let mut out: Vec<Entity> = self
            .services
            .values()
            .filter(|s| {
                s.ns == pod.ns
                    && !s.selector.is_empty()
                    && s.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
            })
            .map(|s| Entity::service(&s.ns, &s.name))
            .collect();
        out.sort();
        out
    }

    /// The pods a service selects.
    pub fn pods_of_service(&self, ns: &str, name: &str) -> Vec<&Pod> {
        let Some(s) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Vec::new();
        };
        let mut pods: Vec<&Pod> = self
            .pods
            .values()
            .filter(|p| {
                p.ns == ns
                    && !s.selector.is_empty()
                    && s.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        pods
    }

    /// The top of a pod's owner chain: Pod → ReplicaSet → Deployment (or StatefulSet, DaemonSet, Job).
    pub fn workload_of(&self, pod: &Pod) -> Option<Entity> {
        let (mut kind, mut name) = pod.owner.clone()?;
        for _ in 0..4 {
            match self
                .workloads
                .get(&(kind.clone(), pod.ns.clone(), name.clone()))
                .and_then(|w| w.owner.clone())
            {
                Some((k, n)) => (kind, name) = (k, n),
                None => break,
            }
        }
        // A ReplicaSet named `<deployment>-<hash>` without a known owner still belongs to it: when
        // the Deployment is known, or when the pod's `pod-template-hash` label is that hash.
        if kind == "ReplicaSet" {
            if let Some((dep, hash)) = name.rsplit_once('-') {
                let templated = pod
                    .labels
                    .get("pod-template-hash")
                    .is_some_and(|h| h == hash);
                if templated
                    || self.workloads.contains_key(&(
                        "Deployment".into(),
                        pod.ns.clone(),
                        dep.to_string(),
                    ))
                {
                    (kind, name) = ("Deployment".into(), dep.to_string());
                }
            }
        }
        Some(Entity::Workload {
            kind,
            ns: pod.ns.clone(),
            name,
        })
    }

    /// The controller above a workload (a ReplicaSet's Deployment), if known.
    pub fn owner_of(&self, kind: &str, ns: &str, name: &str) -> Option<(String, String)> {
        self.workloads
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .and_then(|w| w.owner.clone())
            .or_else(|| {
                // A ReplicaSet named `<deployment>-<hash>` whose Deployment is known.
                let (dep, _) = name.rsplit_once('-')?;
                (kind == "ReplicaSet"
                    && self.workloads.contains_key(&(
                        "Deployment".into(),
                        ns.to_string(),
                        dep.to_string(),
                    )))
                .then(|| ("Deployment".to_string(), dep.to_string()))
            })
    }

    /// The ReplicaSets of a Deployment.
    pub fn replica_sets_of(&self, ns: &str, deployment: &str) -> Vec<&Workload> {
        self.workloads
            .values()
            .filter(|w| {
                w.kind == "ReplicaSet"
                    && w.ns == ns
                    && w.owner
                        .as_ref()
                        .is_some_and(|(k, n)| k == "Deployment" && n == deployment)
            })
            .collect()
    }

    /// Whether a Service of this name is known in this namespace.
    pub fn has_service(&self, ns: &str, name: &str) -> bool {
        self.services
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    pub fn workload(&self, kind: &str, ns: &str, name: &str) -> Option<&Workload> {
        self.workloads
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
    }
}

/// The pod uid in a cgroup path: `pod<uid>` (cgroupfs) or `pod<uid with _>.slice` (systemd).
pub fn pod_uid_in_cgroup(path: &str) -> Option<String> {
    path.split('/').find_map(|part| {
        let i = part.rfind("pod")?;
        let rest = part[i + 3..].trim_end_matches(".slice");
        let uid = rest.replace('_', "-");
        (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn controller(v: &Value) -> Option<(String, String)> {
    let refs = v["metadata"]["ownerReferences"].as_array()?;
    let r = refs
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .or_else(|| refs.first())?;
    Some((
        r["kind"].as_str()?.to_string(),
        r["name"].as_str()?.to_string(),
    ))
}

fn termination(v: &Value) -> Option<Termination> {
    let t = v.get("terminated")?;
    Some(Termination {
        reason: t["reason"].as_str().unwrap_or("").to_string(),
        exit_code: t["exitCode"].as_i64().unwrap_or(0),
        signal: t["signal"].as_i64().unwrap_or(0),
        message: t["message"].as_str().unwrap_or("").to_string(),
        finished: t["finishedAt"].as_str().and_then(Ts::parse_rfc3339),
    })
}

/// `2Gi`, `512Mi`, `1G`, `1073741824` → bytes.
pub fn quantity_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((n * mult) as u64)
}

fn parse_pod(o: &Object, v: &Value, deleted: bool) -> Pod {
    let status = &v["status"];
    let limits: HashMap<&str, u64> = v["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(v["spec"]["initContainers"].as_array().into_iter().flatten())
        .filter_map(|c| {
            Some((
                c["name"].as_str()?,
                quantity_bytes(c["resources"]["limits"]["memory"].as_str()?)?,
            ))
        })
        .collect();
    let mut containers = Vec::new();
    for (key, init) in [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ] {
        for c in status[key].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("").to_string();
            containers.push(Container {
                id: runtime_container_id(c["containerID"].as_str().unwrap_or("")).to_string(),
                init,
                restarts: c["restartCount"].as_u64().unwrap_or(0),
                ready: c["ready"].as_bool().unwrap_or(false),
                waiting: c["state"].get("waiting").map(|w| {
                    (
                        w["reason"].as_str().unwrap_or("").to_string(),
                        w["message"].as_str().unwrap_or("").to_string(),
                    )
                }),
                terminated: termination(&c["state"]),
                last_terminated: termination(&c["lastState"]),
                memory_limit: limits.get(name.as_str()).copied(),
                name,
            });
        }
    }
    let unschedulable = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| {
            (c["type"] == "PodScheduled" && c["status"] == "False").then(|| {
                (
                    c["reason"].as_str().unwrap_or("").to_string(),
                    c["message"].as_str().unwrap_or("").to_string(),
                )
            })
        });
    Pod {
        ns: o.namespace.clone(),
        name: o.name.clone(),
        uid: o.uid.clone(),
        node: v["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
        ip: status["podIP"].as_str().and_then(|s| s.parse().ok()),
        labels: string_map(&v["metadata"]["labels"]),
        owner: controller(v),
        phase: status["phase"].as_str().unwrap_or("").to_string(),
        reason: status["reason"].as_str().unwrap_or("").to_string(),
        message: status["message"].as_str().unwrap_or("").to_string(),
        unschedulable,
        containers,
        deleted,
        terminating: v["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null()),
        config_maps: config_maps_of(&v["spec"]),
        live_config_maps: live_config_maps_of(&v["spec"]),
        created: v["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(Ts::parse_rfc3339),
    }
}

/// ConfigMaps that every pod gets (the API server's CA bundle) say nothing about one workload.
const EVERY_POD: [&str; 2] = ["kube-root-ca.crt", "openshift-service-ca.crt"];

/// The ConfigMaps a volume holds: its own, or those of a projected volume's sources.
fn volume_config_maps(vol: &Value) -> Vec<&str> {
    vol["configMap"]["name"]
        .as_str()
        .into_iter()
        .chain(
            vol["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|src| src["configMap"]["name"].as_str()),
        )
        .collect()
}

/// The ConfigMaps a pod mounts as volumes without `subPath`: their files follow changes.
fn live_config_maps_of(spec: &Value) -> Vec<String> {
    let volumes: Vec<(&str, Vec<&str>)> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|vol| Some((vol["name"].as_str()?, volume_config_maps(vol))))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for c in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
    {
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            if m.get("subPath").is_some_and(|s| !s.is_null()) {
                continue;
            }
            let Some(vol) = volumes.iter().find(|(n, _)| Some(*n) == m["name"].as_str()) else {
                continue;
            };
            for cm in &vol.1 {
                if !out.iter().any(|o| o == cm) && !EVERY_POD.contains(cm) {
                    out.push(cm.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// The ConfigMaps a pod spec reads: volumes (projected too), `envFrom`, `env[].valueFrom`.
fn config_maps_of(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |n: Option<&str>| {
        if let Some(n) = n.filter(|n| !n.is_empty() && !EVERY_POD.contains(n)) {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    };
    for vol in spec["volumes"].as_array().into_iter().flatten() {
        for cm in volume_config_maps(vol) {
            add(Some(cm));
        }
    }
    for c in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
    {
        for from in c["envFrom"].as_array().into_iter().flatten() {
            add(from["configMapRef"]["name"].as_str());
        }
        for e in c["env"].as_array().into_iter().flatten() {
            add(e["valueFrom"]["configMapKeyRef"]["name"].as_str());
        }
    }
    out.sort();
    out
}

/// A label selector (`matchLabels` and `matchExpressions`); an empty one selects everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    pub labels: BTreeMap<String, String>,
    /// (key, operator, values).
    pub expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    pub fn of(v: &Value) -> Selector {
        Selector {
            labels: string_map(&v["matchLabels"]),
            expressions: v["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (
                        e["key"].as_str().unwrap_or_default().to_string(),
                        e["operator"].as_str().unwrap_or_default().to_string(),
                        e["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(k, op, vals)| {
                let have = labels.get(k);
                match op.as_str() {
                    "In" => have.is_some_and(|h| vals.contains(h)),
                    "NotIn" => have.is_none_or(|h| !vals.contains(h)),
                    "Exists" => have.is_some(),
                    "DoesNotExist" => have.is_none(),
                    _ => false,
                }
            })
    }

    /// `app=cart,tier in (web)`, or `(all pods)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for (k, op, vals) in &self.expressions {
            parts.push(match op.as_str() {
                "Exists" => k.clone(),
                "DoesNotExist" => format!("!{k}"),
                _ => format!("{k} {} ({})", op.to_lowercase(), vals.join(",")),
            });
        }
        if parts.is_empty() {
            "(all pods)".into()
        } else {
            parts.join(",")
        }
    }
}

/// A NetworkPolicy: which pods of its namespace it selects and what it lets through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub ns: String,
    pub name: String,
    pub selector: Selector,
    /// Whether it restricts the selected pods' incoming and outgoing traffic.
    pub ingress: bool,
    pub egress: bool,
    /// What it allows, one phrase per rule (`from app=web on TCP 8080`); empty with the direction
    /// restricted means everything is denied that way.
    pub allows_in: Vec<String>,
    pub allows_out: Vec<String>,
    /// Whether an egress rule lets DNS through (port 53, or a rule without ports).
    pub allows_dns: bool,
    pub created: Option<Ts>,
    /// The rules, to evaluate: what may leave the selected pods, and what may reach them.
    pub out_rules: Vec<PolicyRule>,
    pub in_rules: Vec<PolicyRule>,
}

/// One ingress or egress rule: these ports (none: all) to or from these peers (none: anywhere).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyRule {
    /// (protocol, first port, last port); a port of `None` is every port of the protocol, a
    /// named port (`http`) is `Some(0)`, which may be anything.
    pub ports: Vec<(String, Option<u16>, Option<u16>)>,
    pub peers: Vec<PolicyPeer>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyPeer {
    /// Pods of the policy's namespace (`namespaces: None`) or of the namespaces selected.
    Pods {
        namespaces: Option<Selector>,
        pods: Option<Selector>,
    },
    Cidr {
        cidr: String,
        except: Vec<String>,
    },
}

/// The other end of a connection, as far as it is known.
#[derive(Clone, Debug, Default)]
pub struct Endpoint<'a> {
    pub ns: Option<&'a str>,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub ip: Option<IpAddr>,
}

impl PolicyRule {
    fn of(rule: &Value, key: &str) -> PolicyRule {
        let ports = rule["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
                let (from, to) = match &p["port"] {
                    Value::Null => (None, None),
                    Value::Number(n) => {
                        let n = n.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
                        let end = p["endPort"].as_u64().and_then(|e| u16::try_from(e).ok());
                        (Some(n), Some(end.unwrap_or(n)))
                    }
                    // A named port: which number it is depends on the pod.
                    _ => (Some(0), Some(0)),
                };
                (proto, from, to)
            })
            .collect();
        let peers = rule[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p["ipBlock"]["cidr"].as_str() {
                Some(cidr) => PolicyPeer::Cidr {
                    cidr: cidr.to_string(),
                    except: p["ipBlock"]["except"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                },
                None => PolicyPeer::Pods {
                    namespaces: (!p["namespaceSelector"].is_null())
                        .then(|| Selector::of(&p["namespaceSelector"])),
                    pods: (!p["podSelector"].is_null()).then(|| Selector::of(&p["podSelector"])),
                },
            })
            .collect();
        PolicyRule { ports, peers }
    }

    /// Whether the rule may let this traffic through; when it cannot be told (a named port, a
    /// namespace selector on labels tapio does not know, an address not known), it may.
    fn may_allow(
        &self,
        policy_ns: &str,
        other: &Endpoint<'_>,
        proto: &str,
        port: Option<u16>,
    ) -> bool {
        let port_ok = self.ports.is_empty()
            || self.ports.iter().any(|(p, from, to)| {
                p.eq_ignore_ascii_case(proto)
                    && match (from, port) {
                        (None, _) | (Some(0), _) | (_, None) => true,
                        (Some(f), Some(x)) => *f <= x && x <= to.unwrap_or(*f),
                    }
            });
        let peer_ok = self.peers.is_empty()
            || self.peers.iter().any(|peer| match peer {
                PolicyPeer::Pods { namespaces, pods } => {
                    let ns_ok = match (namespaces, other.ns) {
                        (None, Some(ns)) => ns == policy_ns,
                        (None, None) => other.ip.is_none(),
                        // Namespaces carry `kubernetes.io/metadata.name`; other labels are unknown.
                        (Some(sel), Some(ns)) => {
                            let known = sel
                                .labels
                                .keys()
                                .all(|k| k == "kubernetes.io/metadata.name")
                                && sel
                                    .expressions
                                    .iter()
                                    .all(|(k, _, _)| k == "kubernetes.io/metadata.name");
                            !known || {
                                let labels = BTreeMap::from([(
                                    "kubernetes.io/metadata.name".to_string(),
                                    ns.to_string(),
                                )]);
                                sel.matches(&labels)
                            }
                        }
                        (Some(_), None) => other.ip.is_none(),
                    };
                    let pods_ok = match (pods, other.labels) {
                        (None, _) => true,
                        (Some(sel), Some(l)) => sel.matches(l),
                        (Some(_), None) => other.ip.is_none(),
                    };
                    ns_ok && pods_ok
                }
                PolicyPeer::Cidr { cidr, except } => match other.ip {
                    Some(ip) => {
                        cidr_contains(cidr, ip) && !except.iter().any(|e| cidr_contains(e, ip))
                    }
                    None => other.labels.is_none(),
                },
            });
        port_ok && peer_ok
    }
}

/// Whether `10.0.0.0/8` holds an address (IPv4 and IPv6; a malformed block holds nothing).
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, ""));
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    // IPv4 as the low 32 bits: one comparison of the network's leading bits for both.
    let (n, a, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    let bits: u32 = bits.parse().unwrap_or(width).min(width);
    let host = width - bits;
    n.checked_shr(host).unwrap_or(0) == a.checked_shr(host).unwrap_or(0)
}

/// The cluster DNS, as egress rules usually name it.
pub fn dns_endpoint() -> Endpoint<'static> {
    static LABELS: LazyLock<BTreeMap<String, String>> =
        LazyLock::new(|| BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())]));
    Endpoint {
        ns: Some("kube-system"),
        labels: Some(&LABELS),
        ip: None,
    }
}

impl Policy {
    fn of(o: &Object, v: &Value) -> Policy {
        let spec = &v["spec"];
        let types: Vec<&str> = spec["policyTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        // Without policyTypes, Ingress always, Egress when there are egress rules.
        let ingress = types.contains(&"Ingress") || types.is_empty();
        let egress = types.contains(&"Egress") || (types.is_empty() && !spec["egress"].is_null());
        let peers = |rule: &Value, key: &str| -> String {
            let list: Vec<String> = rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut what = Vec::new();
                    if !p["namespaceSelector"].is_null() {
                        what.push(format!(
                            "namespaces {}",
                            Selector::of(&p["namespaceSelector"]).describe()
                        ));
                    }
                    if !p["podSelector"].is_null() {
                        what.push(format!(
                            "pods {}",
                            Selector::of(&p["podSelector"]).describe()
                        ));
                    }
                    if let Some(cidr) = p["ipBlock"]["cidr"].as_str() {
                        what.push(cidr.to_string());
                    }
                    what.join(" ")
                })
                .collect();
            if list.is_empty() {
                "anywhere".into()
            } else {
                list.join(" or ")
            }
        };
        let ports = |rule: &Value| -> Vec<String> {
            rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match &p["port"] {
                        Value::Null => proto.to_string(),
                        Value::String(s) => format!("{proto} {s}"),
                        n => format!("{proto} {n}"),
                    }
                })
                .collect()
        };
        let rules = |key: &str, dir: &str| -> Vec<String> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let p = ports(r);
                    let on = if p.is_empty() {
                        "any port".to_string()
                    } else {
                        p.join(", ")
                    };
                    format!("{} on {on}", peers(r, dir))
                })
                .collect()
        };
        let mut p = Policy {
            ns: o.namespace.clone(),
            name: o.name.clone(),
            selector: Selector::of(&spec["podSelector"]),
            ingress,
            egress,
            allows_in: rules("ingress", "from"),
            allows_out: rules("egress", "to"),
            allows_dns: false,
            out_rules: spec["egress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| PolicyRule::of(r, "to"))
                .collect(),
            in_rules: spec["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| PolicyRule::of(r, "from"))
                .collect(),
            created: v["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(Ts::parse_rfc3339),
        };
        p.allows_dns = p.may_allow(true, &dns_endpoint(), "UDP", Some(53));
        p
    }

    /// Whether it may let this traffic out of (`egress`) or into the pods it selects; a policy
    /// that does not restrict that direction lets everything through.
    pub fn may_allow(
        &self,
        egress: bool,
        other: &Endpoint<'_>,
        proto: &str,
        port: Option<u16>,
    ) -> bool {
        let (restricts, rules) = if egress {
            (self.egress, &self.out_rules)
        } else {
            (self.ingress, &self.in_rules)
        };
        !restricts
            || rules
                .iter()
                .any(|r| r.may_allow(&self.ns, other, proto, port))
    }

    /// What it does, in a phrase: `lets pods app=cart send only to pods app=db on TCP 5432`.
    pub fn describe(&self) -> String {
        let pods = match self.selector.describe().as_str() {
            "(all pods)" => format!("every pod of {}", self.ns),
            sel => format!("pods {sel}"),
        };
        let mut parts = Vec::new();
        for (on, verb, noun, allows) in [
            (
                self.ingress,
                "receive only from",
                "ingress",
                &self.allows_in,
            ),
            (self.egress, "send only to", "egress", &self.allows_out),
        ] {
            if !on {
                continue;
            }
            if allows.is_empty() {
                parts.push(format!("denies all {noun} of {pods}"));
            } else {
                parts.push(format!("lets {pods} {verb} {}", allows.join("; ")));
            }
        }
        parts.join(", and ")
    }
}

/// A ConfigMap as tapio keeps it: key → hash of its value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigMap {
    pub keys: BTreeMap<String, String>,
}

/// An autoscaler's target and replica counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Autoscaler {
    pub ns: String,
    pub name: String,
    /// (kind, name) of what it scales.
    pub target: (String, String),
    pub current: i64,
    pub desired: i64,
}

fn parse_node(o: &Object, v: &Value) -> Node {
    let conditions = v["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["type"].as_str()?.to_string(),
                (
                    c["status"].as_str().unwrap_or("").to_string(),
                    c["reason"].as_str().unwrap_or("").to_string(),
                    c["message"].as_str().unwrap_or("").to_string(),
                ),
            ))
        })
        .collect();
    Node {
        name: o.name.clone(),
        conditions,
        memory_capacity: v["status"]["capacity"]["memory"]
            .as_str()
            .and_then(quantity_bytes),
        unschedulable: v["spec"]["unschedulable"].as_bool().unwrap_or(false),
        taints: v["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let key = t["key"].as_str().unwrap_or_default();
                let effect = t["effect"].as_str().unwrap_or_default();
                match t["value"].as_str().filter(|v| !v.is_empty()) {
                    Some(val) => format!("{key}={val}:{effect}"),
                    None => format!("{key}:{effect}"),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_reads_back_from_its_string() {
        for e in [
            Entity::pod("shop", "cart-7d8f9"),
            Entity::Node("node-7".into()),
            Entity::service("shop", "cart"),
            Entity::service("", "frontend/api"),
            Entity::Workload {
                kind: "StatefulSet".into(),
                ns: "db".into(),
                name: "pg".into(),
            },
            Entity::Workload {
                kind: "ConfigMap".into(),
                ns: "shop".into(),
                name: "cart-env".into(),
            },
            Entity::Host {
                node: "node-1".into(),
                what: "/system.slice/containerd.service".into(),
            },
        ] {
            let back: Entity = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
            assert_eq!(back, e);
        }
        for bad in ["", "pod", "pod/shop", "/a/b", "node"] {
            assert!(bad.parse::<Entity>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_blocks_hold_their_addresses_and_no_others() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.20.0.0/16", ip("10.20.0.41")));
        assert!(!cidr_contains("10.20.0.0/16", ip("10.21.0.41")));
        assert!(cidr_contains("0.0.0.0/0", ip("192.168.1.1")));
        assert!(cidr_contains("10.0.0.7", ip("10.0.0.7")));
        assert!(cidr_contains("fd00::/8", ip("fd12::1")));
        assert!(cidr_contains("::/0", ip("2001:db8::1")));
        assert!(!cidr_contains("10.0.0.0/8", ip("fd12::1")));
        assert!(!cidr_contains("not an ip/8", ip("10.0.0.1")));
    }

    #[test]
    fn a_template_diff_names_what_changed_and_never_values() {
        let c = |image: &str, env: &[&str], args: &str| TemplateContainer {
            name: "cart".into(),
            image: image.into(),
            command: args.into(),
            env: env.iter().map(|s| s.to_string()).collect(),
            resources: r#"{"limits":{"memory":"512Mi"}}"#.into(),
            probes: vec![("readiness".into(), r#"{"periodSeconds":5}"#.into())],
        };
        let old = [c("reg.io/shop/cart:1.9.3", &["DB_HOST"], "")];
        let new = [c(
            "reg.io/shop/cart:1.10.0",
            &["DB_HOST", "RECS"],
            "--cache-size=1",
        )];
        assert_eq!(
            template_diff(&old, &new),
            [
                "image of cart: reg.io/shop/cart 1.9.3 → 1.10.0",
                "command of cart: `(image default)` → `--cache-size=1`",
                "environment of cart: +RECS",
            ]
        );
        assert!(template_diff(&old, &old).is_empty());
        let mut other = new.clone();
        other[0].probes.clear();
        other[0].image = "other.io/cart:2".into();
        let d = template_diff(&new, &other);
        assert_eq!(
            d[0],
            "image of cart: reg.io/shop/cart:1.10.0 → other.io/cart:2"
        );
        assert_eq!(d[1], "readiness probe of cart removed");
    }

    #[test]
    fn pod_uids_and_quantities_parse() {
        let uid = "53325dff-4646-00b7-0613-d59effb48705";
        assert_eq!(
            pod_uid_in_cgroup("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod53325dff_4646_00b7_0613_d59effb48705.slice/cri-containerd-ab.scope")
                .as_deref(),
            Some(uid)
        );
        assert_eq!(
            pod_uid_in_cgroup(&format!("/kubepods/besteffort/pod{uid}/abc")).as_deref(),
            Some(uid)
        );
        assert_eq!(pod_uid_in_cgroup("/system.slice/kubelet.service"), None);
        assert_eq!(quantity_bytes("2Gi"), Some(2 << 30));
        assert_eq!(quantity_bytes("512Mi"), Some(512 << 20));
        assert_eq!(quantity_bytes("1G"), Some(1_000_000_000));
        assert_eq!(quantity_bytes("lots"), None);
    }
}
