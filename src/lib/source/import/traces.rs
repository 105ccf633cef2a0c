//! What the two trace importers, [`otlp`](super::otlp) and [`zipkin`](super::zipkin), share.
//!
//! Both turn a JSON dump into [`Span`] events with OTLP semantics, and both place them the same
//! way: every span at its start time, on the node its resource names (`k8s.node.name`, else
//! `host.name`), else on the import's node. Both also read JSON leniently (`null` members as
//! absent, integers as numbers or strings), because exporters disagree on both. These helpers live
//! here so that neither importer depends on the other.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{LineTime, Parsed};
use crate::event::{Attribute, Body, Event, Source, Span};

/// Records a span as an event at its start.
pub(super) fn push_span(out: &mut Parsed, span: Span, node: Arc<str>) {
    let start = span.start;
    let event = Event::new(start, node, Source::Import, Body::Span(Box::new(span)));
    out.push(LineTime::Absolute(start), event);
}

/// The node a span ran on: its resource's `k8s.node.name`, else `host.name`, else `default`.
pub(super) fn node_of<'a>(resource: &'a [Attribute], default: &'a str) -> &'a str {
    let mut named = ["k8s.node.name", "host.name"]
        .into_iter()
        .map(|k| str_attr(resource, k));
    named.find(|s| !s.is_empty()).unwrap_or(default)
}

/// A string attribute, or "".
pub(super) fn str_attr<'a>(attrs: &'a [Attribute], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_str())
        .unwrap_or("")
}

/// Removes `null` members from objects, so that serde's defaults apply to them.
pub(super) fn strip_nulls(v: &mut Value) {
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
pub(super) fn short(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_string(),
    }
}

/// A JSON value as text: strings as they are, null as "", anything else as JSON.
pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Deserializes a non-negative integer given as a number or a string.
pub(super) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
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

#[cfg(test)]
pub(super) mod tests {
    //! The fixtures of the importers' tests, and the tests that feed both importers.

    use std::collections::BTreeSet;
    use std::io::Read;

    use super::*;
    use crate::source::import::{otlp, zipkin, Location};

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/");

    pub(crate) fn read(name: &str) -> String {
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
    pub(crate) fn spans(p: &Parsed) -> Vec<&Span> {
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

    pub(crate) fn services<'a>(spans: &[&'a Span]) -> BTreeSet<&'a str> {
        spans.iter().map(|s| s.service.as_str()).collect()
    }

    #[test]
    fn invalid_json_is_one_rejection() {
        let p = otlp::parse("{\n  \"resourceSpans\": [\n    {\"resource\": }\n", "");
        assert!(p.events.is_empty());
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Line(3));
        let p = zipkin::parse("[{\"traceId\": ", "");
        assert!(p.events.is_empty() && p.rejected.len() == 1);
        assert!(
            otlp::parse("{\"error\": {\"message\": \"x\"}}", "")
                .rejected
                .len()
                == 1
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
            let _ = (otlp::parse(text, "n"), zipkin::parse(text, "n"));
        }
    }
}
