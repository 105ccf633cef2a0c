//! Kubernetes events: objects as they were seen, and Kubernetes `Event`s.
//!
//! Objects are rare next to kernel events and a post-mortem needs everything in them, so each
//! keeps its full JSON verbatim (`managedFields` dropped) beside the few fields that filters and
//! the pipeline read without parsing it again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Ts;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kube {
    Object(Box<Object>),
    Event(Box<KubeEvent>),
}

impl From<Object> for Kube {
    fn from(o: Object) -> Kube {
        Kube::Object(Box::new(o))
    }
}

impl From<KubeEvent> for Kube {
    fn from(e: KubeEvent) -> Kube {
        Kube::Event(Box::new(e))
    }
}

/// How an object was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectAction {
    /// Present in a list or the initial state of a watch (`ADDED`).
    Seen,
    /// Changed (`MODIFIED`).
    Changed,
    /// Deleted (`DELETED`).
    Deleted,
}

impl ObjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectAction::Seen => "seen",
            ObjectAction::Changed => "changed",
            ObjectAction::Deleted => "deleted",
        }
    }
}

/// The kinds of object tapio reads; anything else is kept under `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Pod,
    Node,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Service,
    EndpointSlice,
    Namespace,
    /// Recorded with its keys and a hash of each value, never the values.
    ConfigMap,
    NetworkPolicy,
    HorizontalPodAutoscaler,
    Other(String),
}

impl ObjectKind {
    pub fn as_str(&self) -> &str {
        match self {
            ObjectKind::Pod => "Pod",
            ObjectKind::Node => "Node",
            ObjectKind::ReplicaSet => "ReplicaSet",
            ObjectKind::Deployment => "Deployment",
            ObjectKind::StatefulSet => "StatefulSet",
            ObjectKind::DaemonSet => "DaemonSet",
            ObjectKind::Job => "Job",
            ObjectKind::Service => "Service",
            ObjectKind::EndpointSlice => "EndpointSlice",
            ObjectKind::Namespace => "Namespace",
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::NetworkPolicy => "NetworkPolicy",
            ObjectKind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            ObjectKind::Other(s) => s,
        }
    }
}

impl FromStr for ObjectKind {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<ObjectKind, Self::Err> {
        Ok(match s {
            "Pod" => ObjectKind::Pod,
            "Node" => ObjectKind::Node,
            "ReplicaSet" => ObjectKind::ReplicaSet,
            "Deployment" => ObjectKind::Deployment,
            "StatefulSet" => ObjectKind::StatefulSet,
            "DaemonSet" => ObjectKind::DaemonSet,
            "Job" => ObjectKind::Job,
            "Service" => ObjectKind::Service,
            "EndpointSlice" => ObjectKind::EndpointSlice,
            "Namespace" => ObjectKind::Namespace,
            "ConfigMap" => ObjectKind::ConfigMap,
            "NetworkPolicy" => ObjectKind::NetworkPolicy,
            "HorizontalPodAutoscaler" => ObjectKind::HorizontalPodAutoscaler,
            other => ObjectKind::Other(other.to_string()),
        })
    }
}

impl ObjectKind {
    /// A kind as Kubernetes spells it, from its name in any case (`statefulset` → `StatefulSet`,
    /// as `kubectl get events` and tapio's entities write them); a kind it does not know, as given.
    pub fn spelled(name: &str) -> String {
        const KINDS: &[&str] = &[
            "Pod",
            "Node",
            "ReplicaSet",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "Service",
            "EndpointSlice",
            "Namespace",
            "ConfigMap",
            "NetworkPolicy",
            "HorizontalPodAutoscaler",
            "PersistentVolumeClaim",
        ];
        KINDS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .map_or_else(|| name.to_string(), |k| k.to_string())
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ObjectKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ObjectKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ObjectKind, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or(ObjectKind::Other(s)))
    }
}

/// JSON text kept verbatim. Binary formats carry the string; JSON output embeds it as JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawJson(pub String);

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match serde_json::value::RawValue::from_string(self.0.clone()) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_str(&self.0),
            }
        } else {
            s.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawJson, D::Error> {
        if d.is_human_readable() {
            let v = Box::<serde_json::value::RawValue>::deserialize(d)?;
            Ok(RawJson(v.get().to_string()))
        } else {
            String::deserialize(d).map(RawJson)
        }
    }
}

impl RawJson {
    /// Parses the kept JSON again, for consumers that need more than the extracted fields.
    pub fn parse(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    pub fn from_value(v: &serde_json::Value) -> RawJson {
        RawJson(v.to_string())
    }
}

/// An object seen, changed or deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub action: ObjectAction,
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    /// The node a Pod runs on (`spec.nodeName`), or the Node's own name; empty otherwise.
    pub node: String,
    /// The full object as JSON, without `metadata.managedFields`.
    pub json: RawJson,
}

/// The object a Kubernetes Event is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.containers{cart}` and the like: which part of the object.
    pub field_path: String,
}

/// Which API an Event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventApi {
    /// `v1` `Event` (`involvedObject`, `source`, `firstTimestamp`/`lastTimestamp`).
    CoreV1,
    /// `events.k8s.io/v1` `Event` (`regarding`, `reportingController`, `series`).
    EventsV1,
}

/// A Kubernetes Event (`kubectl get events`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubeEvent {
    pub api: EventApi,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub involved: ObjectRef,
    pub count: u32,
    pub first: Option<Ts>,
    pub last: Option<Ts>,
    /// The reporting component (`kubelet`, `default-scheduler`, …).
    pub component: String,
    /// The reporting host (the node, for kubelet events).
    pub host: String,
}

impl KubeEvent {
    pub fn is_warning(&self) -> bool {
        self.type_ == "Warning"
    }
}
