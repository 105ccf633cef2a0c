//! A small Kubernetes API server for tests: real HTTP/1.1 on 127.0.0.1, speaking the list/watch
//! protocol as kube-apiserver does (resourceVersion, chunked watch streams of JSON lines,
//! bookmarks, `410 Gone` as a watch ERROR event, `fieldSelector=spec.nodeName=`), over an
//! in-memory store the test drives. It can end every watch, forget its history (so that resuming
//! gets 410), inject a malformed line, and go away and come back on the same port.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Clone)]
enum Entry {
    Change { kind: &'static str, object: Value },
    Raw(String),
}

#[derive(Default)]
struct Store {
    rv: u64,
    /// key ("group/plural") → uid → object
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// (rv, key, entry), oldest first
    history: Vec<(u64, String, Entry)>,
    /// A watch from before this resourceVersion gets 410 Gone.
    oldest: u64,
    /// Requests served, by path (for assertions on relists).
    lists: Vec<String>,
}

struct Inner {
    store: Mutex<Store>,
    changed: Condvar,
    /// Bumped to end every open watch politely (a terminating chunk).
    end_gen: AtomicU64,
    /// Bumped to drop every connection abruptly (a restart).
    conn_gen: AtomicU64,
    up: AtomicBool,
    port: u16,
}

pub struct ApiServer {
    inner: Arc<Inner>,
}

/// "group/plural" for a path, with the namespace if the path has one.
fn route(path: &str) -> Option<(String, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return None,
    };
    match rest {
        [plural] => Some((format!("{group}/{plural}"), None)),
        ["namespaces", ns, plural] => Some((format!("{group}/{plural}"), Some(ns.to_string()))),
        _ => None,
    }
}

fn matches(object: &Value, ns: &Option<String>, field: &Option<String>) -> bool {
    if let Some(ns) = ns {
        if object["metadata"]["namespace"].as_str() != Some(ns) {
            return false;
        }
    }
    if let Some(node) = field
        .as_deref()
        .and_then(|f| f.strip_prefix("spec.nodeName="))
    {
        if object["spec"]["nodeName"].as_str() != Some(node) {
            return false;
        }
    }
    true
}

fn list_kind(key: &str) -> &'static str {
    match key.rsplit('/').next().unwrap_or("") {
        "pods" => "PodList",
        "nodes" => "NodeList",
        "events" => "EventList",
        "replicasets" => "ReplicaSetList",
        "deployments" => "DeploymentList",
        "statefulsets" => "StatefulSetList",
        "daemonsets" => "DaemonSetList",
        "jobs" => "JobList",
        "services" => "ServiceList",
        "endpointslices" => "EndpointSliceList",
        "namespaces" => "NamespaceList",
        _ => "List",
    }
}

/// The store key of an object, from its apiVersion and kind.
pub fn key_of(object: &Value) -> String {
    let api = object["apiVersion"].as_str().unwrap_or("v1");
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object["kind"].as_str().unwrap_or("");
    let plural = match kind {
        "Endpoints" => "endpoints".to_string(),
        k if k.ends_with('y') => format!("{}ies", k[..k.len() - 1].to_lowercase()),
        k => format!("{}s", k.to_lowercase()),
    };
    format!("{group}/{plural}")
}

