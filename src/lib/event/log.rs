//! Log lines: the kernel log, syslog / the journal, and applications.

use serde::{Deserialize, Serialize};

use super::{SpanId, TraceId};

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
    pub ident: String,
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
            ident: String::new(),
            pid: 0,
            body: body.into(),
            approximate_time: false,
            trace_id: None,
            span_id: None,
        }
    }
}
