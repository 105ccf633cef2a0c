//! How an event reads: one line for people (its `Display`, as `tapio cat` prints it), one JSON
//! object for machines ([`Event::json`]).

use std::fmt::{self, Write as _};

use serde_json::{json, Value};

use super::{
    AppLog, Body, Event, Kernel, Kube, KubeEvent, Log, Meta, Object, ObjectKind, Span, StatusCode,
};
use crate::units::kib;

/// One line for a person: `2021-05-19 09:42:58.640  K8S     k8s.event   node-1  …`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        let node = if self.node.is_empty() {
            "-"
        } else {
            &self.node
        };
        write!(
            f,
            "{}  {:<6} {:<10} {:<12} {}",
            self.ts,
            kind.layer(),
            kind.as_str(),
            node,
            self.summary()
        )
    }
}

impl Event {
    /// One JSON object for a machine: the envelope, the kind, and the body's fields under `data`.
    pub fn json(&self) -> Value {
        json(self)
    }

    /// What happened, in words.
    pub fn summary(&self) -> String {
        match &self.body {
            Body::Kernel(k) => kernel(k),
            Body::Kube(Kube::Object(o)) => object(o),
            Body::Kube(Kube::Event(k)) => kube_event(k),
            Body::Span(s) => span(s),
            Body::Log(l) => log(l),
            Body::AppLog(a) => app_log(a),
            Body::Meta(m) => meta(m),
        }
    }
}

fn json(e: &Event) -> Value {
    let data = data(e);
    json!({"seq": e.seq, "ts": e.ts, "node": &*e.node, "source": e.source, "kind": e.kind(), "data": data})
}

/// The body's fields, as `data` of [`Event::json`].
fn data(e: &Event) -> Value {
    let mut data = serde_json::to_value(&e.body).unwrap_or(Value::Null);
    // Externally tagged enums nest one object per level (`{"kernel":{"oom_kill":{…}}}`):
    // `kind` already names the variant, so keep only the innermost fields.
    loop {
        let wrapped = matches!(&data, Value::Object(m)
            if m.len() == 1 && is_wrapper(m) && matches!(m.values().next(), Some(Value::Object(_))));
        match data {
            Value::Object(m) if wrapped => {
                data = m.into_iter().next().map_or(Value::Null, |(_, v)| v);
            }
            _ => break,
        }
    }
    // An application's log reads like any log, with its resource beside the fields.
    if let (Body::AppLog(_), Value::Object(m)) = (&e.body, &mut data) {
        if let Some(Value::Object(log)) = m.remove("log") {
            let rest = std::mem::take(m);
            m.extend(log);
            m.extend(rest);
        }
    }
    data
}

impl Event {
    /// [`Event::json`] written to `out` as one line (what `cat -o json` prints), without building
    /// the object.
    pub fn write_json(&self, out: &mut String) {
        let mut bytes = std::mem::take(out).into_bytes();
        let start = bytes.len();
        if self.json_bytes(&mut bytes).is_err() {
            bytes.truncate(start);
            let _ = serde_json::to_writer(&mut bytes, &json(self));
        }
        bytes.push(b'\n');
        // serde_json writes UTF-8 only.
        *out = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }

