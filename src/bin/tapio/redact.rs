//! `tapio redact`: a copy of captures that can be shared — secrets replaced, and with `--names`
//! the names and addresses too.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tapio::capture::{Header, Merge, ReadOptions, Warning, WriteOptions, Writer};
use tapio::redact::names::Pseudonyms;
use tapio::redact::Redactor;

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Capture files; several are merged by time into one.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write the redacted capture.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// Also replace namespaces, pods, workloads, containers, nodes, services, hosts and IP
    /// addresses by stable pseudonyms (the same name, the same pseudonym throughout).
    #[arg(long)]
    names: bool,
    /// With --names: write the table of names and their pseudonyms here (JSON), to translate a
    /// finding back. Keep it: it holds every real name.
    #[arg(long, value_name = "FILE", requires = "names")]
    map: Option<PathBuf>,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(mut args: Args) -> Result<ExitCode> {
    args.files = common::expand(&args.files);
    let same = |a: &PathBuf| match (
        std::fs::canonicalize(a),
        std::fs::canonicalize(&args.output),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => *a == args.output,
    };
    if args.files.iter().any(same) {
        bail!(
            "{}: the output is one of the inputs; write the redacted copy elsewhere",
            args.output.display()
        );
    }
    let opts = ReadOptions {
        skip_corrupt: args.skip_corrupt,
        ..Default::default()
    };
    // With --names, a first pass learns every name, so that the first line mentioning a pod is
    // already written with its pseudonym.
    let mut names = if args.names {
        let mut p = Pseudonyms::new();
        let mut merge = Merge::new(common::open_all(&args.files, &opts)?);
        while let Some(e) = merge.next_event()? {
            p.learn(&e);
        }
        p.seal();
        Some(p)
    } else {
        None
    };

    let readers = common::open_all(&args.files, &opts)?;
    let first = readers
        .first()
        .and_then(|r| r.header().cloned())
        .unwrap_or_default();
    let mut header = Header::new(first.node.clone());
    header.kernel_release = first.kernel_release.clone();
    header.boot_time = first.boot_time;
    header.sources = first.sources.clone();
    header.options = first.options.clone();
    if let Some(p) = names.as_mut() {
        let rename = |p: &mut Pseudonyms, s: &str| p.text(s).unwrap_or_else(|| s.to_string());
        header.node = rename(p, &header.node);
        header.sources = header.sources.iter().map(|s| rename(p, s)).collect();
        header.options = header
            .options
            .iter()
            .map(|(k, v)| (k.clone(), rename(p, v)))
            .collect();
        header.options.insert("names".into(), "pseudonyms".into());
    }
    header.options.insert("redact".into(), "on".into());

    let mut merge = Merge::new(readers);
    let mut redactor = Redactor::new();
    let mut w = Writer::create(&args.output, &header, WriteOptions::default())?;
    while let Some(mut e) = merge.next_event()? {
        redactor.event(&mut e);
        let mut e = match names.as_mut() {
            Some(p) => p
                .event(&e)
                .map_err(|err| anyhow::anyhow!("event {} could not be renamed: {err}", e.seq))?,
            None => e,
        };
        w.append(&mut e)?;
    }
    let trailer = w.finish()?;
    if let (Some(p), Some(path)) = (&names, &args.map) {
        let json = serde_json::to_string_pretty(&p.map())?;
        write_private(path, json.as_bytes())
            .with_context(|| format!("{}: cannot write the map", path.display()))?;
    }
    let warnings = merge.take_warnings();
    for (path, w) in &warnings {
        common::warn(path, w);
    }
    if !args.quiet {
        let replaced: u64 = redactor.counts().values().sum();
        let kinds: Vec<String> = redactor
            .counts()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        say!(
            "tapio: wrote {} events to {}: {replaced} secrets replaced{}{}",
            trailer.stats.events,
            args.output.display(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            match (&names, &args.map) {
                (Some(p), Some(m)) => format!(
                    "; names and addresses replaced ({} names, {} addresses; the table is in {})",
                    p.map()["names"].as_object().map_or(0, |m| m.len()),
                    p.map()["addresses"].as_object().map_or(0, |m| m.len()),
                    m.display()
                ),
                (Some(_), None) => "; names and addresses replaced".to_string(),
                _ => String::new(),
            }
        );
    }
    Ok(common::exit(
        warnings
            .iter()
            .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. })),
    ))
}

/// Writes a file only its owner can read (the map holds every real name).
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}
