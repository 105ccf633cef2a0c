//! Log lines: the kernel log, syslog / the journal, and applications.

use serde::{Deserialize, Serialize};

use super::span::{find, pod_in};
use super::{AttrValue, Attribute, Name, SpanId, TraceId};

/// Severity, on the syslog scale (the kernel's `KERN_*` levels are the same numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
    /// The line did not say.
    Unknown,
}

impl Severity {
    /// From a syslog priority (0–7); the facility bits are ignored.
    pub fn from_syslog(pri: u32) -> Severity {
        use Severity::*;
        [
            Emergency, Alert, Critical, Error, Warning, Notice, Info, Debug,
        ][(pri & 7) as usize]
    }

    /// The severity a line states in its own text: a klog header (`E1110 14:17:41.900391 …`),
    /// `level=error`, or a JSON `"level":"warn"`. `None` when it says nothing recognisable.
    pub fn sniff(body: &str) -> Option<Severity> {
        let b = body.as_bytes();
        if b.len() > 5 && b[1..5].iter().all(u8::is_ascii_digit) {
            let klog = match b[0] {
                b'I' => Some(Severity::Info),
                b'W' => Some(Severity::Warning),
                b'E' => Some(Severity::Error),
                b'F' => Some(Severity::Critical),
                _ => None,
            };
            if klog.is_some() && b[5] == b' ' {
                return klog;
            }
        }
        let cut = body.char_indices().nth(512).map_or(body.len(), |(i, _)| i);
        let lower = body[..cut].to_ascii_lowercase();
        let value = [
            "level=",
            "\"level\":\"",
            "\"level\": \"",
            "severity=",
            "\"severity\":\"",
            "\"severity\": \"",
            "\"lvl\":\"",
            "\"loglevel\":\"",
            "\"log.level\":\"",
        ]
        .iter()
        .find_map(|k| lower.find(k).map(|i| &lower[i + k.len()..]))?;
        let word: String = value
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        Some(match word.as_str() {
            "trace" | "debug" => Severity::Debug,
            "info" => Severity::Info,
            "notice" => Severity::Notice,
            "warn" | "warning" => Severity::Warning,
            "error" | "err" => Severity::Error,
            "fatal" | "critical" | "crit" | "panic" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Emergency => "emerg",
            Severity::Alert => "alert",
            Severity::Critical => "crit",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
            Severity::Unknown => "-",
        }
    }
}

/// Where a log line was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogOrigin {
    /// The kernel ring buffer (`dmesg`, `/dev/kmsg`).
    Kmsg,
    /// syslog or the systemd journal.
    Journal,
    /// An application (container logs, OTLP logs).
    App,
}

impl LogOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            LogOrigin::Kmsg => "kmsg",
            LogOrigin::Journal => "journal",
            LogOrigin::App => "app",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub origin: LogOrigin,
    pub severity: Severity,
    /// The writer: syslog identifier or unit (`kubelet`, `kernel`), or the container name.
    pub ident: Name,
    pub pid: u32,
    pub body: String,
    /// Whether the timestamp was placed by assumption (a line without its own time).
    pub approximate_time: bool,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
}

impl Log {
    pub fn new(origin: LogOrigin, body: impl Into<String>) -> Log {
        Log {
            origin,
            severity: Severity::Unknown,
            ident: Name::default(),
            pid: 0,
            body: body.into(),
            approximate_time: false,
            trace_id: None,
            span_id: None,
        }
    }
}

/// An application's log record with the resource that wrote it: OTLP logs, container logs. The
/// resource uses OpenTelemetry's names (`service.name`, `k8s.namespace.name`, `k8s.pod.name`,
/// `k8s.container.name`, `k8s.node.name`), whatever the record came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppLog {
    pub log: Log,
    /// `service.name`, else the container's name; empty when unknown.
    pub service: Name,
    pub resource: Vec<Attribute>,
    /// The record's own attributes.
    pub attributes: Vec<Attribute>,
}

impl AppLog {
    pub fn resource_attr(&self, key: &str) -> Option<&AttrValue> {
        find(&self.resource, key)
    }

    /// `(namespace, pod)` from the resource.
    pub fn pod(&self) -> Option<(&str, &str)> {
        pod_in(&self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_sniffed_from_klog_logfmt_and_json() {
        assert_eq!(
            Severity::sniff("E1110 14:17:41.900391    2296 pod_workers.go:1300] x"),
            Some(Severity::Error)
        );
        assert_eq!(
            Severity::sniff("I1110 14:17:44.066997 2296 prober.go:107]"),
            Some(Severity::Info)
        );
        assert_eq!(
            Severity::sniff("time=1 level=warning msg=\"slow\""),
            Some(Severity::Warning)
        );
        assert_eq!(
            Severity::sniff("{\"level\":\"error\",\"msg\":\"dial tcp\"}"),
            Some(Severity::Error)
        );
        assert_eq!(Severity::sniff("Everything is fine"), None);
        assert_eq!(Severity::sniff("E"), None);
    }
}