    /// [`Event::write_json`]'s object: the envelope, then `data` written straight from the event
    /// where it is the innermost value as it is (kernel events and spans: nearly every event of a
    /// capture), else through [`data`].
    fn json_bytes(&self, w: &mut Vec<u8>) -> serde_json::Result<()> {
        use std::io::Write as _;

        write!(w, "{{\"seq\":{},\"ts\":", self.seq).map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *w, &self.ts)?;
        w.extend_from_slice(b",\"node\":");
        json_str(w, &self.node)?;
        w.extend_from_slice(b",\"source\":");
        serde_json::to_writer(&mut *w, &self.source)?;
        w.extend_from_slice(b",\"kind\":");
        serde_json::to_writer(&mut *w, &self.kind())?;
        w.extend_from_slice(b",\"data\":");
        match &self.body {
            Body::Kernel(k) => match k {
                // The two records of most kernel events, written as serde writes them.
                Kernel::Exec(x) => {
                    write!(w, "{{\"pid\":{},\"ppid\":{},\"comm\":", x.pid, x.ppid)
                        .map_err(serde_json::Error::io)?;
                    json_str(w, &x.comm)?;
                    w.extend_from_slice(b",\"filename\":");
                    json_str(w, &x.filename)?;
                    w.extend_from_slice(b",\"cgroup\":");
                    json_str(w, &x.cgroup)?;
                    w.push(b'}');
                }
                Kernel::Exit(x) => {
                    write!(w, "{{\"pid\":{},\"comm\":", x.pid).map_err(serde_json::Error::io)?;
                    json_str(w, &x.comm)?;
                    write!(
                        w,
                        ",\"code\":{},\"signal\":{},\"cgroup\":",
                        x.code, x.signal
                    )
                    .map_err(serde_json::Error::io)?;
                    json_str(w, &x.cgroup)?;
                    w.push(b'}');
                }
                Kernel::Signal(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::OomKill(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::TcpState(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::TcpRetransmit(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::Task(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::Pressure(x) => serde_json::to_writer(&mut *w, x)?,
                Kernel::CpuThrottle(x) => serde_json::to_writer(&mut *w, x)?,
            },
            Body::Span(s) => serde_json::to_writer(&mut *w, &**s)?,
            _ => serde_json::to_writer(&mut *w, &data(self))?,
        }
        w.push(b'}');
        Ok(())
    }
}

/// A JSON string, as serde_json writes it: text with nothing to escape (a path, a command,
/// nearly every name) is copied whole, after a check of 16 bytes at a time that the compiler
/// vectorizes; anything else goes through serde_json.
fn json_str(w: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    let plain = |c: &[u8]| {
        c.iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    };
    let mut chunks = s.as_bytes().chunks_exact(16);
    if chunks.all(plain) && plain(chunks.remainder()) {
        w.reserve(s.len() + 2);
        w.push(b'"');
        w.extend_from_slice(s.as_bytes());
        w.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(w, s)
    }
}

/// A one-key object whose key is a variant tag of [`Body`] or of the enums inside it.
fn is_wrapper(m: &serde_json::Map<String, Value>) -> bool {
    m.keys().next().is_some_and(|k| {
        matches!(
            k.as_str(),
            "kernel"
                | "kube"
                | "span"
                | "log"
                | "meta"
                | "exec"
                | "exit"
                | "signal"
                | "oom_kill"
                | "tcp_state"
                | "tcp_retransmit"
                | "task"
                | "pressure"
                | "cpu_throttle"
                | "app_log"
                | "object"
                | "event"
                | "drop"
                | "gap"
                | "annotation"
        )
    })
}

/// The signal's name (`SIGKILL`), or its number.
fn signal_name(sig: u8) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .get(sig as usize)
        .map_or_else(|| format!("signal {sig}"), |s| s.to_string())
}

fn kernel(k: &Kernel) -> String {
    match k {
        Kernel::Exec(x) => format!(
            "pid {} ({}) exec {} ppid {}{}",
            x.pid,
            x.comm,
            x.filename,
            x.ppid,
            cgroup(&x.cgroup)
        ),
        Kernel::Exit(x) if x.signal != 0 => {
            format!(
                "pid {} ({}) killed by {}{}",
                x.pid,
                x.comm,
                signal_name(x.signal),
                cgroup(&x.cgroup)
            )
        }
        Kernel::Exit(x) => format!(
            "pid {} ({}) exited with code {}{}",
            x.pid,
            x.comm,
            x.code,
            cgroup(&x.cgroup)
        ),
        Kernel::Signal(s) => format!(
            "{} from pid {} ({}) to pid {} ({})",
            signal_name(s.signal),
            s.sender_pid,
            s.sender_comm,
            s.target_pid,
            s.target_comm
        ),
        Kernel::OomKill(o) => {
            let mut s = format!(
                "OOM kill ({}) victim pid {} ({})",
                o.constraint.as_str(),
                o.victim_pid,
                o.victim_comm
            );
            if o.rss_kib > 0 {
                let _ = write!(s, " rss {}", kib(o.rss_kib));
            }
            if let Some(limit) = o.memcg_limit_kib {
                let _ = write!(s, " limit {}", kib(limit));
            }
            if !o.cgroup().is_empty() {
                let _ = write!(s, " memcg {}", o.cgroup());
            }
            if o.killer_pid != 0 && o.killer_pid != o.victim_pid {
                let _ = write!(s, " (invoked by pid {} {})", o.killer_pid, o.killer_comm);
            }
            s
        }
        Kernel::TcpState(t) => {
            let pid = if t.pid == 0 {
                String::new()
            } else {
                format!(" pid {}", t.pid)
            };
            format!(
                "{} → {} {} ({} → {}){pid}",
                sock(t.saddr, t.sport),
                sock(t.daddr, t.dport),
                t.meaning.as_str(),
                t.old,
                t.new
            )
        }
        Kernel::TcpRetransmit(r) => format!(
            "{} → {} {} retransmit{} in {} ms ({})",
            sock(r.saddr, r.sport),
            sock(r.daddr, r.dport),
            r.count,
            if r.count == 1 { "" } else { "s" },
            r.interval_ms,
            r.state
        ),
        Kernel::Task(t) => format!("pid {} ({}){}", t.pid, t.comm, cgroup(&t.cgroup)),
        Kernel::CpuThrottle(t) => format!(
            "cpu throttled {} in {} of {} periods, waited {} ms in {} ms",
            t.cgroup,
            t.throttled_periods,
            t.periods,
            t.throttled_us / 1000,
            t.interval_ms
        ),
        Kernel::Pressure(p) => format!(
            "memory pressure {} some {}.{:02}% full {}.{:02}% (avg10), stalled {} ms in {} ms",
            if p.cgroup.is_empty() {
                "node"
            } else {
                &p.cgroup
            },
            p.some_avg10 / 100,
            p.some_avg10 % 100,
            p.full_avg10 / 100,
            p.full_avg10 % 100,
            p.some_stall_us / 1000,
            p.interval_ms
        ),
    }
}

fn sock(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    }
}

fn cgroup(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" cgroup {path}")
    }
}

