//! Stable pseudonyms for the names and addresses of a capture (`tapio redact --names`), so that a
//! capture can leave the company and still explain its incident.
//!
//! - Names: namespaces, pods, workloads, containers, nodes, services and hosts are learnt from the
//!   capture itself (the Kubernetes objects, the spans' and logs' resources, the events' nodes),
//!   then every occurrence of one, in any string (log lines, messages, URLs, labels, the objects'
//!   JSON), is replaced by its pseudonym. A name is replaced part by part (`cart-7d4b9c-x2x4z`:
//!   `cart` and the rest), so the relations the pipeline reads (a Pod named after its ReplicaSet,
//!   a Service's DNS name, a label that matches a selector) still hold. Parts that identify nothing
//!   are kept: numbers, generated suffixes, Kubernetes' own words and well-known software
//!   (`kube-system`, `coredns`, `redis`, `svc.cluster.local`).
//! - Addresses: every IPv4 address, and every IPv6 address that is a whole value, becomes one of
//!   10.0.0.0/8 (fd00::/8), in order of first appearance; loopback, unspecified, link-local and
//!   multicast addresses are kept. Dashed addresses in names (`ip-10-0-135-228`) follow them.
//! - The same name gives the same pseudonym throughout one run; [`Pseudonyms::map`] is the table,
//!   for the owner of the capture to translate a finding back.
//!
//! Keys, times, ids and the event model's own words (sources, kinds, states) are never changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::event::{find, AttrValue, Attribute, Body, Event, Kube};

/// Parts of names that are kept: Kubernetes' own words, DNS suffixes and well-known software, which
/// identify no company.
const KEEP: &[&str] = &[
    "kube",
    "system",
    "public",
    "node",
    "lease",
    "default",
    "kubernetes",
    "svc",
    "cluster",
    "local",
    "internal",
    "localhost",
    "localdomain",
    "coredns",
    "dns",
    "proxy",
    "etcd",
    "apiserver",
    "controller",
    "manager",
    "scheduler",
    "kubelet",
    "metrics",
    "server",
    "ingress",
    "nginx",
    "envoy",
    "istio",
    "linkerd",
    "calico",
    "cilium",
    "flannel",
    "prometheus",
    "grafana",
    "redis",
    "mysql",
    "postgres",
    "postgresql",
    "mongo",
    "mongodb",
    "kafka",
    "zookeeper",
    "rabbitmq",
    "memcached",
    "elasticsearch",
    "cassandra",
    "otel",
    "collector",
    "jaeger",
    "zipkin",
    "com",
    "net",
    "org",
    "io",
    "dev",
    "cloud",
    "compute",
    "amazonaws",
    "ec2",
    "gke",
    "aks",
    "eks",
    "aws",
    "us",
    "eu",
    "east",
    "west",
    "north",
    "south",
    "central",
    "tapio",
    "worker",
    "master",
    "control",
    "plane",
    "master",
    "kind",
    "minikube",
    "k3s",
    "api",
    "app",
    "db",
    "web",
    "http",
    "https",
    "grpc",
    "tcp",
    "udp",
    "www",
    "ip",
];

/// Names kept whole.
const KEEP_WHOLE: &[&str] = &["", "-", "kernel", "unknown"];

/// What the capture's strings are made of, learnt in a first pass.
#[derive(Debug, Default)]
pub struct Pseudonyms {
    /// Every name learnt, and its pseudonym.
    names: BTreeMap<String, String>,
    /// The pseudonym of each part of a name.
    parts: HashMap<String, String>,
    taken: HashSet<String>,
    addrs: BTreeMap<IpAddr, IpAddr>,
    next_v4: u32,
    next_v6: u128,
    /// All names, longest first, as one pattern (built by [`Pseudonyms::seal`]).
    pattern: Option<Regex>,
}

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b")
        .expect("the IPv4 pattern")
});
static DASHED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\b").expect("the dashed IPv4 pattern")
});

/// Keys whose string values are the event model's own words, ids, times or attribute keys.
const FIXED_KEYS: &[&str] = &[
    "action",
    "api",
    "constraint",
    "meaning",
    "new",
    "old",
    "origin",
    "severity",
    "source",
    "state",
    "status",
    "type_",
    "kind",
    "reason",
    "key",
    "resource_version",
    "uid",
    "trace_id",
    "span_id",
    "parent_span_id",
    "ts",
    "start",
    "end",
    "first",
    "last",
    "from",
    "to",
    "cgroup",
    "oom_memcg",
    "task_memcg",
    "comm",
    "filename",
    "killer_comm",
    "victim_comm",
    "sender_comm",
    "target_comm",
    "component",
    "apiVersion",
    "creationTimestamp",
    "resourceVersion",
    "lastTransitionTime",
    "startedAt",
    "finishedAt",
    "containerID",
    "time",
    "lastHeartbeatTime",
    "lastProbeTime",
    "lastUpdateTime",
    "startTime",
];

