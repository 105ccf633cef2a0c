//! Which table an event goes to, what it is attributed to, and its cells.

use std::borrow::Cow;

use super::{Cell, Row, Table};
use crate::event::{
    cgroup_container_id, Body, Event, Kernel, Kube, Name, ObjectKind, Span, StatusCode,
};
use crate::topology::Topology;

/// What an event is attributed to.
#[derive(Default)]
pub(crate) struct Who<'a> {
    /// The node its pod runs on (for events whose source did not say).
    pub node: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub pod: Option<&'a str>,
    pub container: Option<&'a str>,
    pub service: Option<&'a str>,
}

/// [`Who`] that keeps its own strings, shared: each row of its cgroup names the same ones.
#[derive(Default)]
pub(crate) struct OwnedWho {
    pub node: Option<Name>,
    pub namespace: Option<Name>,
    pub pod: Option<Name>,
    pub container: Option<Name>,
}

impl<'a> Who<'a> {
    /// Its cells: node, namespace, pod, container, service.
    pub fn cells(&self) -> [Cell<'a>; 5] {
        [
            opt(self.node),
            opt(self.namespace),
            opt(self.pod),
            opt(self.container),
            opt(self.service),
        ]
    }

    pub fn owned(&self) -> OwnedWho {
        let own = |s: Option<&str>| s.map(Name::from);
        OwnedWho {
            node: own(self.node),
            namespace: own(self.namespace),
            pod: own(self.pod),
            container: own(self.container),
        }
    }
}

impl OwnedWho {
    /// Its cells: node, namespace, pod, container, service.
    pub fn cells(&self) -> [Cell<'_>; 5] {
        fn cell(n: &Option<Name>) -> Cell<'_> {
            n.as_ref().map_or(NO_TEXT, name)
        }
        [
            cell(&self.node),
            cell(&self.namespace),
            cell(&self.pod),
            cell(&self.container),
            NO_TEXT,
        ]
    }
}

/// The topology learns from the Kubernetes objects, whatever tables are asked for: whether it
/// did (an object).
pub(crate) fn learn(topology: &mut Topology, e: &Event) -> bool {
    if let Body::Kube(Kube::Object(o)) = &e.body {
        topology.apply(o);
        return true;
    }
    false
}

/// The table of an event; `None` for the recorder's own markers.
pub(super) fn table_of(e: &Event) -> Option<Table> {
    Some(match &e.body {
        Body::Kernel(_) => Table::Kernel,
        Body::Span(_) => Table::Spans,
        Body::Log(_) | Body::AppLog(_) => Table::Logs,
        Body::Kube(Kube::Event(_)) => Table::K8sEvents,
        Body::Kube(Kube::Object(_)) => Table::Objects,
        Body::Meta(_) => return None,
    })
}

fn some(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The cgroup a kernel event names, through which it is attributed.
pub(crate) fn cgroup_of(e: &Event) -> Option<&crate::event::Name> {
    match &e.body {
        Body::Kernel(k) => match k {
            Kernel::Exec(x) => Some(&x.cgroup),
            Kernel::Exit(x) => Some(&x.cgroup),
            Kernel::OomKill(x) => Some(x.cgroup()),
            Kernel::Task(x) => Some(&x.cgroup),
            Kernel::Pressure(x) => Some(&x.cgroup),
            Kernel::CpuThrottle(x) => Some(&x.cgroup),
            Kernel::Signal(_) | Kernel::TcpState(_) | Kernel::TcpRetransmit(_) => None,
        },
        _ => None,
    }
}

/// What the pod of a cgroup is, by the topology.
pub(crate) fn who_of_cgroup<'a>(
    topology: &'a mut Topology,
    cgroup: &crate::event::Name,
) -> Who<'a> {
    let id = cgroup_container_id(cgroup.as_str());
    match topology.pod_of_cgroup(cgroup) {
        Some(p) => Who {
            node: some(&p.node),
            namespace: some(&p.ns),
            pod: some(&p.name),
            container: id.and_then(|id| {
                p.containers
                    .iter()
                    .find(|c| crate::event::runtime_container_id(&c.id) == id)
                    .map(|c| c.name.as_str())
            }),
            service: None,
        },
        None => Who::default(),
    }
}