impl ApiServer {
    pub fn start() -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            store: Mutex::new(Store {
                rv: 1000,
                oldest: 0,
                ..Store::default()
            }),
            changed: Condvar::new(),
            end_gen: AtomicU64::new(0),
            conn_gen: AtomicU64::new(0),
            up: AtomicBool::new(true),
            port,
        });
        accept_loop(Arc::clone(&inner), listener);
        ApiServer { inner }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Adds or changes an object (ADDED / MODIFIED); returns its new resourceVersion.
    pub fn apply(&self, object: Value) -> u64 {
        let rv = self.inner.store.lock().unwrap().apply(object);
        self.inner.changed.notify_all();
        rv
    }

    /// Changes the store while no watch sees it, then forgets the history and ends the watches:
    /// they resume from a resourceVersion the server no longer has, get 410 Gone, and relist.
    pub fn compact_after(&self, changes: impl FnOnce(&mut Mutator)) {
        let mut s = self.inner.store.lock().unwrap();
        changes(&mut Mutator { store: &mut s });
        s.oldest = s.rv;
        s.history.clear();
        drop(s);
        self.end_watches();
    }

    /// Sends a line that is not a watch event to the open watches of `key`.
    pub fn inject_raw(&self, key: &str, line: &str) {
        let mut s = self.inner.store.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        s.history
            .push((rv, key.to_string(), Entry::Raw(line.to_string())));
        self.inner.changed.notify_all();
    }

    /// Ends every open watch with a terminating chunk, as the API server does at its timeout.
    pub fn end_watches(&self) {
        self.inner.end_gen.fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_all();
    }

    /// Goes away (every connection dropped, the port closed) for `down`, then comes back.
    pub fn restart(&self, down: Duration) {
        self.inner.up.store(false, Ordering::SeqCst);
        self.inner.conn_gen.fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_all();
        thread::sleep(down);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.inner.port)) {
                Ok(l) => break l,
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        self.inner.up.store(true, Ordering::SeqCst);
        accept_loop(Arc::clone(&self.inner), listener);
    }

    /// How many list requests each path got.
    pub fn lists(&self, key: &str) -> usize {
        let s = self.inner.store.lock().unwrap();
        s.lists.iter().filter(|p| p.as_str() == key).count()
    }
}

/// Changes to the store inside [`ApiServer::compact_after`].
pub struct Mutator<'a> {
    store: &'a mut Store,
}

impl Mutator<'_> {
    pub fn apply(&mut self, object: Value) {
        self.store.apply(object);
    }

    pub fn delete(&mut self, object: &Value) {
        self.store.delete(object);
    }
}

impl Store {
    fn apply(&mut self, mut object: Value) -> u64 {
        self.rv += 1;
        let rv = self.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = key_of(&object);
        let uid = object["metadata"]["uid"].as_str().unwrap().to_string();
        let objects = self.objects.entry(key.clone()).or_default();
        let kind = if objects.contains_key(&uid) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        objects.insert(uid, object.clone());
        self.history.push((rv, key, Entry::Change { kind, object }));
        rv
    }

    fn delete(&mut self, object: &Value) {
        self.rv += 1;
        let rv = self.rv;
        let key = key_of(object);
        let uid = object["metadata"]["uid"].as_str().unwrap();
        let Some(mut gone) = self.objects.get_mut(&key).and_then(|o| o.remove(uid)) else {
            return;
        };
        gone["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.history.push((
            rv,
            key,
            Entry::Change {
                kind: "DELETED",
                object: gone,
            },
        ));
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.inner.up.store(false, Ordering::SeqCst);
        self.inner.conn_gen.fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_all();
    }
}

fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let gen = inner.conn_gen.load(Ordering::SeqCst);
    thread::spawn(move || {
        while inner.up.load(Ordering::SeqCst) && inner.conn_gen.load(Ordering::SeqCst) == gen {
            match listener.accept() {
                Ok((stream, _)) => {
                    let inner = Arc::clone(&inner);
                    thread::spawn(move || serve(inner, stream, gen));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
}

fn alive(inner: &Inner, gen: u64) -> bool {
    inner.up.load(Ordering::SeqCst) && inner.conn_gen.load(Ordering::SeqCst) == gen
}

fn serve(inner: Arc<Inner>, stream: TcpStream, gen: u64) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    'requests: loop {
        // The request line and headers, waiting as long as the connection lives.
        let mut head = String::new();
        loop {
            if !alive(&inner, gen) {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    head.push_str(&line);
                    if head.ends_with("\r\n\r\n") {
                        break;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    head.push_str(&line);
                }
                Err(_) => return,
            }
        }
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), decode(v)))
            .collect();
        if path == "/version" {
            respond(
                &mut out,
                200,
                &json!({"major": "1", "minor": "30", "gitVersion": "v1.30.0"}),
            );
            continue;
        }
        let Some((key, ns)) = route(path) else {
            respond(
                &mut out,
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
            continue;
        };
        let field = params.get("fieldSelector").cloned();
        let watching = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
        if !watching {
            let mut s = inner.store.lock().unwrap();
            s.lists.push(key.clone());
            let items: Vec<Value> = s
                .objects
                .get(&key)
                .map(|o| {
                    o.values()
                        .filter(|v| matches(v, &ns, &field))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let body = json!({
                "kind": list_kind(&key),
                "apiVersion": "v1",
                "metadata": {"resourceVersion": s.rv.to_string()},
                "items": items,
            });
            drop(s);
            respond(&mut out, 200, &body);
            continue;
        }
        // A watch: chunked JSON lines until it ends.
        let from: u64 = params
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bookmarks = params
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true");
        let timeout = params
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(290), Duration::from_secs);
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_err()
        {
            return;
        }
        let end_gen = inner.end_gen.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut sent = from;
        let mut last_bookmark = Instant::now();
        let mut s = inner.store.lock().unwrap();
        if from < s.oldest {
            drop(s);
            let gone = json!({"type": "ERROR", "object": status(410, "Expired", &format!("too old resource version: {from}"))});
            let _ = chunk(&mut out, &gone.to_string()).and_then(|_| out.write_all(b"0\r\n\r\n"));
            continue 'requests;
        }
        loop {
            if !alive(&inner, gen) {
                drop(s);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            if inner.end_gen.load(Ordering::SeqCst) != end_gen || started.elapsed() >= timeout {
                drop(s);
                if out.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
                continue 'requests;
            }
            let pending: Vec<(u64, Entry)> = s
                .history
                .iter()
                .filter(|(rv, k, _)| *rv > sent && *k == key)
                .map(|(rv, _, e)| (*rv, e.clone()))
                .collect();
            let newest = s.rv;
            if pending.is_empty()
                && !(bookmarks && last_bookmark.elapsed() >= Duration::from_secs(1))
            {
                s = inner
                    .changed
                    .wait_timeout(s, Duration::from_millis(100))
                    .unwrap()
                    .0;
                continue;
            }
            drop(s);
            let mut lines = Vec::new();
            for (rv, e) in pending {
                sent = rv;
                match e {
                    Entry::Change { kind, object } if matches(&object, &ns, &field) => {
                        lines.push(json!({"type": kind, "object": object}).to_string())
                    }
                    Entry::Change { .. } => {}
                    Entry::Raw(line) => lines.push(line),
                }
            }
            if bookmarks && last_bookmark.elapsed() >= Duration::from_secs(1) {
                last_bookmark = Instant::now();
                sent = sent.max(newest);
                lines.push(
                    json!({"type": "BOOKMARK", "object": {"kind": list_kind(&key).trim_end_matches("List"), "apiVersion": "v1", "metadata": {"resourceVersion": sent.to_string()}}})
                        .to_string(),
                );
            }
            for l in lines {
                if chunk(&mut out, &l).is_err() {
                    return;
                }
            }
            s = inner.store.lock().unwrap();
        }
    }
}

fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(n) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(out: &mut TcpStream, code: u16, body: &Value) {
    let text = body.to_string();
    let reason = if code == 200 { "OK" } else { "Not Found" };
    let _ = write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
}

fn chunk(out: &mut TcpStream, line: &str) -> std::io::Result<()> {
    let data = format!("{line}\n");
    write!(out, "{:x}\r\n{data}\r\n", data.len())?;
    out.flush()
}
