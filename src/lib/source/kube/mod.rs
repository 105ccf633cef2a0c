//! The Kubernetes source of `tapio record`: kube-rs watchers on the objects an incident is about.
//!
//! Every resource of [`RESOURCES`] is listed (each object becomes a `seen` event) and then
//! watched (`seen` for an addition, `changed`, `deleted`), with the object's full JSON. The
//! watchers are kube's own (`kube::runtime::watcher`): a watch that ends is resumed from the last
//! resourceVersion, `410 Gone` relists, errors retry with backoff. On top of them this source
//!
//! - drops what it already wrote: an object whose uid and resourceVersion it has written (a relist
//!   repeats everything; core/v1 and events.k8s.io/v1 serve the same Events) is not written again;
//! - writes what a relist reveals: objects that changed since (`changed`), and objects that are
//!   gone (`deleted`);
//! - writes a gap marker for every time the API server could not be reached, from the first failed
//!   request to the first successful one after it;
//! - skips malformed objects with a warning, and stops watching a resource it may not read (RBAC)
//!   or the server does not serve, with a warning.
//!
//! tokio lives here only: one current-thread runtime on the source's own thread.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use futures_util::stream::{self, BoxStream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event as Change};
use kube::runtime::WatchStreamExt;
use kube::{Client, Config};
use serde_json::Value;

use crate::event::{Event, Kube, Meta, Name, ObjectAction, Source, TimeRange, Ts};
use crate::source::import::kube::body;

/// A resource this source watches.
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// What is watched: the objects incidents are about, and the Events about them. The RBAC of
/// `deploy/` grants get/list/watch on exactly these.
pub const RESOURCES: &[Resource] = &[
    res("", "v1", "Pod", "pods", true),
    res("", "v1", "Node", "nodes", false),
    res("", "v1", "Event", "events", true),
    res("events.k8s.io", "v1", "Event", "events", true),
    res("apps", "v1", "ReplicaSet", "replicasets", true),
    res("apps", "v1", "Deployment", "deployments", true),
    res("apps", "v1", "StatefulSet", "statefulsets", true),
    res("apps", "v1", "DaemonSet", "daemonsets", true),
    res("batch", "v1", "Job", "jobs", true),
    res("", "v1", "Service", "services", true),
    res(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
    res("", "v1", "Namespace", "namespaces", false),
    // What changed: configuration (keys and value hashes only, see `import::kube::body`), network
    // policies, autoscaling. Node cordons and taints come with the Nodes.
    res("", "v1", "ConfigMap", "configmaps", true),
    res(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    res(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
];

impl Resource {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Both Event APIs serve the same objects: they share what was written.
    fn store(&self) -> &'static str {
        if self.kind == "Event" {
            "events"
        } else {
            self.plural
        }
    }

    fn describe(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A kubeconfig file; without it, kube's inference (`$KUBECONFIG`, `~/.kube/config`, the
    /// in-cluster service account).
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig other than its current one.
    pub context: Option<String>,
    /// Only this namespace's namespaced objects (Nodes and Namespaces are cluster-wide).
    pub namespace: Option<String>,
    /// Only the Pods of this node (the DaemonSet deployment: each recorder its own node's).
    pub only_node: Option<String>,
    /// The node name written into events that belong to no node.
    pub node: Name,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no usable Kubernetes configuration: {0}\n(pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account)")]
    Config(String),
    #[error("could not start the Kubernetes client: {0}")]
    Client(String),
}

/// Whether kube's inference would find a configuration: `$KUBECONFIG`, `~/.kube/config`, or the
/// in-cluster environment. `tapio record` watches Kubernetes by default when it does.
pub fn config_available() -> bool {
    let home_config = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".kube/config"))
        .is_some_and(|p| p.is_file());
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists();
    std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) || home_config || in_cluster
}

/// Counters of a recording, for the closing summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Objects and Events written.
    pub written: u64,
    /// Repeats not written again (relists, the second Event API).
    pub repeats: u64,
    /// Malformed objects skipped.
    pub malformed: u64,
    /// Times the API server could not be reached (gap markers written).
    pub gaps: u64,
}

