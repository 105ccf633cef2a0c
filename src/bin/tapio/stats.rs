//! `tapio stats`: the first questions of an investigation, as tables.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use polars::prelude::*;
use tapio::report::frame;
use tapio::table::stats::{Options, Section, Stats};

use crate::tables::{self, Narrow, Run};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files; several are merged by time.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The time bucket of the trends and of the per-bucket service table: 30s, 1m, 5m, 1h.
    #[arg(long, default_value = "1m", value_parser = tapio::filter::parse_duration)]
    by: u64,
    /// At most this many rows per table, the most affected first (0: all).
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// How to print: table (with a sparkline per row), json (one object, a list of rows per
    /// table) or csv (a single table, chosen with --section).
    #[arg(short, long, default_value = "table", value_parser = ["table", "json", "csv"])]
    output: String,
    /// Only these tables, comma-separated: pods, connections, services, service_buckets, logs,
    /// nodes, gaps.
    #[arg(long, value_delimiter = ',', value_parser = Section::parse_name)]
    section: Vec<Section>,
    #[command(flatten)]
    narrow: Narrow,
    /// No progress on standard error.
    #[arg(short, long)]
    quiet: bool,
}

/// Sparkline levels, low to high.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// The widest sparkline; longer trends are summed into this many columns.
const SPARK_WIDTH: usize = 40;

/// A trend as a line of bars, scaled to its own maximum (blank: none in that bucket).
pub fn sparkline(v: &[u64]) -> String {
    let per = v.len().div_ceil(SPARK_WIDTH).max(1);
    let cols: Vec<u64> = v.chunks(per).map(|c| c.iter().sum()).collect();
    let max = cols.iter().copied().max().unwrap_or(0);
    cols.iter()
        .map(|&n| {
            if n == 0 || max == 0 {
                ' '
            } else {
                let i = (n * LEVELS.len() as u64).div_ceil(max) as usize;
                LEVELS[i.clamp(1, LEVELS.len()) - 1]
            }
        })
        .collect()
}

/// A bucket as it was asked for: 30s, 1m, 1h30m.
fn bucket_name(ns: u64) -> String {
    let ms = ns / 1_000_000;
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// The frame with its trend drawn.
fn with_sparklines(df: &DataFrame) -> PolarsResult<DataFrame> {
    let Ok(trend) = df.column("trend") else {
        return Ok(df.clone());
    };
    let lists = trend.list()?;
    let lines: StringChunked = (0..lists.len())
        .map(|i| {
            lists.get_as_series(i).map(|s| {
                let v: Vec<u64> = s
                    .u64()
                    .map(|c| c.iter().flatten().collect())
                    .unwrap_or_default();
                sparkline(&v)
            })
        })
        .collect();
    let mut df = df.clone();
    df.replace(
        "trend",
        lines.into_series().with_name("trend".into()).into_column(),
    )?;
    Ok(df)
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.output == "csv" && args.section.len() != 1 {
        bail!(
            "-o csv prints one table: pass --section NAME (one of {})",
            Section::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut run = Run::new(&args.files, &args.narrow)?;
    // Every block: a pod's restarts before the capture's first event count apart.
    run.use_index = false;
    let mut stats = Stats::new(Options {
        bucket_ns: args.by,
        top: args.top,
    });
    let outcome = run.go(false, args.quiet, "counting", |e, wanted| {
        stats.add(e, wanted);
        Ok(())
    })?;
    let by_default = !std::env::args().any(|a| a == "--by" || a.starts_with("--by="));
    let sections: Vec<(Section, DataFrame)> = stats
        .finish()?
        .into_iter()
        .filter(|(s, _)| {
            if args.section.is_empty() {
                // The per-bucket table is long: on a terminal, only when --by asks for it.
                *s != Section::ServiceBuckets || !by_default || args.output != "table"
            } else {
                args.section.contains(s)
            }
        })
        .collect();
    let mut out = Vec::new();
    match args.output.as_str() {
        "json" => {
            let mut doc = serde_json::Map::new();
            for (s, df) in &sections {
                let rows: Vec<serde_json::Value> = String::from_utf8(frame::json(df)?)?
                    .lines()
                    .map(serde_json::from_str)
                    .collect::<Result<_, _>>()?;
                doc.insert(s.as_str().to_string(), rows.into());
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.push(b'\n');
        }
        "csv" => {
            for (_, df) in &sections {
                out.extend(frame::csv(df)?);
            }
        }
        _ => {
            if sections.is_empty() {
                out.extend(b"Nothing to count: no restarts, failed connections, requests, error lines, node trouble or gaps.\n");
            }
            for (s, df) in &sections {
                let by = bucket_name(args.by);
                out.extend(format!("{} (trend: per {by})\n", s.about()).bytes());
                out.extend(frame::text(&with_sparklines(df)?).bytes());
                out.extend(b"\n\n");
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    Ok(tables::exit(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_to_its_maximum_and_sums_long_trends() {
        assert_eq!(sparkline(&[0, 1, 2, 4, 8]), " ▁▂▄█");
        assert_eq!(sparkline(&[0, 3, 3]), " ██");
        assert_eq!(sparkline(&[]), "");
        let long = vec![1u64; 400];
        assert_eq!(sparkline(&long).chars().count(), 40);
    }
}
