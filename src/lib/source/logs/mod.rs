//! Container logs: the kubelet's log files (CRI format, or docker's `json-file`) and
//! `kubectl logs` output, as application log events attributed to their pod and container.
//!
//! - [`LogPath`]: what a kubelet log path says — `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`
//!   (and its rotated `<n>.log.<time>[.gz]`), or `/var/log/containers/<pod>_<ns>_<container>-<id>.log`;
//! - [`parse_line`]: one line of either file format (time, stream, whether it is partial);
//! - [`Joiner`]: CRI partial lines (`P`) and docker's split lines joined into whole messages, per
//!   stream, with a length cap;
//! - [`app_log`]: a message as an [`AppLog`] with OpenTelemetry resource attributes
//!   (`k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`, `k8s.container.name`,
//!   `k8s.container.restart_count`), its severity and any trace/span ids it carries.
//!
//! [`follow`] tails the files of a node live, for `tapio record --logs`.

pub mod follow;

use std::sync::LazyLock;

use regex::Regex;

use crate::event::{
    AppLog, AttrValue, Attribute, Log, LogOrigin, Name, Severity, SpanId, TraceId, Ts,
};

/// Who wrote a log file, from its path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPath {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    /// The container's restart count (the file's number); `None` in the `/var/log/containers` layout.
    pub restart: Option<u32>,
    pub container_id: String,
}

static PODS_DIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|/)([a-z0-9][-a-z0-9.]*)_([a-z0-9][-a-z0-9.]*)_([0-9a-fA-F-]{32,36})/([a-z0-9][-a-z0-9]*)/(\d+)\.log(?:\.\d{8}-\d{6}(?:\.gz)?)?$")
        .expect("static regex")
});
static CONTAINERS_DIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|/)([a-z0-9][-a-z0-9.]*)_([a-z0-9][-a-z0-9.]*)_([a-z0-9][-a-z0-9]*)-([0-9a-f]{64})\.log$")
        .expect("static regex")
});

impl LogPath {
    /// The attribution a kubelet log path gives; `None` for other paths.
    pub fn parse(path: &str) -> Option<LogPath> {
        if let Some(c) = PODS_DIR.captures(path) {
            return Some(LogPath {
                namespace: c[1].to_string(),
                pod: c[2].to_string(),
                uid: c[3].to_string(),
                container: c[4].to_string(),
                restart: c[5].parse().ok(),
                container_id: String::new(),
            });
        }
        let c = CONTAINERS_DIR.captures(path)?;
        Some(LogPath {
            pod: c[1].to_string(),
            namespace: c[2].to_string(),
            container: c[3].to_string(),
            container_id: c[4].to_string(),
            ..LogPath::default()
        })
    }

    /// The resource attributes of the container's log events.
    pub fn resource(&self) -> Vec<Attribute> {
        let mut r = vec![
            Attribute::new(
                "k8s.namespace.name",
                AttrValue::Str(self.namespace.as_str().into()),
            ),
            Attribute::new("k8s.pod.name", AttrValue::Str(self.pod.as_str().into())),
            Attribute::new(
                "k8s.container.name",
                AttrValue::Str(self.container.as_str().into()),
            ),
        ];
        if !self.uid.is_empty() {
            r.push(Attribute::new(
                "k8s.pod.uid",
                AttrValue::Str(self.uid.as_str().into()),
            ));
        }
        if let Some(n) = self.restart {
            r.push(Attribute::new(
                "k8s.container.restart_count",
                AttrValue::Int(n.into()),
            ));
        }
        if !self.container_id.is_empty() {
            r.push(Attribute::new(
                "container.id",
                AttrValue::Str(self.container_id.as_str().into()),
            ));
        }
        r
    }
}

/// Which output a line was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of a container log file.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    pub ts: Ts,
    pub stream: Stream,
    /// A fragment of a longer message, continued by the next line of the stream.
    pub partial: bool,
    pub text: std::borrow::Cow<'a, str>,
}