/// A client and its runtime, ready to watch.
pub struct Watchers {
    rt: tokio::runtime::Runtime,
    client: Client,
    opts: Options,
    server: String,
}

/// Loads the configuration and makes the client; does not contact the server (an unreachable
/// server is a gap in the recording, not an error).
pub fn connect(opts: Options) -> Result<Watchers, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Client(e.to_string()))?;
    let config = rt.block_on(async {
        let options = KubeConfigOptions {
            context: opts.context.clone(),
            ..KubeConfigOptions::default()
        };
        match (&opts.kubeconfig, &opts.context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config(e.to_string())),
            (None, None) => Config::infer()
                .await
                .map_err(|e| Error::Config(e.to_string())),
        }
    })?;
    let server = config.cluster_url.to_string();
    let client = rt.block_on(async { Client::try_from(config) });
    let client = client.map_err(|e| Error::Client(e.to_string()))?;
    Ok(Watchers {
        rt,
        client,
        opts,
        server,
    })
}

impl super::Source for Watchers {
    fn name(&self) -> &'static str {
        "kube"
    }

    fn describe(&self) -> String {
        format!("Kubernetes at {}", self.server)
    }

    fn run(self: Box<Self>, out: &super::Outlet) -> super::Counters {
        super::Counters::Kube((*self).run(&out.events, &out.warnings, &out.halt))
    }
}

impl Watchers {
    /// The API server's address, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Watches until `halt`; sends batches of events to `tx` and warnings to `warn`.
    pub fn run(
        self,
        tx: &Sender<Vec<Event>>,
        warn: &Sender<String>,
        halt: &AtomicBool,
    ) -> Counters {
        let Watchers {
            rt, client, opts, ..
        } = self;
        rt.block_on(watch_all(client, opts, tx, warn, halt))
    }
}

type Item = (usize, Result<Change<DynamicObject>, watcher::Error>);

async fn watch_all(
    client: Client,
    opts: Options,
    tx: &Sender<Vec<Event>>,
    warn: &Sender<String>,
    halt: &AtomicBool,
) -> Counters {
    let streams: Vec<BoxStream<'static, Item>> = RESOURCES
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let gvk = GroupVersionKind::gvk(r.group, r.version, r.kind);
            let ar = ApiResource::from_gvk_with_plural(&gvk, r.plural);
            let api: Api<DynamicObject> = match (&opts.namespace, r.namespaced) {
                (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &ar),
                _ => Api::all_with(client.clone(), &ar),
            };
            let mut config = watcher::Config::default();
            if let (Some(node), "Pod") = (&opts.only_node, r.kind) {
                config = config.fields(&format!("spec.nodeName={node}"));
            }
            watcher::watcher(api, config)
                .default_backoff()
                .map(move |e| (i, e))
                .boxed()
        })
        .collect();
    let mut all = stream::select_all(streams);
    let mut state = State::new(opts.node.clone());
    let mut batch = Vec::new();
    let mut last_send = Instant::now();
    let mut last_probe = Instant::now();
    while !halt.load(Ordering::Relaxed) {
        if let Ok(Some((i, item))) =
            tokio::time::timeout(Duration::from_millis(100), all.next()).await
        {
            state.handle(i, item, &mut batch, warn);
        }
        // While the server is unreachable, a cheap request tells when it is back.
        if state.gap.is_some() && last_probe.elapsed() >= Duration::from_secs(1) {
            last_probe = Instant::now();
            let probe = tokio::time::timeout(Duration::from_secs(2), client.apiserver_version());
            if let Ok(Ok(_)) = probe.await {
                state.close_gap(&mut batch);
            }
        }
        for note in state.notes.drain(..) {
            let _ = warn.send(note);
        }
        if !batch.is_empty()
            && (batch.len() >= 1024 || last_send.elapsed() >= Duration::from_millis(100))
        {
            last_send = Instant::now();
            if tx.send(std::mem::take(&mut batch)).is_err() {
                return state.counters;
            }
        }
    }
    if let Some((from, reason)) = state.gap.take() {
        state.write_gap(
            from,
            format!("{reason} (still unreachable when the recording stopped)"),
            &mut batch,
        );
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    state.counters
}

