//! `tapio correlate`: the incidents that explain one request or one entity.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use tapio::analysis::request::{self, Request};
use tapio::analysis::{Incident, Verdict};
use tapio::capture::ReadOptions;
use tapio::detect::{span_entity, FindingKind};
use tapio::event::{Span, TraceId};
use tapio::filter::TimeSpec;
use tapio::pipeline::{self, Options};
use tapio::report;
use tapio::topology::Entity;

use crate::common::{self, Output};
use crate::replay;

#[derive(clap::Args)]
pub struct Args {
    /// Capture files (several are merged by time).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Start from one request: its failing spans, and the path from them to the root cause.
    #[arg(long, value_parser = parse_trace)]
    trace_id: Option<TraceId>,
    /// The incidents that involve this pod (NAMESPACE/NAME).
    #[arg(long)]
    pod: Option<String>,
    /// The incidents that involve this service (NAMESPACE/NAME).
    #[arg(long)]
    service: Option<String>,
    /// The incidents that involve this node.
    #[arg(long)]
    node: Option<String>,
    /// Only incidents active at or after this time (same forms as `tapio cat --since`).
    #[arg(long, value_parser = TimeSpec::parse)]
    since: Option<TimeSpec>,
    /// Only incidents active at or before this time.
    #[arg(long, value_parser = TimeSpec::parse)]
    until: Option<TimeSpec>,
    /// Show the other causes considered and why they lost.
    #[arg(long)]
    explain: bool,
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn parse_trace(s: &str) -> Result<TraceId, String> {
    TraceId::from_hex(s).ok_or_else(|| format!("{s:?} is not a trace id (up to 32 hex digits)"))
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    args.files = common::expand(&args.files);
    let mut wanted: Vec<Entity> = Vec::new();
    let split = |s: &str, what: &str| -> Result<(String, String)> {
        match s.split_once('/') {
            Some((ns, name)) => Ok((ns.to_string(), name.to_string())),
            None => bail!("--{what} takes NAMESPACE/NAME, got {s:?}"),
        }
    };
    if let Some(p) = &args.pod {
        let (ns, name) = split(p, "pod")?;
        wanted.push(Entity::Pod { ns, name });
    }
    if let Some(s) = &args.service {
        let (ns, name) = split(s, "service")?;
        wanted.push(Entity::Service { ns, name });
    }
    if let Some(n) = &args.node {
        wanted.push(Entity::Node(n.clone()));
    }
    if wanted.is_empty() && args.trace_id.is_none() {
        bail!("say what to explain: --trace-id, --pod, --service or --node");
    }
    let opts = Options {
        threads: args.threads,
        read: ReadOptions::default(),
        trace: args.trace_id,
        ..Options::default()
    };
    let outcome = pipeline::run(&args.files, &opts, &mut |_| {})?;
    let mut request = None;
    if let Some(t) = args.trace_id {
        let (entities, req) = trace_entities(outcome.trace_spans.clone());
        let Some(req) = req else {
            bail!("trace {t} has no span in {}", args.files[0].display());
        };
        wanted.extend(entities);
        request = Some(req);
    }
    let problem = replay::warn(&outcome);
    let start = outcome
        .detected
        .findings
        .iter()
        .map(|f| f.start)
        .min()
        .unwrap_or_default();
    let (since, until) = (
        args.since.map(|s| s.resolve(start)),
        args.until.map(|s| s.resolve(start)),
    );
    let incidents: Vec<Incident> = outcome
        .verdict
        .incidents
        .into_iter()
        .filter(|i| involves(i, &wanted))
        .filter(|i| since.is_none_or(|t| i.end >= t) && until.is_none_or(|t| i.start <= t))
        // A request that succeeded is blamed on nothing but a slowdown it went through.
        .filter(|i| request.as_ref().is_none_or(|r| r.failed || slowed(i, r)))
        .collect();
    if let Some(r) = &request {
        if args.output == Output::Text {
            let mut s = report::request_text(r);
            match incidents.first() {
                Some(i) => {
                    s.push_str("  ← explained by\n");
                    for step in i.chain.iter().rev() {
                        s.push_str(&format!(
                            "    {}  [{}] {}\n",
                            step.ts, step.layer, step.summary
                        ));
                    }
                }
                None if !r.failed => {
                    s.push_str("  it succeeded, and no incident touched it\n");
                }
                None => {}
            }
            s.push('\n');
            common::print(&s)?;
            if incidents.is_empty() && !r.failed {
                return Ok(common::exit(problem));
            }
        }
    }
    replay::Printer::new(args.output, args.explain, true).finish(&Verdict { incidents })?;
    Ok(common::exit(problem))
}

/// Whether a slowdown of the incident covers one of the request's services while it ran.
fn slowed(i: &Incident, r: &Request) -> bool {
    let at = r.steps.first().map(|s| s.start).unwrap_or_default();
    i.findings.iter().any(|f| {
        matches!(
            f.kind,
            FindingKind::ServiceLatency | FindingKind::NetworkLatency | FindingKind::SlowSpans
        ) && f.start <= at
            && at <= f.end
            && r.steps.iter().any(|s| s.service == f.entity)
    })
}

/// Whether an incident's findings touch one of the entities (as subject, peer or client).
fn involves(i: &Incident, wanted: &[Entity]) -> bool {
    let hit = |e: &Entity| wanted.contains(e);
    hit(&i.root_cause.entity)
        || i.impact.services.iter().any(hit)
        || i.impact.pods.iter().any(hit)
        || i.impact.nodes.iter().any(hit)
        || i.findings.iter().any(|f| {
            hit(&f.entity)
                || f.facts.peer.as_ref().is_some_and(hit)
                || f.facts.clients.iter().any(hit)
        })
}

/// The services and pods of a trace's failing spans (all its spans when none failed), and the
/// request as a tree.
fn trace_entities(spans: Vec<Span>) -> (Vec<Entity>, Option<Request>) {
    let failing: Vec<&Span> = spans.iter().filter(|s| s.is_error()).collect();
    let chosen: Vec<&Span> = if failing.is_empty() {
        spans.iter().collect()
    } else {
        failing
    };
    let mut entities = Vec::new();
    for s in chosen {
        entities.push(span_entity(s));
        if let Some((pns, pod)) = s.pod() {
            entities.push(Entity::pod(pns, pod));
        }
    }
    entities.sort();
    entities.dedup();
    (entities, request::explain(spans))
}
