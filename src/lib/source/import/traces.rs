//! Trace dumps → span events: OTLP/JSON and Zipkin v2 JSON.
//!
//! Traces are the application's side of an incident (which request failed, which dependency timed
//! out), so `tapio import` reads the two JSON forms people already have on disk: OTLP/JSON (what
//! an OpenTelemetry collector's file exporter writes, and what Jaeger's API v3 returns) and Zipkin
//! v2 span arrays (what Zipkin's API and UI export). Both become [`Span`] events with OTLP
//! semantics, so everything downstream reads one shape.
//!
//! Parsing is per span: a span with a bad id or no start time is rejected with its position and a
//! reason, and the rest of the input still imports. Every span is placed at its start time, on the
//! node its resource names (`k8s.node.name`, else `host.name`), else on the import's node.
//!
//! Choices worth knowing:
//! - OTLP `kvlistValue` attributes become an `Array` of `Str("key=value")` items; `bytesValue` is
//!   decoded from base64 (kept as the string if it is not base64). Ids are hex as the OTLP/JSON
//!   spec says; base64 ids (older protojson exporters) are accepted too. JSON `null` members are
//!   read as absent.
//! - Zipkin records without a `timestamp` are usually fragments of a span reported in several
//!   parts (Zipkin's UI merges them): such a record is merged into the record of the same trace,
//!   id and local service that has a timestamp, and rejected only when there is none.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{LineTime, Location, Parsed};
use crate::event::{
    AttrValue, Attribute, Body, Event, Source, Span, SpanEvent, SpanId, SpanKind, StatusCode,
    TraceId, Ts,
};

/// Parses OTLP/JSON trace exports: one `{"resourceSpans": […]}` document (optionally wrapped in
/// `{"result": …}` as Jaeger's API v3 returns it), or JSON lines (one export request per line, as
/// the collector's file exporter writes). Spans without a valid `traceId`, `spanId` or start time
/// are rejected (at their index among the document's spans, or at their line for JSON lines);
/// `node` is used for spans whose resource names no node.
pub fn parse_otlp(text: &str, node: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut counter = 0;
    for (line, doc) in documents(text, &mut out) {
        otlp_document(doc, line, node, &mut counter, &mut out);
    }
    if out.events.is_empty() && out.rejected.is_empty() {
        out.warnings
            .push("the OTLP input holds no spans".to_string());
    }
    out
}

