//! `tapio report`: the incident report people share — one HTML file with the timeline pictures,
//! Markdown for a ticket, or the pictures alone as SVG.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use tapio::analysis::overview::Overview;
use tapio::analysis::scope::Scope;
use tapio::analysis::Severity;
use tapio::capture::ReadOptions;
use tapio::event::TraceId;
use tapio::filter::TimeSpec;
use tapio::pipeline::{self, narrow, Options};
use tapio::report::{Document, Format, Render};

use crate::common;
use crate::correlate::parse_trace;
use crate::replay;

#[derive(clap::Args)]
pub struct Args {
    /// Capture files (several are merged by time).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write the report (standard output when absent or `-`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// html (one self-contained page), markdown (for a ticket), svg (the timeline pictures
    /// alone), text or json (the incidents as replay prints them); by default from the output's
    /// extension (.html, .md, .svg, .txt, .json), else html.
    #[arg(long, value_parser = common::formats::<Document>())]
    format: Option<Format>,
    /// Only the incidents that explain this request's failing spans.
    #[arg(long, value_parser = parse_trace)]
    trace_id: Option<TraceId>,
    /// Only the incidents that involve this pod (NAMESPACE/NAME).
    #[arg(long)]
    pod: Option<String>,
    /// Only the incidents that involve this service (NAMESPACE/NAME).
    #[arg(long)]
    service: Option<String>,
    /// Only the incidents that involve this node.
    #[arg(long)]
    node: Option<String>,
    /// Only incidents active at or after this time (same forms as `tapio cat --since`).
    #[arg(long, value_parser = TimeSpec::parse)]
    since: Option<TimeSpec>,
    /// Only incidents active at or before this time (same forms as --since).
    #[arg(long, value_parser = TimeSpec::parse)]
    until: Option<TimeSpec>,
    /// Include low-severity incidents.
    #[arg(long)]
    all: bool,
    /// Decoding threads per capture (the output does not depend on it); by default one fewer
    /// than the cores (at least 1, at most 4): the core and the merge need a core between them.
    #[arg(long)]
    threads: Option<usize>,
    /// Read every block, even where the captures' indexes could narrow the read to a trace's
    /// time (the incidents are the same; the overview then covers the whole captures).
    #[arg(long)]
    no_index: bool,
}

fn format_of(args: &Args) -> Format {
    if let Some(f) = args.format {
        return f;
    }
    let ext = args
        .output
        .as_deref()
        .and_then(Path::extension)
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("md" | "markdown") => Format::Markdown,
        Some("svg") => Format::Svg,
        Some("txt" | "text") => Format::Text,
        Some("json") => Format::Json,
        _ => Format::Html,
    }
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    let named: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    args.files = common::expand(&args.files);
    let mut scope = Scope {
        entities: common::entities(&args.pod, &args.service, &args.node)?,
        since: args.since,
        until: args.until,
        request: None,
    };
    let mut narrowed = Vec::new();
    if let Some(t) = args.trace_id {
        narrowed.push(format!("trace {t}"));
    }
    for (what, v) in [
        ("pod", &args.pod),
        ("service", &args.service),
        ("node", &args.node),
    ] {
        if let Some(v) = v {
            narrowed.push(format!("{what} {v}"));
        }
    }
    let opts = Options {
        threads: args.threads.unwrap_or_else(tapio::pipeline::decoders),
        read: ReadOptions::default(),
        trace: args.trace_id,
        ..Options::default()
    };
    let overview = Mutex::new(Overview::default());
    let mut tap = |events: &[tapio::event::Event]| {
        if let Ok(mut o) = overview.lock() {
            for e in events {
                o.observe(e);
            }
        }
        ControlFlow::Continue(())
    };
    let (outcome, read) = if args.no_index {
        let outcome = pipeline::run_tapped(&args.files, &opts, Some(&mut |_| {}), &mut tap)?;
        (outcome, None)
    } else {
        // Each run through the index starts the overview again.
        let restart = || {
            if let Ok(mut o) = overview.lock() {
                *o = Overview::default();
            }
        };
        narrow::answer(
            &args.files,
            &opts,
            &scope,
            &mut |_| {},
            &mut { restart },
            &mut tap,
        )?
    };
    if let Some(r) = &read {
        narrowed.push(format!(
            "read through the captures' indexes: {} of {} blocks ({} to {}, and every block of Kubernetes objects and events)",
            r.blocks, r.of_blocks, r.from, r.to
        ));
    }
    if let Some(t) = args.trace_id {
        if scope.trace(outcome.trace_spans.clone()).is_none() {
            bail!("trace {t} has no span in {}", args.files[0].display());
        }
    }
    let problem = replay::warn(&outcome);
    let first = outcome.detected.first_finding();
    if let (Some(s), true) = (args.since, first.0 > 0) {
        narrowed.push(format!("since {}", s.resolve(first)));
    }
    if let (Some(u), true) = (args.until, first.0 > 0) {
        narrowed.push(format!("until {}", u.resolve(first)));
    }
    let overview = overview
        .into_inner()
        .map_err(|_| anyhow::anyhow!("the overview was poisoned"))?;
    let mut doc = Document::new(named, overview);
    doc.scope = narrowed;
    doc.blind = outcome.detected.blind.clone();
    let incidents = scope.keep(outcome.verdict.incidents, first);
    let before = incidents.len();
    let mut incidents: Vec<_> = incidents
        .into_iter()
        .filter(|i| args.all || i.severity >= Severity::Medium)
        .collect();
    doc.hidden = before - incidents.len();
    for (n, i) in incidents.iter_mut().enumerate() {
        i.id = n + 1;
    }
    doc.incidents = incidents;
    let text = doc.rendered(format_of(&args));
    match args.output.as_deref() {
        None => common::print(&text)?,
        Some(p) if p == Path::new("-") => common::print(&text)?,
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?;
            say!(
                "tapio: wrote {} ({} incident{}, {})",
                p.display(),
                doc.incidents.len(),
                if doc.incidents.len() == 1 { "" } else { "s" },
                tapio::units::bytes(text.len() as u64)
            );
        }
    }
    Ok(common::exit(problem))
}
