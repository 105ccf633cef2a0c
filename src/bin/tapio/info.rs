//! `tapio info`: what a capture holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tapio::capture::{ReadOptions, Reader, Stats, Warning};
use tapio::report::{CaptureInfo, Format, Render};

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Capture files, or directories of rotated captures (each file is described in turn).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format: text or json (one object per capture).
    #[arg(short, long, default_value = "text", value_parser = common::formats::<CaptureInfo>())]
    output: Format,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let files = common::expand(&args.files);
    if files.is_empty() {
        anyhow::bail!("no capture (*.tapio) in {}", args.files[0].display());
    }
    let mut problem = false;
    for (i, file) in files.iter().enumerate() {
        if i > 0 && args.output == Format::Text {
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
    let info = CaptureInfo {
        path: file.to_path_buf(),
        header: reader.header().cloned().unwrap_or_default(),
        closed: reader.trailer().is_some(),
        stats,
        blocks,
        bytes: size,
        warnings: warnings.iter().map(|w| w.to_string()).collect(),
    };
    common::print(&info.rendered(args.output))?;
    Ok(common::exit(corrupt))
}