fn now() -> Ts {
    Ts::from_datetime(&chrono::Utc::now())
}

/// What kind of trouble a watcher reported.
#[derive(Debug, PartialEq, Eq)]
enum Trouble {
    /// The server could not be reached or the connection broke: a gap.
    Lost,
    /// One object could not be read: skipped.
    Malformed,
    /// Not allowed (RBAC) or not served: this resource is not watched.
    Unavailable(u16),
    /// The server forgot the resourceVersion: the watcher relists by itself.
    Expired,
}

fn trouble(e: &watcher::Error) -> Trouble {
    use kube::Error as E;
    match e {
        watcher::Error::InitialListFailed(c)
        | watcher::Error::WatchStartFailed(c)
        | watcher::Error::WatchFailed(c) => match c {
            E::Api(s) if s.code == 403 || s.code == 404 => Trouble::Unavailable(s.code),
            // A line of the stream that parsed as a Status but is none: a malformed object.
            E::Api(s) if s.code == 0 || (400..500).contains(&s.code) && s.code != 429 => {
                Trouble::Malformed
            }
            E::SerdeError(_) | E::LinesCodecMaxLineLengthExceeded | E::FromUtf8(_) => {
                Trouble::Malformed
            }
            _ => Trouble::Lost,
        },
        watcher::Error::WatchError(s) if s.code == 410 => Trouble::Expired,
        watcher::Error::WatchError(s) if s.code == 403 || s.code == 404 => {
            Trouble::Unavailable(s.code)
        }
        watcher::Error::WatchError(_) => Trouble::Lost,
        watcher::Error::NoResourceVersion => Trouble::Malformed,
    }
}

/// What was written, per store: uid → (resourceVersion, the object as last written).
struct State {
    node: Name,
    known: HashMap<&'static str, HashMap<String, (String, Kube)>>,
    relist: Vec<Option<HashSet<String>>>,
    listed: Vec<bool>,
    unavailable: Vec<bool>,
    gap: Option<(Ts, String)>,
    counters: Counters,
    /// Messages for the user, sent with the next batch.
    notes: Vec<String>,
}

impl State {
    fn new(node: Name) -> State {
        State {
            node,
            known: HashMap::new(),
            relist: vec![None; RESOURCES.len()],
            listed: vec![false; RESOURCES.len()],
            unavailable: vec![false; RESOURCES.len()],
            gap: None,
            counters: Counters::default(),
            notes: Vec::new(),
        }
    }