/// One line in the CRI format (`2024-05-01T10:02:11.204357891Z stderr F message`) or docker's
/// `json-file` format (`{"log":"message\n","stream":"stderr","time":"…"}`); `None` for neither.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('{') {
        #[derive(serde::Deserialize)]
        struct Docker {
            log: String,
            stream: String,
            time: String,
        }
        let d: Docker = serde_json::from_str(line).ok()?;
        let ts = Ts::parse_rfc3339(&d.time)?;
        let stream = if d.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let partial = !d.log.ends_with('\n');
        let text = d.log.strip_suffix('\n').unwrap_or(&d.log).to_string();
        return Some(Line {
            ts,
            stream,
            partial,
            text: std::borrow::Cow::Owned(text),
        });
    }
    let mut parts = line.splitn(4, ' ');
    let ts = Ts::parse_rfc3339(parts.next()?)?;
    let stream = match parts.next()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    Some(Line {
        ts,
        stream,
        partial,
        text: std::borrow::Cow::Borrowed(parts.next().unwrap_or("")),
    })
}

/// Whether a text is a container log file: its first non-empty line parses.
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| parse_line(l).is_some())
}

/// A whole message, out of one or more lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The time of its first line.
    pub ts: Ts,
    pub stream: Stream,
    pub text: String,
    /// Bytes cut off above the length cap.
    pub cut: u64,
}

/// Joins partial lines per stream, and cuts messages longer than `max` bytes.
#[derive(Debug)]
pub struct Joiner {
    max: usize,
    open: [Option<Message>; 2],
}

impl Joiner {
    pub fn new(max: usize) -> Joiner {
        Joiner {
            max: max.max(64),
            open: [None, None],
        }
    }

    /// Adds a line; returns the message it completes, if any.
    pub fn push(&mut self, line: Line<'_>) -> Option<Message> {
        let slot = &mut self.open[line.stream as usize];
        let m = slot.get_or_insert_with(|| Message {
            ts: line.ts,
            stream: line.stream,
            text: String::new(),
            cut: 0,
        });
        let room = self.max.saturating_sub(m.text.len());
        if line.text.len() <= room {
            m.text.push_str(&line.text);
        } else {
            let mut end = room;
            while !line.text.is_char_boundary(end) {
                end -= 1;
            }
            m.text.push_str(&line.text[..end]);
            m.cut += (line.text.len() - end) as u64;
        }
        if line.partial {
            None
        } else {
            slot.take()
        }
    }

    /// Messages still open (the file ended in the middle of one).
    pub fn flush(&mut self) -> Vec<Message> {
        self.open.iter_mut().filter_map(Option::take).collect()
    }
}

static TRACE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)"?trace[_-]?id"?\s*[=:]\s*"?([0-9a-f]{32})\b"#).expect("static regex")
});
static SPAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)"?span[_-]?id"?\s*[=:]\s*"?([0-9a-f]{16})\b"#).expect("static regex")
});

/// The trace and span ids a line carries (`trace_id=…`, `"traceId":"…"`, `trace-id: …`).
pub fn ids(text: &str) -> (Option<TraceId>, Option<SpanId>) {
    if !text.contains("race") && !text.contains("RACE") {
        return (None, None);
    }
    let trace = TRACE
        .captures(text)
        .and_then(|c| TraceId::from_hex(&c[1]))
        .filter(|t| !t.is_zero());
    let span = SPAN
        .captures(text)
        .and_then(|c| SpanId::from_hex(&c[1]))
        .filter(|s| !s.is_zero());
    (trace, span)
}

/// A message of a container as an application log event body.
pub fn app_log(
    text: String,
    stream: Option<Stream>,
    resource: &[Attribute],
    approximate: bool,
) -> AppLog {
    let container = crate::event::find(resource, "k8s.container.name")
        .and_then(AttrValue::as_str)
        .unwrap_or("");
    let (trace_id, span_id) = ids(&text);
    let severity = Severity::sniff(&text).unwrap_or(match stream {
        Some(Stream::Stderr) if text_says_error(&text) => Severity::Error,
        _ => Severity::Unknown,
    });
    let mut attributes = Vec::new();
    if let Some(s) = stream {
        attributes.push(Attribute::new(
            "log.iostream",
            AttrValue::Str(s.as_str().into()),
        ));
    }
    AppLog {
        log: Log {
            origin: LogOrigin::App,
            severity,
            ident: Name::from(container),
            pid: 0,
            body: text,
            approximate_time: approximate,
            trace_id,
            span_id,
        },
        service: Name::from(container),
        resource: resource.to_vec(),
        attributes,
    }
}