/// Resource and span attributes whose values are names (or URLs with a host).
const NAME_ATTRS: &[&str] = &[
    "service.name",
    "service.namespace",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.node.name",
    "k8s.container.name",
    "k8s.deployment.name",
    "k8s.replicaset.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.job.name",
    "k8s.cronjob.name",
    "k8s.cluster.name",
    "host.name",
    "peer.service",
    "net.peer.name",
    "net.host.name",
    "server.address",
    "client.address",
    "db.name",
    "messaging.destination.name",
];

impl Pseudonyms {
    pub fn new() -> Pseudonyms {
        Pseudonyms::default()
    }

    /// First pass: learns the names an event states.
    pub fn learn(&mut self, e: &Event) {
        self.name(&e.node);
        match &e.body {
            Body::Kube(Kube::Object(o)) => {
                self.name(&o.namespace);
                self.name(&o.name);
                self.name(&o.node);
                if let Ok(v) = o.json.parse() {
                    self.object(&v);
                }
            }
            Body::Kube(Kube::Event(k)) => {
                self.name(&k.namespace);
                self.name(&k.involved.namespace);
                self.name(&k.involved.name);
                self.name(&k.host);
            }
            Body::Span(s) => {
                self.name(&s.service);
                self.attrs(&s.resource);
                self.attrs(&s.attributes);
            }
            Body::AppLog(a) => {
                self.name(&a.service);
                self.attrs(&a.resource);
            }
            Body::Kernel(_) | Body::Log(_) | Body::Meta(_) => {}
        }
    }

    fn attrs(&mut self, attrs: &[Attribute]) {
        for key in NAME_ATTRS {
            if let Some(AttrValue::Str(v)) = find(attrs, key) {
                self.name(v);
            }
        }
        for key in ["url.full", "http.url", "db.connection_string"] {
            if let Some(AttrValue::Str(v)) = find(attrs, key) {
                if let Some(host) = url_host(v) {
                    self.name(host);
                }
            }
        }
    }

