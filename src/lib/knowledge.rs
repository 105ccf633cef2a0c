//! Knowledge: every finding kind and every root-cause kind, with all their properties, in one
//! table each.
//!
//! What tapio knows about a kind of failure — which layer sees it, whether it is a state that
//! lasts or an event, how strongly it suggests itself as a cause, how user-facing it is as a
//! symptom, what it costs, which root cause it names, how much that root cause is believed on its
//! own, what people call it and what to do about it — lives here and nowhere else. The tables are
//! `match`es that return a struct literal: a new variant without its entry, or an entry without
//! one of its properties, does not compile. `docs/extending.md` lists the steps of adding a kind.

use serde::{Deserialize, Serialize};

use crate::analysis::actions::{self, Context};

/// The layer that saw something, as the timeline prints it (`[KERNEL]`, `[K8S]` …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Layer {
    /// The kernel's own view (eBPF probes, kernel logs).
    Kernel,
    /// TCP as the kernel saw it: connection outcomes, retransmits.
    Net,
    /// Kubernetes objects and Events.
    K8s,
    /// Application traces.
    Trace,
    /// Application and system logs.
    Log,
    /// tapio's own markers (drops, gaps, annotations).
    Tapio,
}

named!(Layer, "layer" {
    Kernel => "KERNEL",
    Net => "NET",
    K8s => "K8S",
    Trace => "TRACE",
    Log => "LOG",
    Tapio => "TAPIO",
});

/// How a finding lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nature {
    /// Something that happened at a time (a kill, an exit).
    Event,
    /// A condition that lasts from when it was seen until it recovers (no endpoints, not ready);
    /// an effect may begin any time while it lasts.
    State,
    /// A count over a window that may have begun before its cause from background (error spans,
    /// what requests said): shown in a chain from the step that caused it.
    Aggregate,
    /// A change made to the cluster (a rollout): a cause of what fails after it, never an incident
    /// by itself.
    Change,
}

/// What a finding costs on its own, for severity and impact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Harm {
    /// Nothing by itself: it matters through what it causes.
    None,
    /// Requests failed or were slow: alone, at a low rate, it may be background.
    Requests,
    /// A service's requests got measurably worse than its own baseline.
    Degraded,
    /// A pod cannot run or serve (crash-looping, unschedulable, evicted …).
    Pod,
    /// A container restarted.
    Restart,
}

/// The properties of a finding kind.
#[derive(Clone, Copy, Debug)]
pub struct FindingProps {
    pub layer: Layer,
    pub nature: Nature,
    /// How strongly it suggests itself as a root cause, to order candidates (higher first).
    pub cause_rank: u8,
    /// How user-facing it is as a symptom, to pick the end of a chain (higher first).
    pub symptom_rank: u8,
    pub harm: Harm,
    /// The root-cause kind it names when it is the root (`analysis::root_kind` refines a few from
    /// what else the incident shows).
    pub root: RootKind,
    /// What it is, in one line.
    pub doc: &'static str,
}

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    OomKillMemcg,
    OomKillNode,
    ContainerOomKilled,
    ContainerError,
    CrashLoop,
    LivenessFailed,
    LivenessKill,
    Eviction,
    NodePressure,
    NodeNotReady,
    FailedScheduling,
    ImagePullFailure,
    ConfigError,
    RolloutStuck,
    ServiceNoEndpoints,
    ConnRefused,
    ConnTimeout,
    ConnReset,
    RetransmitSpike,
    DnsFailure,
    DependencyError,
    NetworkSetupFailure,
    ErrorSpans,
    SlowSpans,
    ServiceErrors,
    ServiceLatency,
    NetworkLatency,
    ErrorLogs,
    CpuThrottled,
    Rollout,
    JobFailed,
    ReadinessFailed,
    CertificateError,
    VolumeFailure,
    AdmissionDenied,
    ConfigChange,
    NetworkPolicyChange,
    NodeCordoned,
    Scaled,
}