/// Parses Zipkin v2 JSON: an array of spans, or an array of such arrays (several traces). Records
/// with bad ids, or without a timestamp when no other record of the same span has one, are
/// rejected at their index in the flattened list; `node` is recorded on every span.
pub fn parse_zipkin(text: &str, node: &str) -> Parsed {
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

// ---------------------------------------------------------------------------------------------
// OTLP/JSON

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceSpans {
    resource: Resource,
    scope_spans: Vec<ScopeSpans>,
    /// The name of `scopeSpans` before OTLP 0.15.
    instrumentation_library_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScopeSpans {
    /// Kept as JSON so that one malformed span is rejected alone.
    spans: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    value: Value,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OtlpSpan {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    /// A number (`2`) or an enum name (`SPAN_KIND_SERVER`), as text.
    #[serde(deserialize_with = "text")]
    kind: String,
    #[serde(deserialize_with = "opt_u64")]
    start_time_unix_nano: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    end_time_unix_nano: Option<u64>,
    attributes: Vec<KeyValue>,
    events: Vec<OtlpEvent>,
    status: OtlpStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OtlpEvent {
    #[serde(deserialize_with = "opt_u64")]
    time_unix_nano: Option<u64>,
    name: String,
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OtlpStatus {
    /// A number (`2`) or an enum name (`STATUS_CODE_ERROR`), as text.
    #[serde(deserialize_with = "text")]
    code: String,
    message: String,
}

/// The JSON documents of an OTLP input: the whole text, else each non-empty line with its number
/// when the first one is JSON (bad lines are rejected alone), else one rejection.
fn documents(text: &str, out: &mut Parsed) -> Vec<(Option<usize>, Value)> {
    let err = match serde_json::from_str(text) {
        Ok(doc) => return vec![(None, doc)],
        Err(e) => e,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let first = lines.peek().map_or("", |(_, l)| l);
    if serde_json::from_str::<Value>(first).is_err() {
        out.reject(Location::Line(err.line()), format!("invalid JSON: {err}"));
        return Vec::new();
    }
    let mut docs = Vec::new();
    for (i, l) in lines {
        match serde_json::from_str(l) {
            Ok(doc) => docs.push((Some(i + 1), doc)),
            Err(e) => out.reject(Location::Line(i + 1), format!("invalid JSON: {e}")),
        }
    }
    docs
}

fn otlp_document(doc: Value, line: Option<usize>, node: &str, n: &mut usize, out: &mut Parsed) {
    let doc_at = Location::Line(line.unwrap_or(1));
    let Value::Object(mut top) = doc else {
        out.reject(
            doc_at,
            "expected an OTLP/JSON object ({\"resourceSpans\": […]})",
        );
        return;
    };
    if !top.contains_key("resourceSpans") {
        if let Some(Value::Object(inner)) = top.remove("result") {
            top = inner;
        }
    }
    let Some(Value::Array(resource_spans)) = top.remove("resourceSpans") else {
        out.reject(
            doc_at,
            "no \"resourceSpans\" list: not an OTLP trace export",
        );
        return;
    };
    for (r, mut rs) in resource_spans.into_iter().enumerate() {
        strip_nulls(&mut rs);
        let rs = match ResourceSpans::deserialize(rs) {
            Ok(rs) => rs,
            Err(e) => {
                out.reject(doc_at, format!("resourceSpans[{r}]: {e}"));
                continue;
            }
        };
        let resource = attributes(&rs.resource.attributes);
        let service = str_attr(&resource, "service.name");
        let span_node: Arc<str> = Arc::from(node_of(&resource, node));
        let scopes = rs.scope_spans.into_iter().map(|s| ("scopeSpans", s));
        let legacy = rs.instrumentation_library_spans.into_iter();
        let legacy = legacy.map(|s| ("instrumentationLibrarySpans", s));
        for (s, (field, scope)) in scopes.chain(legacy).enumerate() {
            for (j, v) in scope.spans.into_iter().enumerate() {
                let at = line.map_or(Location::Item(*n), Location::Line);
                *n += 1;
                match otlp_span(v, &resource, service) {
                    Ok(span) => push_span(out, span, span_node.clone()),
                    Err(why) => out.reject(
                        at,
                        format!("span {j} of resourceSpans[{r}].{field}[{s}]: {why}"),
                    ),
                }
            }
        }
    }
}

fn otlp_span(mut v: Value, resource: &[Attribute], service: &str) -> Result<Span, String> {
    strip_nulls(&mut v);
    let s = OtlpSpan::deserialize(v).map_err(|e| format!("not an OTLP span: {e}"))?;
    let bad = |field: &str, value: &str| format!("bad {field} {:?}", short(value));
    let trace_id = otlp_trace_id(&s.trace_id).ok_or_else(|| bad("traceId", &s.trace_id))?;
    let span_id = otlp_span_id(&s.span_id).ok_or_else(|| bad("spanId", &s.span_id))?;
    let parent_span_id = match s.parent_span_id.trim() {
        "" => None,
        p if SpanId::from_hex(p).is_some_and(|p| p.is_zero()) => None,
        p => Some(otlp_span_id(p).ok_or_else(|| bad("parentSpanId", p))?),
    };
    let start = s
        .start_time_unix_nano
        .filter(|&t| t > 0)
        .ok_or("no startTimeUnixNano")?;
    let start = Ts(start);
    let events = s.events.iter().map(|e| SpanEvent {
        ts: e.time_unix_nano.filter(|&t| t > 0).map_or(start, Ts),
        name: e.name.clone(),
        attributes: attributes(&e.attributes),
    });
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: s.name,
        kind: SpanKind::parse(s.kind.trim()),
        start,
        end: s.end_time_unix_nano.filter(|&t| t > 0).map_or(start, Ts),
        status: StatusCode::parse(s.status.code.trim()),
        status_message: s.status.message,
        service: service.to_string().into(),
        resource: resource.to_vec(),
        attributes: attributes(&s.attributes),
        events: events.collect(),
    })
}

/// An OTLP trace id: hex as the OTLP/JSON spec says, else base64 (older protojson exporters);
/// the all-zero id is invalid.
fn otlp_trace_id(s: &str) -> Option<TraceId> {
    let b64 = || Some(TraceId(base64_decode(s.trim())?.try_into().ok()?));
    TraceId::from_hex(s).or_else(b64).filter(|t| !t.is_zero())
}

/// An OTLP span id, read like [`otlp_trace_id`].
fn otlp_span_id(s: &str) -> Option<SpanId> {
    let b64 = || Some(SpanId(base64_decode(s.trim())?.try_into().ok()?));
    SpanId::from_hex(s).or_else(b64).filter(|t| !t.is_zero())
}

fn attributes(kvs: &[KeyValue]) -> Vec<Attribute> {
    kvs.iter()
        .map(|kv| Attribute::new(kv.key.clone(), any_value(&kv.value)))
        .collect()
}

/// An OTLP `AnyValue` (`{"stringValue": …}`, …); a bare JSON value is read as text.
fn any_value(v: &Value) -> AttrValue {
    let Value::Object(m) = v else {
        return AttrValue::Str(text_of(v));
    };
    let Some((kind, x)) = m.iter().next() else {
        return AttrValue::Str(String::new());
    };
    let list = || match x.get("values") {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    };
    match kind.as_str() {
        "intValue" => int_of(x).map_or_else(|| AttrValue::Str(text_of(x)), AttrValue::Int),
        "doubleValue" => float_of(x).map_or_else(|| AttrValue::Str(text_of(x)), AttrValue::Float),
        "boolValue" => AttrValue::Bool(x.as_bool().unwrap_or_else(|| text_of(x) == "true")),
        "bytesValue" => {
            let s = text_of(x);
            base64_decode(s.trim()).map_or(AttrValue::Str(s), AttrValue::Bytes)
        }
        "arrayValue" => AttrValue::Array(list().iter().map(any_value).collect()),
        "kvlistValue" => AttrValue::Array(list().iter().map(key_value).collect()),
        _ => AttrValue::Str(text_of(x)),
    }
}

/// One entry of a `kvlistValue`, as `Str("key=value")`.
fn key_value(kv: &Value) -> AttrValue {
    let key = kv.get("key").map(text_of).unwrap_or_default();
    let value = kv
        .get("value")
        .map_or(AttrValue::Str(String::new()), any_value);
    AttrValue::Str(format!("{key}={value}"))
}

// ---------------------------------------------------------------------------------------------
// Zipkin v2

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
            AttrValue::Str(local.service_name.clone()),
        ));
    }
    endpoint(&mut resource, &local, "net.host.ip", "net.host.port");
    let mut attributes = Vec::new();
    if let Some(remote) = &z.remote_endpoint {
        if !remote.service_name.is_empty() {
            let peer = AttrValue::Str(remote.service_name.clone());
            attributes.push(Attribute::new("peer.service", peer));
        }
        endpoint(&mut attributes, remote, "net.peer.ip", "net.peer.port");
    }
    for (k, v) in &z.tags {
        attributes.push(Attribute::new(k.clone(), AttrValue::Str(v.clone())));
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
        name: z.name,
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
        attrs.push(Attribute::new(ip_key, AttrValue::Str(ip.clone())));
    }
    if let Some(port) = e.port.and_then(|p| i64::try_from(p).ok()) {
        attrs.push(Attribute::new(port_key, AttrValue::Int(port)));
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Records a span as an event at its start.
fn push_span(out: &mut Parsed, span: Span, node: Arc<str>) {
    let start = span.start;
    let event = Event::new(start, node, Source::Import, Body::Span(Box::new(span)));
    out.push(LineTime::Absolute(start), event);
}

/// The node a span ran on: its resource's `k8s.node.name`, else `host.name`, else `default`.
fn node_of<'a>(resource: &'a [Attribute], default: &'a str) -> &'a str {
    let mut named = ["k8s.node.name", "host.name"]
        .into_iter()
        .map(|k| str_attr(resource, k));
    named.find(|s| !s.is_empty()).unwrap_or(default)
}

/// A string attribute, or "".
fn str_attr<'a>(attrs: &'a [Attribute], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_str())
        .unwrap_or("")
}