    /// The names of a Kubernetes object: its own, its owners', its node's, its containers' and
    /// its host names.
    fn object(&mut self, v: &Value) {
        let s = |v: &Value, path: &[&str]| -> Option<String> {
            let mut cur = v;
            for p in path {
                cur = cur.get(p)?;
            }
            cur.as_str().map(str::to_string)
        };
        for path in [
            &["metadata", "name"][..],
            &["metadata", "namespace"],
            &["spec", "nodeName"],
            &["spec", "hostname"],
            &["spec", "subdomain"],
            &["spec", "serviceName"],
            &["spec", "externalName"],
        ] {
            if let Some(n) = s(v, path) {
                self.name(&n);
            }
        }
        let list = |v: &Value, path: &[&str]| -> Vec<Value> {
            let mut cur = v;
            for p in path {
                match cur.get(p) {
                    Some(c) => cur = c,
                    None => return Vec::new(),
                }
            }
            cur.as_array().cloned().unwrap_or_default()
        };
        for o in list(v, &["metadata", "ownerReferences"]) {
            if let Some(n) = o.get("name").and_then(Value::as_str) {
                self.name(n);
            }
        }
        let spec = v
            .pointer("/spec/template/spec")
            .or_else(|| v.pointer("/spec/jobTemplate/spec/template/spec"))
            .or_else(|| v.get("spec"));
        if let Some(spec) = spec {
            for key in ["containers", "initContainers", "ephemeralContainers"] {
                for c in list(spec, &[key]) {
                    if let Some(n) = c.get("name").and_then(Value::as_str) {
                        self.name(n);
                    }
                }
            }
        }
        for a in list(v, &["status", "addresses"]) {
            if let (Some("Hostname" | "InternalDNS" | "ExternalDNS"), Some(n)) = (
                a.get("type").and_then(Value::as_str),
                a.get("address").and_then(Value::as_str),
            ) {
                self.name(n);
            }
        }
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            for i in items {
                self.object(i);
            }
        }
    }

    /// Learns one name (and gives it its pseudonym).
    fn name(&mut self, name: &str) {
        let name = name.trim();
        if KEEP_WHOLE.contains(&name) || self.names.contains_key(name) || name.len() > 253 {
            return;
        }
        if name.parse::<IpAddr>().is_ok() {
            return;
        }
        let pseudonym = self.pseudonym_of(name);
        if pseudonym != name {
            self.names.insert(name.to_string(), pseudonym);
        }
    }

    /// A name's pseudonym, part by part.
    fn pseudonym_of(&mut self, name: &str) -> String {
        // Addresses written into names (`ip-10-0-135-228`) first.
        let name = DASHED
            .replace_all(name, |c: &regex::Captures| {
                match c[0].replace('-', ".").parse::<Ipv4Addr>() {
                    Ok(ip) => self.addr(IpAddr::V4(ip)).to_string().replace('.', "-"),
                    Err(_) => c[0].to_string(),
                }
            })
            .into_owned();
        let mut out = String::with_capacity(name.len());
        let mut part = String::new();
        for ch in name.chars().chain(std::iter::once('\0')) {
            if ch.is_ascii_alphanumeric() || !ch.is_ascii() {
                part.push(ch);
                continue;
            }
            if !part.is_empty() {
                out.push_str(&self.part(&part));
                part.clear();
            }
            if ch != '\0' {
                out.push(ch);
            }
        }
        out
    }

    fn part(&mut self, part: &str) -> String {
        let lower = part.to_ascii_lowercase();
        if KEEP.contains(&lower.as_str()) || generated(part) {
            return part.to_string();
        }
        if let Some(p) = self.parts.get(part) {
            return p.clone();
        }
        // A readable word that says what it was not: `n` and a number, in order of first sight.
        let mut i = self.parts.len() + 1;
        let mut p = format!("n{i}");
        while self.taken.contains(&p) {
            i += 1;
            p = format!("n{i}");
        }
        self.taken.insert(p.clone());
        self.parts.insert(part.to_string(), p.clone());
        p
    }

    /// An address's pseudonym; addresses that identify nothing are kept.
    fn addr(&mut self, ip: IpAddr) -> IpAddr {
        let keep = match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_unspecified()
                    || v4.is_link_local()
                    || v4.is_multicast()
                    || v4.is_broadcast()
            }
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if keep {
            return ip;
        }
        if let Some(p) = self.addrs.get(&ip) {
            return *p;
        }
        let p = match ip {
            IpAddr::V4(_) => {
                self.next_v4 += 1;
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + self.next_v4))
            }
            IpAddr::V6(_) => {
                self.next_v6 += 1;
                IpAddr::V6(Ipv6Addr::from((0xfd00u128 << 112) + self.next_v6))
            }
        };
        self.addrs.insert(ip, p);
        p
    }

    /// Ends the first pass: every name is known.
    pub fn seal(&mut self) {
        let mut names: Vec<&String> = self.names.keys().collect();
        names.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        if names.is_empty() {
            return;
        }
        // Longest first: at one position, the longest name wins (`cart-7d4b9c` before `cart`).
        let alternation: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
        self.pattern = regex::RegexBuilder::new(&alternation.join("|"))
            .size_limit(1 << 28)
            .build()
            .ok();
    }

    /// Second pass: the event with every name and address replaced.
    pub fn event(&mut self, e: &Event) -> Result<Event, String> {
        let text = serde_json::to_string(e).map_err(|err| err.to_string())?;
        let mut v: Value = serde_json::from_str(&text).map_err(|err| err.to_string())?;
        self.value(&mut v, None);
        let out = serde_json::to_string(&v).map_err(|err| err.to_string())?;
        serde_json::from_str(&out).map_err(|err| format!("the event does not read back: {err}"))
    }

    fn value(&mut self, v: &mut Value, key: Option<&str>) {
        match v {
            Value::String(s) => {
                if key.is_some_and(|k| FIXED_KEYS.contains(&k)) {
                    return;
                }
                if let Some(r) = self.text(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i, key)),
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    // Kubernetes' last-applied-configuration: an object in a string.
                    if let Value::String(s) = item {
                        if s.starts_with('{') {
                            if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                                self.value(&mut inner, None);
                                *s = inner.to_string();
                                continue;
                            }
                        }
                    }
                    self.value(item, Some(k));
                }
            }
            _ => {}
        }
    }

    /// A text with names and addresses replaced; `None` when nothing was.
    pub fn text(&mut self, s: &str) -> Option<String> {
        let mut changed = false;
        let mut cur = std::borrow::Cow::Borrowed(s);
        if let Ok(ip) = cur.parse::<IpAddr>() {
            let p = self.addr(ip);
            return (p != ip).then(|| p.to_string());
        }
        if IPV4.is_match(&cur) {
            let replaced = IPV4
                .replace_all(&cur, |c: &regex::Captures| match c[0].parse::<IpAddr>() {
                    Ok(ip) => self.addr(ip).to_string(),
                    Err(_) => c[0].to_string(),
                })
                .into_owned();
            changed |= replaced != *cur;
            cur = std::borrow::Cow::Owned(replaced);
        }
        if let Some(re) = &self.pattern {
            if re.is_match(&cur) {
                let text: &str = &cur;
                let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                let mut out = String::with_capacity(text.len());
                let (mut last, mut at) = (0, 0);
                while let Some(m) = re.find_at(text, at) {
                    // A name stands as a name: not inside a longer word.
                    if !word(text[..m.start()].chars().next_back())
                        && !word(text[m.end()..].chars().next())
                    {
                        out.push_str(&text[last..m.start()]);
                        out.push_str(&self.names[m.as_str()]);
                        last = m.end();
                        at = m.end();
                    } else {
                        at = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
                    }
                    if at >= text.len() {
                        break;
                    }
                }
                if last > 0 {
                    out.push_str(&text[last..]);
                    changed = true;
                    cur = std::borrow::Cow::Owned(out);
                }
            }
        }
        changed.then(|| cur.into_owned())
    }

    /// The table of names and addresses and their pseudonyms.
    pub fn map(&self) -> Value {
        serde_json::json!({
            "names": self.names,
            "addresses": self.addrs.iter().map(|(a, p)| (a.to_string(), p.to_string())).collect::<BTreeMap<_, _>>(),
        })
    }
}