named!(FindingKind, "finding kind" {
    OomKillMemcg => "oom_kill_memcg",
    OomKillNode => "oom_kill_node",
    ContainerOomKilled => "container_oom_killed",
    ContainerError => "container_error",
    CrashLoop => "crash_loop",
    LivenessFailed => "liveness_failed",
    LivenessKill => "liveness_kill",
    Eviction => "eviction",
    NodePressure => "node_pressure",
    NodeNotReady => "node_not_ready",
    FailedScheduling => "failed_scheduling",
    ImagePullFailure => "image_pull_failure",
    ConfigError => "config_error",
    RolloutStuck => "rollout_stuck",
    ServiceNoEndpoints => "service_no_endpoints",
    ConnRefused => "conn_refused",
    ConnTimeout => "conn_timeout",
    ConnReset => "conn_reset",
    RetransmitSpike => "retransmit_spike",
    DnsFailure => "dns_failure",
    DependencyError => "dependency_error",
    NetworkSetupFailure => "network_setup_failure",
    ErrorSpans => "error_spans",
    SlowSpans => "slow_spans",
    ServiceErrors => "service_errors",
    ServiceLatency => "service_latency",
    NetworkLatency => "network_latency",
    ErrorLogs => "error_logs",
    CpuThrottled => "cpu_throttled",
    Rollout => "rollout",
    JobFailed => "job_failed",
    ReadinessFailed => "readiness_failed",
    CertificateError => "certificate_error",
    VolumeFailure => "volume_failure",
    AdmissionDenied => "admission_denied",
    ConfigChange => "config_change",
    NetworkPolicyChange => "network_policy_change",
    NodeCordoned => "node_cordoned",
    Scaled => "scaled",
});

