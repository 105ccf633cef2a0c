//! `tapio publish`: existing captures into the cluster's stream (a post-mortem upload; how the
//! tests feed "nodes" from fixtures).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tapio::capture::{Merge, ReadOptions, Reader};
use tapio::cluster::{self, PublishOptions, Publisher};
use tapio::event::{Name, Ts};
use tapio::pipeline;

use crate::nats::{NatsArgs, StreamArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Captures (or directories of rotated captures), merged by time; then the NATS URL
    /// (nats://HOST:4222; $NATS_URL when it is left out).
    #[arg(required = true, value_names = ["CAPTURE", "URL"])]
    items: Vec<String>,
    /// The node for events that name none (imports of cluster-wide dumps).
    #[arg(long)]
    node: Option<String>,
    /// How long to wait for NATS to take everything before giving up (the rest is reported).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::nats::parse_duration)]
    timeout: Duration,
    /// Simulate a node whose clock is off: its events' times and its send stamps move by this
    /// much (+7s: ahead). For testing the consumer's clock correction.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, hide = true)]
    clock_offset: Option<String>,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    stream: StreamArgs,
    /// No summary line.
    #[arg(short, long)]
    quiet: bool,
}

fn offset_ns(s: &str) -> Result<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let ns = tapio::filter::parse_duration(rest).map_err(anyhow::Error::msg)? as i64;
    Ok(if neg { -ns } else { ns })
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut items = args.items.clone();
    let url = match items.last() {
        Some(u) if u.contains("://") => items.pop(),
        _ => None,
    };
    if items.is_empty() {
        bail!("no capture to publish");
    }
    let nats = args.nats.nats(url.as_deref())?;
    let paths: Vec<PathBuf> = items
        .iter()
        .flat_map(|p| pipeline::captures_in(std::path::Path::new(p)))
        .collect();
    if paths.is_empty() {
        bail!("no capture (*.tapio) in {}", items.join(", "));
    }
    let readers = paths
        .iter()
        .map(|p| Reader::open(p, ReadOptions::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let offset = args.clock_offset.as_deref().map(offset_ns).transpose()?;
    // The same captures published twice give the same message ids: JetStream keeps one copy.
    let mut seed = Vec::new();
    for r in &readers {
        seed.extend(serde_json::to_vec(&r.header()).unwrap_or_default());
    }
    seed.extend(format!("{:?}{:?}{}", args.node, offset, args.nats.cluster).bytes());
    let run = cluster::wire::run_id(Some(&seed));
    let spool_dir = std::env::temp_dir().join(format!("tapio-publish-{run}"));
    let publisher = Publisher::start(PublishOptions {
        nats: nats.clone(),
        cluster: args.nats.cluster.clone(),
        stream: args.stream.settings(&args.nats.stream),
        spool_dir: spool_dir.clone(),
        spool_max: u64::MAX,
        run,
        live_clock: offset.is_some(),
        clock_offset_ns: offset.unwrap_or(0),
        client_name: "tapio publish".to_string(),
    })?;
    let node = args.node.as_deref().map(Name::from);
    let mut merge = Merge::new(readers);
    let mut chunk = Vec::with_capacity(4096);
    let mut events = 0u64;
    while let Some(mut e) = merge.next_event()? {
        if let (Some(n), true) = (&node, e.node.as_str().is_empty()) {
            e.node = n.clone();
        }
        if let Some(o) = offset {
            e.ts = Ts((e.ts.0 as i64).saturating_add(o).max(0) as u64);
        }
        chunk.push(e);
        events += 1;
        if chunk.len() == 4096 {
            publisher.send(std::mem::replace(&mut chunk, Vec::with_capacity(4096)));
        }
    }
    publisher.send(chunk);
    for (path, w) in merge.take_warnings() {
        crate::common::warn(&path, &w);
    }
    let stats = publisher.finish(args.timeout).context("publishing")?;
    let left = stats.spool_bytes;
    let _ = std::fs::remove_dir_all(&spool_dir);
    if left > 0 || stats.events < events {
        bail!(
            "NATS at {} took {} of {} events within {:?}{}: run the same command again (what was stored is not stored twice)",
            nats.url,
            stats.events,
            events,
            args.timeout,
            stats
                .last_error
                .map_or(String::new(), |e| format!(" ({e})"))
        );
    }
    if !args.quiet {
        say!(
            "tapio: published {} events of {} capture{} in {} batches to stream {} (cluster {}){}",
            stats.events,
            paths.len(),
            if paths.len() == 1 { "" } else { "s" },
            stats.batches,
            args.nats.stream,
            args.nats.cluster,
            if stats.duplicates > 0 {
                format!(
                    "; {} batches were already there (published before)",
                    stats.duplicates
                )
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
