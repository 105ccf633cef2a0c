//! A deterministic synthetic cluster: a capture's worth of realistic events from a seed.
//!
//! It feeds the benchmarks (`tapio generate --events 10000000`) and the demos, and later the
//! correlation tests: a Kubernetes topology (nodes, deployments, pods, services and their
//! endpoints), background kernel traffic from those pods (exec, exit, TCP connections and
//! retransmits), the spans of the requests between the services, and optionally an embedded
//! incident whose every layer agrees (a container hitting its memory limit). The same seed gives
//! the same events, byte for byte.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::json;

use crate::event::{
    AttrValue, Attribute, Body, Event, EventApi, Exec, Exit, Kernel, Kube, KubeEvent, Object,
    ObjectAction, ObjectKind, ObjectRef, OomConstraint, OomKill, RawJson, Source, Span, SpanId,
    SpanKind, StatusCode, TcpMeaning, TcpRetransmit, TcpState, TcpStateChange, TraceId, Ts,
};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many events in all (the topology and the incident count towards it).
    pub events: u64,
    pub seed: u64,
    pub nodes: u32,
    /// The time of the first event.
    pub start: Ts,
    /// Mean events per second of the background traffic.
    pub rate: u64,
    /// Embed an incident: deployment `shop/cart` hits its memory limit at 60 % of the run.
    pub incident: bool,
    /// Nodes are named `<prefix>-1`, `<prefix>-2` …
    pub node_prefix: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            events: 100_000,
            seed: 1,
            nodes: 3,
            start: Ts::parse_rfc3339("2026-03-14T10:00:00Z").unwrap_or_default(),
            rate: 20_000,
            incident: false,
            node_prefix: "node".to_string(),
        }
    }
}

/// splitmix64: tiny, fast and fully determined by its seed, which is all a generator needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.next() as u8))
            .collect()
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(16);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

struct Pod {
    ns: &'static str,
    app: &'static str,
    name: String,
    uid: String,
    container_id: String,
    node: Arc<str>,
    ip: Ipv4Addr,
    cgroup: String,
    pid: u32,
}

struct Service {
    app: &'static str,
    ip: Ipv4Addr,
    port: u16,
}

/// (namespace, app, replicas, port, memory limit MiB, process name)
const APPS: [(&str, &str, u32, u16, u64, &str); 6] = [
    ("shop", "frontend", 3, 8080, 512, "node"),
    ("shop", "checkout", 3, 8080, 512, "checkout"),
    ("shop", "cart", 3, 8080, 2048, "java"),
    ("shop", "catalog", 2, 8080, 256, "catalog"),
    ("payments", "payments", 2, 8443, 1024, "payments"),
    ("platform", "redis", 1, 6379, 1024, "redis-server"),
];

/// Generates the events in time order, calling `sink` for each; stops early if it errors.
pub fn generate<E>(cfg: &Config, mut sink: impl FnMut(Event) -> Result<(), E>) -> Result<(), E> {
    let mut g = Generator::new(cfg);
    let mut emitted = 0u64;
    for e in g.topology() {
        if emitted >= cfg.events {
            return Ok(());
        }
        sink(e)?;
        emitted += 1;
    }
    let incident_at = cfg.incident.then_some(cfg.events * 6 / 10);
    let mut buf = Vec::new();
    while emitted < cfg.events {
        if incident_at.is_some_and(|at| emitted >= at) && !g.incident_done {
            g.incident(&mut buf);
        } else {
            g.background(&mut buf);
        }
        for e in buf.drain(..) {
            if emitted >= cfg.events {
                break;
            }
            sink(e)?;
            emitted += 1;
        }
    }
    Ok(())
}