fn qualified(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn object(o: &Object) -> String {
    let mut s = format!(
        "{} {} {}",
        o.kind,
        qualified(&o.namespace, &o.name),
        o.action.as_str()
    );
    if !o.resource_version.is_empty() {
        let _ = write!(s, " rv {}", o.resource_version);
    }
    if let Ok(v) = o.json.parse() {
        let digest = match o.kind {
            ObjectKind::Pod => pod_digest(&v),
            ObjectKind::Node => node_digest(&v),
            _ => String::new(),
        };
        if !digest.is_empty() {
            let _ = write!(s, ": {digest}");
        }
    }
    s
}

/// `Running; cart: running, last terminated OOMKilled (137), restarts 3`.
fn pod_digest(v: &Value) -> String {
    let status = &v["status"];
    let mut parts = Vec::new();
    if let Some(phase) = status["phase"].as_str() {
        let reason = status["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        parts.push(format!("{phase}{reason}"));
    }
    for key in ["initContainerStatuses", "containerStatuses"] {
        for c in status[key].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("?");
            let mut d = format!("{name}: {}", container_state(&c["state"]));
            if c["lastState"].get("terminated").is_some() {
                let _ = write!(d, ", last {}", container_state(&c["lastState"]));
            }
            if let Some(n) = c["restartCount"].as_u64().filter(|&n| n > 0) {
                let _ = write!(d, ", restarts {n}");
            }
            parts.push(d);
        }
    }
    parts.join("; ")
}

fn container_state(state: &Value) -> String {
    if let Some(w) = state.get("waiting") {
        return format!("waiting {}", w["reason"].as_str().unwrap_or(""));
    }
    if let Some(t) = state.get("terminated") {
        let code = t["exitCode"]
            .as_i64()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        return format!("terminated {}{code}", t["reason"].as_str().unwrap_or(""));
    }
    if state.get("running").is_some() {
        return "running".into();
    }
    "unknown".into()
}

/// `Ready=True MemoryPressure=False …`: the conditions that are not fine, or Ready.
fn node_digest(v: &Value) -> String {
    let conds = v["status"]["conditions"].as_array().into_iter().flatten();
    let shown: Vec<String> = conds
        .filter_map(|c| {
            let (t, s) = (c["type"].as_str()?, c["status"].as_str()?);
            (t == "Ready" || s == "True").then(|| format!("{t}={s}"))
        })
        .collect();
    shown.join(" ")
}

fn kube_event(k: &KubeEvent) -> String {
    let about = if k.involved.kind.is_empty() {
        k.namespace.clone()
    } else {
        format!(
            "{} {}",
            k.involved.kind,
            qualified(&k.involved.namespace, &k.involved.name)
        )
    };
    let mut s = format!(
        "{} {} {about}: {}",
        if k.type_.is_empty() { "-" } else { &k.type_ },
        k.reason,
        k.message.trim()
    );
    let mut tail = Vec::new();
    if k.count > 1 {
        tail.push(format!("×{}", k.count));
    }
    if !k.component.is_empty() {
        tail.push(if k.host.is_empty() {
            k.component.clone()
        } else {
            format!("{} on {}", k.component, k.host)
        });
    }
    if !tail.is_empty() {
        let _ = write!(s, " ({})", tail.join(", "));
    }
    s
}

fn span(s: &Span) -> String {
    let ms = s.duration_ns() as f64 / 1e6;
    let mut out = format!(
        "{} {} {} {ms:.1} ms",
        if s.service.is_empty() {
            "-"
        } else {
            &s.service
        },
        s.name,
        s.kind.as_str()
    );
    if let Some(code) = s.http_status() {
        let _ = write!(out, " HTTP {code}");
    }
    match s.status {
        StatusCode::Error if s.status_message.is_empty() => out.push_str(" ERROR"),
        StatusCode::Error => {
            let _ = write!(out, " ERROR {:?}", s.status_message);
        }
        _ => {}
    }
    let _ = write!(out, " trace {} span {}", s.trace_id, s.span_id);
    out
}

fn log(l: &Log) -> String {
    let who = match (l.ident.is_empty(), l.pid) {
        (true, _) => l.origin.as_str().to_string(),
        (false, 0) => l.ident.to_string(),
        (false, pid) => format!("{}[{pid}]", l.ident),
    };
    let approx = if l.approximate_time {
        " (time approximate)"
    } else {
        ""
    };
    format!("{who} {}: {}{approx}", l.severity.as_str(), l.body)
}

fn app_log(a: &AppLog) -> String {
    let who = match (a.pod(), a.service.is_empty()) {
        (Some((ns, pod)), _) => match a
            .resource_attr("k8s.container.name")
            .and_then(|c| c.as_str())
        {
            Some(c) => format!("{ns}/{pod}/{c}"),
            None => format!("{ns}/{pod}"),
        },
        (None, false) => a.service.to_string(),
        (None, true) => "app".to_string(),
    };
    let trace = a
        .log
        .trace_id
        .map_or(String::new(), |t| format!(" (trace {t})"));
    let approx = if a.log.approximate_time {
        " (time approximate)"
    } else {
        ""
    };
    format!(
        "{who} {}: {}{trace}{approx}",
        a.log.severity.as_str(),
        a.log.body
    )
}

fn meta(m: &Meta) -> String {
    match m {
        Meta::Drop {
            source,
            count,
            range,
            reason,
        } => {
            format!(
                "DROP {count} events lost by {source} between {} and {}: {reason}",
                range.from, range.to
            )
        }
        Meta::Gap {
            source,
            range,
            reason,
        } => format!(
            "GAP in {source} from {} to {}: {reason}",
            range.from, range.to
        ),
        Meta::Annotation { text } => format!("note: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, OomConstraint, OomKill, Source, Ts};

    #[test]
    fn json_lines_are_the_json_objects() {
        let cfg = crate::source::generate::Config {
            events: 20_000,
            incident: true,
            ..Default::default()
        };
        let mut events = Vec::new();
        crate::source::generate::generate(&cfg, |e| {
            events.push(e);
            Ok::<_, ()>(())
        })
        .unwrap();
        // Text that JSON escapes, and text beyond ASCII.
        let mut e = events
            .iter()
            .find(|e| matches!(e.body, Body::Span(_)))
            .cloned()
            .expect("the generator makes spans");
        if let Body::Span(s) = &mut e.body {
            s.name = "GET /caf\u{e9}/\"q\"\n\u{1F600}\u{7}".into();
        }
        e.node = "n\u{e9}".into();
        events.push(e);
        for kind in [Kind::Exec, Kind::Exit] {
            let mut e = events
                .iter()
                .find(|e| e.kind() == kind)
                .cloned()
                .expect("the generator makes execs and exits");
            match &mut e.body {
                Body::Kernel(Kernel::Exec(x)) => {
                    x.filename = "/usr/bin/\"q\"\u{e9}".into();
                    x.cgroup = "/a-path-longer-than-sixteen-bytes/\u{1}/end".into();
                    // Something to escape in the first 16 bytes of a longer string.
                    x.comm = "a\\b, and text past the first sixteen bytes".into();
                }
                Body::Kernel(Kernel::Exit(x)) => {
                    x.comm = "tab\there".into();
                    x.code = -1;
                    x.cgroup = "/kubepods/pod\u{1F600}".into();
                }
                _ => unreachable!(),
            }
            events.push(e);
        }
        let mut kinds = std::collections::BTreeSet::new();
        for e in &events {
            let mut line = String::new();
            e.write_json(&mut line);
            let want = serde_json::to_string(&e.json()).unwrap();
            assert_eq!(line.trim_end(), want);
            kinds.insert(e.kind());
        }
        assert!(kinds.len() >= 6, "{kinds:?}");
    }

    #[test]
    fn json_keeps_only_the_innermost_fields() {
        let e = Event::new(
            Ts(1),
            "node-7",
            Source::Ebpf,
            Kernel::OomKill(Box::new(OomKill {
                victim_pid: 4711,
                victim_comm: "java".into(),
                task_memcg: "/kubepods/burstable/podx/y".into(),
                oom_memcg: "/kubepods/burstable/podx".into(),
                constraint: OomConstraint::Memcg,
                rss_kib: 2 << 20,
                total_vm_kib: 0,
                memcg_usage_kib: None,
                memcg_limit_kib: Some(2 << 20),
                killer_pid: 4711,
                killer_comm: "java".into(),
            })),
        );
        let j = e.json();
        assert_eq!(j["kind"], "oom");
        assert_eq!(j["data"]["victim_pid"], 4711);
        assert_eq!(j["ts"], "1970-01-01T00:00:00.000000001Z");
        assert_eq!(
            e.summary(),
            "OOM kill (memcg) victim pid 4711 (java) rss 2.0 GiB limit 2.0 GiB memcg /kubepods/burstable/podx/y"
        );
    }
}
