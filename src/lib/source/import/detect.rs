//! Recognising an input's format from its content.

use std::str::FromStr;

/// The formats `tapio import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `kubectl get … -o json`: a `List` or a single object (Events included).
    KubeJson,
    /// `kubectl get … -o yaml`, one or several documents.
    KubeYaml,
    /// A recorded watch stream: JSON lines of `{"type":"ADDED","object":…}`.
    WatchJson,
    /// A recorded watch stream as YAML documents, each after a `# {"time":…}` comment line.
    WatchYaml,
    /// OTLP/JSON traces (`resourceSpans`, optionally wrapped in `{"result":…}`), or JSON lines of them.
    OtlpJson,
    /// Zipkin v2 JSON: an array of spans.
    ZipkinJson,
    /// `dmesg` (raw or `-T`), `/dev/kmsg` records, or plain kernel log lines.
    KernelLog,
    /// syslog or `journalctl` text (`Nov 10 14:17:41 host ident[pid]: …`, or ISO times).
    Syslog,
    /// `journalctl -o json`: one JSON object per line.
    JournalJson,
    /// Container logs: the kubelet's CRI log files, docker's `json-file` logs, or `kubectl logs`
    /// output (with `--pod` to say whose).
    ContainerLog,
    /// `kubectl describe` output (pods, nodes, deployments, replicasets, jobs, claims).
    KubectlDescribe,
    /// `kubectl get pods|nodes|events` tables.
    KubectlTable,
    /// tapio's own events as JSON lines (the event model's JSON form): kernel events written by
    /// hand or by another tool, for fixtures and tests.
    TapioJson,
}

named!(Format, "format" {
    KubeJson => "kube-json",
    KubeYaml => "kube-yaml",
    WatchJson => "watch-json",
    WatchYaml => "watch-yaml",
    OtlpJson => "otlp-json",
    ZipkinJson => "zipkin-json",
    KernelLog => "dmesg",
    Syslog => "syslog",
    JournalJson => "journal-json",
    TapioJson => "tapio-json",
    ContainerLog => "container-log",
    KubectlDescribe => "kubectl-describe",
    KubectlTable => "kubectl-get",
});

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::parse_name(s)
    }
}

