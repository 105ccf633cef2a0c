//! Zipkin v2 JSON trace dumps → span events.
//!
//! Zipkin v2 span arrays are what Zipkin's API and UI export, so they are the trace dump of the
//! teams that run Zipkin rather than an OpenTelemetry collector. Each record becomes a [`Span`]
//! event with OTLP semantics (the local service and endpoint as the resource, the remote ones as
//! `peer.service` and `net.peer.*` attributes, the `error` tag as an error status), placed at its
//! start time as for [`otlp`](super::otlp) input, so everything downstream reads one shape.
//!
//! Parsing is per record: a record with a bad id is rejected with its index and a reason, and the
//! rest of the input still imports. JSON `null` members are read as absent.
//!
//! Records without a `timestamp` are usually fragments of a span reported in several parts
//! (Zipkin's UI merges them): such a record is merged into the record of the same trace, id and
//! local service that has a timestamp, and rejected only when there is none.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::traces::{node_of, opt_u64, push_span, short, strip_nulls, text_of};
use super::{Location, Parsed};
use crate::event::{
    AttrValue, Attribute, Span, SpanEvent, SpanId, SpanKind, StatusCode, TraceId, Ts,
};

/// Parses Zipkin v2 JSON: an array of spans, or an array of such arrays (several traces). Records
/// with bad ids, or without a timestamp when no other record of the same span has one, are
/// rejected at their index in the flattened list; `node` is recorded on every span.
pub fn parse(text: &str, node: &str) -> Parsed {
    let mut out = Parsed::default();
    let items = match serde_json::from_str(text) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            out.reject(
                Location::Line(1),
                "expected a JSON array of Zipkin v2 spans",
            );
            return out;
        }
        Err(e) => {
            out.reject(Location::Line(e.line()), format!("invalid JSON: {e}"));
            return out;
        }
    };
    let records = items.into_iter().flat_map(|v| match v {
        Value::Array(trace) => trace,
        v => vec![v],
    });
    let mut spans: Vec<Option<ZSpan>> = Vec::new();
    for (i, mut v) in records.enumerate() {
        strip_nulls(&mut v);
        match ZSpan::deserialize(v) {
            Ok(z) => spans.push(Some(ZSpan {
                timestamp: z.timestamp.filter(|&t| t > 0),
                ..z
            })),
            Err(e) => {
                out.reject(Location::Item(i), format!("not a Zipkin v2 span: {e}"));
                spans.push(None);
            }
        }
    }
    let merged = merge_fragments(&mut spans, &mut out);
    if merged > 0 {
        out.warnings.push(format!(
            "{merged} Zipkin span records without a timestamp were merged into the record of the \
             same span (same trace, id and local service) that has one"
        ));
    }
    for (i, z) in spans.into_iter().enumerate() {
        match z.map(zipkin_span) {
            Some(Ok(span)) => {
                let span_node = node_of(&span.resource, node).into();
                push_span(&mut out, span, span_node);
            }
            Some(Err(reason)) => out.reject(Location::Item(i), reason),
            None => {}
        }
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ZSpan {
    trace_id: String,
    id: String,
    parent_id: String,
    /// `CLIENT`, `SERVER`, `PRODUCER` or `CONSUMER`.
    kind: String,
    name: String,
    /// Microseconds since the epoch.
    #[serde(deserialize_with = "opt_u64")]
    timestamp: Option<u64>,
    /// Microseconds.
    #[serde(deserialize_with = "opt_u64")]
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Vec<Annotation>,
    /// Strings by the spec; other JSON values are kept as their JSON text.
    #[serde(deserialize_with = "tags")]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Endpoint {
    service_name: String,
    ipv4: String,
    ipv6: String,
    #[serde(deserialize_with = "opt_u64")]
    port: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Annotation {
    #[serde(deserialize_with = "opt_u64")]
    timestamp: Option<u64>,
    value: String,
}

impl ZSpan {
    /// Takes what a fragment of the same span adds: the fields this record lacks, the tags it
    /// does not have, the fragment's annotations.
    fn absorb(&mut self, o: ZSpan) {
        for (mine, theirs) in [(&mut self.name, o.name), (&mut self.kind, o.kind)] {
            if mine.is_empty() {
                *mine = theirs;
            }
        }
        if self.parent_id.is_empty() {
            self.parent_id = o.parent_id;
        }
        self.duration = self.duration.or(o.duration);
        self.remote_endpoint = self.remote_endpoint.take().or(o.remote_endpoint);
        for (k, v) in o.tags {
            self.tags.entry(k).or_insert(v);
        }
        self.annotations.extend(o.annotations);
    }
}

/// Merges every record without a timestamp into the timed record of the same trace, id and local
/// service, or rejects it; returns how many were merged.
fn merge_fragments(spans: &mut [Option<ZSpan>], out: &mut Parsed) -> usize {
    let key = |z: &ZSpan| {
        let service = z
            .local_endpoint
            .as_ref()
            .map_or("", |e| e.service_name.as_str());
        let id = |s: &str| s.trim().to_ascii_lowercase();
        (id(&z.trace_id), id(&z.id), service.to_string())
    };
    let mut timed = HashMap::new();
    for (i, z) in spans.iter().enumerate() {
        if let Some(z) = z.as_ref().filter(|z| z.timestamp.is_some()) {
            timed.entry(key(z)).or_insert(i);
        }
    }
    let mut merged = 0;
    for i in 0..spans.len() {
        let Some(z) = spans[i].take_if(|z| z.timestamp.is_none()) else {
            continue;
        };
        match timed
            .get(&key(&z))
            .and_then(|&t| spans.get_mut(t))
            .and_then(Option::as_mut)
        {
            Some(target) => {
                target.absorb(z);
                merged += 1;
            }
            None => {
                let why = format!(
                    "no timestamp, and no other record of span {:?} has one",
                    short(&z.id)
                );
                out.reject(Location::Item(i), why);
            }
        }
    }
    merged
}

fn zipkin_span(z: ZSpan) -> Result<Span, String> {
    let bad = |field: &str, value: &str| format!("bad {field} {:?}", short(value));
    let trace_id = TraceId::from_hex(&z.trace_id).filter(|t| !t.is_zero());
    let trace_id = trace_id.ok_or_else(|| bad("traceId", &z.trace_id))?;
    let span_id = SpanId::from_hex(&z.id)
        .filter(|t| !t.is_zero())
        .ok_or_else(|| bad("id", &z.id))?;
    let parent_span_id = match z.parent_id.trim() {
        "" => None,
        p => Some(SpanId::from_hex(p).ok_or_else(|| bad("parentId", p))?).filter(|p| !p.is_zero()),
    };
    let start = Ts::from_micros(z.timestamp.ok_or("no timestamp")?);
    let end = Ts(start
        .0
        .saturating_add(z.duration.unwrap_or(0).saturating_mul(1_000)));

    let local = z.local_endpoint.unwrap_or_default();
    let mut resource = Vec::new();
    if !local.service_name.is_empty() {
        resource.push(Attribute::new(
            "service.name",
            AttrValue::Str(local.service_name.as_str().into()),
        ));
    }
    endpoint(&mut resource, &local, "net.host.ip", "net.host.port");
    let mut attributes = Vec::new();
    if let Some(remote) = &z.remote_endpoint {
        if !remote.service_name.is_empty() {
            let peer = AttrValue::Str(remote.service_name.as_str().into());
            attributes.push(Attribute::new("peer.service", peer));
        }
        endpoint(&mut attributes, remote, "net.peer.ip", "net.peer.port");
    }
    for (k, v) in &z.tags {
        attributes.push(Attribute::new(k.clone(), AttrValue::Str(v.as_str().into())));
        if let ("http.status_code", Ok(code)) = (k.as_str(), v.trim().parse::<i64>()) {
            attributes.push(Attribute::new(
                "http.response.status_code",
                AttrValue::Int(code),
            ));
        }
    }
    let (status, status_message) = match z.tags.get("error") {
        Some(message) => (StatusCode::Error, message.clone()),
        None => (StatusCode::Unset, String::new()),
    };
    let events = z.annotations.into_iter().map(|a| SpanEvent {
        ts: a.timestamp.map_or(start, Ts::from_micros),
        name: a.value,
        attributes: Vec::new(),
    });
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: z.name.into(),
        kind: SpanKind::parse(z.kind.trim()),
        start,
        end,
        status,
        status_message,
        service: local.service_name.into(),
        resource,
        attributes,
        events: events.collect(),
    })
}

