//! `tapio index`: builds the block index of captures that have none of their own, and keeps the
//! verdict of captures beside them (`--verdict`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tapio::capture::{index, ReadOptions, Reader};
use tapio::pipeline::{self, kept, Options};

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Captures without an index: written by an older tapio (format 1), or not closed cleanly (a
    /// crash, a recorder still writing). Directories stand for the rotated captures they hold.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// Also run the whole pipeline over the captures, read together as `replay` reads them, and
    /// keep its verdict beside the first (FILE.verdict): `correlate` on the same captures then
    /// answers from it, in the time it takes to find the request. It is used only while the
    /// captures, this tapio and its configuration are the same.
    #[arg(long)]
    verdict: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..ReadOptions::default()
    };
    let files = common::expand(&args.files);
    for file in &files {
        let reader = Reader::open(file, opts.clone())?;
        if let Ok(Some(i)) = reader.index() {
            let own = reader.header().is_some_and(|h| h.format_version >= 2);
            if own {
                say!(
                    "tapio: {}: has its own index ({} blocks); nothing to do",
                    file.display(),
                    i.blocks.len()
                );
                continue;
            }
        }
        let (path, i) = index::rebuild(file, &opts)?;
        say!(
            "tapio: {}: indexed {} blocks, {} events, in {}",
            file.display(),
            i.blocks.len(),
            i.events(),
            path.display()
        );
    }
    if args.verdict {
        let opts = Options {
            read: opts,
            ..Options::default()
        };
        let outcome = pipeline::run(&files, &opts, &mut |_| {})?;
        if let Some(path) = kept::keep(&files, &opts, &outcome)? {
            say!(
                "tapio: kept the verdict of {} ({} incidents, {} events) in {}",
                match files.len() {
                    1 => files[0].display().to_string(),
                    n => format!("{n} captures"),
                },
                outcome.verdict.incidents.len(),
                outcome.events,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
