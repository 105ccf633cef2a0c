//! `tapio correlate`: the incidents that explain one request or one entity.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use std::ops::ControlFlow;
use tapio::analysis::scope::Scope;
use tapio::analysis::Verdict;
use tapio::capture::ReadOptions;
use tapio::event::TraceId;
use tapio::filter::TimeSpec;

use tapio::pipeline::{self, narrow, Options};
use tapio::report;

use tapio::report::{Format, Incidents};

use crate::common;
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
    /// Only incidents active at or before this time (same forms as --since).
    #[arg(long, value_parser = TimeSpec::parse)]
    until: Option<TimeSpec>,
    /// Show the other causes considered and why they lost.
    #[arg(long)]
    explain: bool,
    /// Output format: text (a summary per incident) or json (the verdict, docs/correlation.md).
    #[arg(short, long, default_value = "text", value_parser = common::formats::<Incidents>())]
    output: Format,
    /// Decoding threads per capture (the output does not depend on it); by default one fewer
    /// than the cores (at least 1, at most 4): the core and the merge need a core between them.
    #[arg(long)]
    threads: Option<usize>,
    /// Read every block, even where the captures' indexes could narrow the read or a kept verdict
    /// (`tapio index --verdict`) answer (the answer is the same; this is for checking that it is).
    #[arg(long)]
    no_index: bool,
}

pub fn parse_trace(s: &str) -> Result<TraceId, String> {
    TraceId::from_hex(s).ok_or_else(|| format!("{s:?} is not a trace id (up to 32 hex digits)"))
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    args.files = common::expand(&args.files);
    let mut scope = Scope {
        entities: common::entities(&args.pod, &args.service, &args.node)?,
        since: args.since,
        until: args.until,
        request: None,
    };
    if scope.entities.is_empty() && args.trace_id.is_none() {
        bail!("say what to explain: --trace-id, --pod, --service or --node");
    }
    let opts = Options {
        threads: args.threads.unwrap_or_else(tapio::pipeline::decoders),
        read: ReadOptions::default(),
        trace: args.trace_id,
        ..Options::default()
    };
    // A verdict kept beside the captures (`tapio index --verdict`) answers at once; the
    // request's spans are then found through the indexes.
    let mut notes = Vec::new();
    let kept = match args.no_index {
        true => None,
        false => pipeline::kept::load(&args.files, &opts, &mut notes)?,
    };
    let kept = match (kept, args.trace_id) {
        (Some(k), Some(t)) => {
            narrow::find_trace(&args.files, &opts, t, &mut notes)?.map(|f| (k, f.spans))
        }
        (Some(k), None) => Some((k, Vec::new())),
        (None, _) => None,
    };
    let (all, first_finding, spans, outcome) = match kept {
        Some((k, spans)) => (k.incidents, k.first_finding, spans, None),
        None => {
            let mut outcome = if args.no_index {
                pipeline::run(&args.files, &opts, &mut |_| {})?
            } else {
                narrow::answer(
                    &args.files,
                    &opts,
                    &scope,
                    &mut |_| {},
                    &mut || {},
                    &mut |_| ControlFlow::Continue(()),
                )?
                .0
            };
            let incidents = std::mem::take(&mut outcome.verdict.incidents);
            let spans = std::mem::take(&mut outcome.trace_spans);
            (
                incidents,
                outcome.detected.first_finding(),
                spans,
                Some(outcome),
            )
        }
    };
    if let Some(t) = args.trace_id {
        if scope.trace(spans).is_none() {
            bail!("trace {t} has no span in {}", args.files[0].display());
        }
    }
    for (path, note) in &notes {
        common::warn(path, note);
    }
    let problem = outcome.as_ref().is_some_and(replay::warn);
    let mut incidents = scope.keep(all, first_finding);
    // Numbered in the answer, as the text prints them: the same whether the captures were read
    // whole or through their indexes.
    for (n, i) in incidents.iter_mut().enumerate() {
        i.id = n + 1;
    }
    if let Some(r) = &scope.request {
        if args.output == Format::Text {
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
    // A question that replayed millions of events: the next ones can answer at once.
    if let Some(o) = outcome.filter(|o| !args.no_index && o.events >= HINT_EVENTS) {
        let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
        say!(
            "tapio: this answer replayed {:.1} M events; `tapio index --verdict {}` keeps these \
             captures' verdict (one whole read), and correlate then answers from it at once",
            o.events as f64 / 1e6,
            match files.len() {
                1..=3 => files.join(" "),
                _ => "CAPTURES".into(),
            }
        );
    }
    Ok(common::exit(problem))
}

/// Events replayed for one answer past which `correlate` says how to answer the next at once.
const HINT_EVENTS: u64 = 10_000_000;
