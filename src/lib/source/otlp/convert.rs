//! OTLP protobuf messages (as `opentelemetry-proto` generates them) → events.
//!
//! Every span and log record becomes one event, keeping what the correlation reads (ids, status,
//! service, resource and record attributes, exception events). Records that cannot be events (an
//! invalid trace or span id, no time) are rejected one by one: the rest of the request is kept,
//! and the count goes back to the client as OTLP partial success.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1 as trace;

use crate::event::{
    find, AppLog, AttrValue, Attribute, Event, Log, LogOrigin, Name, Severity, Source, Span,
    SpanEvent, SpanId, SpanKind, StatusCode, TraceId, Ts,
};

/// What a request turned into.
#[derive(Debug, Default)]
pub struct Converted {
    pub events: Vec<Event>,
    /// Records that could not be kept.
    pub rejected: i64,
    /// Why the first rejected record was rejected.
    pub first_error: String,
}

impl Converted {
    fn reject(&mut self, why: String) {
        if self.rejected == 0 {
            self.first_error = why;
        }
        self.rejected += 1;
    }
}

/// A span longer than this is a broken clock or a flipped bit, not a request.
const MAX_SPAN_NS: u64 = 7 * 86_400 * 1_000_000_000;

/// A record time that cannot be real: before 2000, or more than a day ahead of this machine's
/// clock (a flipped bit once dated a span 2096 and stretched a capture over 73 years).
fn implausible(ts: Ts) -> Option<String> {
    let floor = Ts::from_secs(946_684_800);
    let ahead = Ts::from_datetime(&chrono::Utc::now()).0 + 86_400 * Ts::NANOS_PER_SEC;
    if ts < floor {
        Some(format!("{ts} is before 2000"))
    } else if ts.0 > ahead {
        Some(format!("{ts} is more than a day ahead of this clock"))
    } else {
        None
    }
}

/// The node an event belongs to: `k8s.node.name` of its resource, else the recorder's node.
fn node_of(resource: &[Attribute], default: &Name) -> Name {
    find(resource, "k8s.node.name")
        .and_then(AttrValue::as_str)
        .filter(|n| !n.is_empty())
        .map_or_else(|| default.clone(), Name::from)
}

fn service_of(resource: &[Attribute]) -> Name {
    find(resource, "service.name")
        .and_then(AttrValue::as_str)
        .map_or_else(Name::default, Name::from)
}

pub fn traces(req: ExportTraceServiceRequest, node: &Name) -> Converted {
    let mut out = Converted::default();
    for rs in req.resource_spans {
        let resource = attributes(&rs.resource.map(|r| r.attributes).unwrap_or_default());
        let service = service_of(&resource);
        let node = node_of(&resource, node);
        for ss in rs.scope_spans {
            for s in ss.spans {
                match span(s, &resource, &service) {
                    Ok(span) => {
                        out.events
                            .push(Event::new(span.start, node.clone(), Source::Otlp, span))
                    }
                    Err(why) => out.reject(why),
                }
            }
        }
    }
    out
}