/// An endpoint's address (IPv4, else IPv6) and port, under the given keys.
fn endpoint(attrs: &mut Vec<Attribute>, e: &Endpoint, ip_key: &str, port_key: &str) {
    let ip = if e.ipv4.is_empty() { &e.ipv6 } else { &e.ipv4 };
    if !ip.is_empty() {
        attrs.push(Attribute::new(ip_key, AttrValue::Str(ip.as_str().into())));
    }
    if let Some(port) = e.port.and_then(|p| i64::try_from(p).ok()) {
        attrs.push(Attribute::new(port_key, AttrValue::Int(port)));
    }
}

/// Deserializes Zipkin tags: an object whose values are text (see [`text_of`]).
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = serde_json::Map::deserialize(d)?;
    Ok(m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::source::import::traces::tests::{read, services, spans};

    #[test]
    fn zipkin_oauth_trace_has_two_401s() {
        if !crate::shared_data("zipkin_oauth_trace_has_two_401s") {
            return;
        }
        let p = parse(
            &read("zipkin-lens-testdata/smartthings-oauth-authorization.json"),
            "n1",
        );
        assert!(p.rejected.is_empty() && p.warnings.is_empty(), "{p:?}");
        let spans = spans(&p);
        assert_eq!(spans.len(), 175);
        assert_eq!(services(&spans).len(), 8);
        assert!(p.events.iter().all(|e| &*e.event.node == "n1"));
        let mut unauthorized: Vec<_> = spans
            .iter()
            .filter(|s| s.http_status() == Some(401))
            .map(|s| {
                (
                    s.service.as_str(),
                    s.name.as_str(),
                    s.kind,
                    s.status,
                    s.status_message.as_str(),
                )
            })
            .collect();
        unauthorized.sort_by_key(|u| u.0);
        assert_eq!(
            unauthorized,
            [
                (
                    "auth",
                    "post /sso/authenticate",
                    SpanKind::Server,
                    StatusCode::Error,
                    "401"
                ),
                (
                    "stlogin",
                    "post",
                    SpanKind::Client,
                    StatusCode::Error,
                    "401"
                ),
            ]
        );
    }

    #[test]
    fn zipkin_mobile_install_merges_its_timestampless_fragments() {
        if !crate::shared_data("zipkin_mobile_install_merges_its_timestampless_fragments") {
            return;
        }
        let text = read("zipkin-lens-testdata/smartthings-mobile-web-install.json.gz");
        let records = serde_json::from_str::<Vec<Value>>(&text).map(|v| v.len());
        assert_eq!(records.ok(), Some(1041));
        let p = parse(&text, "");
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        // 84 records carry only ids, name and endpoint: halves of shared spans reported twice.
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].starts_with("84 Zipkin span records"),
            "{:?}",
            p.warnings
        );
        let spans = spans(&p);
        assert_eq!(spans.len(), 1041 - 84);
        assert_eq!(services(&spans).len(), 16);
        let not_found: Vec<_> = spans
            .iter()
            .copied()
            .filter(|s| s.http_status() == Some(404))
            .collect();
        assert_eq!(not_found.len(), 2);
        assert!(not_found
            .iter()
            .all(|s| s.span_id.to_string() == "71687cb74971c332"));
        assert_eq!(services(&not_found), BTreeSet::from(["alice", "execution"]));
    }

    #[test]
    fn zipkin_yelp_trace_has_no_errors() {
        if !crate::shared_data("zipkin_yelp_trace_has_no_errors") {
            return;
        }
        let p = parse(&read("zipkin-lens-testdata/yelp.json"), "");
        assert!(p.rejected.is_empty() && p.warnings.is_empty(), "{p:?}");
        let spans = spans(&p);
        assert_eq!(spans.len(), 16);
        assert!(spans
            .iter()
            .all(|s| s.status != StatusCode::Error && !s.is_error()));
        assert_eq!(
            spans.iter().filter(|s| s.parent_span_id.is_none()).count(),
            1
        );
    }

    #[test]
    fn zipkin_error_tag_endpoints_annotations_and_missing_timestamp() {
        let text = r#"[[
            {"traceId":"a03ee8fff1dcd9b9","id":"0000000000000001","name":"get /cart","kind":"SERVER",
             "timestamp":1600000000000000,"duration":1500,"parentId":null,
             "localEndpoint":{"serviceName":"cart","ipv4":"10.0.0.1","port":8080},
             "remoteEndpoint":{"serviceName":"web","ipv6":"::1","port":51000},
             "tags":{"error":"redis timeout","http.status_code":"503","retries":2},
             "annotations":[{"timestamp":1600000000000500,"value":"cache miss"}]},
            {"traceId":"a03ee8fff1dcd9b9","id":"0000000000000002","name":"lost"}],
           [{"traceId":"a03ee8fff1dcd9b9","id":"0000000000000003","parentId":"0000000000000001",
             "timestamp":1600000000000100}]]"#;
        let p = parse(text, "node-z");
        let spans = spans(&p);
        assert_eq!(spans.len(), 2);
        let s = spans[0];
        assert_eq!(s.trace_id.to_string(), "0000000000000000a03ee8fff1dcd9b9");
        assert_eq!(
            (s.status, s.status_message.as_str()),
            (StatusCode::Error, "redis timeout")
        );
        assert_eq!(
            (s.name.as_str(), s.kind, s.duration_ns()),
            ("get /cart", SpanKind::Server, 1_500_000)
        );
        assert_eq!(
            s.resource_attr("service.name"),
            Some(&AttrValue::Str("cart".into()))
        );
        assert_eq!(
            s.resource_attr("net.host.port"),
            Some(&AttrValue::Int(8080))
        );
        assert_eq!(s.attr("peer.service"), Some(&AttrValue::Str("web".into())));
        assert_eq!(s.attr("net.peer.ip"), Some(&AttrValue::Str("::1".into())));
        assert_eq!(
            s.attr("http.response.status_code"),
            Some(&AttrValue::Int(503))
        );
        assert_eq!(s.attr("retries"), Some(&AttrValue::Str("2".into())));
        assert_eq!(
            (s.events[0].name.as_str(), s.events[0].ts),
            ("cache miss", Ts(1_600_000_000_000_500_000))
        );
        assert_eq!(spans[1].kind, SpanKind::Unspecified);
        assert_eq!(spans[1].status, StatusCode::Unset);
        assert_eq!(spans[1].parent_span_id, Some(s.span_id));
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Item(1));
        assert!(
            p.rejected[0].reason.starts_with("no timestamp"),
            "{:?}",
            p.rejected
        );
    }
}
