//! `tapio query`: SQL over a capture's tables.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use tapio::report::frame;
use tapio::table::query::{self, Collector};
use tapio::table::Table;

use crate::tables::{self, Narrow, Run};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files (several are merged by time), then the query: polars SQL over the tables
    /// of `tapio export` (kernel, spans, logs, k8s_events, objects, incidents, findings).
    #[arg(required = true, num_args = 2.., value_names = ["CAPTURE", "SQL"])]
    args: Vec<String>,
    /// How to print the result: table, csv, json (JSON lines) or parquet (to a file or a pipe).
    #[arg(short, long, default_value = "table", value_parser = ["table", "csv", "json", "parquet"])]
    output: String,
    #[command(flatten)]
    narrow: Narrow,
    /// No progress on standard error.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (sql, files) = args.args.split_last().expect("clap asks for two at least");
    let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let wanted = query::tables_in(sql);
    if wanted.is_empty() {
        bail!(
            "the query names no table of a capture: {sql:?}\n\n{}",
            query::tables_and_columns()
        );
    }
    if args.output == "parquet" && std::io::stdout().is_terminal() {
        bail!("-o parquet writes a binary file: redirect it (> result.parquet)");
    }
    let run = Run::new(&files, &args.narrow)?;
    let mut collector = Collector::new(&wanted);
    let verdict = wanted.iter().any(|t: &Table| t.is_verdict());
    let outcome = run.go(verdict, args.quiet, "reading", |e, wanted| {
        Ok(collector.add(e, wanted)?)
    })?;
    let frames = collector.finish(&outcome.verdict.incidents, &outcome.detected.findings)?;
    let df = query::run(frames, sql)?;
    let out = match args.output.as_str() {
        "csv" => frame::csv(&df)?,
        "json" => frame::json(&df)?,
        "parquet" => frame::parquet(&df)?,
        _ => {
            let mut s = frame::text(&df);
            s.push('\n');
            if !args.quiet {
                s.push_str(&format!("({} rows)\n", df.height()));
            }
            s.into_bytes()
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    Ok(tables::exit(&outcome))
}