fn span(s: trace::Span, resource: &[Attribute], service: &Name) -> Result<Span, String> {
    let trace_id = id::<16>(&s.trace_id).map(TraceId).ok_or_else(|| {
        format!(
            "span {:?}: invalid trace id {}",
            s.name,
            hex::encode(&s.trace_id)
        )
    })?;
    let span_id = id::<8>(&s.span_id).map(SpanId).ok_or_else(|| {
        format!(
            "span {:?}: invalid span id {}",
            s.name,
            hex::encode(&s.span_id)
        )
    })?;
    if s.start_time_unix_nano == 0 {
        return Err(format!("span {:?}: no start time", s.name));
    }
    let start = Ts(s.start_time_unix_nano);
    if let Some(why) = implausible(start) {
        return Err(format!("span {:?}: start {why}", s.name));
    }
    if s.end_time_unix_nano > 0 && s.end_time_unix_nano < s.start_time_unix_nano {
        return Err(format!("span {:?}: ends before it starts", s.name));
    }
    if s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) > MAX_SPAN_NS {
        return Err(format!("span {:?}: lasts more than a week", s.name));
    }
    let (status, status_message) = match s.status {
        Some(st) => (
            match st.code {
                1 => StatusCode::Ok,
                2 => StatusCode::Error,
                _ => StatusCode::Unset,
            },
            st.message,
        ),
        None => (StatusCode::Unset, String::new()),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id: id::<8>(&s.parent_span_id).map(SpanId),
        kind: SpanKind::parse(&s.kind.to_string()),
        start,
        end: if s.end_time_unix_nano > 0 {
            Ts(s.end_time_unix_nano)
        } else {
            start
        },
        status,
        status_message,
        service: service.clone(),
        resource: resource.to_vec(),
        attributes: attributes(&s.attributes),
        events: s
            .events
            .into_iter()
            .map(|e| SpanEvent {
                ts: if e.time_unix_nano > 0 {
                    Ts(e.time_unix_nano)
                } else {
                    start
                },
                name: e.name,
                attributes: attributes(&e.attributes),
            })
            .collect(),
        name: s.name.into(),
    })
}

pub fn logs(req: ExportLogsServiceRequest, node: &Name) -> Converted {
    let mut out = Converted::default();
    for rl in req.resource_logs {
        let resource = attributes(&rl.resource.map(|r| r.attributes).unwrap_or_default());
        let service = service_of(&resource);
        let node = node_of(&resource, node);
        for sl in rl.scope_logs {
            for r in sl.log_records {
                match log(r, &resource, &service) {
                    Ok((ts, l)) => out
                        .events
                        .push(Event::new(ts, node.clone(), Source::Otlp, l)),
                    Err(why) => out.reject(why),
                }
            }
        }
    }
    out
}

fn log(r: LogRecord, resource: &[Attribute], service: &Name) -> Result<(Ts, AppLog), String> {
    let ts = match (r.time_unix_nano, r.observed_time_unix_nano) {
        (0, 0) => return Err("log record without a time or an observed time".to_string()),
        (0, observed) => Ts(observed),
        (t, _) => Ts(t),
    };
    if let Some(why) = implausible(ts) {
        return Err(format!("log record: time {why}"));
    }
    let trace_id = match r.trace_id.len() {
        0 => None,
        _ => Some(TraceId(id::<16>(&r.trace_id).ok_or_else(|| {
            format!("log record: invalid trace id {}", hex::encode(&r.trace_id))
        })?)),
    };
    let span_id = match r.span_id.len() {
        0 => None,
        _ => Some(SpanId(id::<8>(&r.span_id).ok_or_else(|| {
            format!("log record: invalid span id {}", hex::encode(&r.span_id))
        })?)),
    };
    let body = r.body.as_ref().map(text).unwrap_or_default();
    let severity = match r.severity_number {
        1..=8 => Severity::Debug,
        9..=12 => Severity::Info,
        13..=16 => Severity::Warning,
        17..=20 => Severity::Error,
        21..=24 => Severity::Critical,
        _ => Severity::sniff(&r.severity_text)
            .or_else(|| Severity::sniff(&body))
            .unwrap_or(Severity::Unknown),
    };
    let ident = find(resource, "k8s.container.name")
        .and_then(AttrValue::as_str)
        .map_or_else(|| service.clone(), Name::from);
    let log = Log {
        origin: LogOrigin::App,
        severity,
        ident,
        pid: find(resource, "process.pid")
            .and_then(AttrValue::as_i64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        body,
        approximate_time: r.time_unix_nano == 0,
        trace_id,
        span_id,
    };
    Ok((
        ts,
        AppLog {
            log,
            service: service.clone(),
            resource: resource.to_vec(),
            attributes: attributes(&r.attributes),
        },
    ))
}

/// A non-zero id of exactly N bytes.
fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id: [u8; N] = bytes.try_into().ok()?;
    (id != [0; N]).then_some(id)
}

