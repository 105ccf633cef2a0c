//! OTLP/JSON trace dumps → span events.
//!
//! Traces are the application's side of an incident (which request failed, which dependency timed
//! out). OTLP/JSON is a trace dump people already have on disk: it is what an OpenTelemetry
//! collector's file exporter writes, and what Jaeger's API v3 returns. Spans become [`Span`]
//! events, each at its start time on the node its resource names (`k8s.node.name`, else
//! `host.name`), else on the import's node; Zipkin input becomes the same, so everything
//! downstream reads one shape.
//!
//! Parsing is per span: a span with a bad id or no start time is rejected with its position and a
//! reason, and the rest of the input still imports.
//!
//! Choices worth knowing:
//! - `kvlistValue` attributes become an `Array` of `Str("key=value")` items; `bytesValue` is
//!   decoded from base64 (kept as the string if it is not base64). Ids are hex as the OTLP/JSON
//!   spec says; base64 ids (older protojson exporters) are accepted too. JSON `null` members are
//!   read as absent.

use std::sync::Arc;

use base64::alphabet;
use base64::engine::general_purpose::{self, GeneralPurpose};
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::traces::{node_of, opt_u64, push_span, short, str_attr, strip_nulls, text_of};
use super::{Location, Parsed};
use crate::event::{
    AttrValue, Attribute, Span, SpanEvent, SpanId, SpanKind, StatusCode, TraceId, Ts,
};

/// Parses OTLP/JSON trace exports: one `{"resourceSpans": […]}` document (optionally wrapped in
/// `{"result": …}` as Jaeger's API v3 returns it), or JSON lines (one export request per line, as
/// the collector's file exporter writes). Spans without a valid `traceId`, `spanId` or start time
/// are rejected (at their index among the document's spans, or at their line for JSON lines);
/// `node` is used for spans whose resource names no node.
pub fn parse(text: &str, node: &str) -> Parsed {
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
        name: s.name.into(),
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
        return AttrValue::Str(text_of(v).into());
    };
    let Some((kind, x)) = m.iter().next() else {
        return AttrValue::Str(Default::default());
    };
    let list = || match x.get("values") {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    };
    match kind.as_str() {
        "intValue" => int_of(x).map_or_else(|| AttrValue::Str(text_of(x).into()), AttrValue::Int),
        "doubleValue" => {
            float_of(x).map_or_else(|| AttrValue::Str(text_of(x).into()), AttrValue::Float)
        }
        "boolValue" => AttrValue::Bool(x.as_bool().unwrap_or_else(|| text_of(x) == "true")),
        "bytesValue" => {
            let s = text_of(x);
            base64_decode(s.trim()).map_or(AttrValue::Str(s.into()), AttrValue::Bytes)
        }
        "arrayValue" => AttrValue::Array(list().iter().map(any_value).collect()),
        "kvlistValue" => AttrValue::Array(list().iter().map(key_value).collect()),
        _ => AttrValue::Str(text_of(x).into()),
    }
}

/// One entry of a `kvlistValue`, as `Str("key=value")`.
fn key_value(kv: &Value) -> AttrValue {
    let key = kv.get("key").map(text_of).unwrap_or_default();
    let value = kv
        .get("value")
        .map_or(AttrValue::Str(Default::default()), any_value);
    AttrValue::Str(format!("{key}={value}").into())
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

/// Standard base64 without padding (callers strip it); unused low bits in the last character are
/// ignored rather than rejected.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    general_purpose::NO_PAD.with_decode_allow_trailing_bits(true),
);

/// Decodes standard or URL-safe base64 (even mixed), padded or not; `None` if it is not base64 or
/// is empty (so an empty `bytesValue` stays an empty string).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.is_empty() {
        return None;
    }
    // URL-safe base64 differs only in writing `-` and `_` for `+` and `/`.
    let standard: Vec<u8> = s
        .bytes()
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    BASE64.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::import::traces::tests::{read, services, spans};

    #[test]
    fn hotrod_trace_has_three_redis_timeouts_under_a_healthy_root() {
        if !crate::shared_data("hotrod_trace_has_three_redis_timeouts_under_a_healthy_root") {
            return;
        }
        let p = parse(&read("jaeger-ui-hotrod/getTrace-response.json"), "fallback");
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
        let p = parse(&text, "fallback");
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
        // Base64 as exporters write it: padded or not, standard or URL-safe.
        assert_eq!(base64_decode("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("-_8="), Some(vec![0xfb, 0xff]));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode(""), None);
    }

    #[test]
    fn otlp_legacy_library_spans_and_a_bad_trace_id_rejected_alone() {
        let text = format!(
            r#"{{"resourceSpans":[{{"instrumentationLibrarySpans":[{{"spans":[
                {SPAN}"name":"ok","kind":3,"startTimeUnixNano":"5","status":{{"code":2}}}},
                {{"traceId":"xyz","spanId":"b7ad6b7169203331","startTimeUnixNano":"5"}},
                {SPAN}"name":"no start"}}]}}]}}]}}"#
        );
        let p = parse(&text, "fallback");
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
        let p = parse(&text, "");
        let names: Vec<_> = spans(&p).iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Line(3));
    }
}
