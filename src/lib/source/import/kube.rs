//! Kubernetes dumps: `kubectl get -o json|yaml`, recorded watch streams, Event lists.
//!
//! Objects keep their full JSON (without `managedFields`, which is bulky and says nothing about an
//! incident). A snapshot says what an object looked like, not when it was seen, so an object is
//! placed at the latest time it states (its last condition transition, container start or finish,
//! heartbeat, …): that is when the state it shows was reached.

use serde_json::{Map, Value};

use super::{Format, LineTime, Location, Parsed};
use crate::event::{
    Event, EventApi, Kube, KubeEvent, Object, ObjectAction, ObjectKind, ObjectRef, RawJson, Source,
    Ts,
};

/// Parses a Kubernetes dump of the given format.
pub fn parse(text: &str, format: Format, node: &str) -> Parsed {
    let mut out = Parsed::default();
    match format {
        Format::WatchJson => parse_watch(text, node, &mut out),
        Format::WatchYaml => parse_commented_stream(text, node, &mut out),
        Format::KubeYaml => parse_yaml_docs(text, node, &mut out),
        _ => {
            let mut index = 0;
            for (_, v) in json_values(text, &mut out) {
                // `kubectl get -w -o json` prints one object after another: later ones are changes.
                let action = if index == 0 {
                    ObjectAction::Seen
                } else {
                    ObjectAction::Changed
                };
                add_document(v, action, None, node, &mut out, &mut index);
            }
        }
    }
    out
}

/// The JSON values of a text: one document, JSON lines, or objects printed one after another
/// (`kubectl get -w -o json`). JSON lines go on past a bad line; a concatenated stream cannot, and
/// says where it stopped.
pub fn json_values(text: &str, out: &mut Parsed) -> Vec<(Location, Value)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    // JSON lines when the first line is a whole value by itself (a pretty-printed stream's is `{`).
    let one_per_line =
        lines.len() > 1 && serde_json::from_str::<serde::de::IgnoredAny>(lines[0].1).is_ok();
    if one_per_line {
        let mut values = Vec::with_capacity(lines.len());
        for (n, line) in lines {
            match serde_json::from_str(line) {
                Ok(v) => values.push((Location::Line(n), v)),
                Err(e) => out.reject(Location::Line(n), format!("invalid JSON: {e}")),
            }
        }
        return values;
    }
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let end = stream.byte_offset().min(text.len());
        let start = text.len() - text[end..].trim_start().len();
        let line = 1 + text[..start].matches('\n').count();
        match stream.next() {
            None => break,
            Some(Ok(v)) => values.push((Location::Line(line), v)),
            Some(Err(e)) => {
                let rest = if values.is_empty() {
                    ""
                } else {
                    "; the rest of the file was not read"
                };
                out.reject(Location::Line(e.line()), format!("invalid JSON: {e}{rest}"));
                break;
            }
        }
    }
    values
}

/// A watch stream: `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}` per event, as
/// JSON lines or pretty-printed one after another (`kubectl get -w -o json --output-watch-events`).
fn parse_watch(text: &str, node: &str, out: &mut Parsed) {
    for (at, v) in json_values(text, out) {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let action = match kind {
            "ADDED" => ObjectAction::Seen,
            "MODIFIED" => ObjectAction::Changed,
            "DELETED" => ObjectAction::Deleted,
            "BOOKMARK" => continue,
            "ERROR" => {
                let msg = v
                    .pointer("/object/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message");
                out.reject(at, format!("the watch reported an error: {msg}"));
                continue;
            }
            other => {
                out.reject(at, format!("unknown watch event type {other:?}"));
                continue;
            }
        };
        match v.get("object") {
            Some(obj) => add_object(obj.clone(), action, None, node, at, out),
            None => out.reject(at, "watch event without \"object\""),
        }
    }
}