/// Lines on stderr that read as errors without saying a level (`panic:`, `Exception in thread`, `FATAL`).
fn text_says_error(text: &str) -> bool {
    let t = text.trim_start();
    let head = t.get(..16).unwrap_or(t).to_ascii_lowercase();
    [
        "panic:",
        "fatal",
        "error",
        "exception",
        "traceback",
        "caused by",
    ]
    .iter()
    .any(|w| head.starts_with(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_say_who_wrote_the_file() {
        let p = LogPath::parse(
            "/var/log/pods/shop_cart-7d8f9-x2x4k_5e0c4a1e-7d3b-4f8e-9a65-00000000abcd/cart/3.log",
        )
        .unwrap();
        assert_eq!(
            (
                p.namespace.as_str(),
                p.pod.as_str(),
                p.container.as_str(),
                p.restart
            ),
            ("shop", "cart-7d8f9-x2x4k", "cart", Some(3))
        );
        assert_eq!(p.uid, "5e0c4a1e-7d3b-4f8e-9a65-00000000abcd");
        let rotated = LogPath::parse("fixtures/x/logs/shop_cart-1_5e0c4a1e-7d3b-4f8e-9a65-00000000abcd/cart/0.log.20260314-100102.gz").unwrap();
        assert_eq!(rotated.restart, Some(0));
        let id = "ab".repeat(32);
        let c = LogPath::parse(&format!("/var/log/containers/cart-1_shop_cart-{id}.log")).unwrap();
        assert_eq!(
            (c.pod.as_str(), c.namespace.as_str(), c.container.as_str()),
            ("cart-1", "shop", "cart")
        );
        assert_eq!(c.container_id, id);
        assert_eq!(LogPath::parse("/var/log/syslog"), None);
    }

    #[test]
    fn cri_and_docker_lines_parse_and_partials_join() {
        let a = parse_line("2026-03-14T10:00:01.123456789Z stderr P first half, ").unwrap();
        let b = parse_line("2026-03-14T10:00:01.123556789Z stderr F second half").unwrap();
        let c = parse_line("2026-03-14T10:00:01.2Z stdout F other stream").unwrap();
        assert!(a.partial && !b.partial);
        let mut j = Joiner::new(1 << 20);
        assert_eq!(j.push(a.clone()), None);
        let out = j.push(c).unwrap();
        assert_eq!(out.text, "other stream");
        let whole = j.push(b).unwrap();
        assert_eq!(
            (whole.text.as_str(), whole.ts, whole.stream),
            ("first half, second half", a.ts, Stream::Stderr)
        );
        let d = parse_line(r#"{"log":"level=error msg=\"dial tcp 10.0.0.1:80\"\n","stream":"stderr","time":"2026-03-14T10:00:02.5Z"}"#).unwrap();
        assert_eq!(
            (d.text.as_ref(), d.partial),
            ("level=error msg=\"dial tcp 10.0.0.1:80\"", false)
        );
        assert!(
            parse_line(r#"{"log":"no newline","stream":"stdout","time":"2026-03-14T10:00:02Z"}"#)
                .unwrap()
                .partial
        );
        assert!(parse_line("2026-03-14 10:00:01 just text").is_none());
        assert!(parse_line("2026-03-14T10:00:01Z stdout X bad tag").is_none());
        // The cap keeps the start of a long message and counts the rest.
        let mut j = Joiner::new(64);
        let long = format!("2026-03-14T10:00:01Z stdout F {}", "é".repeat(100));
        let m = j.push(parse_line(&long).unwrap()).unwrap();
        assert!(m.text.len() <= 64 && m.cut == 200 - m.text.len() as u64);
    }

    #[test]
    fn severity_and_trace_ids_come_from_the_text() {
        let r = LogPath::parse(
            "/var/log/pods/shop_api-1_5e0c4a1e-7d3b-4f8e-9a65-00000000abcd/api/0.log",
        )
        .unwrap()
        .resource();
        let l = app_log(r#"{"level":"warn","msg":"slow","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}"#.into(), Some(Stream::Stdout), &r, false);
        assert_eq!(l.log.severity, Severity::Warning);
        assert_eq!(
            l.log.trace_id.unwrap().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(l.log.span_id.unwrap().to_string(), "00f067aa0ba902b7");
        assert_eq!(l.pod(), Some(("shop", "api-1")));
        let p = app_log(
            "panic: DEPLOY_ENV is not set".into(),
            Some(Stream::Stderr),
            &r,
            false,
        );
        assert_eq!(p.log.severity, Severity::Error);
        assert_eq!(
            app_log("hello".into(), Some(Stream::Stdout), &r, false)
                .log
                .severity,
            Severity::Unknown
        );
    }
}
