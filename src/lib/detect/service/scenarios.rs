//! Whole traces through three services (a → b → c), a baseline, then one fault: the verdict
//! names the service where it originates, and background noise stays background.

use crate::detect::Config;
use crate::event::{
    AttrValue, Attribute, Event, Source, Span, SpanId, SpanKind, StatusCode, TraceId, Ts,
};
use crate::knowledge::RootKind;
use crate::pipeline::run_events;

const T0: u64 = 1_773_482_400 * Ts::NANOS_PER_SEC;
const MS: u64 = 1_000_000;

/// How one request goes: each service's own time, the gap into b, and who fails.
#[derive(Clone, Copy, Default)]
struct Req {
    b_self_ms: u64,
    gap_b_ms: u64,
    b_fails: bool,
    c_fails: bool,
    c_down: bool,
}

#[allow(clippy::too_many_arguments)]
fn span(
    trace: u128,
    id: u64,
    parent: u64,
    svc: &str,
    kind: SpanKind,
    start: u64,
    end: u64,
    error: bool,
) -> Event {
    let mut attrs = vec![];
    if kind == SpanKind::Client {
        let callee = if svc == "a" { "b" } else { "c" };
        attrs.push(Attribute::new(
            "server.address",
            AttrValue::Str(format!("{callee}.shop.svc.cluster.local").into()),
        ));
    }
    let s = Span {
        trace_id: TraceId(trace.to_be_bytes()),
        span_id: SpanId(id.to_be_bytes()),
        parent_span_id: (parent != 0).then(|| SpanId(parent.to_be_bytes())),
        name: format!(
            "{} /x",
            if kind == SpanKind::Client {
                "GET"
            } else {
                "serve"
            }
        )
        .into(),
        kind,
        start: Ts(start),
        end: Ts(end),
        status: if error {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        service: svc.into(),
        resource: vec![Attribute::new(
            "k8s.namespace.name",
            AttrValue::Str("shop".into()),
        )],
        attributes: attrs,
        events: vec![],
    };
    Event::new(Ts(start), "node-1", Source::Otlp, s)
}

/// One trace: a serves, calls b; b serves, calls c; c serves.
fn trace(n: u128, at: u64, r: Req) -> Vec<Event> {
    let id = |k: u64| (n as u64) * 10 + k;
    let c_start = at + 2 * MS + r.gap_b_ms * MS + MS + r.b_self_ms * MS / 2;
    let c_end = c_start + 3 * MS;
    let b_start = at + 2 * MS + r.gap_b_ms * MS;
    let b_end = c_end + r.b_self_ms * MS / 2 + MS;
    let a_end = b_end + 2 * MS;
    let c_err = r.c_fails;
    let b_err = r.b_fails || (c_err || r.c_down);
    let mut v = vec![
        span(n, id(1), 0, "a", SpanKind::Server, at, a_end, b_err),
        span(
            n,
            id(2),
            id(1),
            "a",
            SpanKind::Client,
            at + MS,
            b_end + MS,
            b_err,
        ),
        span(
            n,
            id(3),
            id(2),
            "b",
            SpanKind::Server,
            b_start,
            b_end,
            b_err,
        ),
        span(
            n,
            id(4),
            id(3),
            "b",
            SpanKind::Client,
            c_start - MS,
            c_end + MS / 2,
            c_err || r.c_down,
        ),
    ];
    if !r.c_down {
        v.push(span(
            n,
            id(5),
            id(4),
            "c",
            SpanKind::Server,
            c_start,
            c_end,
            c_err,
        ));
    }
    v
}

/// 60 s of baseline (10 requests a second; c fails 3 % of the time, always), then 40 s of `fault`.
fn run(fault: impl Fn(u128) -> Req) -> Vec<(RootKind, String)> {
    let mut events = Vec::new();
    for n in 0..1000u128 {
        let at = T0 + n as u64 * 100 * MS;
        let background = Req {
            b_self_ms: 5,
            gap_b_ms: 1,
            c_fails: n % 33 == 0,
            ..Req::default()
        };
        let r = if n >= 600 { fault(n) } else { background };
        events.extend(trace(n + 1, at, r));
    }
    events.sort_by_key(|e| e.ts);
    let (v, _) = run_events([events], Config::default());
    v.incidents
        .iter()
        .filter(|i| i.severity >= crate::analysis::Severity::Medium)
        .map(|i| (i.root_cause.kind, i.root_cause.entity.to_string()))
        .collect()
}

fn normal(n: u128) -> Req {
    Req {
        b_self_ms: 5,
        gap_b_ms: 1,
        c_fails: n % 33 == 0,
        ..Req::default()
    }
}

#[test]
fn background_errors_that_never_change_are_no_incident() {
    assert_eq!(run(normal), []);
}

#[test]
fn errors_are_blamed_where_they_originate_not_on_the_callers() {
    let v = run(|n| Req {
        b_fails: n % 2 == 0,
        ..normal(n)
    });
    assert_eq!(v, [(RootKind::ServiceErrors, "service/shop/b".to_string())]);
}

#[test]
fn a_service_that_got_slower_itself_is_the_root_not_its_callers() {
    let v = run(|n| Req {
        b_self_ms: 80,
        ..normal(n)
    });
    assert_eq!(
        v,
        [(RootKind::ServiceLatency, "service/shop/b".to_string())]
    );
}

#[test]
fn a_delay_between_caller_and_server_is_network_latency_into_the_server() {
    let v = run(|n| Req {
        gap_b_ms: 120,
        ..normal(n)
    });
    assert_eq!(
        v,
        [(RootKind::NetworkLatency, "service/shop/b".to_string())]
    );
}

#[test]
fn calls_that_never_reach_a_service_say_it_is_down() {
    let v = run(|n| Req {
        c_down: true,
        ..normal(n)
    });
    assert_eq!(
        v,
        [(
            RootKind::DependencyUnreachable,
            "service/shop/c".to_string()
        )]
    );
}