impl FindingKind {
    /// Every property of the kind: the one table.
    #[rustfmt::skip]
    pub const fn props(self) -> FindingProps {
        use FindingKind as F;
        use Harm as H;
        use Layer as L;
        use Nature as N;
        use RootKind as R;
        const fn p(layer: Layer, nature: Nature, cause_rank: u8, symptom_rank: u8, harm: Harm, root: RootKind, doc: &'static str) -> FindingProps {
            FindingProps { layer, nature, cause_rank, symptom_rank, harm, root, doc }
        }
        match self {
            //                                   layer       nature        cause symptom harm        root
            F::OomKillMemcg        => p(L::Kernel, N::Event,     9, 1, H::Pod,      R::OomContainerLimit,    "the kernel killed a process at its memory cgroup's limit"),
            F::OomKillNode         => p(L::Kernel, N::Event,    10, 1, H::None,     R::OomNode,              "the kernel killed a process because the node ran out of memory"),
            F::ContainerOomKilled  => p(L::K8s,    N::Event,     7, 1, H::Restart,  R::OomContainerLimit,    "Kubernetes reports a container terminated OOMKilled"),
            F::ContainerError      => p(L::K8s,    N::Event,     5, 1, H::Restart,  R::CrashLoopAppError,    "a container exited with an error on its own"),
            F::CrashLoop           => p(L::K8s,    N::State,     4, 1, H::Pod,      R::CrashLoopAppError,    "a container is in CrashLoopBackOff"),
            F::LivenessFailed      => p(L::K8s,    N::Event,     6, 1, H::None,     R::LivenessProbeKill,    "liveness probes failed"),
            F::LivenessKill        => p(L::K8s,    N::Event,     6, 1, H::Pod,      R::LivenessProbeKill,    "the kubelet killed a container for failing its liveness probe"),
            F::Eviction            => p(L::K8s,    N::Event,     7, 1, H::Pod,      R::EvictionNodePressure, "the kubelet evicted a pod"),
            F::NodePressure        => p(L::K8s,    N::State,     9, 1, H::None,     R::EvictionNodePressure, "a node reports memory, disk or PID pressure"),
            F::NodeNotReady        => p(L::K8s,    N::State,    10, 1, H::None,     R::NodeNotReady,         "a node is not ready"),
            F::FailedScheduling    => p(L::K8s,    N::State,     8, 1, H::Pod,      R::SchedulingFailure,    "the scheduler could not place a pod"),
            F::ImagePullFailure    => p(L::K8s,    N::State,     8, 1, H::Pod,      R::ImagePullFailure,     "an image could not be pulled"),
            F::ConfigError         => p(L::K8s,    N::State,     8, 1, H::Pod,      R::ConfigError,          "a pod's configuration is wrong (missing secret, configmap, key, file, executable)"),
            F::RolloutStuck        => p(L::K8s,    N::State,     2, 2, H::Pod,      R::Unknown,              "a workload has fewer available replicas than desired"),
            F::ServiceNoEndpoints  => p(L::K8s,    N::State,     3, 3, H::None,     R::DependencyUnreachable, "a service has no ready endpoints"),
            F::ConnRefused         => p(L::Net,    N::Event,     3, 4, H::None,     R::DependencyUnreachable, "connections refused, a burst of them"),
            F::ConnTimeout         => p(L::Net,    N::Event,     4, 4, H::None,     R::NetworkUnreachable,   "connections that timed out, a burst of them"),
            F::ConnReset           => p(L::Net,    N::Event,     3, 4, H::None,     R::NetworkUnreachable,   "established connections reset by the peer, a burst of them"),
            F::RetransmitSpike     => p(L::Net,    N::Event,     5, 1, H::None,     R::NetworkUnreachable,   "many retransmitted segments towards one peer"),
            F::DnsFailure          => p(L::Log,    N::Aggregate, 7, 1, H::None,     R::DnsFailure,           "name resolution failed"),
            F::DependencyError     => p(L::Log,    N::Aggregate, 7, 1, H::None,     R::DependencyUnreachable, "an application says it cannot reach something it needs"),
            F::NetworkSetupFailure => p(L::K8s,    N::Event,     8, 1, H::None,     R::NetworkUnreachable,   "a pod's network could not be set up (CNI)"),
            F::ErrorSpans          => p(L::Trace,  N::Aggregate, 1, 6, H::Requests, R::Unknown,              "spans with status error or HTTP >= 500, per service"),
            F::SlowSpans           => p(L::Trace,  N::Aggregate, 1, 5, H::Requests, R::Unknown,              "requests that took far longer than usual"),
            F::ServiceErrors       => p(L::Trace,  N::Aggregate, 3, 1, H::Degraded, R::ServiceErrors,        "errors that originate in a service's own spans rose above its baseline"),
            F::ServiceLatency      => p(L::Trace,  N::Aggregate, 3, 1, H::Degraded, R::ServiceLatency,       "a service's self time (its spans minus its calls) rose above its baseline"),
            F::NetworkLatency      => p(L::Trace,  N::Aggregate, 3, 1, H::Degraded, R::NetworkLatency,       "the gap between callers' client spans and a service's server spans rose"),
            F::CpuThrottled        => p(L::Kernel, N::Aggregate, 6, 1, H::None,     R::CpuThrottling,        "a pod's CPU quota ran out in many periods (cpu.stat): it was throttled"),
            F::ErrorLogs           => p(L::Log,    N::Aggregate, 3, 1, H::Degraded, R::ServiceErrors,        "a service's error-level log lines rose above its baseline, mostly of a new template"),
            F::VolumeFailure       => p(L::K8s,    N::Event,     7, 1, H::Pod,      R::VolumeFailure,        "a pod's volume cannot be attached or mounted, or its claim cannot be provisioned"),
            F::AdmissionDenied     => p(L::K8s,    N::Event,     7, 1, H::Pod,      R::AdmissionDenied,      "a controller cannot create pods: a quota, a webhook or PodSecurity denied them"),
            F::CertificateError    => p(L::Log,    N::Aggregate, 7, 1, H::None,     R::CertificateExpired,   "an application says a TLS certificate on its way has expired (x509, SSL, PKIX)"),
            F::ReadinessFailed     => p(L::K8s,    N::Event,     5, 1, H::Pod,      R::ReadinessFailure,     "readiness probes failed: the pod runs but its endpoint is taken out of its services"),
            F::JobFailed           => p(L::K8s,    N::Event,     2, 2, H::Pod,      R::JobFailed,            "a Job failed all its retries or ran past its deadline (BackoffLimitExceeded, DeadlineExceeded)"),
            F::Rollout             => p(L::K8s,    N::Change,    8, 0, H::None,     R::BadRollout,           "a Deployment rolled out a new revision (a new ReplicaSet), with what changed in its pod template"),
            F::ConfigChange        => p(L::K8s,    N::Change,    9, 0, H::None,     R::ConfigChange,         "a ConfigMap's data changed (which keys; values are never kept) or it was deleted"),
            F::NetworkPolicyChange => p(L::K8s,    N::Change,    9, 0, H::None,     R::NetworkPolicy,        "a NetworkPolicy was created, changed or deleted: which pods it selects, what it allows"),
            F::NodeCordoned        => p(L::K8s,    N::Change,    8, 0, H::None,     R::SchedulingFailure,    "a node was cordoned or tainted NoSchedule/NoExecute by hand (not the node controller's own taints)"),
            F::Scaled              => p(L::K8s,    N::Change,    7, 0, H::None,     R::SchedulingFailure,    "a HorizontalPodAutoscaler changed a workload's desired replicas"),
        }
    }

