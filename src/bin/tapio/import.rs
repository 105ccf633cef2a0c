//! `tapio import`: the dumps people already have → one capture.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use tapio::capture::{Header, WriteOptions, Writer};
use tapio::event::Ts;
use tapio::redact::Redactor;
use tapio::source::import::{self, ClockOptions, Format, Input, Options};

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the capture.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// The files to import; each one's format is detected from its content.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Force the format of every input: kube-json, kube-yaml, watch-json, watch-yaml, otlp-json,
    /// zipkin-json, dmesg, syslog, journal-json, container-log, kubectl-describe, kubectl-get,
    /// tapio-json.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The year of syslog times that have none (default: from the other inputs).
    #[arg(long)]
    year: Option<i32>,
    /// When the node booted (RFC 3339), for dmesg times in seconds since boot.
    #[arg(long, value_parser = parse_ts)]
    boot_time: Option<Ts>,
    /// The zone of local times in syslog and dmesg -T (an IANA name such as Europe/Berlin; default UTC).
    #[arg(long)]
    tz: Option<chrono_tz::Tz>,
    /// The date (YYYY-MM-DD) of inputs that give only a time of day.
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
    /// When pasted `kubectl describe`/`get` output was captured (RFC 3339): its ages (AGE, "5m
    /// ago", Events' Age) count back from it (default: each file's modification time).
    #[arg(long, value_parser = parse_ts)]
    now: Option<Ts>,
    /// The node to record for events whose input does not name one.
    #[arg(long)]
    node: Option<String>,
    /// Whose container logs plain-text inputs are (`kubectl logs` output): NAMESPACE/POD. Not
    /// needed for kubelet log files (their path names the pod) nor for `kubectl logs --prefix`
    /// output (each line names it).
    #[arg(long, value_name = "NS/POD", value_parser = parse_pod)]
    pod: Option<(String, String)>,
    /// The container of --pod's logs.
    #[arg(long, requires = "pod")]
    container: Option<String>,
    /// The logs are from the container's previous run (`kubectl logs --previous`).
    #[arg(long, requires = "pod")]
    previous: bool,
    /// Keep secrets (tokens, passwords in URLs and logs, secret environment values, Secret data)
    /// instead of replacing them by [REDACTED:<kind>].
    #[arg(long)]
    no_redact: bool,
    /// Events held in memory before the rest of a big log goes to scratch files beside the output
    /// (and the sort of a big import to sorted runs on disk).
    #[arg(long, default_value_t = 100_000, value_name = "EVENTS", hide = true)]
    batch: usize,
    /// No progress bar, and no per-file summary on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// Every rejected record on its own line (by default the first five of a file, then a count
    /// per reason).
    #[arg(short, long)]
    verbose: bool,
}