/// The stream format of `data/kspan`: YAML documents, each after a `# {"time":…,"style":…}` line.
fn parse_commented_stream(text: &str, node: &str, out: &mut Parsed) {
    let mut docs: Vec<(usize, Option<Value>, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line == "---" {
            docs.push((i + 2, None, String::new()));
            continue;
        }
        if docs.is_empty() {
            docs.push((i + 1, None, String::new()));
        }
        let Some(doc) = docs.last_mut() else { continue };
        if let Some(meta) = line.strip_prefix("# {").map(|rest| format!("{{{rest}")) {
            doc.1 = serde_json::from_str(&meta).ok();
            continue;
        }
        doc.2.push_str(line);
        doc.2.push('\n');
    }
    for (line, meta, body) in docs {
        if body.trim().is_empty() {
            continue;
        }
        let at = Location::Line(line);
        if let Some(deep) = yaml_too_deep(&body, MAX_YAML_DEPTH) {
            out.reject(
                Location::Line(line + deep - 1),
                format!("YAML nested deeper than {MAX_YAML_DEPTH} levels: not a Kubernetes object, not parsed"),
            );
            continue;
        }
        let v: Value = match serde_yaml::from_str(&body) {
            Ok(v) => v,
            Err(e) => {
                out.reject(at, format!("invalid YAML: {e}"));
                continue;
            }
        };
        let time = meta
            .as_ref()
            .and_then(|m| m.get("time")?.as_str())
            .and_then(Ts::parse_rfc3339);
        let action = match meta.as_ref().and_then(|m| m.get("style")?.as_str()) {
            Some("watch") => ObjectAction::Changed,
            _ => ObjectAction::Seen,
        };
        add_object(v, action, time, node, at, out);
    }
}

/// Deeper than this is no Kubernetes object (they nest about twenty levels): a bomb, refused
/// before the parser spends superlinear time on it.
pub const MAX_YAML_DEPTH: usize = 256;

/// The line (1-based) where YAML text nests deeper than `max` levels, counting block indentation
/// and flow brackets (outside quoted strings).
pub fn yaml_too_deep(text: &str, max: usize) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            // Block structure: each deeper indentation, and each "- " of a sequence entry.
            let mut indent = line.len() - body.len();
            let mut rest = body;
            while let Some(r) = rest.strip_prefix("- ") {
                indent += 2;
                rest = r.trim_start_matches(' ');
                indents.retain(|&d| d < indent - 2);
                indents.push(indent - 2);
            }
            indents.retain(|&d| d < indent);
            indents.push(indent);
        }
        let (mut single, mut double) = (false, false);
        for c in body.chars() {
            match c {
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '#' if !single && !double => break,
                '[' | '{' if !single && !double => flow += 1,
                ']' | '}' if !single && !double => flow = flow.saturating_sub(1),
                _ => {}
            }
            if flow + indents.len() > max {
                return Some(i + 1);
            }
        }
        if flow + indents.len() > max {
            return Some(i + 1);
        }
    }
    None
}

fn parse_yaml_docs(text: &str, node: &str, out: &mut Parsed) {
    if let Some(line) = yaml_too_deep(text, MAX_YAML_DEPTH) {
        out.reject(
            Location::Line(line),
            format!("YAML nested deeper than {MAX_YAML_DEPTH} levels: not a Kubernetes object, not parsed"),
        );
        return;
    }
    let mut index = 0;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match serde::Deserialize::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(v) => add_document(v, ObjectAction::Seen, None, node, out, &mut index),
            Err(e) => {
                let at = e
                    .location()
                    .map_or(Location::Item(i), |l| Location::Line(l.line()));
                out.reject(at, format!("invalid YAML: {e}"));
                // The YAML deserializer cannot resume after a syntax error.
                break;
            }
        }
    }
}

