//! Notify: each incident change (open, update, close) to a command (`--on-incident CMD`, the JSON
//! on its stdin: to page, to post to chat) and to a webhook (`--webhook URL`, the same JSON
//! POSTed, with retries and a timeout).
//!
//! Notifying never holds up what it reports on: changes wait in a bounded queue for a thread of
//! their own, a full queue drops the change (counted), and a hook that hangs is killed at its
//! timeout. What failed is counted and said at the end, and as it happens.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

/// Where changes go, and how hard to try.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run through `sh -c`, the change's JSON on stdin.
    pub command: Option<String>,
    /// POST the change's JSON here (http:// or https://).
    pub webhook: Option<String>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts of a webhook POST before it counts as failed (backing off 0.5 s, 1 s, 2 s …).
    pub attempts: u32,
    /// Changes waiting at most; past this, a change is dropped and counted.
    pub queue: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            command: None,
            webhook: None,
            timeout: Duration::from_secs(10),
            attempts: 4,
            queue: 1024,
        }
    }
}

/// What happened to the changes, for the closing summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    /// Hook runs or POSTs that failed (after their retries).
    pub failed: u64,
    /// Retried POSTs (each retry once).
    pub retried: u64,
    /// Changes dropped because the queue was full (a hook far slower than the incidents).
    pub dropped: u64,
}

#[derive(Default)]
struct Count {
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--webhook {url}: {what}")]
    Url { url: String, what: String },
    #[error("cannot start the notifier: {0}")]
    Start(String),
}

/// The notifier's thread, and what it counted.
pub struct Notifier {
    tx: Option<Sender<String>>,
    count: Arc<Count>,
    thread: Option<thread::JoinHandle<()>>,
    warnings: Receiver<String>,
}

impl Notifier {
    /// Checks the options and starts the thread.
    pub fn start(opts: Options) -> Result<Notifier, Error> {
        let url = match &opts.webhook {
            Some(u) => {
                let uri: http::Uri = u.parse().map_err(|e| Error::Url {
                    url: u.clone(),
                    what: format!("not a URL ({e})"),
                })?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) {
                    return Err(Error::Url {
                        url: u.clone(),
                        what: "only http:// and https:// are supported".into(),
                    });
                }
                Some(uri)
            }
            None => None,
        };
        let (tx, rx) = bounded::<String>(opts.queue.max(1));
        let (warn_tx, warnings) = bounded::<String>(256);
        let count = Arc::new(Count::default());
        let c = Arc::clone(&count);
        let thread = thread::Builder::new()
            .name("tapio-notify".into())
            .spawn(move || work(opts, url, rx, &c, &warn_tx))
            .map_err(|e| Error::Start(e.to_string()))?;
        Ok(Notifier {
            tx: Some(tx),
            count,
            thread: Some(thread),
            warnings,
        })
    }

    /// Queues a change; never waits.
    pub fn send(&self, json: String) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(json) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.count.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// What went wrong since the last call (a hook that failed, a webhook that answered 500).
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.try_iter().collect()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            sent: self.count.sent.load(Ordering::Relaxed),
            failed: self.count.failed.load(Ordering::Relaxed),
            retried: self.count.retried.load(Ordering::Relaxed),
            dropped: self.count.dropped.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued (each attempt still bounded by its timeout), then stops.
    pub fn finish(mut self) -> Counters {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counters()
    }
}

fn work(
    opts: Options,
    url: Option<http::Uri>,
    rx: Receiver<String>,
    count: &Count,
    warn: &Sender<String>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = warn.try_send(format!("notify: cannot start: {e}"));
            return;
        }
    };
    let client = url.as_ref().and_then(|_| match https_client() {
        Ok(c) => Some(c),
        Err(e) => {
            let _ = warn.try_send(format!("notify: --webhook: {e}"));
            None
        }
    });
    for json in rx {
        let mut ok = true;
        if let Some(cmd) = &opts.command {
            if let Err(e) = run_command(cmd, &json, opts.timeout) {
                ok = false;
                let _ = warn.try_send(format!("notify: --on-incident {cmd:?}: {e}"));
            }
        }
        if let (Some(url), Some(client)) = (&url, &client) {
            let mut delay = Duration::from_millis(500);
            let mut last = String::new();
            let mut posted = false;
            for attempt in 0..opts.attempts.max(1) {
                if attempt > 0 {
                    count.retried.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(delay);
                    delay *= 2;
                }
                match rt.block_on(post(client, url, &json, opts.timeout)) {
                    Ok(()) => {
                        posted = true;
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if !posted {
                ok = false;
                let _ = warn.try_send(format!(
                    "notify: --webhook {url}: {last} (after {} attempts)",
                    opts.attempts.max(1)
                ));
            }
        }
        let c = if ok { &count.sent } else { &count.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `sh -c CMD` with `json` on its stdin; an exit other than 0, or running past `timeout`
/// (it is then killed), is a failure.
fn run_command(cmd: &str, json: &str, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is its own business.
        let _ = stdin.write_all(json.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("it failed ({s})")),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it ran past {} s and was killed",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

fn https_client() -> Result<Client, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no CA certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

async fn post(
    client: &Client,
    url: &http::Uri,
    json: &str,
    timeout: Duration,
) -> Result<(), String> {
    let req = http::Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("tapio/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json.to_string(),
        )))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("answered {}", resp.status())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_gets_the_json_and_a_failing_or_hanging_one_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let n = Notifier::start(Options {
            command: Some(format!("cat >> {}", out.display())),
            ..Options::default()
        })
        .unwrap();
        n.send(r#"{"state":"open"}"#.into());
        n.send(r#"{"state":"closed"}"#.into());
        let c = n.finish();
        assert_eq!(c.sent, 2);
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, "{\"state\":\"open\"}\n{\"state\":\"closed\"}\n");

        let n = Notifier::start(Options {
            command: Some("exit 3".into()),
            ..Options::default()
        })
        .unwrap();
        n.send("{}".into());
        assert_eq!(n.finish().failed, 1);

        let n = Notifier::start(Options {
            command: Some("sleep 30".into()),
            timeout: Duration::from_millis(200),
            ..Options::default()
        })
        .unwrap();
        let t = Instant::now();
        n.send("{}".into());
        assert_eq!(n.take_warnings().len(), 0);
        let c = n.finish();
        assert_eq!(c.failed, 1);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "killed at its timeout"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let n = Notifier::start(Options {
            command: Some("sleep 0.3".into()),
            queue: 2,
            ..Options::default()
        })
        .unwrap();
        let t = Instant::now();
        for _ in 0..20 {
            n.send("{}".into());
        }
        assert!(t.elapsed() < Duration::from_millis(100), "send never waits");
        let c = n.finish();
        assert!(c.dropped >= 15, "{c:?}");
        assert_eq!(c.sent + c.dropped, 20, "{c:?}");
    }

    #[test]
    fn a_webhook_that_is_down_is_retried_then_counted_and_a_bad_url_is_an_error() {
        assert!(Notifier::start(Options {
            webhook: Some("ftp://x".into()),
            ..Options::default()
        })
        .is_err());
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let n = Notifier::start(Options {
            webhook: Some(format!("http://127.0.0.1:{port}/hook")),
            attempts: 2,
            ..Options::default()
        })
        .unwrap();
        n.send("{}".into());
        let c = n.finish();
        assert_eq!((c.failed, c.retried), (1, 1), "{c:?}");
    }
}
