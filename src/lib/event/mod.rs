//! The event model: one envelope for every layer, a typed body per layer.
//!
//! Everything tapio reads (eBPF ring buffers, Kubernetes watches, OTLP receivers, the dumps that
//! `tapio import` understands) becomes an [`Event`], and everything downstream (the capture file,
//! `tapio cat`, the pipeline) consumes only events. Bodies are typed structs and enums, not string
//! maps: an OOM kill has a victim pid and a memory cgroup, a TCP failure has addresses and states.
//! Only data that really is open (span and resource attributes) is kept as key/value lists.
//!
//! The same types are written to the capture file with a compact binary codec and printed as JSON
//! for machines; the few fields whose best binary and best JSON shapes differ (timestamps, trace
//! ids, verbatim Kubernetes JSON) switch on `Serializer::is_human_readable`.

mod display;
mod kernel;
mod kube;
mod log;
mod meta;
mod name;
mod span;
mod time;

use serde::{Deserialize, Serialize};
use std::str::FromStr;

use crate::knowledge::Layer;

pub use self::kernel::{
    cgroup_container_id, runtime_container_id, CpuThrottle, Exec, Exit, Kernel, MemoryPressure,
    OomConstraint, OomKill, SignalSent, Task, TcpMeaning, TcpRetransmit, TcpState, TcpStateChange,
};
pub use self::kube::{
    EventApi, Kube, KubeEvent, Object, ObjectAction, ObjectKind, ObjectRef, RawJson,
};
pub use self::log::{AppLog, Log, LogOrigin, Severity};
pub use self::meta::{Meta, Span as TimeRange};
pub(crate) use self::name::with_names;
pub use self::name::{with_decoder, with_encoder, EncodeTable, Name};
pub use self::span::{
    find, is_error as span_is_error, AttrValue, Attribute, Span, SpanEvent, SpanId, SpanKind,
    StatusCode, TraceId,
};
pub use self::time::Ts;

/// One observation of one layer, at one time, on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened: nanoseconds since the Unix epoch, UTC wall clock.
    pub ts: Ts,
    /// The node (host name) it was seen on; empty when unknown (a cluster-wide dump).
    pub node: Name,
    /// What collected it.
    pub source: Source,
    /// Position in its capture: strictly increasing, assigned by the writer.
    pub seq: u64,
    pub body: Body,
}

impl Event {
    /// A new event with sequence 0 (the capture writer numbers events as it writes them).
    pub fn new(ts: Ts, node: impl Into<Name>, source: Source, body: impl Into<Body>) -> Event {
        Event {
            ts,
            node: node.into(),
            source,
            seq: 0,
            body: body.into(),
        }
    }

    /// The kind of the body, for filters and counters.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }
}

/// What collected an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The eBPF probes of `tapio record`.
    Ebpf,
    /// The Kubernetes watchers of `tapio record`.
    Kube,
    /// The OTLP receiver of `tapio record`.
    Otlp,
    /// The kernel log read live (`/dev/kmsg`).
    Kmsg,
    /// Container log files followed live.
    PodLogs,
    /// A file converted by `tapio import`.
    Import,
    /// tapio itself: drop and gap markers, annotations.
    Tapio,
}

named!(Source, "source" {
    Ebpf => "ebpf",
    Kube => "kube",
    Otlp => "otlp",
    Kmsg => "kmsg",
    PodLogs => "pod-logs",
    Import => "import",
    Tapio => "tapio",
});

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Source, String> {
        Source::parse_name(s)
    }
}

/// The body of an event: one variant per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Kernel(Kernel),
    Kube(Kube),
    Span(Box<Span>),
    /// Boxed, as spans and application logs are: a node's log line is larger than any kernel
    /// record, and would make every event larger (104 bytes with it boxed, 120 without).
    Log(Box<Log>),
    Meta(Meta),
    // New variants go last: a capture stores the variant's index.
    /// An application's log record with its resource (OTLP logs, container logs).
    AppLog(Box<AppLog>),
}

