//! Spans with OTLP semantics, from the receiver or from imported traces (OTLP/JSON, Zipkin v2).

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Name, Ts};

macro_rules! hex_id {
    ($name:ident, $n:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// Parses hex; shorter ids (64-bit Zipkin trace ids) are left-padded with zeros.
            pub fn from_hex(s: &str) -> Option<$name> {
                let s = s.trim();
                if s.is_empty() || s.len() > 2 * $n || s.len() % 2 != 0 {
                    return None;
                }
                let bytes = hex::decode(s).ok()?;
                let mut id = [0u8; $n];
                id[$n - bytes.len()..].copy_from_slice(&bytes);
                Some($name(id))
            }

            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|&b| b == 0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(self.0))
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    $name::from_hex(&s).ok_or_else(|| D::Error::custom(format!("bad id {s:?}")))
                } else {
                    <[u8; $n]>::deserialize(d).map($name)
                }
            }
        }
    };
}

hex_id!(TraceId, 16, "A 128-bit trace id; printed as 32 hex digits.");
hex_id!(SpanId, 8, "A 64-bit span id; printed as 16 hex digits.");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// From OTLP's numeric kind (0–5) or its enum name (`SPAN_KIND_SERVER`), or Zipkin's (`SERVER`).
    pub fn parse(s: &str) -> SpanKind {
        let s = s.trim_start_matches("SPAN_KIND_");
        match s {
            "1" | "INTERNAL" => SpanKind::Internal,
            "2" | "SERVER" => SpanKind::Server,
            "3" | "CLIENT" => SpanKind::Client,
            "4" | "PRODUCER" => SpanKind::Producer,
            "5" | "CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// From OTLP's numeric code (0–2) or its enum name (`STATUS_CODE_ERROR`).
    pub fn parse(s: &str) -> StatusCode {
        match s.trim_start_matches("STATUS_CODE_") {
            "1" | "OK" => StatusCode::Ok,
            "2" | "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// An attribute value (OTLP `AnyValue`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    Str(#[serde(with = "super::name::plain")] Name),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Bytes(b) => f.write_str(&hex::encode(b)),
            AttrValue::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One key/value attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub key: Name,
    pub value: AttrValue,
}

impl Attribute {
    pub fn new(key: impl Into<Name>, value: AttrValue) -> Attribute {
        Attribute {
            key: key.into(),
            value,
        }
    }
}

/// A timed event inside a span; exceptions are events named `exception`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub ts: Ts,
    pub name: String,
    pub attributes: Vec<Attribute>,
}

/// One span of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    #[serde(with = "super::name::plain")]
    pub name: Name,
    pub kind: SpanKind,
    pub start: Ts,
    pub end: Ts,
    pub status: StatusCode,
    pub status_message: String,
    /// `service.name` of the resource, copied out because everything reads it.
    pub service: Name,
    pub resource: Vec<Attribute>,
    pub attributes: Vec<Attribute>,
    pub events: Vec<SpanEvent>,
}

/// Finds an attribute by key.
/// `(namespace, pod)` from OpenTelemetry resource attributes (`k8s.namespace.name`, `k8s.pod.name`).
pub fn pod_in(resource: &[Attribute]) -> Option<(&str, &str)> {
    let name = find(resource, "k8s.pod.name")?.as_str()?;
    let ns = find(resource, "k8s.namespace.name")
        .and_then(AttrValue::as_str)
        .unwrap_or("");
    Some((ns, name))
}

pub fn find<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|a| *a.key == *key).map(|a| &a.value)
}

impl Span {
    pub fn resource_attr(&self, key: &str) -> Option<&AttrValue> {
        find(&self.resource, key)
    }

    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find(&self.attributes, key)
    }

    pub fn duration_ns(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// The HTTP response status, under the current or the older semantic-convention key.
    pub fn http_status(&self) -> Option<i64> {
        // One pass over the attributes (a span is read for this twice in the pipeline's core).
        let (mut current, mut older) = (None, None);
        for a in &self.attributes {
            match a.key.as_str() {
                "http.response.status_code" if current.is_none() => current = Some(&a.value),
                "http.status_code" if older.is_none() => older = Some(&a.value),
                _ => {}
            }
        }
        current
            .and_then(AttrValue::as_i64)
            .or_else(|| older.and_then(AttrValue::as_i64))
    }

    /// An error by OTLP status, or a server-side HTTP error (≥ 500).
    pub fn is_error(&self) -> bool {
        is_error(self.status, self.http_status())
    }

    /// The pod the span's resource names, as `namespace/name`.
    pub fn pod(&self) -> Option<(&str, &str)> {
        pod_in(&self.resource)
    }

    /// The exception events of the span.
    pub fn exceptions(&self) -> impl Iterator<Item = &SpanEvent> {
        self.events.iter().filter(|e| e.name == "exception")
    }
}

/// An error by OTLP status, or a server-side HTTP error (≥ 500): [`Span::is_error`] with the
/// HTTP status already in hand.
pub fn is_error(status: StatusCode, http_status: Option<i64>) -> bool {
    status == StatusCode::Error || http_status.is_some_and(|c| c >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_hex_and_pad_short_trace_ids() {
        let t = TraceId::from_hex("a03ee8fff1dcd9b9").unwrap();
        assert_eq!(t.to_string(), "0000000000000000a03ee8fff1dcd9b9");
        assert!(TraceId::from_hex("xyz").is_none());
        assert!(SpanId::from_hex("00112233445566778899").is_none());
        assert_eq!(SpanKind::parse("SPAN_KIND_CLIENT"), SpanKind::Client);
        assert_eq!(SpanKind::parse("2"), SpanKind::Server);
        assert_eq!(StatusCode::parse("STATUS_CODE_ERROR"), StatusCode::Error);
    }
}
