//! `tapio index`: builds the block index of captures that have none of their own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tapio::capture::{index, ReadOptions, Reader};

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
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..ReadOptions::default()
    };
    for file in common::expand(&args.files) {
        let reader = Reader::open(&file, opts.clone())?;
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
        let (path, i) = index::rebuild(&file, &opts)?;
        say!(
            "tapio: {}: indexed {} blocks, {} events, in {}",
            file.display(),
            i.blocks.len(),
            i.events(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