    /// The layer that sees it (a cause read from text takes the layer of what said it instead).
    pub const fn layer(self) -> Layer {
        self.props().layer
    }

    /// Findings that are states: they last from when they were seen until they recover.
    pub fn is_state(self) -> bool {
        self.props().nature == Nature::State
    }
}

/// Where a root cause sits, for severity: a node-level cause hits everything on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Node,
    Pod,
    Network,
    Service,
    Unknown,
}

/// The properties of a root-cause kind.
#[derive(Clone, Copy)]
pub struct RootProps {
    /// What people call it, for the summary's first line.
    pub title: &'static str,
    /// How much a root cause of this kind is believed on its own evidence (docs/correlation.md).
    pub prior: f64,
    pub scope: Scope,
    /// What to do, most urgent first.
    pub actions: fn(&Context) -> Vec<(&'static str, String)>,
}

/// The root-cause kinds (the JSON names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    OomContainerLimit,
    OomNode,
    EvictionNodePressure,
    LivenessProbeKill,
    CrashLoopAppError,
    DependencyUnreachable,
    ImagePullFailure,
    SchedulingFailure,
    NodeNotReady,
    DnsFailure,
    NetworkUnreachable,
    ConfigError,
    ServiceErrors,
    ServiceLatency,
    NetworkLatency,
    CpuThrottling,
    BadRollout,
    JobFailed,
    ReadinessFailure,
    CertificateExpired,
    VolumeFailure,
    AdmissionDenied,
    ConfigChange,
    NetworkPolicy,
    Unknown,
}

named!(RootKind, "root cause kind" {
    OomContainerLimit => "oom_container_limit",
    OomNode => "oom_node",
    EvictionNodePressure => "eviction_node_pressure",
    LivenessProbeKill => "liveness_probe_kill",
    CrashLoopAppError => "crash_loop_app_error",
    DependencyUnreachable => "dependency_unreachable",
    ImagePullFailure => "image_pull_failure",
    SchedulingFailure => "scheduling_failure",
    NodeNotReady => "node_not_ready",
    DnsFailure => "dns_failure",
    NetworkUnreachable => "network_unreachable",
    ConfigError => "config_error",
    ServiceErrors => "service_errors",
    ServiceLatency => "service_latency",
    NetworkLatency => "network_latency",
    CpuThrottling => "cpu_throttling",
    BadRollout => "bad_rollout",
    JobFailed => "job_failed",
    ReadinessFailure => "readiness_failure",
    CertificateExpired => "certificate_expired",
    VolumeFailure => "volume_failure",
    AdmissionDenied => "admission_denied",
    ConfigChange => "config_change",
    NetworkPolicy => "network_policy",
    Unknown => "unknown",
});

