//! `tapio info`: what a capture holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use tapio::capture::{corrupt_block, Decoder, ReadOptions, Reader, Stats, Warning};
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

fn one(args: &Args, file: &Path) -> Result<ExitCode> {
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..Default::default()
    };
    // A capture closed cleanly (format 2) says at its end where its trailer is, and the trailer
    // holds the counts: each block is then checked (checksum, decompression) but not decoded.
    // Anything amiss there, and the counts are made from the events themselves.
    let reader = Reader::open(file, opts.clone())?;
    let checked = match reader.footer()? {
        Some(_) => Some(scan(args, reader, &opts, true)?).filter(|s| s.warnings.is_empty()),
        None => None,
    };
    let Scan {
        reader,
        stats,
        blocks,
        warnings,
    } = match checked {
        Some(s) => s,
        None => scan(args, Reader::open(file, opts.clone())?, &opts, false)?,
    };
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
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        warnings: warnings.iter().map(|w| w.to_string()).collect(),
    };
    common::print(&info.rendered(args.output))?;
    Ok(common::exit(corrupt))
}

struct Scan {
    reader: Reader,
    stats: Stats,
    blocks: u64,
    warnings: Vec<Warning>,
}

/// Reads every block of a capture; `trailer`: only checks them, and takes the counts from the
/// trailer (none when the read ends without one).
fn scan(args: &Args, mut reader: Reader, opts: &ReadOptions, trailer: bool) -> Result<Scan> {
    let file = reader.path().to_path_buf();
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let bar = common::progress(size, args.quiet, "reading");
    let mut decoder = Decoder::new()?;
    let mut stats = Stats::default();
    let mut blocks = 0u64;
    let mut warnings = Vec::new();
    let mut buf = Vec::new();
    while let Some(raw) = reader.next_raw()? {
        let checked = match trailer {
            true => decoder.check(&raw),
            false => decoder.decode(&raw, &mut buf),
        };
        match checked {
            Ok(()) => blocks += 1,
            // Only checking: a block amiss sends the read back to decoding every event, which
            // says what is wrong as a whole read does.
            Err(what) if trailer => {
                warnings.push(Warning::SkippedCorrupt {
                    offset: raw.offset,
                    bytes: raw.frame_len(),
                    what,
                });
                break;
            }
            Err(what) => warnings.push(corrupt_block(&file, &raw, what, opts.skip_corrupt)?),
        }
        buf.iter().for_each(|e| stats.add(e));
        buf.clear();
        bar.set_position(reader.position());
    }
    bar.finish_and_clear();
    warnings.extend(reader.take_warnings());
    if trailer {
        match reader.trailer() {
            Some(t) => stats = t.stats.clone(),
            None => warnings.push(Warning::Truncated {
                offset: reader.position(),
                inside: "the trailer",
            }),
        }
    }
    Ok(Scan {
        reader,
        stats,
        blocks,
        warnings,
    })
}