struct Generator {
    rng: Rng,
    now: u64,
    mean_gap: u64,
    nodes: Vec<Arc<str>>,
    pods: Vec<Pod>,
    services: Vec<Service>,
    next_pid: u32,
    incident_done: bool,
    /// Events of the incident due later, in time order: emitted as the clock reaches them.
    later: std::collections::VecDeque<Event>,
    /// Processes exec'd and not yet exited: (pid, pod index, comm).
    live: std::collections::VecDeque<(u32, usize, &'static str)>,
}

impl Generator {
    fn new(cfg: &Config) -> Generator {
        let mut rng = Rng(cfg.seed);
        let nodes: Vec<Arc<str>> = (1..=cfg.nodes.max(1))
            .map(|i| Arc::from(format!("{}-{i}", cfg.node_prefix)))
            .collect();
        let mut pods = Vec::new();
        let mut services = Vec::new();
        for (i, &(ns, app, replicas, port, _, _)) in APPS.iter().enumerate() {
            services.push(Service {
                app,
                ip: Ipv4Addr::new(10, 96, 0, 10 + i as u8),
                port,
            });
            let rs = rng.hex(5)[..10].to_string();
            for r in 0..replicas {
                let uid = rng.uuid();
                let container_id = rng.hex(32);
                let qos = "burstable";
                let cgroup = format!(
                    "/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{}.slice/cri-containerd-{container_id}.scope",
                    uid.replace('-', "_")
                );
                pods.push(Pod {
                    ns,
                    app,
                    name: format!("{app}-{rs}-{}", &rng.hex(3)[..5]),
                    uid,
                    container_id,
                    node: nodes[(pods.len() + r as usize) % nodes.len()].clone(),
                    ip: Ipv4Addr::new(
                        10,
                        244,
                        (pods.len() / 200) as u8,
                        2 + (pods.len() % 200) as u8,
                    ),
                    cgroup,
                    pid: 1000 + pods.len() as u32 * 100,
                });
            }
        }
        Generator {
            rng,
            now: cfg.start.0,
            mean_gap: 1_000_000_000 / cfg.rate.max(1),
            nodes,
            pods,
            services,
            next_pid: 20_000,
            incident_done: false,
            later: std::collections::VecDeque::new(),
            live: std::collections::VecDeque::new(),
        }
    }

    fn tick(&mut self) -> Ts {
        self.now += self.rng.below(2 * self.mean_gap) + 1;
        Ts(self.now)
    }

    fn object(
        &self,
        kind: ObjectKind,
        ns: &str,
        name: &str,
        uid: &str,
        node: &str,
        json: serde_json::Value,
    ) -> Kube {
        Kube::from(Object {
            action: ObjectAction::Seen,
            kind,
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            resource_version: format!("{}", 1000 + self.now % 100_000),
            node: node.into(),
            json: RawJson::from_value(&json),
        })
    }