fn parse_pod(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() => {
            Ok((ns.to_string(), pod.to_string()))
        }
        _ => Err(format!("{s:?}: expected NAMESPACE/POD")),
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_ts(s: &str) -> Result<Ts, String> {
    Ts::parse_rfc3339(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time (2024-05-01T08:00:00Z)"))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let scratch = import::Scratch::new(
        match args.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        },
        args.batch,
    );
    remove_scratch_on_signals(&scratch)?;
    let inputs: Vec<Input> = args
        .files
        .iter()
        .map(|p| Input {
            path: p.clone(),
            format: args.format,
        })
        .collect();
    let opts = Options {
        clock: ClockOptions {
            year: args.year,
            boot_time: args.boot_time,
            tz: args.tz,
            date: args.date,
        },
        node: args.node.clone(),
        now: args.now,
        owner: args
            .pod
            .clone()
            .map(|(namespace, pod)| import::container_log::Owner {
                namespace,
                pod,
                container: args.container.clone(),
                previous: args.previous,
            }),
        scratch: Some(scratch.clone()),
    };
    let bar = common::progress(common::total_size(&args.files), args.quiet, "importing");
    let mut imported = import::run(&inputs, &opts, |path: &Path, _| {
        bar.inc(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    })?;
    bar.finish_and_clear();

    if imported.files.iter().all(|f| f.error.is_some()) {
        for f in &imported.files {
            say!(
                "tapio: error: {}: {}",
                f.path.display(),
                f.error.as_deref().unwrap_or("")
            );
        }
        bail!(
            "no input could be imported; {} was not written",
            args.output.display()
        );
    }
    let mut header = Header::new(args.node.clone().unwrap_or_default());
    header.sources = imported
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| {
            format!(
                "import:{}:{}",
                f.format.map_or("?", Format::as_str),
                file_name(&f.path)
            )
        })
        .collect();
    for (k, v) in [
        ("year", args.year.map(|y| y.to_string())),
        ("boot_time", args.boot_time.map(|t| t.rfc3339())),
        ("tz", args.tz.map(|t| t.name().to_string())),
        ("date", args.date.map(|d| d.to_string())),
        ("now", args.now.map(|t| t.rfc3339())),
    ] {
        if let Some(v) = v {
            header.options.insert(k.to_string(), v);
        }
    }
    for (i, note) in imported.placements.iter().enumerate() {
        header.options.insert(format!("assumed.{i}"), note.clone());
    }
    header.options.insert(
        "redact".to_string(),
        if args.no_redact { "off" } else { "on" }.to_string(),
    );
    let mut redactor = (!args.no_redact).then(Redactor::new);
    let mut w = Writer::create(&args.output, &header, WriteOptions::default())?;
    while let Some(mut e) = imported.events.next_event()? {
        if let Some(r) = redactor.as_mut() {
            r.event(&mut e);
        }
        w.append(&mut e)?;
    }
    let trailer = w.finish()?;

    let mut problem = false;
    for f in &imported.files {
        let name = f.path.display();
        if let Some(err) = &f.error {
            say!("tapio: error: {name}: {err}");
            problem = true;
            continue;
        }
        // The first few in full; past them, a count per reason (-v: every one).
        let shown = if args.verbose {
            f.rejected.len()
        } else {
            SHOWN
        };
        for r in f.rejected.iter().take(shown) {
            say!("tapio: warning: {name}: {}: rejected: {}", r.at, r.reason);
        }
        let mut rest: Vec<(String, usize)> = Vec::new();
        for r in f.rejected.iter().skip(shown) {
            let key = reason_kind(&r.reason);
            match rest.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => rest.push((key, 1)),
            }
        }
        for (reason, n) in &rest {
            say!("tapio: warning: {name}: {n} more rejected: {reason} (-v shows each)");
        }
        for w in &f.warnings {
            say!("tapio: warning: {name}: {w}");
        }
        problem |= !f.rejected.is_empty();
        if !args.quiet {
            let format = f.format.map_or("?", Format::as_str);
            say!(
                "  {name}: {} events ({format}), {} rejected",
                f.events,
                f.rejected.len()
            );
        }
    }
    for note in &imported.placements {
        say!("tapio: note: {note}");
    }
    if let Some(line) = common::redacted(&trailer.stats) {
        say!("tapio: {line}");
    }
    let rejected: usize = imported.files.iter().map(|f| f.rejected.len()).sum();
    let failed = imported.files.iter().filter(|f| f.error.is_some()).count();
    say!(
        "tapio: imported {} events from {} of {} files into {} ({} records rejected, {} files failed)",
        trailer.stats.events,
        imported.files.len() - failed,
        imported.files.len(),
        args.output.display(),
        rejected,
        failed
    );
    Ok(common::exit(problem))
}

/// Ctrl-C or SIGTERM: the scratch files of a big import go with the process (exit 130). What was
/// written of the output stays, and reads.
fn remove_scratch_on_signals(scratch: &std::sync::Arc<import::Scratch>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    // Weak: the scratch directory goes when the import drops it, as it ends.
    let scratch = std::sync::Arc::downgrade(scratch);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            if let Some(s) = scratch.upgrade() {
                s.remove();
            }
            say!("tapio: interrupted: the import stopped, its scratch files are removed");
            std::process::exit(130);
        }
    });
    Ok(())
}

/// Rejected records shown in full per file before they are counted by reason.
const SHOWN: usize = 5;

/// A rejection's reason without its particulars (numbers, quoted parts), to count alike ones.
fn reason_kind(reason: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in reason.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if quoted {
                    out.push_str("\"…\"");
                }
            }
            _ if quoted => {}
            c if c.is_ascii_digit() => {
                if !out.ends_with('N') {
                    out.push('N');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
