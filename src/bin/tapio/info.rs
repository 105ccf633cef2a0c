//! `tapio info`: what a capture holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use tabled::settings::Style;
use tabled::{Table, Tabled};
use tapio::capture::{ReadOptions, Reader, Stats, Warning};

use crate::common::{self, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files, or directories of rotated captures (each file is described in turn).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Tabled)]
struct Row {
    name: String,
    events: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let files = common::expand(&args.files);
    if files.is_empty() {
        anyhow::bail!("no capture (*.tapio) in {}", args.files[0].display());
    }
    let mut problem = false;
    for (i, file) in files.iter().enumerate() {
        if i > 0 && args.output == Output::Text {
            common::print("\n")?;
        }
        problem |= one(&args, file)? != ExitCode::SUCCESS;
    }
    Ok(common::exit(problem))
}

fn one(args: &Args, file: &std::path::Path) -> Result<ExitCode> {
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..Default::default()
    };
    let mut reader = Reader::open(file, opts)?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = common::progress(size, args.quiet, "reading");
    let mut stats = Stats::default();
    let mut blocks = 0u64;
    let mut buf = Vec::new();
    while reader.next_block(&mut buf)? {
        blocks += 1;
        buf.iter().for_each(|e| stats.add(e));
        buf.clear();
        bar.set_position(reader.position());
    }
    bar.finish_and_clear();
    let warnings = reader.take_warnings();
    for w in &warnings {
        common::warn(file, w);
    }
    let corrupt = warnings
        .iter()
        .any(|w| matches!(w, Warning::SkippedCorrupt { .. }));
    let closed = reader.trailer().is_some();
    let header = reader.header().cloned().unwrap_or_default();
    let per_event = if stats.events > 0 {
        size as f64 / stats.events as f64
    } else {
        0.0
    };

    if args.output == Output::Json {
        let v = json!({
            "path": file,
            "format_version": header.format_version,
            "header": header,
            "closed_cleanly": closed,
            "events": stats.events,
            "blocks": blocks,
            "bytes": size,
            "bytes_per_event": (per_event * 100.0).round() / 100.0,
            "first_ts": stats.first_ts,
            "last_ts": stats.last_ts,
            "by_kind": stats.by_kind,
            "by_source": stats.by_source,
            "drops": stats.dropped,
            "drop_markers": stats.drop_markers,
            "gaps": stats.gap_markers,
            "redaction": header.options.get("redact"),
            "redacted": stats.redacted,
            "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        });
        common::print(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        return Ok(common::exit(corrupt));
    }

    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<10}{v}\n"));
    line(&mut out, "capture", file.display().to_string());
    let node = if header.node.is_empty() {
        "-".to_string()
    } else {
        header.node.clone()
    };
    let kernel = if header.kernel_release.is_empty() {
        String::new()
    } else {
        format!(", kernel {}", header.kernel_release)
    };
    line(
        &mut out,
        "format",
        format!(
            "v{}, tapio {}, node {node}{kernel}, created {}",
            header.format_version, header.tapio_version, header.created
        ),
    );
    if let Some(b) = header.boot_time {
        line(&mut out, "boot", b.to_string());
    }
    if !header.sources.is_empty() {
        line(&mut out, "sources", header.sources.join(", "));
    }
    for (k, v) in &header.options {
        line(&mut out, "option", format!("{k} = {v}"));
    }
    line(
        &mut out,
        "closed",
        if closed {
            "cleanly (trailer present)".into()
        } else {
            "NOT cleanly: no trailer (see warning)".into()
        },
    );
    match (stats.first_ts, stats.last_ts) {
        (Some(a), Some(b)) => line(
            &mut out,
            "time",
            format!("{a} → {b} UTC ({:.1} s)", b.saturating_sub(a) as f64 / 1e9),
        ),
        _ => line(&mut out, "time", "-".into()),
    }
    line(
        &mut out,
        "size",
        format!(
            "{} in {blocks} blocks, {} events, {per_event:.1} bytes/event",
            tapio::units::bytes(size),
            stats.events
        ),
    );
    line(
        &mut out,
        "drops",
        format!(
            "{} events lost ({} drop markers), {} gaps",
            stats.dropped, stats.drop_markers, stats.gap_markers
        ),
    );
    let total: u64 = stats.redacted.values().sum();
    let kinds: Vec<String> = stats
        .redacted
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let secrets = match (header.options.get("redact").map(String::as_str), total) {
        (Some("off"), _) => {
            "KEPT (recorded with --no-redact): `tapio redact` makes a copy to share".to_string()
        }
        (_, 0) if header.options.contains_key("redact") => "redacted; none found".to_string(),
        (_, 0) => "not checked (an older capture): `tapio redact` makes a copy to share".into(),
        (_, n) => format!("redacted: {n} replaced ({})", kinds.join(", ")),
    };
    line(&mut out, "secrets", secrets);
    if stats.events > 0 {
        let sources: Vec<Row> = stats
            .by_source
            .iter()
            .map(|(s, &c)| Row {
                name: s.to_string(),
                events: c,
            })
            .collect();
        let kinds: Vec<Row> = stats
            .by_kind
            .iter()
            .map(|(k, &c)| Row {
                name: k.to_string(),
                events: c,
            })
            .collect();
        out.push_str(&format!(
            "\nby source\n{}\n",
            Table::new(sources).with(Style::sharp())
        ));
        out.push_str(&format!(
            "\nby kind\n{}\n",
            Table::new(kinds).with(Style::sharp())
        ));
    }
    common::print(&out)?;
    Ok(common::exit(corrupt))
}