    fn topology(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let t = Ts(self.now);
        for node in &self.nodes {
            let json = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":&**node},
                "status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"},
                {"type":"MemoryPressure","status":"False"}],"capacity":{"memory":"16Gi","cpu":"4"}}});
            out.push(Event::new(
                t,
                node.clone(),
                Source::Kube,
                self.object(ObjectKind::Node, "", node, "", node, json),
            ));
        }
        for &(ns, app, replicas, port, limit, _) in &APPS {
            let dep = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":app,"namespace":ns},
                "spec":{"replicas":replicas,"selector":{"matchLabels":{"app":app}}},
                "status":{"replicas":replicas,"readyReplicas":replicas,"availableReplicas":replicas}});
            out.push(Event::new(
                t,
                "",
                Source::Kube,
                self.object(ObjectKind::Deployment, ns, app, "", "", dep),
            ));
            let svc = self
                .services
                .iter()
                .find(|s| s.app == app)
                .map_or(Ipv4Addr::UNSPECIFIED, |s| s.ip);
            let svc_json = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":app,"namespace":ns},
                "spec":{"clusterIP":svc.to_string(),"selector":{"app":app},"ports":[{"port":port}]}});
            out.push(Event::new(
                t,
                "",
                Source::Kube,
                self.object(ObjectKind::Service, ns, app, "", "", svc_json),
            ));
            for p in self.pods.iter().filter(|p| p.app == app) {
                let pod = pod_json(p, port, limit, 0, None, true);
                out.push(Event::new(
                    t,
                    p.node.clone(),
                    Source::Kube,
                    self.object(ObjectKind::Pod, ns, &p.name, &p.uid, &p.node, pod),
                ));
            }
            let eps = self.endpoints_json(app, ns, port, None);
            out.push(Event::new(
                t,
                "",
                Source::Kube,
                self.object(
                    ObjectKind::EndpointSlice,
                    ns,
                    &format!("{app}-abc12"),
                    "",
                    "",
                    eps,
                ),
            ));
        }
        out
    }

    fn endpoints_json(
        &self,
        app: &str,
        ns: &str,
        port: u16,
        down: Option<&str>,
    ) -> serde_json::Value {
        let eps: Vec<_> = self
            .pods
            .iter()
            .filter(|p| p.app == app)
            .map(|p| json!({"addresses":[p.ip.to_string()],"conditions":{"ready": down != Some(p.name.as_str())},
                "nodeName":&*p.node,"targetRef":{"kind":"Pod","name":p.name,"namespace":ns,"uid":p.uid}}))
            .collect();
        json!({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
            "metadata":{"name":format!("{app}-abc12"),"namespace":ns,"labels":{"kubernetes.io/service-name":app}},
            "addressType":"IPv4","endpoints":eps,"ports":[{"port":port,"protocol":"TCP"}]})
    }

    fn background(&mut self, out: &mut Vec<Event>) {
        let ts = self.tick();
        while self.later.front().is_some_and(|e| e.ts <= ts) {
            out.extend(self.later.pop_front());
        }
        let i = self.rng.below(self.pods.len() as u64) as usize;
        let roll = self.rng.below(1000);
        let p = &self.pods[i];
        let mut node = p.node.clone();
        let body: Body = match roll {
            0..=349 => {
                self.next_pid += 1;
                let comm = ["sh", "curl", "healthcheck", "date", "cat"][self.rng.below(5) as usize];
                self.live.push_back((self.next_pid, i, comm));
                Kernel::Exec(Exec {
                    pid: self.next_pid,
                    ppid: p.pid,
                    comm: comm.into(),
                    filename: format!("/usr/bin/{comm}").into(),
                    cgroup: p.cgroup.clone().into(),
                })
                .into()
            }
            // Short-lived processes exit in the order they started, in their own pod.
            350..=699 => {
                let (pid, pod, comm) = self.live.pop_front().unwrap_or((self.next_pid, i, "sh"));
                node = self.pods[pod].node.clone();
                Kernel::Exit(Exit {
                    pid,
                    comm: comm.into(),
                    code: 0,
                    signal: 0,
                    cgroup: self.pods[pod].cgroup.clone().into(),
                })
                .into()
            }
            700..=949 => {
                let s = &self.services[self.rng.below(self.services.len() as u64) as usize];
                let (old, new, meaning) = match self.rng.below(3) {
                    0 => (
                        TcpState::SynSent,
                        TcpState::Established,
                        TcpMeaning::Connected,
                    ),
                    1 => (
                        TcpState::Established,
                        TcpState::FinWait1,
                        TcpMeaning::Closed,
                    ),
                    _ => (TcpState::LastAck, TcpState::Close, TcpMeaning::Closed),
                };
                Kernel::TcpState(TcpStateChange {
                    pid: p.pid,
                    saddr: IpAddr::V4(p.ip),
                    sport: 32768 + self.rng.below(28000) as u16,
                    daddr: IpAddr::V4(s.ip),
                    dport: s.port,
                    old,
                    new,
                    meaning,
                })
                .into()
            }
            950 => {
                let s = &self.services[self.rng.below(self.services.len() as u64) as usize];
                Kernel::TcpRetransmit(TcpRetransmit {
                    saddr: IpAddr::V4(p.ip),
                    sport: 32768 + self.rng.below(28000) as u16,
                    daddr: IpAddr::V4(s.ip),
                    dport: s.port,
                    state: TcpState::Established,
                    count: 1 + self.rng.below(3) as u32,
                    interval_ms: 1000,
                })
                .into()
            }
            _ => {
                let (ns, app) = (p.ns, p.app);
                let pod = p.name.clone();
                let err = self.rng.below(200) == 0;
                let trace = self.trace_id();
                return self.request(out, ts, &node, ns, app, &pod, trace, err);
            }
        };
        out.push(Event::new(ts, node, Source::Ebpf, body));
    }

    fn trace_id(&mut self) -> TraceId {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.rng.next().to_be_bytes());
        id[8..].copy_from_slice(&self.rng.next().to_be_bytes());
        TraceId(id)
    }

    /// A server span of `app` and, for the frontend, the client span of its call to the cart.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        out: &mut Vec<Event>,
        ts: Ts,
        node: &Arc<str>,
        ns: &str,
        app: &str,
        pod: &str,
        trace: TraceId,
        error: bool,
    ) {
        let dur = 2_000_000 + self.rng.below(30_000_000);
        let span_id = SpanId(self.rng.next().to_be_bytes());
        let span = Span {
            trace_id: trace,
            span_id,
            parent_span_id: None,
            name: format!("GET /{app}").into(),
            kind: SpanKind::Server,
            start: ts,
            end: Ts(ts.0 + dur),
            status: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            status_message: if error {
                "upstream error".into()
            } else {
                String::new()
            },
            service: app.into(),
            resource: vec![
                Attribute::new("service.name", AttrValue::Str(app.into())),
                Attribute::new("k8s.namespace.name", AttrValue::Str(ns.into())),
                Attribute::new("k8s.pod.name", AttrValue::Str(pod.into())),
                Attribute::new(
                    "k8s.node.name",
                    AttrValue::Str(crate::event::Name::from(node.clone())),
                ),
            ],
            attributes: vec![
                Attribute::new("http.request.method", AttrValue::Str("GET".into())),
                Attribute::new(
                    "http.response.status_code",
                    AttrValue::Int(if error { 503 } else { 200 }),
                ),
            ],
            events: Vec::new(),
        };
        out.push(Event::new(ts, node.clone(), Source::Otlp, span));
    }

    /// Deployment shop/cart: one container grows to its 2 GiB limit and is OOM-killed; its
    /// endpoint goes away, the checkout pods' connections are refused, their requests fail.
    fn incident(&mut self, out: &mut Vec<Event>) {
        self.incident_done = true;
        let Some(vi) = self.pods.iter().position(|p| p.app == "cart") else {
            return;
        };
        let limit_kib = 2048 * 1024;
        let ts = self.tick();
        let (node, cgroup, pid, name, uid, ip) = {
            let v = &self.pods[vi];
            (
                v.node.clone(),
                v.cgroup.clone(),
                v.pid,
                v.name.clone(),
                v.uid.clone(),
                v.ip,
            )
        };
        let oom = OomKill {
            victim_pid: pid,
            victim_comm: "java".into(),
            task_memcg: cgroup.clone().into(),
            oom_memcg: cgroup.clone().into(),
            constraint: OomConstraint::Memcg,
            rss_kib: limit_kib - 1200,
            total_vm_kib: 5_300_000,
            memcg_usage_kib: Some(limit_kib),
            memcg_limit_kib: Some(limit_kib),
            killer_pid: pid,
            killer_comm: "java".into(),
        };
        out.push(Event::new(
            ts,
            node.clone(),
            Source::Ebpf,
            Kernel::OomKill(Box::new(oom)),
        ));
        let ts2 = Ts(ts.0 + 2_000_000);
        out.push(Event::new(
            ts2,
            node.clone(),
            Source::Ebpf,
            Kernel::Exit(Exit {
                pid,
                comm: "java".into(),
                code: 0,
                signal: 9,
                cgroup: cgroup.into(),
            }),
        ));
        let ts3 = Ts(ts.0 + 6_000_000);
        // The pod down, its endpoint not ready; 20 s later, restarted, both ready again.
        for (at, ready) in [(ts3, false), (Ts(ts.0 + 20_000_000_000), true)] {
            let mut pod = pod_json(&self.pods[vi], 8080, 2048, 1, Some(ts3), ready);
            pod["metadata"]["uid"] = json!(uid);
            let mut obj = self.object(ObjectKind::Pod, "shop", &name, &uid, &node, pod);
            if let Kube::Object(o) = &mut obj {
                o.action = ObjectAction::Changed;
            }
            let down = (!ready).then_some(name.as_str());
            let eps = self.endpoints_json("cart", "shop", 8080, down);
            let mut eobj =
                self.object(ObjectKind::EndpointSlice, "shop", "cart-abc12", "", "", eps);
            if let Kube::Object(o) = &mut eobj {
                o.action = ObjectAction::Changed;
            }
            let pod = Event::new(at, node.clone(), Source::Kube, obj);
            let eps = Event::new(Ts(at.0 + 734_000_000), "", Source::Kube, eobj);
            if ready {
                self.later.extend([pod, eps]);
            } else {
                out.extend([pod, eps]);
            }
        }
        let backoff = KubeEvent {
            api: EventApi::CoreV1,
            namespace: "shop".into(),
            name: format!("{name}.17c8a3f0"),
            uid: self.rng.uuid(),
            type_: "Warning".into(),
            reason: "BackOff".into(),
            message: format!("Back-off restarting failed container cart in pod {name}_shop({uid})"),
            involved: ObjectRef {
                kind: "Pod".into(),
                namespace: "shop".into(),
                name: name.clone(),
                uid: uid.clone(),
                field_path: "spec.containers{cart}".into(),
            },
            count: 1,
            first: Some(Ts(ts.0 + 900_000_000)),
            last: Some(Ts(ts.0 + 900_000_000)),
            component: "kubelet".into(),
            host: node.to_string(),
        };
        out.push(Event::new(
            Ts(ts.0 + 900_000_000),
            node.clone(),
            Source::Kube,
            Kube::from(backoff),
        ));
        let clients: Vec<usize> = (0..self.pods.len())
            .filter(|&i| self.pods[i].app == "checkout")
            .collect();
        for k in 0..40u64 {
            let c = &self.pods[clients[(k as usize) % clients.len()]];
            let t = Ts(ts.0 + 800_000_000 + k * 5_000_000);
            let refused = Kernel::TcpState(TcpStateChange {
                pid: c.pid,
                saddr: IpAddr::V4(c.ip),
                sport: 40000 + k as u16,
                daddr: IpAddr::V4(ip),
                dport: 8080,
                old: TcpState::SynSent,
                new: TcpState::Close,
                meaning: TcpMeaning::Refused,
            });
            let (cnode, cns, capp, cname) = (c.node.clone(), c.ns, c.app, c.name.clone());
            out.push(Event::new(t, cnode.clone(), Source::Ebpf, refused));
            if k % 4 == 0 {
                let trace = self.trace_id();
                self.request(
                    out,
                    Ts(t.0 + 100_000),
                    &cnode,
                    cns,
                    capp,
                    &cname,
                    trace,
                    true,
                );
            }
        }
        out.sort_by_key(|e| e.ts);
        self.now = out.last().map_or(self.now, |e| e.ts.0);
    }
}