/// A document: a `List` (or any object with `items`) or a single object.
fn add_document(
    v: Value,
    action: ObjectAction,
    time: Option<Ts>,
    node: &str,
    out: &mut Parsed,
    index: &mut usize,
) {
    let Value::Object(mut map) = v else {
        out.reject(
            Location::Item(*index),
            "expected a Kubernetes object or List",
        );
        return;
    };
    if let Some(Value::Array(items)) = map.remove("items") {
        // Raw API lists name the kind once (`PodList`); kubectl repeats it in each item.
        let item_kind = map
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| k.strip_suffix("List"))
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        for item in items {
            let item = match (item, &item_kind) {
                (Value::Object(mut o), Some(k)) if !o.contains_key("kind") => {
                    o.insert("kind".into(), Value::String(k.clone()));
                    Value::Object(o)
                }
                (item, _) => item,
            };
            add_object(item, action, time, node, Location::Item(*index), out);
            *index += 1;
        }
        return;
    }
    add_object(
        Value::Object(map),
        action,
        time,
        node,
        Location::Item(*index),
        out,
    );
    *index += 1;
}

/// Turns one object into an event, or rejects it with the reason.
fn add_object(
    v: Value,
    action: ObjectAction,
    time: Option<Ts>,
    node: &str,
    at: Location,
    out: &mut Parsed,
) {
    let Value::Object(map) = v else {
        out.reject(at, "expected a Kubernetes object (a JSON/YAML mapping)");
        return;
    };
    match body(map, action) {
        Ok(b) => {
            let node = if b.node.is_empty() { node } else { &b.node };
            let lt = time
                .or(b.time)
                .map_or(LineTime::Unknown, LineTime::Absolute);
            out.push(lt, Event::new(Ts(0), node, Source::Import, b.kube));
        }
        Err(reason) => out.reject(at, reason),
    }
}

/// A Kubernetes object or Event as an event body.
pub struct Body {
    pub kube: Kube,
    /// The node it belongs to (a Pod's node, a Node itself, an Event's reporting host); may be empty.
    pub node: String,
    /// The latest time the object states (or the Event's last time), when it states one.
    pub time: Option<Ts>,
}

/// One object (a JSON mapping) as an event body: `managedFields` dropped, the full JSON kept, the
/// fields the pipeline reads extracted. `Err` says why it is not a Kubernetes object.
pub fn body(
    mut map: serde_json::Map<String, Value>,
    action: ObjectAction,
) -> Result<Body, &'static str> {
    let managed = match map.get_mut("metadata") {
        Some(Value::Object(meta)) => meta.remove("managedFields"),
        _ => None,
    };
    let kind = match str_at(&map, &["kind"]) {
        "" => infer_kind(&map).to_string(),
        k => k.to_string(),
    };
    let is_event = kind == "Event"
        || (kind.is_empty() && map.contains_key("reason") && map.contains_key("message"));
    if is_event {
        let ev = kube_event(&map);
        return Ok(Body {
            node: ev.host.clone(),
            time: event_time(&map),
            kube: Kube::from(ev),
        });
    }
    if kind.is_empty() {
        return Err("object has no \"kind\" and is not recognisable as a Pod or a Node");
    }
    let kind: ObjectKind = kind.parse().unwrap_or(ObjectKind::Other(kind));
    if matches!(kind, ObjectKind::ConfigMap) || kind.as_str() == "Secret" {
        redact(&mut map);
    }
    let obj_node = match kind {
        ObjectKind::Pod => str_at(&map, &["spec", "nodeName"]).to_string(),
        ObjectKind::Node => str_at(&map, &["metadata", "name"]).to_string(),
        _ => String::new(),
    };
    let object = Object {
        action,
        namespace: str_at(&map, &["metadata", "namespace"]).to_string(),
        name: str_at(&map, &["metadata", "name"]).to_string(),
        uid: str_at(&map, &["metadata", "uid"]).to_string(),
        resource_version: str_at(&map, &["metadata", "resourceVersion"]).to_string(),
        node: obj_node.clone(),
        kind,
        json: RawJson(String::new()),
    };
    let value = Value::Object(map);
    let mut time = latest_time(&value);
    // Objects without a status state no time but their creation; the last write to them is in
    // `managedFields` (`kubectl get -o json` keeps it), the time of their last change.
    if matches!(
        object.kind,
        ObjectKind::ConfigMap | ObjectKind::NetworkPolicy | ObjectKind::HorizontalPodAutoscaler
    ) {
        let written = managed
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m["time"].as_str().and_then(Ts::parse_rfc3339))
            .max();
        time = time.max(written);
    }
    let json = RawJson::from_value(&value);
    Ok(Body {
        kube: Kube::from(Object { json, ..object }),
        node: obj_node,
        time,
    })
}