    fn handle(
        &mut self,
        i: usize,
        item: Result<Change<DynamicObject>, watcher::Error>,
        out: &mut Vec<Event>,
        warn: &Sender<String>,
    ) {
        let r = &RESOURCES[i];
        if self.unavailable[i] {
            return;
        }
        let change = match item {
            Ok(c) => c,
            Err(e) => {
                match trouble(&e) {
                    Trouble::Lost => {
                        if self.gap.is_none() {
                            self.gap = Some((now(), format!("lost the API server: {e}")));
                            let _ = warn.send(format!("kube: {}: {e}; retrying", r.describe()));
                        }
                    }
                    Trouble::Malformed => {
                        self.counters.malformed += 1;
                        let _ = warn.send(format!(
                            "kube: {}: skipped an object that could not be read: {e}",
                            r.describe()
                        ));
                    }
                    Trouble::Unavailable(code) => {
                        self.unavailable[i] = true;
                        let why = if code == 403 {
                            "not allowed to list and watch them (RBAC: see deploy/rbac.yaml)"
                        } else {
                            "the API server does not serve them"
                        };
                        let _ = warn.send(format!("kube: not recording {}: {why}", r.describe()));
                    }
                    Trouble::Expired => {
                        let _ = warn.send(format!(
                            "kube: {}: the watch expired (410 Gone); listing again",
                            r.describe()
                        ));
                    }
                }
                return;
            }
        };
        self.close_gap(out);
        match change {
            Change::Init => self.relist[i] = Some(HashSet::new()),
            Change::InitApply(obj) => {
                let uid = self.write(i, obj, false, out);
                if let (Some(set), Some(uid)) = (&mut self.relist[i], uid) {
                    set.insert(uid);
                }
            }
            Change::InitDone => {
                let seen = self.relist[i].take().unwrap_or_default();
                if self.listed[i] {
                    // Gone while the watch was down: deleted, though the moment is not known.
                    let store = self.known.entry(r.store()).or_default();
                    let gone: Vec<String> = store
                        .keys()
                        .filter(|uid| !seen.contains(*uid))
                        .cloned()
                        .collect();
                    for uid in gone {
                        if let Some((_, Kube::Object(mut o))) = store.remove(&uid) {
                            o.action = ObjectAction::Deleted;
                            out.push(Event::new(
                                now(),
                                self.node.clone(),
                                Source::Kube,
                                Kube::Object(o),
                            ));
                            self.counters.written += 1;
                        }
                    }
                }
                self.listed[i] = true;
            }
            Change::Apply(obj) => {
                self.write(i, obj, false, out);
            }
            Change::Delete(obj) => {
                self.write(i, obj, true, out);
            }
        }
    }

    /// Writes one object unless this exact version was written; returns its uid.
    fn write(
        &mut self,
        i: usize,
        obj: DynamicObject,
        deleted: bool,
        out: &mut Vec<Event>,
    ) -> Option<String> {
        let r = &RESOURCES[i];
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        let store = self.known.entry(r.store()).or_default();
        let previous = store.get(&uid).map(|(v, _)| v.clone());
        if !deleted && previous.as_deref() == Some(rv.as_str()) && !uid.is_empty() {
            self.counters.repeats += 1;
            return Some(uid);
        }
        let action = match (deleted, &previous) {
            (true, _) => ObjectAction::Deleted,
            (false, None) => ObjectAction::Seen,
            (false, Some(_)) => ObjectAction::Changed,
        };
        let mut v = match serde_json::to_value(&obj) {
            Ok(Value::Object(m)) => m,
            _ => return None,
        };
        v.entry("apiVersion")
            .or_insert_with(|| Value::String(r.api_version()));
        v.entry("kind")
            .or_insert_with(|| Value::String(r.kind.to_string()));
        let b = match body(v, action) {
            Ok(b) => b,
            Err(_) => return None,
        };
        if deleted {
            store.remove(&uid);
            if matches!(b.kube, Kube::Event(_)) {
                return Some(uid); // an Event's expiry says nothing about the cluster
            }
        } else if !uid.is_empty() {
            store.insert(uid.clone(), (rv, b.kube.clone()));
        }
        let node = if b.node.is_empty() {
            self.node.clone()
        } else {
            Name::from(b.node.as_str())
        };
        out.push(Event::new(now(), node, Source::Kube, b.kube));
        self.counters.written += 1;
        Some(uid)
    }

    fn close_gap(&mut self, out: &mut Vec<Event>) {
        if let Some((from, reason)) = self.gap.take() {
            self.write_gap(from, reason, out);
            if let Some(Event {
                body: crate::event::Body::Meta(Meta::Gap { range, .. }),
                ..
            }) = out.last()
            {
                let secs = range.to.saturating_sub(range.from) as f64 / 1e9;
                self.notes.push(format!(
                    "kube: the API server answers again; {secs:.1} s without it are marked as a gap in the capture"
                ));
            }
        }
    }

    fn write_gap(&mut self, from: Ts, reason: String, out: &mut Vec<Event>) {
        let to = now();
        self.counters.gaps += 1;
        out.push(Event::new(
            to,
            self.node.clone(),
            Source::Tapio,
            Meta::Gap {
                source: Source::Kube,
                range: TimeRange { from, to },
                reason,
            },
        ));
    }
}
