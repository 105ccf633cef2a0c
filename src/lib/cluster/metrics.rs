//! What the cluster consumer knows about itself and the incidents, for `--serve`: the incidents as
//! JSON, the counters in the Prometheus text format, and its health.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::Error;
use crate::pipeline::{Change, State};

/// Closed incidents kept for the API (the newest).
const KEEP_CLOSED: usize = 1000;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub events: BTreeMap<(String, String), u64>,
    pub dropped: BTreeMap<String, u64>,
    pub spool_bytes: BTreeMap<String, u64>,
    /// Per node: estimated offset and applied correction, nanoseconds.
    pub skew: BTreeMap<String, (i64, i64)>,
    pub lag: Option<u64>,
    pub messages: u64,
    pub duplicates: u64,
    pub garbage: u64,
    pub late: u64,
    pub forced: u64,
    /// Incidents by id: state and their JSON (as `-o json` prints them).
    incidents: BTreeMap<u64, (State, Value)>,
    closed_order: Vec<u64>,
    /// Incidents opened or closed, by kind and severity.
    by_kind: BTreeMap<(String, String, &'static str), u64>,
    pub connected: bool,
}

impl Metrics {
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// An incident change as handed out (with the id the consumer shows).
    pub fn change(&self, c: &Change<'_>) {
        let json = crate::report::change_json(c);
        let inc = json.get("incident").cloned().unwrap_or(Value::Null);
        self.with(|m| {
            let kind = c.incident.root_cause.kind.to_string();
            let sev = c.incident.severity.as_str().to_ascii_lowercase();
            if c.state != State::Update {
                let what = if c.state == State::Open {
                    "opened"
                } else {
                    "closed"
                };
                *m.by_kind.entry((kind, sev, what)).or_default() += 1;
            }
            if c.merged_into.is_some() || c.withdrawn {
                m.incidents.remove(&c.id);
                return;
            }
            m.incidents.insert(c.id, (c.state, inc));
            if c.state == State::Closed {
                m.closed_order.push(c.id);
                if m.closed_order.len() > KEEP_CLOSED {
                    let old = m.closed_order.remove(0);
                    m.incidents.remove(&old);
                }
            }
        });
    }

    /// `GET /incidents[?state=open|closed]`.
    pub fn incidents(&self, state: Option<&str>) -> Value {
        self.with(|m| {
            let list: Vec<Value> = m
                .incidents
                .iter()
                .filter(|(_, (s, _))| match state {
                    Some("open") => *s != State::Closed,
                    Some("closed") => *s == State::Closed,
                    _ => true,
                })
                .map(|(id, (s, inc))| incident_value(*id, *s, inc))
                .collect();
            Value::Array(list)
        })
    }

    /// `GET /incidents/ID`.
    pub fn incident(&self, id: u64) -> Option<Value> {
        self.with(|m| {
            m.incidents
                .get(&id)
                .map(|(s, inc)| incident_value(id, *s, inc))
        })
    }