impl From<Kernel> for Body {
    fn from(k: Kernel) -> Body {
        Body::Kernel(k)
    }
}
impl From<Kube> for Body {
    fn from(k: Kube) -> Body {
        Body::Kube(k)
    }
}
impl From<Span> for Body {
    fn from(s: Span) -> Body {
        Body::Span(Box::new(s))
    }
}
impl From<Log> for Body {
    fn from(l: Log) -> Body {
        Body::Log(Box::new(l))
    }
}
impl From<AppLog> for Body {
    fn from(l: AppLog) -> Body {
        Body::AppLog(Box::new(l))
    }
}
impl From<Meta> for Body {
    fn from(m: Meta) -> Body {
        Body::Meta(m)
    }
}

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::Kernel(k) => match k {
                Kernel::Exec(_) => Kind::Exec,
                Kernel::Exit(_) => Kind::Exit,
                Kernel::Signal(_) => Kind::Signal,
                Kernel::OomKill(_) => Kind::Oom,
                Kernel::TcpState(_) => Kind::Tcp,
                Kernel::TcpRetransmit(_) => Kind::Retransmit,
                Kernel::Task(_) => Kind::Task,
                Kernel::Pressure(_) => Kind::Pressure,
                Kernel::CpuThrottle(_) => Kind::Throttle,
            },
            Body::Kube(Kube::Object(_)) => Kind::K8sObject,
            Body::Kube(Kube::Event(_)) => Kind::K8sEvent,
            Body::Span(_) => Kind::Span,
            Body::Log(_) | Body::AppLog(_) => Kind::Log,
            Body::Meta(Meta::Drop { .. }) => Kind::Drop,
            Body::Meta(Meta::Gap { .. }) => Kind::Gap,
            Body::Meta(Meta::Annotation { .. }) => Kind::Annotation,
        }
    }
}

/// The kind of an event, as named on the command line (`--kind oom,k8s.event`) and in counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Exec,
    Exit,
    Signal,
    Oom,
    Tcp,
    Retransmit,
    Task,
    Pressure,
    Throttle,
    K8sObject,
    K8sEvent,
    Span,
    Log,
    Drop,
    Gap,
    Annotation,
}

named!(Kind, "kind" {
    Exec => "exec",
    Exit => "exit",
    Signal => "signal",
    Oom => "oom",
    Tcp => "tcp",
    Retransmit => "retransmit",
    Task => "task",
    Pressure => "pressure",
    Throttle => "throttle",
    K8sObject => "k8s.object",
    K8sEvent => "k8s.event",
    Span => "span",
    Log => "log",
    Drop => "drop",
    Gap => "gap",
    Annotation => "annotation",
});

impl Kind {
    /// How many kinds there are (kinds index arrays by `kind as usize`).
    pub const COUNT: usize = Kind::ALL.len();

    /// The layer a kind belongs to, as printed in the first column of `tapio cat`.
    pub fn layer(self) -> Layer {
        match self {
            Kind::Exec
            | Kind::Exit
            | Kind::Signal
            | Kind::Oom
            | Kind::Task
            | Kind::Pressure
            | Kind::Throttle => Layer::Kernel,
            Kind::Tcp | Kind::Retransmit => Layer::Net,
            Kind::K8sObject | Kind::K8sEvent => Layer::K8s,
            Kind::Span => Layer::Trace,
            Kind::Log => Layer::Log,
            Kind::Drop | Kind::Gap | Kind::Annotation => Layer::Tapio,
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        let alias = match s {
            "oom_kill" | "oom-kill" => "oom",
            "k8s" | "object" => "k8s.object",
            "event" => "k8s.event",
            other => other,
        };
        Kind::parse_name(alias)
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_sources_round_trip_through_their_names() {
        for &k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        for &s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>(), Ok(s));
        }
        assert!("bogus".parse::<Kind>().unwrap_err().contains("k8s.event"));
    }
}
