//! `tapio cat`: the raw evidence, one event per line.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use tapio::capture::{index, Merge, ReadOptions, Warning};
use tapio::event::{Event, Kind, Source, TraceId, Ts};
use tapio::filter::{Filter, TimeSpec};
use tapio::pipeline;

use tapio::report::{Format, Render};

use crate::common::{self, Stdout};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files; several are merged by time (several nodes of one incident).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Only these kinds, comma-separated: exec, exit, signal, oom, tcp, retransmit, k8s.object,
    /// k8s.event, span, log, drop, gap, annotation.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kind: Vec<Kind>,
    /// Only events from these collectors, comma-separated: ebpf, kube, otlp, kmsg, pod-logs, import, tapio.
    #[arg(long, value_delimiter = ',', value_parser = parse_source)]
    source: Vec<Source>,
    /// Only events seen on this node.
    #[arg(long)]
    node: Option<String>,
    /// Only events about objects in this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only events about this pod (NAMESPACE/NAME or NAME); kernel events match through the pod's
    /// cgroup when the capture holds the Pod object.
    #[arg(long)]
    pod: Option<String>,
    /// Only spans and logs of this trace (32 hex digits).
    #[arg(long, value_parser = parse_trace)]
    trace_id: Option<TraceId>,
    /// Only spans and application logs of this service (its `service.name`).
    #[arg(long)]
    service: Option<String>,
    /// From this time: RFC 3339, "2024-05-01 10:02", a UTC time of day (10:02:11), or an offset
    /// from the capture start (+5m).
    #[arg(long, value_parser = TimeSpec::parse)]
    since: Option<TimeSpec>,
    /// Up to this time (same forms as --since).
    #[arg(long, value_parser = TimeSpec::parse)]
    until: Option<TimeSpec>,
    /// Output format: text (one line per event) or json (JSON lines).
    #[arg(short, long, default_value = "text", value_parser = common::formats::<Event>())]
    output: Format,
    /// Keep reading as the capture grows, until its writer closes it.
    #[arg(short, long)]
    follow: bool,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    /// Read every block, even those the capture's index says hold nothing wanted.
    #[arg(long)]
    no_index: bool,
}

pub fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
}

fn parse_source(s: &str) -> Result<Source, String> {
    s.parse()
}

pub fn parse_trace(s: &str) -> Result<TraceId, String> {
    TraceId::from_hex(s).ok_or_else(|| format!("{s:?} is not a trace id (up to 32 hex digits)"))
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    if !args.follow {
        args.files = common::expand(&args.files);
    }
    if args.follow && args.files.len() > 1 {
        bail!("--follow reads one capture; got {}", args.files.len());
    }
    let mut filter = Filter {
        kinds: args.kind.iter().copied().collect(),
        sources: args.source.iter().copied().collect(),
        node: args.node,
        namespace: args.namespace,
        pod: args.pod,
        trace_id: args.trace_id,
        service: args.service,
        since: args.since,
        until: args.until,
        pod_uids: HashSet::new(),
    };
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        follow: args.follow,
        ..Default::default()
    };
    let use_index = !args.follow && !args.no_index;
    if filter.wants_pod_uids() && !args.follow {
        learn_pods(&args.files, &opts, &mut filter, use_index)?;
    }
    let mut window: Option<(Option<Ts>, Option<Ts>)> = None;
    let (readers, notes) = if use_index {
        // The times are resolved from the indexes (the first event's time), so that they narrow
        // the blocks read too.
        let mut readers = common::open_all(&args.files, &opts)?;
        if let Some(start) = index::first_ts(&readers) {
            window = Some((
                filter.since.map(|s| s.resolve(start)),
                filter.until.map(|s| s.resolve(start)),
            ));
        }
        let (since, until) = window.unwrap_or_default();
        let notes = index::select(&mut readers, &filter.want(since, until));
        (readers, notes)
    } else {
        (common::open_all(&args.files, &opts)?, Vec::new())
    };
    for (path, note) in &notes {
        common::warn(path, note);
    }
    let show_bar = !args.follow && !std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut out = Stdout::new();
    if !args.follow {
        let quiet = args.quiet || !show_bar;
        return through_pipeline(
            readers,
            &opts,
            args.output,
            quiet,
            &filter,
            window,
            &mut out,
        );
    }
    let mut merge = Merge::new(readers);
    let mut line = String::new();
    let result = loop {
        let e = match merge.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break Ok(()),
            Err(err) => break Err(err),
        };
        filter.learn_pod(&e);
        let (since, until) = *window.get_or_insert_with(|| {
            (
                filter.since.map(|s| s.resolve(e.ts)),
                filter.until.map(|s| s.resolve(e.ts)),
            )
        });
        if !filter.matches(&e, since, until) {
            continue;
        }
        line.clear();
        e.render(args.output, &mut line);
        if !out.line(line.trim_end_matches('\n'))? {
            break Ok(());
        }
        out.flush()?;
    };
    out.flush()?;
    let warnings = merge.take_warnings();
    for (path, w) in &warnings {
        common::warn(path, w);
    }
    result?;
    Ok(common::exit(
        warnings
            .iter()
            .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. })),
    ))
}

/// A capture read to its end: decoded on other threads while this one filters and prints (the
/// pipeline's read, merge and tap, without its core).
fn through_pipeline(
    readers: Vec<tapio::capture::Reader>,
    read: &ReadOptions,
    format: Format,
    quiet: bool,
    filter: &Filter,
    mut window: Option<(Option<Ts>, Option<Ts>)>,
    out: &mut Stdout,
) -> Result<ExitCode> {
    let bar = common::counter(quiet, "reading");
    let mut seen = 0u64;
    let mut line = String::new();
    let mut failed = None;
    let mut tap = |batch: &[Event]| -> ControlFlow<()> {
        for e in batch {
            let (since, until) = *window.get_or_insert_with(|| {
                (
                    filter.since.map(|s| s.resolve(e.ts)),
                    filter.until.map(|s| s.resolve(e.ts)),
                )
            });
            if !filter.matches(e, since, until) {
                continue;
            }
            line.clear();
            e.render(format, &mut line);
            match out.line(line.trim_end_matches('\n')) {
                Ok(true) => {}
                Ok(false) => return ControlFlow::Break(()),
                Err(err) => {
                    failed = Some(err);
                    return ControlFlow::Break(());
                }
            }
        }
        seen += batch.len() as u64;
        bar.set_position(seen);
        ControlFlow::Continue(())
    };
    let opts = pipeline::Options {
        read: read.clone(),
        ..pipeline::Options::default()
    };
    let outcome = pipeline::run_readers(readers, &opts, None, &mut tap);
    bar.finish_and_clear();
    out.flush()?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    let outcome = outcome?;
    for (path, w) in &outcome.warnings {
        common::warn(path, w);
    }
    Ok(common::exit(
        outcome
            .warnings
            .iter()
            .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. })),
    ))
}

/// A first pass that finds the uids of the pods `--pod` names, so kernel events (which carry
/// only a cgroup path) can be matched too; with an index it reads only the blocks that hold
/// those Pod objects.
pub fn learn_pods(
    files: &[PathBuf],
    opts: &ReadOptions,
    filter: &mut Filter,
    use_index: bool,
) -> Result<()> {
    let want = filter.want_pods().filter(|_| use_index).unwrap_or_default();
    let (readers, _) = index::open_selected(files, opts, &want)?;
    let mut merge = Merge::new(readers);
    while let Some(e) = merge.next_event()? {
        filter.learn_pod(&e);
    }
    Ok(())
}
