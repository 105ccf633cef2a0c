//! `tapio export`: a capture's events as typed tables, for DuckDB, polars or a notebook.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tapio::table::write::{Background, Format, Sink};
use tapio::table::{Labels, Table, Tabulator};

use crate::tables::{self, Narrow, Run};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files; several are merged by time.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write: a directory (ending in `/`, or one that exists) gets one file per table
    /// (`DIR/kernel.parquet`, …); a file gets the single table --table names.
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
    #[command(flatten)]
    narrow: Narrow,
    /// No progress bar, no summary.
    #[arg(short, long)]
    quiet: bool,
    /// Rows a table holds in memory before they are written.
    #[arg(long, default_value_t = 32_768, hide = true)]
    batch: usize,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse_name(s)
}

fn parse_table(s: &str) -> Result<Table, String> {
    Table::parse_name(s)
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

pub fn run(args: Args) -> Result<ExitCode> {
    let run = Run::new(&args.files, &args.narrow)?;
    let outputs = destinations(&args)?;
    for f in &run.files {
        if outputs.iter().any(|(_, p, _)| same_file(p, f)) {
            bail!("{}: the output would overwrite an input", f.display());
        }
    }
    let tables: Vec<Table> = outputs.iter().map(|(t, _, _)| *t).collect();
    let mut sinks = Vec::with_capacity(outputs.len());
    for (t, path, format) in &outputs {
        sinks.push((
            *t,
            Sink::create(path, *format, &t.schema_with(format.labels()))?,
        ));
    }
    // One format for every table (a directory's, or one file's).
    let labels = outputs
        .first()
        .map_or(Labels::Strings, |(_, _, f)| f.labels());
    let mut writer = Background::start(sinks, 1);
    let mut tab = Tabulator::with_labels(&tables, args.batch, labels);
    // The verdict's tables need the core to run over every event; the others only the rows.
    let verdict = tables.iter().any(|t| t.is_verdict());
    let outcome = run.go(verdict, args.quiet, "exporting", |e, wanted| {
        if let Some(full) = tab.add(e, wanted)? {
            writer.write(full, tab.take(full)?)?;
        }
        Ok(())
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // What was written stays readable: the files are ended.
            let _ = writer.finish();
            return Err(e);
        }
    };
    tab.add_verdict(&outcome.verdict.incidents, &outcome.detected.findings)?;
    for &t in &tables {
        writer.write(t, tab.take(t)?)?;
    }
    let mut summary = Vec::new();
    for (t, rows) in writer.finish()? {
        let path = &outputs
            .iter()
            .find(|(x, _, _)| *x == t)
            .expect("asked for")
            .1;
        summary.push(format!("{t} {rows} rows ({})", path.display()));
    }
    if !args.quiet {
        say!(
            "tapio: read {} events, wrote {}",
            outcome.events,
            summary.join(", ")
        );
    }
    Ok(tables::exit(&outcome))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