fn pod_json(
    p: &Pod,
    port: u16,
    limit_mib: u64,
    restarts: u32,
    oom_at: Option<Ts>,
    ready: bool,
) -> serde_json::Value {
    let last_state = match oom_at {
        Some(t) => {
            json!({"terminated":{"reason":"OOMKilled","exitCode":137,"finishedAt":t.rfc3339(),
            "containerID":format!("containerd://{}", p.container_id)}})
        }
        None => json!({}),
    };
    json!({"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":p.name,"namespace":p.ns,"uid":p.uid,"labels":{"app":p.app},
            "ownerReferences":[{"kind":"ReplicaSet","name":p.name.rsplit_once('-').map_or("", |x| x.0),"controller":true}]},
        "spec":{"nodeName":&*p.node,"containers":[{"name":p.app,"ports":[{"containerPort":port}],
            "resources":{"limits":{"memory":format!("{limit_mib}Mi")},"requests":{"memory":format!("{}Mi", limit_mib / 2)}}}]},
        "status":{"phase":"Running","podIP":p.ip.to_string(),"containerStatuses":[{"name":p.app,"ready":ready,
            "restartCount":restarts,"containerID":format!("containerd://{}", p.container_id),
            "state":{"running":{}},"lastState":last_state}]}})
}

/// The events of `cfg`, in memory (for tests).
#[cfg(test)]
pub(crate) fn collect(cfg: &Config) -> Vec<Event> {
    let mut v = Vec::new();
    generate(cfg, |e| {
        v.push(e);
        Ok::<_, ()>(())
    })
    .expect("generating into memory cannot fail");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    #[test]
    fn same_seed_same_events_and_the_count_is_exact() {
        let cfg = Config {
            events: 5000,
            incident: true,
            ..Config::default()
        };
        let a = collect(&cfg);
        assert_eq!(a.len(), 5000);
        assert_eq!(a, collect(&cfg));
        assert!(a.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
        let kernel = a
            .iter()
            .filter(|e| {
                matches!(
                    e.kind().layer(),
                    crate::knowledge::Layer::Kernel | crate::knowledge::Layer::Net
                )
            })
            .count();
        assert!(
            kernel * 10 > a.len() * 9,
            "kernel-heavy: {kernel} of {}",
            a.len()
        );
        assert_eq!(a.iter().filter(|e| e.kind() == Kind::Oom).count(), 1);
        assert_ne!(collect(&Config { seed: 2, ..cfg })[100], a[100]);
    }

    #[test]
    fn the_oom_killed_pod_is_ready_again_twenty_seconds_later() {
        use crate::event::{Kube, ObjectKind};
        // 40 s of traffic at 1,000 events a second: the incident at 24 s, the recovery at 44 s.
        let cfg = Config {
            events: 50_000,
            rate: 1_000,
            incident: true,
            ..Config::default()
        };
        let events = collect(&cfg);
        assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
        let oom = events.iter().find(|e| e.kind() == Kind::Oom).unwrap().ts;
        let cart: Vec<(Ts, bool)> = events
            .iter()
            .filter_map(|e| match &e.body {
                Body::Kube(Kube::Object(o))
                    if o.kind == ObjectKind::Pod && o.name.starts_with("cart-") =>
                {
                    let v = o.json.parse().ok()?;
                    Some((
                        e.ts,
                        v["status"]["containerStatuses"][0]["ready"].as_bool()?,
                    ))
                }
                _ => None,
            })
            .filter(|&(t, _)| t >= oom)
            .collect();
        assert_eq!(cart.len(), 2, "{cart:?}");
        assert!(!cart[0].1 && cart[1].1, "{cart:?}");
        assert_eq!(cart[1].0 .0 - oom.0, 20_000_000_000);
    }
}
