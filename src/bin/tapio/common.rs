//! What the subcommands share: progress bars, warnings, exit codes, stdout.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tapio::capture::{self, ReadOptions, Reader};
use tapio::topology::Entity;

/// Exit code 1: the command ran, but found a problem worth a script's attention.
pub const PROBLEM: u8 = 1;

pub fn exit(problem: bool) -> ExitCode {
    if problem {
        ExitCode::from(PROBLEM)
    } else {
        ExitCode::SUCCESS
    }
}

/// A progress bar on stderr when stderr is a terminal and not quiet; hidden otherwise.
pub fn progress(len: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub fn warn(path: &Path, what: impl std::fmt::Display) {
    say!("tapio: warning: {}: {what}", path.display());
}

/// The captures named: files as they are, directories as the rotated set they hold, in order.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .flat_map(|p| {
            if p.is_dir() {
                capture::rotated_set(p)
            } else {
                vec![p.clone()]
            }
        })
        .collect()
}

/// Opens every capture; the first that cannot be opened is the error.
pub fn open_all(paths: &[PathBuf], opts: &ReadOptions) -> Result<Vec<Reader>, capture::Error> {
    paths
        .iter()
        .map(|p| Reader::open(p, opts.clone()))
        .collect()
}

pub fn total_size(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Prints to stdout; a reader that went away (`| head`) is not an error.
pub fn print(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Stdout for many lines: buffered, and a closed pipe (`tapio cat … | head`) ends the command
/// quietly instead of failing it.
pub struct Stdout {
    out: io::BufWriter<io::Stdout>,
    pub closed: bool,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            out: io::BufWriter::with_capacity(1 << 16, io::stdout()),
            closed: false,
        }
    }

    /// Writes one line; returns `false` once the reader has gone away.
    pub fn line(&mut self, s: &str) -> io::Result<bool> {
        if self.closed {
            return Ok(false);
        }
        match self
            .out
            .write_all(s.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
        {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// `--on-incident` and `--webhook`: where incident changes are sent as they happen.
#[derive(clap::Args, Clone, Debug)]
pub struct Hooks {
    /// Run CMD (through sh -c) for each incident that opens, changes or closes, with the change
    /// as JSON on its stdin (the JSON line of `record --verdicts json`). A slow or failing
    /// command never holds up the events; failures are counted.
    #[arg(long, value_name = "CMD")]
    pub on_incident: Option<String>,
    /// POST the same JSON to URL (retried with backoff, each try bounded by --hook-timeout).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// How long one run of --on-incident, or one POST of --webhook, may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub hook_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    tapio::filter::parse_duration(s).map(Duration::from_nanos)
}

impl Hooks {
    /// The notifier, when a hook is set.
    pub fn start(&self) -> anyhow::Result<Option<tapio::notify::Notifier>> {
        if self.on_incident.is_none() && self.webhook.is_none() {
            return Ok(None);
        }
        Ok(Some(tapio::notify::Notifier::start(
            tapio::notify::Options {
                command: self.on_incident.clone(),
                webhook: self.webhook.clone(),
                timeout: self.hook_timeout,
                ..Default::default()
            },
        )?))
    }
}

/// Sends a change to the hooks and says what failed so far.
pub fn notify(n: Option<&tapio::notify::Notifier>, c: &tapio::pipeline::Change<'_>) {
    if let Some(n) = n {
        n.send(tapio::report::change_json(c).to_string());
        for w in n.take_warnings() {
            say!("tapio: warning: {w}");
        }
    }
}

/// Waits for the hooks to send what is queued and says how it went.
pub fn finish_hooks(n: Option<tapio::notify::Notifier>) {
    let Some(n) = n else { return };
    let late = n.take_warnings();
    let c = n.finish();
    for w in late {
        say!("tapio: warning: {w}");
    }
    say!(
        "tapio: hooks: {} incident changes sent, {} failed, {} retried, {} dropped (queue full)",
        c.sent,
        c.failed,
        c.retried,
        c.dropped
    );
}

/// A flag set by SIGINT or SIGTERM; a second one ends the process at once (exit 130).
pub fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context as _;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, std::sync::Arc::clone(&stop))
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(stop)
}

/// What redaction replaced, for a closing summary: `None` when nothing was.
pub fn redacted(stats: &tapio::capture::Stats) -> Option<String> {
    let total: u64 = stats.redacted.values().sum();
    if total == 0 {
        return None;
    }
    let kinds: Vec<String> = stats
        .redacted
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    Some(format!(
        "replaced {total} secrets by [REDACTED:<kind>] ({}); --no-redact keeps them",
        kinds.join(", ")
    ))
}

/// A count of events on standard error while a long read goes on (hidden when quiet or not a
/// terminal).
pub fn counter(quiet: bool, what: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::no_length();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {human_pos} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The entities of `--pod NAMESPACE/NAME`, `--service NAMESPACE/NAME` and `--node NAME`.
pub fn entities(
    pod: &Option<String>,
    service: &Option<String>,
    node: &Option<String>,
) -> anyhow::Result<Vec<Entity>> {
    let split = |s: &str, what: &str| -> anyhow::Result<(String, String)> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                Ok((ns.to_string(), name.to_string()))
            }
            _ => anyhow::bail!("--{what} takes NAMESPACE/NAME, got {s:?}"),
        }
    };
    let mut out = Vec::new();
    if let Some(p) = pod {
        let (ns, name) = split(p, "pod")?;
        out.push(Entity::Pod { ns, name });
    }
    if let Some(s) = service {
        let (ns, name) = split(s, "service")?;
        out.push(Entity::Service { ns, name });
    }
    if let Some(n) = node {
        out.push(Entity::Node(n.clone()));
    }
    Ok(out)
}

/// The value parser of an `-o`/`--format` that takes the formats `T` renders: help and shell
/// completions list them, and any other is refused with the list.
pub fn formats<T: tapio::report::Render>(
) -> impl clap::builder::TypedValueParser<Value = tapio::report::Format> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(T::FORMATS.iter().map(|f| f.as_str()))
        .map(|s| tapio::report::Format::parse_name(&s).unwrap_or(T::FORMATS[0]))
}
