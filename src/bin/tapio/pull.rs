//! `tapio pull`: a window of the cluster's stream as an ordinary capture.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use tapio::cluster::{self, PullOptions};
use tapio::event::Ts;
use tapio::filter::TimeSpec;

use crate::nats::NatsArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The NATS server (nats://HOST:4222); $NATS_URL when left out.
    url: Option<String>,
    /// The window's start: RFC 3339, "2024-05-01 10:00", or a UTC time of day (today's, or
    /// yesterday's when that is still to come). Default: the stream's beginning.
    #[arg(long)]
    since: Option<String>,
    /// The window's end: as --since, or an offset from it (+30m). Default: now.
    #[arg(long)]
    until: Option<String>,
    /// Only these nodes (repeat, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// The capture to write.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// Correct a node's clock when it is off by more than this (as the consumer does); off: never.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::nats::parse_threshold)]
    skew_threshold: crate::nats::Threshold,
    #[command(flatten)]
    nats: NatsArgs,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

fn resolve(spec: TimeSpec, base: Ts, now: Ts) -> Ts {
    match spec {
        TimeSpec::TimeOfDay(_) => {
            let t = spec.resolve(now);
            if t > now {
                Ts(t.0.saturating_sub(86_400 * Ts::NANOS_PER_SEC))
            } else {
                t
            }
        }
        other => other.resolve(base),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let nats = args.nats.nats(args.url.as_deref())?;
    let now = tapio::capture::now();
    let parse = |s: &Option<String>| -> Result<Option<TimeSpec>> {
        s.as_deref()
            .map(TimeSpec::parse)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let since = match parse(&args.since)? {
        Some(TimeSpec::AfterStart(_)) => bail!("--since takes a time, not an offset"),
        Some(s) => Some(resolve(s, now, now)),
        None => None,
    };
    let until = match parse(&args.until)? {
        Some(TimeSpec::AfterStart(_)) if since.is_none() => {
            bail!("--until +DURATION counts from --since: give --since too")
        }
        Some(u) => Some(resolve(u, since.unwrap_or(now), now)),
        None => None,
    };
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            bail!("--until ({u}) is before --since ({s})");
        }
    }
    let opts = PullOptions {
        nats,
        cluster: args.nats.cluster.clone(),
        stream: args.nats.stream.clone(),
        nodes: args.node.clone(),
        since,
        until,
        output: args.output.clone(),
        margin: Duration::from_secs(300),
        skew_threshold: args.skew_threshold.0,
    };
    let s = cluster::pull(&opts, &mut |w| say!("tapio: warning: {w}"))?;
    if !args.quiet {
        say!(
            "tapio: pulled {} events ({} → {}) and {} Kubernetes objects from before the window, from {} messages, into {}",
            s.events,
            s.first.map_or("-".to_string(), |t| t.to_string()),
            s.last.map_or("-".to_string(), |t| t.to_string()),
            s.objects,
            s.messages,
            args.output.display()
        );
        for k in s.skew.iter().filter(|k| k.applied_ns != 0) {
            say!(
                "tapio: the clock of node {} was {} off the NATS server's; its events were corrected by {}",
                k.node,
                cluster::skew::seconds(k.estimate_ns),
                cluster::skew::seconds(-k.applied_ns)
            );
        }
    }
    Ok(crate::common::exit(s.garbage > 0))
}