/// A ConfigMap keeps its keys, each with a keyed hash of its value (see [`value_hash`]), so a
/// change shows which keys changed; a Secret keeps its keys only. The values, and the
/// last-applied annotation that repeats them, are never kept.
fn redact(map: &mut Map<String, Value>) {
    let secret = str_at(map, &["kind"]) == "Secret";
    for field in ["data", "binaryData", "stringData"] {
        if let Some(Value::Object(data)) = map.get_mut(field) {
            for v in data.values_mut() {
                if secret {
                    *v = Value::String("(redacted)".into());
                    continue;
                }
                let text = match &mut *v {
                    // Already redacted (a capture's own JSON imported again).
                    Value::String(s) if s.starts_with("hmac-sha256:") => continue,
                    Value::String(s) => std::mem::take(s),
                    other => other.to_string(),
                };
                *v = Value::String(value_hash(text.as_bytes()));
            }
        }
    }
    if let Some(Value::Object(ann)) = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The key of this process's value hashes, and its id. A random key, never written: a plain hash
/// of a short value (`changeme`) could be reversed by trying common values; a keyed one cannot.
/// Hashes made with the same key compare; hashes of two processes (two recorders, two imports)
/// do not, and are not compared (`hmac-sha256:<key id>:<hash>`).
/// `$TAPIO_VALUE_KEY` sets the key instead, for captures that must be the same bytes each time
/// they are built (the fixtures).
static VALUE_KEY: std::sync::LazyLock<(ring::hmac::Key, String)> = std::sync::LazyLock::new(|| {
    use ring::rand::SecureRandom;
    if let Some(k) = std::env::var_os("TAPIO_VALUE_KEY").filter(|k| !k.is_empty()) {
        let k = k.to_string_lossy();
        let id = ring::digest::digest(&ring::digest::SHA256, k.as_bytes());
        return (
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes()),
            hex::encode(&id.as_ref()[..4]),
        );
    }
    let mut bytes = [0u8; 36];
    // Without randomness the values are dropped rather than hashed with a guessable key.
    let ok = ring::rand::SystemRandom::new().fill(&mut bytes).is_ok();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes[..32]);
    let id = if ok {
        hex::encode(&bytes[32..])
    } else {
        String::new()
    };
    (key, id)
});

/// The keyed hash a ConfigMap value is kept as: `hmac-sha256:<key id>:<16 hex digits>`.
pub fn value_hash(bytes: &[u8]) -> String {
    let (key, id) = &*VALUE_KEY;
    if id.is_empty() {
        return "(redacted)".into();
    }
    let tag = ring::hmac::sign(key, bytes);
    format!("hmac-sha256:{id}:{}", hex::encode(&tag.as_ref()[..8]))
}

/// Archives such as the OpenShift insights-operator's strip `kind`: recognise Pods and Nodes by shape.
fn infer_kind(m: &Map<String, Value>) -> &'static str {
    let has = |path: &[&str]| {
        let mut cur = m.get(path[0]);
        for k in &path[1..] {
            cur = cur.and_then(|v| v.get(k));
        }
        cur.is_some()
    };
    if has(&["spec", "containers"]) || has(&["status", "containerStatuses"]) {
        "Pod"
    } else if has(&["status", "nodeInfo"])
        || has(&["spec", "podCIDR"])
        || has(&["spec", "providerID"])
    {
        "Node"
    } else {
        ""
    }
}

