//! `tapio generate`: a deterministic synthetic capture, for benchmarks and demos.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tapio::capture::{Header, WriteOptions, Writer};
use tapio::event::Ts;
use tapio::source::generate::{self, Config};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the capture.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// How many events.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// The seed: the same seed gives the same capture.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Mean background events per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Time of the first event (RFC 3339).
    #[arg(long, default_value = "2026-03-14T10:00:00Z", value_parser = parse_ts)]
    start: Ts,
    /// Embed an incident: deployment shop/cart hits its memory limit at 60 % of the run.
    #[arg(long)]
    incident: bool,
    /// Nodes are named PREFIX-1, PREFIX-2 … (several "clusters" of nodes for the cluster
    /// benchmarks).
    #[arg(long, default_value = "node")]
    node_prefix: String,
}

fn parse_ts(s: &str) -> Result<Ts, String> {
    Ts::parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time"))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = Config {
        events: args.events,
        seed: args.seed,
        nodes: args.nodes,
        start: args.start,
        rate: args.rate,
        incident: args.incident,
        node_prefix: args.node_prefix.clone(),
    };
    let mut header = Header::new("");
    header.created = cfg.start;
    header.sources = vec!["generate".into()];
    header.options = [
        ("seed".to_string(), cfg.seed.to_string()),
        ("events".to_string(), cfg.events.to_string()),
        ("nodes".to_string(), cfg.nodes.to_string()),
        ("incident".to_string(), cfg.incident.to_string()),
    ]
    .into();
    let mut w = Writer::create(&args.output, &header, WriteOptions::default())?;
    generate::generate(&cfg, |mut e| w.append(&mut e))?;
    let t = w.finish()?;
    say!(
        "tapio: wrote {} events to {}",
        t.stats.events,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