/// The namespace, pod, container and service an event belongs to.
pub(crate) fn who<'a>(topology: &'a mut Topology, e: &'a Event) -> Who<'a> {
    if let Some(cgroup) = cgroup_of(e) {
        return who_of_cgroup(topology, cgroup);
    }
    match &e.body {
        Body::Span(s) => Who {
            node: resource(&s.resource, "k8s.node.name"),
            namespace: resource(&s.resource, "k8s.namespace.name"),
            pod: resource(&s.resource, "k8s.pod.name"),
            container: resource(&s.resource, "k8s.container.name"),
            service: some(s.service.as_str()),
        },
        Body::AppLog(a) => Who {
            node: resource(&a.resource, "k8s.node.name"),
            namespace: resource(&a.resource, "k8s.namespace.name"),
            pod: resource(&a.resource, "k8s.pod.name"),
            container: resource(&a.resource, "k8s.container.name"),
            service: some(a.service.as_str()),
        },
        Body::Kube(Kube::Event(k)) => {
            let pod = k.involved.kind == "Pod";
            Who {
                node: None,
                namespace: some(&k.involved.namespace).or_else(|| some(&k.namespace)),
                pod: pod.then(|| some(&k.involved.name)).flatten(),
                container: container_of_field(&k.involved.field_path),
                service: None,
            }
        }
        Body::Kube(Kube::Object(o)) => Who {
            node: None,
            namespace: some(&o.namespace),
            pod: (o.kind == ObjectKind::Pod).then(|| some(&o.name)).flatten(),
            container: None,
            service: None,
        },
        _ => Who::default(),
    }
}

fn resource<'a>(attrs: &'a [crate::event::Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key.as_str() == key)
        .and_then(|a| a.value.as_str())
        .and_then(some)
}

/// `spec.containers{cart}` → `cart`.
fn container_of_field(path: &str) -> Option<&str> {
    let inner = path.split_once('{')?.1.strip_suffix('}')?;
    some(inner)
}

pub(super) fn text<'a>(s: impl Into<Cow<'a, str>>) -> Cell<'a> {
    let s = s.into();
    Cell::Text((!s.is_empty()).then_some(s))
}

fn u64_<T: Into<u64>>(x: T) -> Cell<'static> {
    Cell::U64(Some(x.into()))
}

/// A text cell of what may be missing.
pub(super) fn opt(s: Option<&str>) -> Cell<'_> {
    Cell::Text(s.map(Cow::Borrowed))
}

/// A text cell of a shared name (none when empty).
pub(super) fn name(n: &crate::event::Name) -> Cell<'_> {
    if n.is_empty() {
        NO_TEXT
    } else {
        Cell::Name(n)
    }
}

