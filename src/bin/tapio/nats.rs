//! The NATS options the cluster commands share (`record --publish`, `publish`, `pull`,
//! `replay --follow nats://`), named as the `nats` CLI names them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use tapio::cluster::{Nats, StreamSettings};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "NATS (the cluster's stream)")]
pub struct NatsArgs {
    /// The cluster's name: subjects are tapio.<cluster>.<node>.<source>.
    #[arg(long, env = "TAPIO_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// The JetStream stream.
    #[arg(long, default_value = "TAPIO")]
    pub stream: String,
    /// A NATS credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS authentication token.
    #[arg(long, value_name = "TOKEN", env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// A NATS user (with --nats-password).
    #[arg(long, value_name = "USER", env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// The password of --nats-user.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "NATS_PASSWORD",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// CA certificate(s) to verify the NATS server with (PEM).
    #[arg(long, value_name = "FILE", env = "NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// A client certificate for mutual TLS (PEM, with --nats-key).
    #[arg(long, value_name = "FILE", env = "NATS_CERT")]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", env = "NATS_KEY")]
    pub nats_key: Option<PathBuf>,
    /// Require TLS (implied by a tls:// URL or the TLS files).
    #[arg(long)]
    pub nats_tls: bool,
}

impl NatsArgs {
    /// The connection for `url` (or `$NATS_URL` when empty).
    pub fn nats(&self, url: Option<&str>) -> Result<Nats> {
        let url = match url.filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => match std::env::var("NATS_URL") {
                Ok(u) if !u.is_empty() => u,
                _ => bail!("no NATS server: give nats://HOST:4222 or set $NATS_URL"),
            },
        };
        if !(url.contains("://") || url.contains(':')) {
            bail!("{url:?} is not a NATS URL (like nats://nats.tapio:4222)");
        }
        if self.nats_user.is_some() != self.nats_password.is_some() {
            bail!("--nats-user and --nats-password go together");
        }
        Ok(Nats {
            url,
            creds: self.nats_creds.clone(),
            token: self.nats_token.clone(),
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            tls_ca: self.nats_ca.clone(),
            tls_cert: self.nats_cert.clone(),
            tls_key: self.nats_key.clone(),
            tls_required: self.nats_tls || self.nats_ca.is_some() || self.nats_cert.is_some(),
        })
    }
}

/// The stream's retention, used when tapio creates it.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "NATS (the cluster's stream)")]
pub struct StreamArgs {
    /// When tapio creates the stream: messages older than this are removed.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub stream_max_age: Duration,
    /// When tapio creates the stream: it holds at most SIZE (K, M, G suffixes); the oldest
    /// messages go first. Default: no limit but the age.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub stream_max_bytes: Option<u64>,
}

impl StreamArgs {
    pub fn settings(&self, name: &str) -> StreamSettings {
        StreamSettings {
            name: name.to_string(),
            max_age: self.stream_max_age,
            max_bytes: self.stream_max_bytes,
            ..StreamSettings::default()
        }
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    tapio::filter::parse_duration(s).map(Duration::from_nanos)
}

/// A threshold that can be turned off.
#[derive(Clone, Copy, Debug)]
pub struct Threshold(pub Option<Duration>);

/// `2s`, or `off`.
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    if s == "off" {
        return Ok(Threshold(None));
    }
    parse_duration(s).map(|d| Threshold(Some(d)))
}

/// `2h`, or `all`.
pub fn parse_window(s: &str) -> Result<Threshold, String> {
    if s == "all" {
        return Ok(Threshold(None));
    }
    parse_duration(s).map(|d| Threshold(Some(d)))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.trim_end_matches('B');
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 100M or 2G)"))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("{s:?}: a size must be positive"));
    }
    Ok((n * mult as f64) as u64)
}

/// Where a publisher spools by default: /var/lib/tapio/spool as root, else the user's state
/// directory; one directory per cluster and node.
pub fn default_spool(cluster: &str, node: &str) -> PathBuf {
    let base = if is_root() {
        PathBuf::from("/var/lib/tapio/spool")
    } else {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("tapio/spool")
    };
    base.join(format!(
        "{}.{}",
        tapio::cluster::token(cluster),
        tapio::cluster::token(node)
    ))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