/// Removes `null` members from objects, so that serde's defaults apply to them.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// An input string for a message, cut at 64 characters.
fn short(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_string(),
    }
}

/// A JSON value as text: strings as they are, null as "", anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn float_of(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Deserializes any JSON value as text (see [`text_of`]).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text_of(&Value::deserialize(d)?))
}

/// Deserializes a non-negative integer given as a number or a string.
fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    let whole = |x: f64| (0.0..1.8e19).contains(&x).then_some(x as u64);
    let n = v.as_u64().or_else(|| v.as_f64().and_then(whole));
    let n = n.or_else(|| v.as_str()?.trim().parse().ok());
    let expected = || {
        format!(
            "expected a non-negative integer, got {}",
            short(&v.to_string())
        )
    };
    n.map(Some).ok_or_else(|| D::Error::custom(expected()))
}

/// Deserializes Zipkin tags: an object whose values are text (see [`text_of`]).
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = serde_json::Map::deserialize(d)?;
    Ok(m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
}

/// Decodes standard or URL-safe base64, padded or not; `None` if it is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.is_empty() || s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::Read;

    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/");

    fn read(name: &str) -> String {
        let path = format!("{DATA}{name}");
        let mut text = String::new();
        if name.ends_with(".gz") {
            let file = std::fs::File::open(&path).expect(&path);
            flate2::read::GzDecoder::new(file)
                .read_to_string(&mut text)
                .expect(&path);
        } else {
            text = std::fs::read_to_string(&path).expect(&path);
        }
        text
    }

    /// The spans of a parse, checking that each event is placed at its span's start.
    fn spans(p: &Parsed) -> Vec<&Span> {
        p.events
            .iter()
            .map(|e| match &e.event.body {
                Body::Span(s) => {
                    assert_eq!((e.time, e.event.ts), (LineTime::Absolute(s.start), s.start));
                    assert_eq!(e.event.source, Source::Import);
                    &**s
                }
                other => panic!("not a span: {other:?}"),
            })
            .collect()
    }

    fn services<'a>(spans: &[&'a Span]) -> BTreeSet<&'a str> {
        spans.iter().map(|s| s.service.as_str()).collect()
    }

    #[test]
    fn hotrod_trace_has_three_redis_timeouts_under_a_healthy_root() {
        let p = parse_otlp(&read("jaeger-ui-hotrod/getTrace-response.json"), "fallback");
        assert!(p.rejected.is_empty() && p.warnings.is_empty(), "{p:?}");
        let spans = spans(&p);
        assert_eq!(spans.len(), 40);
        assert_eq!(services(&spans).len(), 6);
        let trace = "2ea75461946a7dd10f2c15ab36a076cb";
        assert!(spans.iter().all(|s| s.trace_id.to_string() == trace));
        // The resources name the (container) host, so that is the node.
        assert!(p.events.iter().all(|e| &*e.event.node == "2fd43f7d79c6"));

        let errors: Vec<_> = spans
            .iter()
            .filter(|s| s.status == StatusCode::Error)
            .collect();
        assert_eq!(errors.len(), 3);
        for s in errors {
            assert_eq!(
                (s.name.as_str(), s.service.as_str()),
                ("GetDriver", "redis-manual")
            );
            // The status says little; the exception event says what happened.
            assert_eq!(s.status_message, "An error occurred");
            let e = s.exceptions().next().expect("an exception event");
            let message = span_attr(&e.attributes, "exception.message");
            assert_eq!(message, Some(&AttrValue::Str("redis timeout".into())));
        }

        let roots: Vec<_> = spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .collect();
        assert_eq!(roots.len(), 1);
        assert_eq!(
            (roots[0].name.as_str(), roots[0].kind),
            ("GET /dispatch", SpanKind::Server)
        );
        assert_ne!(roots[0].status, StatusCode::Error);
        assert_eq!(roots[0].service, "frontend");
        assert!(roots[0].end > roots[0].start);
    }

    fn span_attr<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a AttrValue> {
        attrs.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    #[test]
    fn zipkin_oauth_trace_has_two_401s() {
        let p = parse_zipkin(
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
        let text = read("zipkin-lens-testdata/smartthings-mobile-web-install.json.gz");
        let records = serde_json::from_str::<Vec<Value>>(&text).map(|v| v.len());
        assert_eq!(records.ok(), Some(1041));
        let p = parse_zipkin(&text, "");
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
        let p = parse_zipkin(&read("zipkin-lens-testdata/yelp.json"), "");
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

    const SPAN: &str =
        r#"{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","#;

    #[test]
    fn otlp_string_enums_number_times_and_any_values() {
        let text = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"checkout"}}}},
                {{"key":"host.name","value":{{"stringValue":"host-a"}}}},
                {{"key":"k8s.node.name","value":{{"stringValue":"node-1"}}}}]}},
              "scopeSpans":[{{"spans":[{SPAN}"parentSpanId":"","name":"POST /pay",
                "kind":"SPAN_KIND_SERVER","startTimeUnixNano":1700000000000000000,
                "endTimeUnixNano":"1700000000500000000",
                "status":{{"code":"STATUS_CODE_ERROR","message":"card declined"}},
                "attributes":[
                  {{"key":"http.response.status_code","value":{{"intValue":502}}}},
                  {{"key":"ratio","value":{{"doubleValue":0.5}}}},
                  {{"key":"retry","value":{{"boolValue":true}}}},
                  {{"key":"raw","value":{{"bytesValue":"aGk="}}}},
                  {{"key":"tags","value":{{"arrayValue":{{"values":[{{"stringValue":"a"}},{{"intValue":"2"}}]}}}}}},
                  {{"key":"map","value":{{"kvlistValue":{{"values":[{{"key":"k","value":{{"stringValue":"v"}}}}]}}}}}}],
                "events":[{{"timeUnixNano":"1700000000400000000","name":"exception","attributes":[
                  {{"key":"exception.message","value":{{"stringValue":"declined"}}}}]}}]}}]}}]}}]}}"#
        );
        let p = parse_otlp(&text, "fallback");
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        let s = spans(&p)[0];
        assert_eq!(&*p.events[0].event.node, "node-1");
        assert_eq!(
            (s.kind, s.status, s.status_message.as_str()),
            (SpanKind::Server, StatusCode::Error, "card declined")
        );
        assert_eq!((s.service.as_str(), s.parent_span_id), ("checkout", None));
        assert_eq!(
            (s.start, s.duration_ns()),
            (Ts(1_700_000_000_000_000_000), 500_000_000)
        );
        assert_eq!(s.http_status(), Some(502));
        assert_eq!(s.attr("ratio"), Some(&AttrValue::Float(0.5)));
        assert_eq!(s.attr("retry"), Some(&AttrValue::Bool(true)));
        assert_eq!(s.attr("raw"), Some(&AttrValue::Bytes(b"hi".to_vec())));
        let array = AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(2)]);
        assert_eq!(s.attr("tags"), Some(&array));
        assert_eq!(
            s.attr("map"),
            Some(&AttrValue::Array(vec![AttrValue::Str("k=v".into())]))
        );
        let e = s.exceptions().next().expect("exception event");
        assert_eq!(e.ts, Ts(1_700_000_000_400_000_000));
        assert_eq!(
            span_attr(&e.attributes, "exception.message"),
            Some(&AttrValue::Str("declined".into()))
        );
    }

    #[test]
    fn otlp_legacy_library_spans_and_a_bad_trace_id_rejected_alone() {
        let text = format!(
            r#"{{"resourceSpans":[{{"instrumentationLibrarySpans":[{{"spans":[
                {SPAN}"name":"ok","kind":3,"startTimeUnixNano":"5","status":{{"code":2}}}},
                {{"traceId":"xyz","spanId":"b7ad6b7169203331","startTimeUnixNano":"5"}},
                {SPAN}"name":"no start"}}]}}]}}]}}"#
        );
        let p = parse_otlp(&text, "fallback");
        let spans = spans(&p);
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].kind, spans[0].status),
            (SpanKind::Client, StatusCode::Error)
        );
        assert_eq!(&*p.events[0].event.node, "fallback");
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].at, Location::Item(1));
        let bad = "span 1 of resourceSpans[0].instrumentationLibrarySpans[0]: bad traceId \"xyz\"";
        assert_eq!(p.rejected[0].reason, bad);
        assert_eq!(p.rejected[1].at, Location::Item(2));
        assert!(
            p.rejected[1].reason.ends_with("no startTimeUnixNano"),
            "{:?}",
            p.rejected
        );
    }

    #[test]
    fn otlp_json_lines_are_read_line_by_line() {
        let line = |name: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN}"name":"{name}","startTimeUnixNano":"7"}}]}}]}}]}}"#
            )
        };
        let text = format!("{}\n\n{{\"resourceSpans\": [\n{}\n", line("a"), line("b"));
        let p = parse_otlp(&text, "");
        let names: Vec<_> = spans(&p).iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Line(3));
    }

    #[test]
    fn invalid_json_is_one_rejection() {
        let p = parse_otlp("{\n  \"resourceSpans\": [\n    {\"resource\": }\n", "");
        assert!(p.events.is_empty());
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Line(3));
        let p = parse_zipkin("[{\"traceId\": ", "");
        assert!(p.events.is_empty() && p.rejected.len() == 1);
        assert!(
            parse_otlp("{\"error\": {\"message\": \"x\"}}", "")
                .rejected
                .len()
                == 1
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
        let p = parse_zipkin(text, "node-z");
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

    #[test]
    fn odd_input_never_panics() {
        let inputs = [
            "", " ", "null", "[]", "[[]]", "{}", "[1, \"x\", null, [null]]", "{\"result\": 3}",
            "{\"resourceSpans\": [1, {\"scopeSpans\": [{\"spans\": [null, 3, {\"traceId\": 5}]}]}]}",
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":-1e400}]}]}]}",
            "[{\"traceId\":\"zz\",\"id\":\"1\",\"timestamp\":1e30,\"tags\":[1]}]",
            "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"bytesValue\":\"€\"}}]}}]}",
        ];
        for text in inputs {
            let _ = (parse_otlp(text, "n"), parse_zipkin(text, "n"));
        }
        assert_eq!(base64_decode("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("a"), None);
    }
}