fn str_at<'a>(map: &'a Map<String, Value>, path: &[&str]) -> &'a str {
    let mut cur = map.get(path[0]);
    for key in &path[1..] {
        cur = cur.and_then(|v| v.get(key));
    }
    cur.and_then(Value::as_str).unwrap_or("")
}

fn time_at(map: &Map<String, Value>, path: &[&str]) -> Option<Ts> {
    Ts::parse_rfc3339(str_at(map, path))
}

fn object_ref(v: Option<&Value>) -> ObjectRef {
    let Some(Value::Object(m)) = v else {
        return ObjectRef::default();
    };
    ObjectRef {
        kind: str_at(m, &["kind"]).into(),
        namespace: str_at(m, &["namespace"]).into(),
        name: str_at(m, &["name"]).into(),
        uid: str_at(m, &["uid"]).into(),
        field_path: str_at(m, &["fieldPath"]).into(),
    }
}

/// A core/v1 or events.k8s.io/v1 Event (or a trimmed one with only reason/message/type).
fn kube_event(m: &Map<String, Value>) -> KubeEvent {
    let v1 = str_at(m, &["apiVersion"]).starts_with("events.k8s.io");
    let count_at = |p: &[&str]| {
        let mut cur = m.get(p[0]);
        for k in &p[1..] {
            cur = cur.and_then(|v| v.get(k));
        }
        cur.and_then(Value::as_u64).map(|c| c as u32)
    };
    let namespace = match str_at(m, &["metadata", "namespace"]) {
        "" => str_at(m, &["namespace"]),
        ns => ns,
    };
    let first =
        time_at(m, &["firstTimestamp"]).or_else(|| time_at(m, &["deprecatedFirstTimestamp"]));
    let last = event_time(m);
    let pick = |a: &str, b: &str| -> String {
        let x = str_at(m, &[a]);
        if x.is_empty() {
            str_at(m, &[b]).to_string()
        } else {
            x.to_string()
        }
    };
    KubeEvent {
        api: if v1 {
            EventApi::EventsV1
        } else {
            EventApi::CoreV1
        },
        namespace: namespace.to_string(),
        name: str_at(m, &["metadata", "name"]).into(),
        uid: str_at(m, &["metadata", "uid"]).into(),
        type_: str_at(m, &["type"]).into(),
        reason: str_at(m, &["reason"]).into(),
        message: pick("message", "note"),
        involved: object_ref(m.get("involvedObject").or_else(|| m.get("regarding"))),
        count: count_at(&["series", "count"])
            .or_else(|| count_at(&["count"]))
            .or_else(|| count_at(&["deprecatedCount"]))
            .unwrap_or(1),
        first,
        last,
        component: match str_at(m, &["source", "component"]) {
            "" => pick("reportingController", "reportingComponent"),
            c => c.to_string(),
        },
        host: match str_at(m, &["source", "host"]) {
            "" => str_at(m, &["deprecatedSource", "host"]).to_string(),
            h => h.to_string(),
        },
    }
}

/// When an Event last happened.
fn event_time(m: &Map<String, Value>) -> Option<Ts> {
    [
        &["series", "lastObservedTime"][..],
        &["lastTimestamp"],
        &["deprecatedLastTimestamp"],
        &["eventTime"],
        &["firstTimestamp"],
        &["metadata", "creationTimestamp"],
    ]
    .iter()
    .find_map(|p| time_at(m, p))
}

