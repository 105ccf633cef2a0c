//! The cluster transport: every node's recorder publishes its events into a NATS JetStream
//! stream, and one consumer runs the pipeline over all of them.
//!
//! ```text
//! node recorders ──(record --publish)──▶ stream TAPIO, subjects tapio.<cluster>.<node>.<source>
//!   (spool on disk while NATS is away)          │
//! tapio publish CAPTURE… ───────────────────────┤
//!                                               ▼
//!                  replay --follow nats://  (durable consumer; dedupe, clock skew, reorder
//!                                            window) ──▶ the one pipeline core ──▶ incidents
//!                  pull nats://             (a window of the stream as an ordinary capture)
//! ```
//!
//! A message is one block frame of the capture format (checksums, zstd) holding one node's events
//! of one source, in time order, with headers: `Nats-Msg-Id` (`<node>.<run>.<seq>`, so that
//! JetStream drops a resend), `Tapio-Batch` (the wire version), `Tapio-Node`, `Tapio-Source`,
//! `Tapio-Run`, `Tapio-Seq`, `Tapio-Sent` (the publisher's clock when it sent the message, for the
//! skew estimate; absent for captures uploaded after the fact), `Tapio-Spool-Bytes`. The wire
//! format is documented in `docs/cluster.md`.

pub mod consume;
pub mod ledger;
pub mod metrics;
pub mod publish;
pub mod pull;
pub mod reorder;
pub mod skew;
mod spool;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use self::consume::{follow, replay, FollowOptions};
pub use self::metrics::Metrics;
pub use self::publish::{PublishOptions, PublishStats, Publisher};
pub use self::pull::{pull, PullOptions, PullSummary};

/// Where NATS is and how to log in, as NATS users expect it (`nats` CLI flags and `$NATS_URL`).
#[derive(Clone, Debug, Default)]
pub struct Nats {
    /// `nats://host:4222` (several, comma-separated, for a cluster of servers; `tls://` for TLS).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// CA certificate(s) to verify the server with (PEM).
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for mutual TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Require TLS even when the URL does not say `tls://`.
    pub tls_required: bool,
}

/// The stream's settings, used when tapio creates it (an existing stream is used as it is).
#[derive(Clone, Debug)]
pub struct StreamSettings {
    pub name: String,
    /// Messages older than this are removed.
    pub max_age: Duration,
    /// The stream holds at most this many bytes; the oldest messages go first. `None`: no limit.
    pub max_bytes: Option<u64>,
    /// Resends of a message id within this window are dropped by the server.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> StreamSettings {
        StreamSettings {
            name: "TAPIO".to_string(),
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: None,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Errors of the cluster transport; each names what it was talking to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("NATS at {url}: {detail}")]
    Nats { url: String, detail: String },
    #[error("{}: {detail}", path.display())]
    Spool { path: PathBuf, detail: String },
    #[error(transparent)]
    Capture(#[from] crate::capture::Error),
    #[error("{0}")]
    Other(String),
}

impl Error {
    fn nats(url: &str, detail: impl std::fmt::Display) -> Error {
        Error::Nats {
            url: url.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// A subject token from a name: NATS tokens cannot hold `.`, `*`, `>` or white space.
pub fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect();
    if t.is_empty() {
        "_".to_string()
    } else {
        t
    }
}

/// The subject of one node's events of one source.
pub fn subject(cluster: &str, node: &str, source: &str) -> String {
    format!("tapio.{}.{}.{}", token(cluster), token(node), token(source))
}

/// The subjects of a cluster (or of one node of it).
pub fn filter(cluster: &str, node: Option<&str>) -> String {
    match node {
        Some(n) => format!("tapio.{}.{}.>", token(cluster), token(n)),
        None => format!("tapio.{}.>", token(cluster)),
    }
}

/// The last thing the NATS client said about its connection (a refused login, a lost server).
pub(crate) type LastEvent = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// Connects (and, with `retry`, goes on trying in the background when the server is not up yet;
/// what goes wrong meanwhile lands in `events`).
pub(crate) async fn connect(
    nats: &Nats,
    name: &str,
    retry: bool,
) -> Result<async_nats::Client, Error> {
    connect_watched(nats, name, retry, None).await
}

pub(crate) async fn connect_watched(
    nats: &Nats,
    name: &str,
    retry: bool,
    events: Option<LastEvent>,
) -> Result<async_nats::Client, Error> {
    let url = &nats.url;
    let mut o = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None::<usize>);
    if let Some(last) = events {
        o = o.event_callback(move |ev| {
            let last = last.clone();
            async move {
                if let Ok(mut l) = last.lock() {
                    *l = match ev {
                        async_nats::Event::Connected => None,
                        other => Some(other.to_string()),
                    };
                }
            }
        });
    }
    if let Some(c) = &nats.creds {
        o = o
            .credentials_file(c)
            .await
            .map_err(|e| Error::nats(url, format!("cannot read {}: {e}", c.display())))?;
    }
    if let Some(t) = &nats.token {
        o = o.token(t.clone());
    }
    if let (Some(u), Some(p)) = (&nats.user, &nats.password) {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(ca) = &nats.tls_ca {
        o = o.add_root_certificates(ca.clone());
    }
    match (&nats.tls_cert, &nats.tls_key) {
        (Some(c), Some(k)) => o = o.add_client_certificate(c.clone(), k.clone()),
        (None, None) => {}
        _ => {
            return Err(Error::nats(
                url,
                "--nats-cert and --nats-key go together (a client certificate and its key)",
            ))
        }
    }
    if nats.tls_required || url.starts_with("tls://") {
        o = o.require_tls(true);
    }
    if retry {
        o = o.retry_on_initial_connect();
    }
    o.connect(url.as_str())
        .await
        .map_err(|e| Error::nats(url, e))
}

/// The stream, created with `settings` when missing; its subjects are `tapio.>`.
pub(crate) async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    url: &str,
    settings: &StreamSettings,
) -> Result<async_nats::jetstream::stream::Stream, Error> {
    use async_nats::jetstream::stream;
    js.get_or_create_stream(stream::Config {
        name: settings.name.clone(),
        subjects: vec!["tapio.>".to_string()],
        max_age: settings.max_age,
        max_bytes: settings.max_bytes.map_or(-1, |b| b as i64),
        duplicate_window: settings.duplicate_window,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    })
    .await
    .map_err(|e| Error::nats(url, format!("stream {}: {e}", settings.name)))
}

/// The stream, which must exist (consumers and `pull` never create it).
pub(crate) async fn get_stream(
    js: &async_nats::jetstream::Context,
    url: &str,
    name: &str,
) -> Result<async_nats::jetstream::stream::Stream, Error> {
    js.get_stream(name).await.map_err(|e| {
        Error::nats(
            url,
            format!("stream {name}: {e} (recorders create it with `record --publish`)"),
        )
    })
}

/// A runtime for one part of the transport: one worker thread, so that the NATS client's own
/// tasks (its connection, reconnects, pings) go on while the caller does other work.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tapio-nats")
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the NATS runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_hold_one_token_per_part_whatever_the_names() {
        assert_eq!(
            subject("prod", "ip-10-0-1-5.ec2.internal", "pod-logs"),
            "tapio.prod.ip-10-0-1-5_ec2_internal.pod-logs"
        );
        assert_eq!(subject("", "a b*c>", "ebpf"), "tapio._.a_b_c_.ebpf");
        assert_eq!(filter("prod", None), "tapio.prod.>");
        assert_eq!(filter("prod", Some("n.1")), "tapio.prod.n_1.>");
    }
}