/// Guesses the format of a text from its first meaningful part.
pub fn detect(text: &str) -> Option<Format> {
    // Binary data (NUL bytes, or mostly undecodable bytes) is none of the text formats.
    let sample: String = text.chars().take(4096).collect();
    let undecodable = sample
        .chars()
        .filter(|&c| c == '\u{fffd}' || c == '\0')
        .count();
    if sample.contains('\0') || undecodable * 10 > sample.chars().count() {
        return None;
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    // Kubelet log files, and `kubectl logs --prefix` (`[pod/NAME/CONTAINER] …`).
    if crate::source::logs::looks_like(trimmed)
        || (trimmed.starts_with("[pod/")
            && trimmed.lines().next().is_some_and(|l| l.contains("] ")))
    {
        return Some(Format::ContainerLog);
    }
    if dmesg_line(trimmed) {
        return Some(Format::KernelLog);
    }
    // Pasted kubectl output, perhaps after its prompt (`[user@host dir]$ kubectl get pods`).
    if super::paste::is_describe(trimmed) {
        return Some(Format::KubectlDescribe);
    }
    if super::paste::is_table(trimmed) {
        return Some(Format::KubectlTable);
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return detect_json(trimmed);
    }
    let first = first_meaningful_line(trimmed)?;
    let watch_comment = |l: &str| l.starts_with("# {") && l.contains("\"time\"");
    if trimmed.lines().take(5).any(watch_comment) {
        return Some(Format::WatchYaml);
    }
    const YAML_KEYS: [&str; 4] = ["apiVersion:", "kind:", "items:", "metadata:"];
    if YAML_KEYS.iter().any(|k| first.starts_with(k)) || first == "---" {
        return Some(Format::KubeYaml);
    }
    if yaml_object_start(trimmed) {
        return Some(Format::KubeYaml);
    }
    if syslog_line(first) {
        return Some(Format::Syslog);
    }
    // Kernel messages without their timestamps (an OOM report copied into a ticket) need positive
    // evidence too: text that no reader recognises is not a kernel log.
    if kernel_text(trimmed) {
        return Some(Format::KernelLog);
    }
    // A kubectl command among the first lines: pasted output, however fragmentary (the paste
    // reader takes what it knows and says what it skips).
    if super::paste::has_command(trimmed) {
        return Some(Format::KubectlDescribe);
    }
    if super::paste::table_within(trimmed) {
        return Some(Format::KubectlTable);
    }
    None
}

/// Kernel log lines somewhere in the first lines: a dmesg timestamp, or the kernel's own words.
fn kernel_text(text: &str) -> bool {
    const WORDS: [&str; 11] = [
        "OOM kill of PID",
        "invoked oom-killer",
        "Out of memory:",
        "Killed process ",
        "Memory cgroup out of memory",
        "oom-kill:",
        "oom_reaper:",
        "Call Trace:",
        "Tasks state (memory values in pages)",
        "kernel: ",
        "Mem-Info:",
    ];
    text.lines()
        .take(200)
        .any(|l| dmesg_line(l.trim_start()) || WORDS.iter().any(|w| l.contains(w)))
}

/// `[  123.456789] …` or `[Tue Jul  2 14:17:41 2024] …` (dmesg, dmesg -T), perhaps after `<6>`:
/// a JSON array could start the same way, but never with these inside its first brackets.
fn dmesg_line(text: &str) -> bool {
    let text = match text.strip_prefix('<').and_then(|t| t.split_once('>')) {
        Some((pri, rest)) if pri.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => text,
    };
    let Some(rest) = text.strip_prefix('[') else {
        return false;
    };
    let Some((inside, _)) = rest.split_once(']') else {
        return false;
    };
    let inside = inside.trim_start();
    let uptime = !inside.is_empty()
        && inside.contains('.')
        && inside.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // `Tue Nov 10 14:17:41 2020`, in any locale's names and order.
    let wall = super::kernel_log::wall_time(inside).is_some();
    uptime || wall
}

/// The first line that is not blank, a comment, or a journalctl marker (`-- Logs begin at …`).
fn first_meaningful_line(text: &str) -> Option<&str> {
    let marker = |l: &str| l.starts_with("-- ") && l.ends_with(" --");
    text.lines()
        .map(str::trim_end)
        .find(|l| !l.trim().is_empty() && !l.starts_with('#') && !marker(l))
}

/// A YAML document with `apiVersion` and `kind` at the top level, in any key order.
fn yaml_object_start(text: &str) -> bool {
    let head: Vec<&str> = text.lines().take(200).collect();
    head.iter().any(|l| l.starts_with("apiVersion:")) && head.iter().any(|l| l.starts_with("kind:"))
}

/// `Nov 10 14:17:41 host …`, `2024-03-26T10:43:59… host …`, either after a `<pri>`, and RFC 5424
/// (`<34>1 2024-…`).
fn syslog_line(line: &str) -> bool {
    let line = match line.strip_prefix('<').and_then(|l| l.split_once('>')) {
        Some((pri, rest)) if !pri.is_empty() && pri.bytes().all(|b| b.is_ascii_digit()) => {
            rest.strip_prefix("1 ").unwrap_or(rest)
        }
        _ => line,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = line.as_bytes();
    let classic = line.len() > 15
        && MONTHS.iter().any(|m| line.starts_with(m))
        && b[3] == b' '
        && b.get(6) == Some(&b' ')
        && b.get(9) == Some(&b':');
    let iso = line.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && line.split_whitespace().count() >= 3;
    classic || iso
}

/// JSON of a known shape; JSON that does not parse at all is taken as Kubernetes JSON, so that its
/// parser says where it breaks. JSON of no known shape is not recognised.
fn detect_json(text: &str) -> Option<Format> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => classify_json(&v),
        Err(_) => {
            // Not one document: JSON lines, or documents printed one after another. Classify by
            // the first value that parses.
            let first = serde_json::Deserializer::from_str(text)
                .into_iter::<serde_json::Value>()
                .next();
            let v = match first {
                Some(Ok(v)) => v,
                _ => {
                    let parsed = text
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .take(20)
                        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
                    match parsed {
                        Some(v) => v,
                        None => return Some(Format::KubeJson),
                    }
                }
            };
            match classify_json(&v) {
                None if v.get("MESSAGE").is_some() => Some(Format::JournalJson),
                f => f,
            }
        }
    }
}

fn classify_json(v: &serde_json::Value) -> Option<Format> {
    let inner = v.get("result").unwrap_or(v);
    if inner.get("resourceSpans").is_some() {
        return Some(Format::OtlpJson);
    }
    if v.get("type").is_some() && v.get("object").is_some() {
        return Some(Format::WatchJson);
    }
    if v.get("ts").is_some() && v.get("source").is_some() && v.get("body").is_some() {
        return Some(Format::TapioJson);
    }
    if v.get("__REALTIME_TIMESTAMP").is_some() {
        return Some(Format::JournalJson);
    }
    if let Some(arr) = v.as_array() {
        let first = arr
            .first()
            .map(|f| f.as_array().and_then(|a| a.first()).unwrap_or(f));
        if first.is_some_and(|s| s.get("traceId").is_some() && s.get("id").is_some()) {
            return Some(Format::ZipkinJson);
        }
        // `kubectl get -o json` of nothing, or a list of objects.
        if arr.is_empty() || arr.iter().any(kube_object) {
            return Some(Format::KubeJson);
        }
        return None;
    }
    if kube_object(v) || v.get("items").is_some_and(|i| i.is_array()) {
        return Some(Format::KubeJson);
    }
    // Structured application logs (one JSON object a line, as zap, logrus, bunyan, pino,
    // structlog or slog write them): container logs.
    const MESSAGE: [&str; 3] = ["msg", "message", "log"];
    if v.is_object()
        && MESSAGE
            .iter()
            .any(|k| v.get(k).is_some_and(|m| m.is_string()))
    {
        return Some(Format::ContainerLog);
    }
    None
}