/// The latest state-change time an object states anywhere in it.
pub fn latest_time(v: &Value) -> Option<Ts> {
    const KEYS: [&str; 13] = [
        "creationTimestamp",
        "deletionTimestamp",
        "lastTransitionTime",
        "lastHeartbeatTime",
        "lastUpdateTime",
        "startTime",
        "startedAt",
        "finishedAt",
        "lastTimestamp",
        "firstTimestamp",
        "eventTime",
        "lastObservedTime",
        "lastProbeTime",
    ];
    match v {
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| match v {
                // The EndpointSlice controller stamps each change of a slice.
                Value::String(s)
                    if KEYS.contains(&k.as_str())
                        || k == "endpoints.kubernetes.io/last-change-trigger-time" =>
                {
                    Ts::parse_rfc3339(s)
                }
                _ => latest_time(v),
            })
            .max(),
        Value::Array(a) => a.iter().filter_map(latest_time).max(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;

    #[test]
    fn yaml_nested_a_hundred_thousand_deep_is_refused_at_once_and_real_objects_pass() {
        let bomb = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let start = std::time::Instant::now();
        let p = parse(&bomb, Format::KubeYaml, "");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(p.rejected.len(), 1);
        assert!(
            p.rejected[0].reason.contains("deeper than 256 levels"),
            "{:?}",
            p.rejected
        );
        let mut deep = String::new();
        for i in 0..300 {
            deep.push_str(&" ".repeat(2 * i));
            deep.push_str("a:\n");
        }
        assert_eq!(
            yaml_too_deep(&deep, MAX_YAML_DEPTH),
            Some(MAX_YAML_DEPTH + 1)
        );
        let quoted = "a: \"[[[[[[\"\nb: '{{{{'\n";
        assert_eq!(yaml_too_deep(quoted, 2), None);
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: b\nspec:\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: 80\n";
        assert_eq!(yaml_too_deep(pod, 6), None);
        assert_eq!(parse(pod, Format::KubeYaml, "").rejected.len(), 0);
    }

    fn data(p: &str) -> String {
        let path = format!("{}/../shared/data/{p}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn kube(p: &Parsed) -> Vec<&Kube> {
        p.events
            .iter()
            .filter_map(|e| match &e.event.body {
                Body::Kube(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kspan_stream_gives_objects_and_events_at_their_recorded_times() {
        if !crate::shared_data("kspan_stream_gives_objects_and_events_at_their_recorded_times") {
            return;
        }
        let p = parse(&data("kspan/deployment-2-pods.yaml"), Format::WatchYaml, "");
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.events.len(), 26);
        let k = kube(&p);
        let objects = k.iter().filter(|k| matches!(k, Kube::Object(_))).count();
        assert_eq!(objects, 7, "2 ReplicaSets, 1 Deployment, 4 Pod states");
        assert_eq!(k.len() - objects, 19);
        assert_eq!(
            p.events[0].time,
            LineTime::Absolute(Ts::parse_rfc3339("2021-05-19T09:42:58.640117041Z").unwrap())
        );
        let Kube::Event(e) = k[0] else {
            panic!("first is an Event")
        };
        assert_eq!(
            (e.reason.as_str(), e.involved.kind.as_str()),
            ("ScalingReplicaSet", "Deployment")
        );
        assert!(!p.events.iter().any(|e| match &e.event.body {
            Body::Kube(Kube::Object(o)) => o.json.0.contains("managedFields"),
            _ => false,
        }));
    }

    #[test]
    fn insights_pod_node_and_trimmed_events_import() {
        if !crate::shared_data("insights_pod_node_and_trimmed_events_import") {
            return;
        }
        let p = parse(&data("insights-operator-archive-sample/config__pod__di-288312__vsystem-867f4b77cc-pqcns.json"), Format::KubeJson, "");
        let Kube::Object(o) = kube(&p)[0] else {
            panic!()
        };
        assert_eq!(
            (o.kind.as_str(), o.namespace.as_str(), o.name.as_str()),
            ("Pod", "di-288312", "vsystem-867f4b77cc-pqcns")
        );
        assert!(o.json.0.contains("could not connect to hana"));
        assert!(matches!(p.events[0].time, LineTime::Absolute(_)));

        let n = parse(&data("insights-operator-archive-sample/config__node__worker-0.imeixner20210707.lab.upshift.rdu2.redhat.com.json"), Format::KubeJson, "");
        let Kube::Object(o) = kube(&n)[0] else {
            panic!()
        };
        assert_eq!(o.kind, ObjectKind::Node);
        assert_eq!(o.node, o.name);

        let ev = parse(
            &data("insights-operator-archive-sample/events__openshift-machine-api.json"),
            Format::KubeJson,
            "",
        );
        assert_eq!(ev.events.len(), 2);
        let Kube::Event(e) = kube(&ev)[0] else {
            panic!()
        };
        assert_eq!(
            (e.reason.as_str(), e.type_.as_str(), e.namespace.as_str()),
            ("FailedUpdate", "Warning", "openshift-machine-api")
        );
        assert_eq!(
            ev.events[0].time,
            LineTime::Absolute(Ts::parse_rfc3339("2022-08-24T09:40:44Z").unwrap())
        );
    }

    #[test]
    fn watch_lines_bad_lines_are_rejected_and_the_rest_imports() {
        let text = r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"shop","uid":"u1","resourceVersion":"5","creationTimestamp":"2024-01-01T00:00:00Z"},"spec":{"nodeName":"node-7"}}}
not json
{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}
{"type":"DELETED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"shop","uid":"u1","resourceVersion":"7","deletionTimestamp":"2024-01-01T00:01:00Z"}}}
{"type":"ERROR","object":{"kind":"Status","message":"too old resource version"}}
"#;
        let p = parse(text, Format::WatchJson, "");
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].at, Location::Line(2));
        assert!(p.rejected[1].reason.contains("too old resource version"));
        assert_eq!(p.events[0].event.node.as_ref(), "node-7");
        let Body::Kube(Kube::Object(o)) = &p.events[1].event.body else {
            panic!()
        };
        assert_eq!(
            (o.action, o.resource_version.as_str()),
            (ObjectAction::Deleted, "7")
        );
    }

    #[test]
    fn yaml_lists_events_v1_and_raw_api_lists() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: events.k8s.io/v1\n  kind: Event\n  metadata: {name: e1, namespace: shop}\n  regarding: {kind: Pod, name: cart-1, namespace: shop}\n  reason: Unhealthy\n  note: 'Liveness probe failed: HTTP probe failed with statuscode: 500'\n  type: Warning\n  reportingController: kubelet\n  deprecatedSource: {host: node-3}\n  series: {count: 4, lastObservedTime: '2024-05-01T10:00:03.000000Z'}\n";
        let p = parse(yaml, Format::KubeYaml, "");
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        let Kube::Event(e) = kube(&p)[0] else {
            panic!()
        };
        assert_eq!(
            (e.api, e.count, e.component.as_str(), e.host.as_str()),
            (EventApi::EventsV1, 4, "kubelet", "node-3")
        );
        assert!(e.message.starts_with("Liveness probe failed"));

        let raw = r#"{"kind":"PodList","items":[{"metadata":{"name":"p","namespace":"n"}}, 7]}"#;
        let p = parse(raw, Format::KubeJson, "");
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].at, Location::Item(1));
    }

    #[test]
    fn pretty_printed_watch_events_one_after_another_import_until_a_torn_end() {
        let one = |t: &str, rv: u32| {
            serde_json::to_string_pretty(
                &serde_json::json!({"type": t, "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a", "namespace": "shop", "resourceVersion": rv.to_string(),
                "creationTimestamp": "2024-01-01T00:00:00Z"}}}),
            )
            .unwrap()
        };
        let text = format!(
            "{}\n{}\n{{\n  \"type\": \"MODIFIED\",\n",
            one("ADDED", 5),
            one("MODIFIED", 6)
        );
        assert_eq!(super::super::detect::detect(&text), Some(Format::WatchJson));
        let p = parse(&text, Format::WatchJson, "");
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.rejected.len(), 1);
        assert!(p.rejected[0]
            .reason
            .contains("the rest of the file was not read"));
        let Body::Kube(Kube::Object(o)) = &p.events[1].event.body else {
            panic!()
        };
        assert_eq!(
            (o.action, o.resource_version.as_str()),
            (ObjectAction::Changed, "6")
        );
    }
}