    /// `GET /metrics`, in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.with(|m| {
            let mut s = String::new();
            let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
                let _ = writeln!(s, "# HELP {name} {help}");
                let _ = writeln!(s, "# TYPE {name} {kind}");
                for (labels, v) in rows {
                    let _ = writeln!(s, "{name}{labels} {v}");
                }
            };
            family(
                "tapio_events_total",
                "counter",
                "Events received from the stream, by node and source (rate() gives events/s).",
                m.events
                    .iter()
                    .map(|((n, src), v)| (labels(&[("node", n), ("source", src)]), v.to_string()))
                    .collect(),
            );
            family(
                "tapio_dropped_events_total",
                "counter",
                "Events the nodes' recorders reported lost (drop markers), by node.",
                m.dropped
                    .iter()
                    .map(|(n, v)| (labels(&[("node", n)]), v.to_string()))
                    .collect(),
            );
            family(
                "tapio_publisher_spool_bytes",
                "gauge",
                "Bytes waiting in a node's publish spool, as its last batch said.",
                m.spool_bytes
                    .iter()
                    .map(|(n, v)| (labels(&[("node", n)]), v.to_string()))
                    .collect(),
            );
            family(
                "tapio_clock_offset_seconds",
                "gauge",
                "A node's clock minus the NATS server's, as estimated.",
                m.skew
                    .iter()
                    .map(|(n, (e, _))| (labels(&[("node", n)]), secs(*e)))
                    .collect(),
            );
            family(
                "tapio_clock_correction_seconds",
                "gauge",
                "The correction subtracted from a node's event times.",
                m.skew
                    .iter()
                    .map(|(n, (_, a))| (labels(&[("node", n)]), secs(*a)))
                    .collect(),
            );
            family(
                "tapio_consumer_lag_messages",
                "gauge",
                "Messages of the stream the durable consumer has not received yet.",
                m.lag
                    .map(|l| vec![(String::new(), l.to_string())])
                    .unwrap_or_default(),
            );
            let counters = [
                (
                    "tapio_messages_total",
                    "Messages read from the stream.",
                    m.messages,
                ),
                (
                    "tapio_duplicate_messages_total",
                    "Messages read twice (a resend or a redelivery), skipped.",
                    m.duplicates,
                ),
                (
                    "tapio_garbage_messages_total",
                    "Messages on the subjects that are not tapio batches, skipped.",
                    m.garbage,
                ),
                (
                    "tapio_late_events_total",
                    "Events that arrived behind the reorder window (still used).",
                    m.late,
                ),
                (
                    "tapio_forced_events_total",
                    "Events released early because the reorder window was full.",
                    m.forced,
                ),
            ];
            for (name, help, v) in counters {
                family(name, "counter", help, vec![(String::new(), v.to_string())]);
            }
            family(
                "tapio_incidents_total",
                "counter",
                "Incidents opened and closed, by root-cause kind and severity.",
                m.by_kind
                    .iter()
                    .map(|((k, sev, what), v)| {
                        (
                            labels(&[("kind", k), ("severity", sev), ("event", what)]),
                            v.to_string(),
                        )
                    })
                    .collect(),
            );
            let mut open: BTreeMap<(String, String), u64> = BTreeMap::new();
            for (st, inc) in m.incidents.values() {
                if *st != State::Closed {
                    let k = inc["root_cause"]["kind"].as_str().unwrap_or("").to_string();
                    let sev = inc["severity"].as_str().unwrap_or("").to_ascii_lowercase();
                    *open.entry((k, sev)).or_default() += 1;
                }
            }
            family(
                "tapio_incidents_open",
                "gauge",
                "Incidents open now, by root-cause kind and severity.",
                open.iter()
                    .map(|((k, sev), v)| (labels(&[("kind", k), ("severity", sev)]), v.to_string()))
                    .collect(),
            );
            family(
                "tapio_nats_connected",
                "gauge",
                "1 when the consumer is connected to NATS.",
                vec![(String::new(), u8::from(m.connected).to_string())],
            );
            s
        })
    }

    pub fn healthy(&self) -> bool {
        self.with(|m| m.connected)
    }
}

fn incident_value(id: u64, state: State, inc: &Value) -> Value {
    let mut v = inc.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), id.into());
        o.insert("state".into(), state.as_str().to_ascii_lowercase().into());
    }
    v
}

fn secs(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// `{a="x",b="y"}`, values escaped as the text format wants.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The HTTP API, served on its own thread until dropped.
pub struct Server {
    addr: SocketAddr,
    halt: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` now (a port in use is an error before anything starts) and serves.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| Error::Other(format!("--serve {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Other(format!("--serve {addr}: {e}")))?;
        let halt = Arc::new(AtomicBool::new(false));
        let h = Arc::clone(&halt);
        let rt = super::runtime()?;
        let thread = thread::Builder::new()
            .name("tapio-serve".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(l) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let router = axum::Router::new()
                        .route("/incidents", get(list))
                        .route("/incidents/{id}", get(one))
                        .route("/metrics", get(prometheus))
                        .route("/healthz", get(health))
                        .with_state(metrics);
                    let stop = async move {
                        while !h.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    };
                    let _ = axum::serve(l, router).with_graceful_shutdown(stop).await;
                })
            })
            .map_err(|e| Error::Other(format!("cannot start the HTTP server: {e}")))?;
        Ok(Server {
            addr,
            halt,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
    )
        .into_response()
}

async fn list(AxState(m): AxState<Arc<Metrics>>, RawQuery(q): RawQuery) -> Response {
    let state = q.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("state="))
            .map(str::to_string)
    });
    match state.as_deref() {
        None | Some("open") | Some("closed") | Some("all") => {
            json(StatusCode::OK, &m.incidents(state.as_deref()))
        }
        Some(s) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": format!("state={s}: use open, closed or all") }),
        ),
    }
}

async fn one(AxState(m): AxState<Arc<Metrics>>, Path(id): Path<String>) -> Response {
    match id.parse::<u64>().ok().and_then(|id| m.incident(id)) {
        Some(v) => json(StatusCode::OK, &v),
        None => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no incident {id}") }),
        ),
    }
}

async fn prometheus(AxState(m): AxState<Arc<Metrics>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.prometheus(),
    )
        .into_response()
}

async fn health(AxState(m): AxState<Arc<Metrics>>) -> Response {
    if m.healthy() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_every_family_has_help_and_type() {
        assert_eq!(labels(&[("node", "a\"b\\c")]), r#"{node="a\"b\\c"}"#);
        let m = Metrics::default();
        m.with(|i| {
            i.events.insert(("n1".into(), "ebpf".into()), 5);
            i.lag = Some(3);
        });
        let text = m.prometheus();
        assert!(text.contains("tapio_events_total{node=\"n1\",source=\"ebpf\"} 5\n"));
        assert!(text.contains("tapio_consumer_lag_messages 3\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }
}