/// A text cell of a constant (none when empty).
pub(super) fn konst(s: &'static str) -> Cell<'static> {
    if s.is_empty() {
        NO_TEXT
    } else {
        Cell::Const(s)
    }
}

const NO_TEXT: Cell<'static> = Cell::Text(None);
const NO_U64: Cell<'static> = Cell::U64(None);

/// Where an event's own columns start, after the common ones.
const OWN: usize = super::COMMON.len();

/// The cells of an event's own columns (after the common ones), in the order of its table.
pub(super) fn cells(e: &Event, out: &mut Row<'_>) {
    match &e.body {
        Body::Kernel(k) => kernel(k, out),
        Body::Span(s) => span(s, out),
        Body::Log(l) => log(l, out),
        Body::AppLog(a) => log(&a.log, out),
        Body::Kube(Kube::Event(k)) => out.set_all(
            OWN,
            [
                text(k.type_.as_str()),
                text(k.reason.as_str()),
                text(k.involved.kind.as_str()),
                text(k.involved.name.as_str()),
                text(k.involved.field_path.as_str()),
                text(k.message.as_str()),
                u64_(k.count),
                Cell::Time(k.first),
                Cell::Time(k.last),
                text(k.component.as_str()),
            ],
        ),
        Body::Kube(Kube::Object(o)) => out.set_all(
            OWN,
            [
                text(o.kind.as_str()),
                text(o.name.as_str()),
                text(o.uid.as_str()),
                text(o.action.as_str()),
                text(o.resource_version.as_str()),
                text(o.json.0.as_str()),
            ],
        ),
        Body::Meta(_) => {}
    }
}

fn kernel(k: &Kernel, out: &mut Row<'_>) {
    // kind, pid, comm, ppid, filename, cgroup, exit_code, signal, sender_pid, sender_comm,
    // oom_constraint, rss_bytes, memcg_usage_bytes, memcg_limit_bytes, saddr, sport, daddr,
    // dport, tcp_old, tcp_new, tcp_outcome, retransmits, interval_ms, psi_some_avg10,
    // psi_full_avg10, throttled_periods, periods, throttled_us
    let mut row = |i: usize, c: Cell<'_>| {
        if !c.is_null() {
            out.set(OWN + i, c)
        }
    };
    row(0, konst(kernel_kind(k)));
    let kib = |x: u64| Cell::U64(Some(x.saturating_mul(1024)));
    match k {
        Kernel::Exec(x) => {
            row(1, u64_(x.pid));
            row(2, name(&x.comm));
            row(3, u64_(x.ppid));
            row(4, name(&x.filename));
            row(5, name(&x.cgroup));
        }
        Kernel::Exit(x) => {
            row(1, u64_(x.pid));
            row(2, name(&x.comm));
            row(5, name(&x.cgroup));
            row(6, Cell::I64(Some(i64::from(x.code))));
            row(7, u64_(x.signal));
        }
        Kernel::Signal(x) => {
            row(1, u64_(x.target_pid));
            row(2, name(&x.target_comm));
            row(7, u64_(x.signal));
            row(8, u64_(x.sender_pid));
            row(9, name(&x.sender_comm));
        }
        Kernel::OomKill(x) => {
            row(1, u64_(x.victim_pid));
            row(2, name(&x.victim_comm));
            row(5, name(x.cgroup()));
            row(8, u64_(x.killer_pid));
            row(9, name(&x.killer_comm));
            row(10, konst(x.constraint.as_str()));
            row(
                11,
                if x.rss_kib > 0 {
                    kib(x.rss_kib)
                } else {
                    NO_U64
                },
            );
            row(12, x.memcg_usage_kib.map_or(NO_U64, kib));
            row(13, x.memcg_limit_kib.map_or(NO_U64, kib));
        }
        Kernel::TcpState(x) => {
            row(1, if x.pid > 0 { u64_(x.pid) } else { NO_U64 });
            row(14, Cell::Addr(Some(x.saddr)));
            row(15, u64_(x.sport));
            row(16, Cell::Addr(Some(x.daddr)));
            row(17, u64_(x.dport));
            row(18, konst(x.old.as_str()));
            row(19, konst(x.new.as_str()));
            row(20, konst(x.meaning.as_str()));
        }
        Kernel::TcpRetransmit(x) => {
            row(14, Cell::Addr(Some(x.saddr)));
            row(15, u64_(x.sport));
            row(16, Cell::Addr(Some(x.daddr)));
            row(17, u64_(x.dport));
            row(19, konst(x.state.as_str()));
            row(21, u64_(x.count));
            row(22, u64_(x.interval_ms));
        }
        Kernel::Task(x) => {
            row(1, u64_(x.pid));
            row(2, name(&x.comm));
            row(5, name(&x.cgroup));
        }
        Kernel::Pressure(x) => {
            row(5, name(&x.cgroup));
            row(22, u64_(x.interval_ms));
            row(23, Cell::F64(Some(f64::from(x.some_avg10) / 100.0)));
            row(24, Cell::F64(Some(f64::from(x.full_avg10) / 100.0)));
        }
        Kernel::CpuThrottle(x) => {
            row(5, name(&x.cgroup));
            row(22, u64_(x.interval_ms));
            row(25, u64_(x.throttled_periods));
            row(26, u64_(x.periods));
            row(27, u64_(x.throttled_us));
        }
    }
}

fn kernel_kind(k: &Kernel) -> &'static str {
    use crate::event::Kind;
    let kind = match k {
        Kernel::Exec(_) => Kind::Exec,
        Kernel::Exit(_) => Kind::Exit,
        Kernel::Signal(_) => Kind::Signal,
        Kernel::OomKill(_) => Kind::Oom,
        Kernel::TcpState(_) => Kind::Tcp,
        Kernel::TcpRetransmit(_) => Kind::Retransmit,
        Kernel::Task(_) => Kind::Task,
        Kernel::Pressure(_) => Kind::Pressure,
        Kernel::CpuThrottle(_) => Kind::Throttle,
    };
    kind.as_str()
}

fn span(s: &Span, out: &mut Row<'_>) {
    let status = match s.status {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    };
    out.set_all(
        OWN,
        [
            text(s.trace_id.to_string()),
            text(s.span_id.to_string()),
            s.parent_span_id
                .filter(|p| !p.is_zero())
                .map_or(NO_TEXT, |p| text(p.to_string())),
            text(s.name.as_str()),
            konst(s.kind.as_str()),
            Cell::Time(Some(s.start)),
            Cell::U64(Some(s.duration_ns())),
            konst(status),
            text(s.status_message.as_str()),
            Cell::U64(s.http_status().and_then(|c| u64::try_from(c).ok())),
            crate::detect::spans::peer_of(s).map_or(NO_TEXT, text),
        ],
    );
}

fn log(l: &crate::event::Log, out: &mut Row<'_>) {
    out.set_all(
        OWN,
        [
            text(l.origin.as_str()),
            konst(l.severity.as_str()),
            text(l.ident.as_str()),
            if l.pid > 0 { u64_(l.pid) } else { NO_U64 },
            text(l.body.as_str()),
            l.trace_id.map_or(NO_TEXT, |t| text(t.to_string())),
            l.span_id.map_or(NO_TEXT, |t| text(t.to_string())),
            Cell::Bool(Some(l.approximate_time)),
        ],
    );
}
