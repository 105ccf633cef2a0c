//! `tapio export`: a capture's events as typed tables, for DuckDB, polars or a notebook.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tapio::capture::{ReadOptions, Warning};
use tapio::event::{Event, Kind, TraceId};
use tapio::filter::{Filter, TimeSpec};
use tapio::pipeline::{self, Options};
use tapio::table::write::{Format, Sink};
use tapio::table::{Table, Tabulator};

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Capture files; several are merged by time.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write: a directory (ending in `/`, or one that exists) gets one file per table
    /// (`DIR/kernel.parquet`, …); a file holds the one table --table names.
    #[arg(short, long)]
    output: PathBuf,
    /// The file format: parquet (zstd), csv, jsonl or arrow (IPC); by default from the file's
    /// extension, else parquet.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Only these tables, comma-separated: kernel, spans, logs, k8s_events, objects, incidents,
    /// findings.
    #[arg(long, value_delimiter = ',', value_parser = parse_table)]
    table: Vec<Table>,
    /// Only these kinds of event, comma-separated (as `tapio cat --kind`).
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kind: Vec<Kind>,
    /// Only events seen on this node.
    #[arg(long)]
    node: Option<String>,
    /// Only events about objects in this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only events about this pod (NAMESPACE/NAME or NAME).
    #[arg(long)]
    pod: Option<String>,
    /// Only spans and logs of this trace (32 hex digits).
    #[arg(long, value_parser = parse_trace)]
    trace_id: Option<TraceId>,
    /// Only spans and application logs of this service.
    #[arg(long)]
    service: Option<String>,
    /// From this time (as `tapio cat --since`).
    #[arg(long, value_parser = TimeSpec::parse)]
    since: Option<TimeSpec>,
    /// Up to this time.
    #[arg(long, value_parser = TimeSpec::parse)]
    until: Option<TimeSpec>,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// No progress bar, no summary.
    #[arg(short, long)]
    quiet: bool,
    /// Rows a table holds in memory before they are written.
    #[arg(long, default_value_t = 65_536, hide = true)]
    batch: usize,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse_name(s)
}

fn parse_table(s: &str) -> Result<Table, String> {
    Table::parse_name(s)
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
}

fn parse_trace(s: &str) -> Result<TraceId, String> {
    TraceId::from_hex(s).ok_or_else(|| format!("{s:?} is not a trace id (up to 32 hex digits)"))
}

/// Where each table goes.
fn destinations(args: &Args) -> Result<Vec<(Table, PathBuf, Format)>> {
    let out = &args.output;
    let dir = out.as_os_str().to_string_lossy().ends_with('/') || out.is_dir();
    if dir {
        let format = args.format.unwrap_or(Format::Parquet);
        std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
        let tables = if args.table.is_empty() {
            Table::ALL.to_vec()
        } else {
            args.table.clone()
        };
        return Ok(tables
            .into_iter()
            .map(|t| (t, out.join(format!("{t}.{}", format.extension())), format))
            .collect());
    }
    let format = match (args.format, Format::of_path(out)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => Format::Parquet,
    };
    match args.table.as_slice() {
        [t] => Ok(vec![(*t, out.clone(), format)]),
        _ => bail!(
            "{}: a file holds one table: pass --table NAME (one of {}), or -o DIR/ for a file per table",
            out.display(),
            Table::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    args.files = common::expand(&args.files);
    let outputs = destinations(&args)?;
    for f in &args.files {
        if outputs.iter().any(|(_, p, _)| same_file(p, f)) {
            bail!("{}: the output would overwrite an input", f.display());
        }
    }
    let mut filter = Filter {
        kinds: args.kind.iter().copied().collect::<HashSet<_>>(),
        sources: HashSet::new(),
        node: args.node.clone(),
        namespace: args.namespace.clone(),
        pod: args.pod.clone(),
        trace_id: args.trace_id,
        service: args.service.clone(),
        since: args.since,
        until: args.until,
        pod_uids: HashSet::new(),
    };
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..Default::default()
    };
    if filter.wants_pod_uids() {
        crate::cat::learn_pods(&args.files, &opts, &mut filter)?;
    }
    let tables: Vec<Table> = outputs.iter().map(|(t, _, _)| *t).collect();
    let mut sinks = Vec::with_capacity(outputs.len());
    for (t, path, format) in &outputs {
        sinks.push((*t, Sink::create(path, *format, &t.schema())?));
    }
    let mut tab = Tabulator::new(&tables, args.batch);
    let bar = common::counter(args.quiet, "exporting");
    let mut window = None;
    let mut seen = 0u64;
    let mut failed: Option<anyhow::Error> = None;
    let mut tap = |batch: &[Event]| -> ControlFlow<()> {
        for e in batch {
            let (since, until) = *window.get_or_insert_with(|| {
                (
                    filter.since.map(|s| s.resolve(e.ts)),
                    filter.until.map(|s| s.resolve(e.ts)),
                )
            });
            let wanted = filter.matches(e, since, until);
            if let Some(full) = tab.add(e, wanted) {
                let written = tab
                    .take(full)
                    .map_err(anyhow::Error::from)
                    .and_then(|mut df| Ok(sink_of(&mut sinks, full).write(&mut df)?));
                if let Err(e) = written {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        seen += batch.len() as u64;
        bar.set_position(seen);
        ControlFlow::Continue(())
    };
    // The verdict's tables need the core to run over every event; the others only the rows.
    let verdict = tables.iter().any(|t| t.is_verdict());
    let popts = Options {
        read: opts,
        ..Options::default()
    };
    let mut no_live = |_: tapio::pipeline::Change<'_>| {};
    let outcome = pipeline::run_tapped(
        &args.files,
        &popts,
        verdict.then_some(&mut no_live as &mut tapio::pipeline::Sink<'_>),
        &mut tap,
    );
    bar.finish_and_clear();
    if let Some(e) = failed {
        return Err(e);
    }
    let outcome = outcome?;
    for (path, w) in &outcome.warnings {
        common::warn(path, w);
    }
    tab.add_verdict(&outcome.verdict.incidents, &outcome.detected.findings);
    let mut summary = Vec::new();
    for (t, mut sink) in sinks {
        let mut df = tab.take(t)?;
        sink.write(&mut df)?;
        let rows = sink.finish()?;
        let path = &outputs
            .iter()
            .find(|(x, _, _)| *x == t)
            .expect("asked for")
            .1;
        summary.push(format!("{t} {rows} rows ({})", path.display()));
    }
    if !args.quiet {
        say!("tapio: exported {seen} events: {}", summary.join(", "));
    }
    Ok(common::exit(
        outcome
            .warnings
            .iter()
            .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. })),
    ))
}

fn sink_of(sinks: &mut [(Table, Sink)], t: Table) -> &mut Sink {
    &mut sinks
        .iter_mut()
        .find(|(x, _)| *x == t)
        .expect("a sink for every table asked for")
        .1
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