impl RootKind {
    /// Every property of the kind: the one table.
    #[rustfmt::skip]
    pub fn props(self) -> RootProps {
        use RootKind as R;
        use Scope as S;
        fn p(title: &'static str, prior: f64, scope: Scope, actions: fn(&Context) -> Vec<(&'static str, String)>) -> RootProps {
            RootProps { title, prior, scope, actions }
        }
        match self {
            R::OomContainerLimit     => p("container memory limit",       0.85, S::Pod,     actions::oom_container_limit),
            R::OomNode               => p("node out of memory",           0.85, S::Node,    actions::oom_node),
            R::EvictionNodePressure  => p("eviction under node pressure", 0.8,  S::Node,    actions::eviction_node_pressure),
            R::LivenessProbeKill     => p("liveness probe kill",          0.75, S::Pod,     actions::liveness_probe_kill),
            R::CrashLoopAppError     => p("application crash",            0.6,  S::Pod,     actions::crash_loop_app_error),
            R::DependencyUnreachable => p("dependency unreachable",       0.75, S::Service, actions::dependency_unreachable),
            R::ImagePullFailure      => p("image pull failure",           0.85, S::Pod,     actions::image_pull_failure),
            R::SchedulingFailure     => p("scheduling failure",           0.85, S::Pod,     actions::scheduling_failure),
            R::NodeNotReady          => p("node not ready",               0.8,  S::Node,    actions::node_not_ready),
            R::DnsFailure            => p("DNS failure",                  0.75, S::Network, actions::dns_failure),
            R::NetworkUnreachable    => p("network unreachable",          0.6,  S::Network, actions::network_unreachable),
            R::ConfigError           => p("configuration error",          0.85, S::Pod,     actions::config_error),
            R::ServiceErrors         => p("errors originating in a service", 0.7, S::Service, actions::service_errors),
            R::ServiceLatency        => p("service slowdown",             0.65, S::Service, actions::service_latency),
            R::NetworkLatency        => p("network latency",              0.6,  S::Network, actions::network_latency),
            R::VolumeFailure         => p("volume failure",               0.85, S::Pod,     actions::volume_failure),
            R::AdmissionDenied       => p("pods denied at admission",     0.85, S::Pod,     actions::admission_denied),
            R::CertificateExpired    => p("expired certificate",          0.85, S::Service, actions::certificate_expired),
            R::ReadinessFailure      => p("readiness probe failing",      0.7,  S::Pod,     actions::readiness_failure),
            R::JobFailed             => p("job failed",                   0.8,  S::Pod,     actions::job_failed),
            R::BadRollout            => p("bad rollout",                  0.8,  S::Pod,     actions::bad_rollout),
            R::CpuThrottling         => p("CPU limit (throttled)",        0.8,  S::Pod,     actions::cpu_throttling),
            R::ConfigChange          => p("configuration change",         0.8,  S::Pod,     actions::config_change),
            R::NetworkPolicy         => p("network policy change",        0.85, S::Network, actions::network_policy),
            R::Unknown               => p("unknown",                      0.3,  S::Unknown, actions::unknown),
        }
    }

    pub fn prior(self) -> f64 {
        self.props().prior
    }

    pub fn title(self) -> &'static str {
        self.props().title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_documented_in_the_correlation_page() {
        let doc = include_str!("../../docs/correlation.md");
        for k in FindingKind::ALL {
            assert!(
                doc.contains(&format!("`{k}`")),
                "docs/correlation.md does not list finding kind `{k}`"
            );
        }
        for k in RootKind::ALL {
            assert!(
                doc.contains(&format!("`{k}`")),
                "docs/correlation.md does not list root-cause kind `{k}`"
            );
        }
    }

    #[test]
    fn priors_are_probabilities_and_ranks_order_real_causes_above_symptoms() {
        for k in RootKind::ALL {
            let p = k.prior();
            assert!((0.0..1.0).contains(&p), "{k}: prior {p}");
        }
        for k in FindingKind::ALL {
            let p = k.props();
            // A symptom the user sees ranks low as a cause: it is explained, not explaining.
            if p.symptom_rank > 1 {
                assert!(
                    p.cause_rank <= 4,
                    "{k}: a user-facing symptom ranks {} as a cause",
                    p.cause_rank
                );
            }
        }
    }
}