/// A generated part: a number, a pod or ReplicaSet hash, a uid.
fn generated(part: &str) -> bool {
    let digits = part.bytes().filter(u8::is_ascii_digit).count();
    if digits == part.len() {
        return true;
    }
    // Kubernetes' generated suffixes use consonants and digits only (no vowels, no 0/1/3).
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let k8s = part.len() >= 5 && part.bytes().all(|b| ALPHABET.contains(&b)) && digits > 0;
    let hex = part.len() >= 5 && part.bytes().all(|b| b.is_ascii_hexdigit()) && digits > 0;
    k8s || hex
}

/// The host of a URL (`https://user@host:port/path`).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next()?.trim_start_matches('[')
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_part_by_part_and_consistently() {
        let mut p = Pseudonyms::new();
        for n in [
            "shop",
            "cart",
            "cart-7d4b9c",
            "cart-7d4b9c-x2x4z",
            "ip-10-0-135-228.us-east-2.compute.internal",
            "kube-system",
            "coredns",
        ] {
            p.name(n);
        }
        p.seal();
        let cart = p.names["cart"].clone();
        assert_eq!(p.names["cart-7d4b9c-x2x4z"], format!("{cart}-7d4b9c-x2x4z"));
        assert!(!p.names.contains_key("kube-system") && !p.names.contains_key("coredns"));
        let node = &p.names["ip-10-0-135-228.us-east-2.compute.internal"];
        assert!(node.starts_with("ip-10-0-0-1."), "{node}");
        assert_eq!(
            p.text(
                "GET http://cart.shop.svc.cluster.local:8080/cart from 10.0.135.228 and 10.244.1.7"
            )
            .unwrap(),
            format!(
                "GET http://{cart}.{}.svc.cluster.local:8080/{cart} from 10.0.0.1 and 10.0.0.2",
                p.names["shop"]
            )
        );
        // Inside another word, a name is not a name.
        assert_eq!(p.text("cartography"), None);
        assert_eq!(p.text("127.0.0.1"), None);
        assert_eq!(p.text("fe80::1"), None);
    }

    #[test]
    fn events_read_back_with_their_words_and_ids_kept() {
        let mut p = Pseudonyms::new();
        let mut e = Event::new(
            crate::event::Ts(1_000),
            "app",
            crate::event::Source::Import,
            crate::event::Log::new(crate::event::LogOrigin::App, "app started on node app"),
        );
        e.seq = 7;
        p.learn(&e);
        p.seal();
        let out = p.event(&e).unwrap();
        assert_eq!(out.node.as_ref() as &str, "app", "`app` is a kept word");
        let mut p = Pseudonyms::new();
        let mut e2 = e.clone();
        e2.node = "seen".into();
        p.learn(&e2);
        p.seal();
        let out = p.event(&e2).unwrap();
        assert_ne!(&*out.node, "seen");
        assert_eq!(out.seq, 7);
    }
}