/// A Kubernetes object: it says its `kind` (with `apiVersion` or `metadata`), or it has the shape
/// of one without its `kind` (named `metadata` with a `spec` or `status`, as the insights
/// operator's archives keep them).
fn kube_object(v: &serde_json::Value) -> bool {
    let kind = v.get("kind").is_some_and(|k| k.is_string())
        && (v.get("apiVersion").is_some() || v.get("metadata").is_some());
    let shape = v
        .get("metadata")
        .is_some_and(|m| m.get("name").is_some_and(|n| n.is_string()))
        && (v.get("spec").is_some() || v.get("status").is_some());
    kind || shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_needs_a_known_shape() {
        // Structured application logs are container logs (whose: --pod, or the path).
        assert_eq!(
            detect("{\"level\":\"error\",\"msg\":\"boom\",\"ts\":1760000000.5}\n{\"level\":\"info\",\"msg\":\"ok\"}\n"),
            Some(Format::ContainerLog)
        );
        // Objects without their kind, as the insights operator keeps them.
        assert_eq!(
            detect(r#"{"metadata":{"name":"worker-0"},"spec":{},"status":{}}"#),
            Some(Format::KubeJson)
        );
        // JSON of no known shape is not Kubernetes JSON; JSON that does not parse still is (its
        // parser says where it breaks).
        assert_eq!(detect(r#"{"a":1,"b":[2,3]}"#), None);
        assert_eq!(detect("[1,2,3]"), None);
        assert_eq!(
            detect(r#"{"kind":"Pod","metadata":{"#),
            Some(Format::KubeJson)
        );
    }

    #[test]
    fn detects_by_content() {
        assert_eq!(
            detect(r#"{"result":{"resourceSpans":[]}}"#),
            Some(Format::OtlpJson)
        );
        assert_eq!(
            detect(r#"[{"traceId":"a","id":"b"}]"#),
            Some(Format::ZipkinJson)
        );
        assert_eq!(
            detect(r#"{"kind":"List","items":[]}"#),
            Some(Format::KubeJson)
        );
        assert_eq!(
            detect("{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":{}}\n"),
            Some(Format::WatchJson)
        );
        assert_eq!(
            detect("{\"__REALTIME_TIMESTAMP\":\"1\",\"MESSAGE\":\"x\"}\n{\"MESSAGE\":\"y\"}\n"),
            Some(Format::JournalJson)
        );
        assert_eq!(
            detect("---\n# {\"time\":\"2021-05-19T09:42:58Z\"}\nkind: Pod\n"),
            Some(Format::WatchYaml)
        );
        assert_eq!(
            detect("apiVersion: v1\nkind: Pod\n"),
            Some(Format::KubeYaml)
        );
        assert_eq!(
            detect("Nov 10 14:17:41.900439 host kubelet[1]: hi\n"),
            Some(Format::Syslog)
        );
        assert_eq!(detect("[  12.5] hello\n"), Some(Format::KernelLog));
        assert_eq!(
            detect("[Tue Jul  2 14:17:41 2024] x\n"),
            Some(Format::KernelLog)
        );
        assert_eq!(
            detect("<6>[    0.000000] Linux version 6.1\n"),
            Some(Format::KernelLog)
        );
        assert_eq!(
            detect("{\"kind\":\"List\",\"items\":[{},"),
            Some(Format::KubeJson)
        );
        assert_eq!(
            detect("<34>1 2024-05-01T10:02:11Z node-7 kubelet 1 - - x\n"),
            Some(Format::Syslog)
        );
        assert_eq!(
            detect("-- Logs begin at Mon 2024-04-29 08:00:01 UTC. --\n2024-05-01T10:02:11+0000 node-7 kubelet[1]: x\n"),
            Some(Format::Syslog)
        );
        assert_eq!(
            detect("# comment\napiVersion: v1\nitems:\n- kind: Pod\n"),
            Some(Format::KubeYaml)
        );
        assert_eq!("dmesg".parse::<Format>(), Ok(Format::KernelLog));
        assert_eq!(detect("\u{fffd}\u{fffd}\0\u{1}garbage"), None);
    }
}