fn attributes(kvs: &[KeyValue]) -> Vec<Attribute> {
    kvs.iter()
        .map(|kv| {
            Attribute::new(
                kv.key.as_str(),
                kv.value
                    .as_ref()
                    .map_or(AttrValue::Str(Name::default()), value),
            )
        })
        .collect()
}

fn value(v: &AnyValue) -> AttrValue {
    use any_value::Value as V;
    match &v.value {
        Some(V::StringValue(s)) => AttrValue::Str(s.as_str().into()),
        Some(V::BoolValue(b)) => AttrValue::Bool(*b),
        Some(V::IntValue(i)) => AttrValue::Int(*i),
        Some(V::DoubleValue(d)) => AttrValue::Float(*d),
        Some(V::BytesValue(b)) => AttrValue::Bytes(b.clone()),
        Some(V::ArrayValue(a)) => AttrValue::Array(a.values.iter().map(value).collect()),
        Some(V::KvlistValue(kv)) => AttrValue::Array(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .map_or(AttrValue::Str(Name::default()), value);
                    AttrValue::Str(format!("{}={v}", kv.key).into())
                })
                .collect(),
        ),
        _ => AttrValue::Str(Name::default()),
    }
}

/// A log body as text: strings as they are, anything else as it prints.
fn text(v: &AnyValue) -> String {
    match value(v) {
        AttrValue::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn spans_keep_ids_status_resource_and_exceptions_and_bad_ones_are_counted() {
        let good = trace::Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            name: "GET /cart".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            status: Some(trace::Status {
                message: "boom".into(),
                code: 2,
            }),
            attributes: vec![kv("http.route", "/cart")],
            events: vec![trace::span::Event {
                name: "exception".into(),
                attributes: vec![kv("exception.message", "redis timeout")],
                ..Default::default()
            }],
            ..Default::default()
        };
        let zero_trace = trace::Span {
            trace_id: vec![0; 16],
            ..good.clone()
        };
        let short_span = trace::Span {
            span_id: vec![1; 3],
            ..good.clone()
        };
        // A flipped bit: 2096.
        let far = trace::Span {
            start_time_unix_nano: 3_976_000_000_000_000_000,
            end_time_unix_nano: 3_976_000_000_500_000_000,
            ..good.clone()
        };
        let backwards = trace::Span {
            end_time_unix_nano: 1_600_000_000_000_000_000,
            ..good.clone()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "cart"),
                        kv("k8s.pod.name", "cart-7d8f9-x2x4k"),
                        kv("k8s.namespace.name", "shop"),
                        kv("k8s.node.name", "node-7"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![good, zero_trace, short_span, far, backwards],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let got = traces(req, &Name::from("recorder-node"));
        assert_eq!(
            got.rejected, 4,
            "the bad ids, 2096, and a span that ends first"
        );
        assert!(
            got.first_error.contains("invalid trace id"),
            "{}",
            got.first_error
        );
        assert_eq!(got.events.len(), 1);
        let e = &got.events[0];
        assert_eq!((e.node.as_str(), e.source), ("node-7", Source::Otlp));
        let crate::event::Body::Span(s) = &e.body else {
            panic!("not a span")
        };
        assert_eq!(s.trace_id.to_string(), "ab".repeat(16));
        assert_eq!(
            (s.status, s.status_message.as_str()),
            (StatusCode::Error, "boom")
        );
        assert_eq!((s.kind, s.service.as_str()), (SpanKind::Server, "cart"));
        assert_eq!(s.pod(), Some(("shop", "cart-7d8f9-x2x4k")));
        assert_eq!(s.exceptions().count(), 1);
        assert_eq!(s.events[0].ts, s.start);
    }
}
