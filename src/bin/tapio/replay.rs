//! `tapio replay`: the whole pipeline over captures, the incident summaries, and CI checks of a
//! captured incident's verdict.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use tapio::analysis::{Incident, Severity, Verdict};
use tapio::capture::{ReadOptions, Warning};
use tapio::event::Ts;
use tapio::pipeline::{self, Change, Options, Outcome, State};
use tapio::report::{self, Expected};

use tapio::report::{Format, Incidents, Render};

use crate::common;

#[derive(clap::Args)]
pub struct Args {
    /// Captures (several are merged by time: several nodes), incident fixture directories
    /// (`fixtures/incidents/NAME` holding `*.tapio` and `expected.json`, or `fixtures/incidents`),
    /// or the cluster's stream (nats://HOST:4222: as it stands now, or live with --follow).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format: text (a summary per incident) or json (the verdict, docs/correlation.md).
    #[arg(short, long, default_value = "text", value_parser = common::formats::<Incidents>())]
    output: Format,
    /// Check each fixture's verdict against its `expected.json`: exit 1 with a diff when it differs.
    #[arg(long, conflicts_with = "update_expect")]
    expect: bool,
    /// Rewrite each fixture's `expected.json` from the verdict.
    #[arg(long)]
    update_expect: bool,
    /// Show, for each incident, the other causes considered and why they lost, and every finding.
    #[arg(long)]
    explain: bool,
    /// Also print low-severity incidents (retried errors, lone network blips); JSON always has them.
    #[arg(long)]
    all: bool,
    /// Replay pace: 1 as it happened, N times faster, or max (default). Incidents print as they
    /// close either way; the pace only changes when they do.
    #[arg(long, default_value = "max", value_parser = parse_speed)]
    speed: Speed,
    /// Decoding threads per capture (the output does not depend on it); by default one fewer
    /// than the cores (at least 1, at most 4): the core and the merge need a core between them.
    #[arg(long)]
    threads: Option<usize>,
    /// Events per batch between stages (the output does not depend on it).
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
    /// Follow a capture that is being written (a recorder's file, or its directory of rotated
    /// files), or the whole cluster's stream (nats://HOST:4222), until Ctrl-C: incidents are
    /// printed as they open, change and close.
    #[arg(long, conflicts_with_all = ["expect", "update_expect", "speed"])]
    follow: bool,
    /// Following a stream: the durable consumer's name. A consumer restarted with the same name
    /// goes on where it stopped and prints no incident twice; two names are two independent
    /// readers.
    #[arg(
        long,
        default_value = "tapio",
        requires = "follow",
        help_heading = "Reading the cluster's stream (nats://)"
    )]
    consumer: String,
    /// Reading a stream: how long an event waits for other nodes' earlier events; later ones
    /// still count, and are counted as late.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::nats::parse_duration, help_heading = "Reading the cluster's stream (nats://)")]
    max_lateness: std::time::Duration,
    /// Reading a stream: correct a node's clock when it is off the NATS server's by more than
    /// this (off: never).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::nats::parse_threshold, help_heading = "Reading the cluster's stream (nats://)")]
    skew_threshold: crate::nats::Threshold,
    /// Following a stream: a restarted consumer rebuilds its state from this much of the stream
    /// before where it stopped, and the Kubernetes objects as they stood before that (all: the
    /// stream's whole retention). An incident open longer than this keeps its id; its start is
    /// then shown as the window's start.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = crate::nats::parse_window, requires = "follow", help_heading = "Reading the cluster's stream (nats://)")]
    rebuild_window: crate::nats::Threshold,
    /// Reading a stream: only this node's events.
    #[arg(long, help_heading = "Reading the cluster's stream (nats://)")]
    node: Option<String>,
    /// Following a stream: serve the incidents and metrics over HTTP on ADDR (GET
    /// /incidents?state=open, /incidents/ID, /metrics, /healthz).
    #[arg(
        long,
        value_name = "ADDR",
        requires = "follow",
        help_heading = "Reading the cluster's stream (nats://)"
    )]
    serve: Option<std::net::SocketAddr>,
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// Print incidents as they open, change and close, as a live run would have (with --speed 1:
    /// at the pace it happened). With -o json: one JSON line per change.
    #[arg(long, conflicts_with_all = ["expect", "update_expect"])]
    live_output: bool,
    #[command(flatten)]
    hooks: common::Hooks,
}

/// `--speed`: a factor of the recorded pace, or none (`max`).
#[derive(Clone, Copy, Debug)]
struct Speed(Option<f64>);

fn parse_speed(s: &str) -> Result<Speed, String> {
    match s {
        "max" => Ok(Speed(None)),
        n => match n.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => Ok(Speed(Some(x))),
            _ => Err(format!(
                "{s:?}: use 1 (as it happened), a factor such as 10, or max"
            )),
        },
    }
}

impl Args {
    /// Whether it runs until stopped (`--follow`).
    pub fn follows(&self) -> bool {
        self.follow
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = Options {
        threads: args.threads.unwrap_or_else(tapio::pipeline::decoders),
        batch: args.batch,
        speed: args.speed.0,
        read: ReadOptions {
            skip_corrupt: args.skip_corrupt,
            ..Default::default()
        },
        ..Options::default()
    };
    if args.expect || args.update_expect {
        return check_fixtures(&args, &opts);
    }
    if let Some(url) = stream_url(&args.paths) {
        if args.follow {
            return follow_stream(&args, &url);
        }
        return replay_stream(&args, &url);
    }
    let captures: Vec<PathBuf> = args
        .paths
        .iter()
        .flat_map(|p| pipeline::captures_in(p))
        .collect();
    if captures.is_empty() && !args.follow {
        bail!("no capture (*.tapio) in {}", args.paths[0].display());
    }
    let hooks = args.hooks.start()?;
    let live = args.follow || args.live_output || hooks.is_some();
    let printer =
        Printer::new(args.output, args.explain, args.all).live(args.follow || args.live_output);
    let mut on_change = |c: Change<'_>| {
        printer.on_change(&c);
        common::notify(hooks.as_ref(), &c);
    };
    let opts = Options { live, ..opts };
    let outcome = if args.follow {
        if args.paths.len() != 1 {
            bail!(
                "--follow reads one capture or one directory of rotated captures; got {}",
                args.paths.len()
            );
        }
        // The first Ctrl-C closes what is open and prints it.
        let stop = common::stop_on_signals()?;
        pipeline::follow(&args.paths[0], &opts, &stop, &mut on_change)?
    } else {
        pipeline::run(&captures, &opts, &mut on_change)?
    };
    let problem = warn(&outcome);
    printer.finish(&outcome.verdict)?;
    common::finish_hooks(hooks);
    Ok(common::exit(problem))
}

/// The stream's URL when the one path given is one.
fn stream_url(paths: &[PathBuf]) -> Option<String> {
    let p = paths.first()?.to_str()?;
    (paths.len() == 1 && (p.starts_with("nats://") || p.starts_with("tls://")))
        .then(|| p.to_string())
}

fn stream_options(args: &Args, url: &str) -> Result<tapio::cluster::FollowOptions> {
    Ok(tapio::cluster::FollowOptions {
        nats: args.nats.nats(Some(url))?,
        cluster: args.nats.cluster.clone(),
        stream: args.nats.stream.clone(),
        consumer: args.consumer.clone(),
        node: args.node.clone(),
        max_lateness: args.max_lateness,
        skew_threshold: args.skew_threshold.0,
        rebuild_window: args.rebuild_window.0,
        detect: Default::default(),
    })
}

/// `replay nats://…`: the stream as it stands now, replayed to its end.
fn replay_stream(args: &Args, url: &str) -> Result<ExitCode> {
    let opts = stream_options(args, url)?;
    let printer = Printer::new(args.output, args.explain, args.all).live(args.live_output);
    let (finished, summary) =
        tapio::cluster::replay(&opts, &mut |w| say!("tapio: warning: {w}"), &mut |c| {
            printer.on_change(&c)
        })?;
    for k in summary.skew.iter().filter(|k| k.applied_ns != 0) {
        say!(
            "tapio: the clock of node {} is {} off the NATS server's; its events were corrected by {}",
            k.node,
            tapio::cluster::skew::seconds(k.estimate_ns),
            tapio::cluster::skew::seconds(-k.applied_ns)
        );
    }
    if summary.late > 0 || summary.garbage > 0 {
        say!(
            "tapio: {} late events (behind the --max-lateness window, still used), {} messages that were not tapio batches skipped",
            summary.late,
            summary.garbage
        );
    }
    printer.finish(&finished.verdict)?;
    Ok(common::exit(summary.garbage > 0))
}

/// `replay --follow nats://…`: the cluster's incidents, live, until Ctrl-C or SIGTERM.
fn follow_stream(args: &Args, url: &str) -> Result<ExitCode> {
    let opts = stream_options(args, url)?;
    let metrics = std::sync::Arc::new(tapio::cluster::Metrics::default());
    let _server = match args.serve {
        Some(addr) => {
            let s = tapio::cluster::metrics::Server::start(addr, std::sync::Arc::clone(&metrics))?;
            say!(
                "tapio: serving incidents and metrics on http://{}",
                s.addr()
            );
            Some(s)
        }
        None => None,
    };
    let hooks = args.hooks.start()?;
    let printer = Printer::new(args.output, args.explain, args.all).live(true);
    let stop = common::stop_on_signals()?;
    say!(
        "tapio: following stream {} at {url} (cluster {}, consumer {}); Ctrl-C to stop",
        args.nats.stream,
        args.nats.cluster,
        args.consumer
    );
    let summary = tapio::cluster::follow(
        &opts,
        &stop,
        &metrics,
        &mut |w| say!("tapio: warning: {w}"),
        &mut |c| {
            printer.on_change(&c);
            common::notify(hooks.as_ref(), &c);
        },
    )?;
    let problem = summary.garbage > 0;
    say!(
        "tapio: stopped: {} messages ({} events) read{}, {} duplicates and {} messages that were not tapio batches skipped, {} late events; the open incidents go on when consumer {} is started again",
        summary.messages,
        summary.events,
        if summary.rebuilt > 0 {
            format!(
                ", {} of them again to rebuild the state (with {} Kubernetes objects from before)",
                summary.rebuilt, summary.snapshot
            )
        } else {
            String::new()
        },
        summary.duplicates,
        summary.garbage,
        summary.late,
        args.consumer
    );
    for k in summary.skew.iter().filter(|k| k.applied_ns != 0) {
        say!(
            "tapio: the clock of node {} is {} off the NATS server's; its events were corrected by {}",
            k.node,
            tapio::cluster::skew::seconds(k.estimate_ns),
            tapio::cluster::skew::seconds(-k.applied_ns)
        );
    }
    common::finish_hooks(hooks);
    Ok(common::exit(problem))
}

/// Prints the warnings; says whether data was skipped.
pub fn warn(outcome: &Outcome) -> bool {
    for (path, note) in &outcome.notes {
        common::warn(path, note);
    }
    for (path, w) in &outcome.warnings {
        common::warn(path, w);
    }
    outcome
        .warnings
        .iter()
        .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. }))
}

/// Prints incidents: in text, each as soon as it closes, then the rest at the end, numbered in
/// the order printed; in JSON, the whole verdict at the end. Live, each change as it comes: text
/// blocks, or one JSON line per change.
pub struct Printer {
    output: Format,
    explain: bool,
    all: bool,
    live: bool,
    state: Mutex<Printed>,
}

#[derive(Default)]
struct Printed {
    keys: HashSet<(Ts, String, String)>,
    shown: usize,
    hidden: usize,
}

impl Printer {
    pub fn new(output: Format, explain: bool, all: bool) -> Printer {
        Printer {
            output,
            explain,
            all,
            live: false,
            state: Mutex::new(Printed::default()),
        }
    }

    /// Prints changes as they come (open, update, close) instead of the verdict.
    pub fn live(mut self, live: bool) -> Printer {
        self.live = live;
        self
    }

    /// For the pipeline: an incident opened, changed or closed.
    pub fn on_change(&self, c: &Change<'_>) {
        // A closed pipe is noticed again, and reported, when the verdict is printed.
        let _ = if self.live {
            self.print_change(c)
        } else if self.output == Format::Text && c.state == State::Closed {
            self.print_one(c.incident)
        } else {
            Ok(())
        };
    }

    fn print_change(&self, c: &Change<'_>) -> Result<()> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("printer poisoned"))?;
        if self.output == Format::Json {
            st.shown += 1;
            common::print(&c.rendered(Format::Json))?;
            return Ok(());
        }
        if c.state == State::Closed && !self.all && c.incident.severity < Severity::Medium {
            st.hidden += 1;
            return Ok(());
        }
        st.shown += 1;
        let mut out = c.rendered(Format::Text);
        if self.explain && c.state == State::Closed {
            out.push_str(&report::explain(c.incident));
        }
        out.push('\n');
        common::print(&out)?;
        Ok(())
    }

    fn print_one(&self, inc: &Incident) -> Result<()> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("printer poisoned"))?;
        if !st.keys.insert((
            inc.start,
            inc.root_cause.entity.to_string(),
            inc.root_cause.summary.clone(),
        )) {
            return Ok(());
        }
        if !self.all && inc.severity < Severity::Medium {
            st.hidden += 1;
            return Ok(());
        }
        st.shown += 1;
        let mut inc = inc.clone();
        inc.id = st.shown;
        let one = Incidents {
            incidents: std::slice::from_ref(&inc),
            explain: self.explain,
        };
        common::print(&one.rendered(Format::Text))?;
        Ok(())
    }

    /// The end of the run: what is left to print.
    pub fn finish(&self, v: &Verdict) -> Result<()> {
        if self.live {
            let st = self
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("printer poisoned"))?;
            if self.output == Format::Text && st.hidden > 0 {
                common::print(&format!(
                    "({} low-severity incident{} not shown: --all shows them)\n",
                    st.hidden,
                    if st.hidden == 1 { "" } else { "s" }
                ))?;
            }
            return Ok(());
        }
        if self.output == Format::Json {
            common::print(&v.rendered(Format::Json))?;
            return Ok(());
        }
        for inc in &v.incidents {
            self.print_one(inc)?;
        }
        let st = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("printer poisoned"))?;
        let mut out = String::new();
        if st.shown == 0 {
            out.push_str("no incident\n");
        }
        if st.hidden > 0 {
            out.push_str(&format!(
                "({} low-severity incident{} not shown: --all shows them)\n",
                st.hidden,
                if st.hidden == 1 { "" } else { "s" }
            ));
        }
        common::print(&out)?;
        Ok(())
    }
}

/// The fixture directories under the given paths: those holding an `expected.json` (or, with
/// `--update-expect`, any holding a capture).
fn fixtures(paths: &[PathBuf], update: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let is_fixture = |d: &Path| {
            d.join("expected.json").exists()
                || (update && !pipeline::captures_in(d).is_empty() && d.is_dir())
        };
        if is_fixture(p) {
            out.push(p.clone());
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|d| is_fixture(d))
                    .collect()
            })
            .unwrap_or_default();
        subs.sort();
        out.extend(subs);
    }
    out
}

fn check_fixtures(args: &Args, opts: &Options) -> Result<ExitCode> {
    let dirs = fixtures(&args.paths, args.update_expect);
    if dirs.is_empty() {
        bail!(
            "no incident fixture (a directory with *.tapio and expected.json) under {}",
            args.paths[0].display()
        );
    }
    let (mut failed, mut passed) = (0, 0);
    for dir in &dirs {
        let captures = pipeline::captures_in(dir);
        let outcome = pipeline::run(&captures, opts, &mut |_| {})
            .with_context(|| format!("replaying {}", dir.display()))?;
        warn(&outcome);
        let got = Expected::of(&outcome.verdict);
        let path = dir.join("expected.json");
        if args.update_expect {
            std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(&got)?))
                .with_context(|| format!("cannot write {}", path.display()))?;
            say!("updated  {}", path.display());
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let expected: Expected = serde_json::from_str(&text)
            .with_context(|| format!("{}: not an expected verdict", path.display()))?;
        let diff = expected.diff(&got);
        if diff.is_empty() {
            passed += 1;
            common::print(&format!("ok       {}\n", dir.display()))?;
        } else {
            failed += 1;
            common::print(&format!(
                "CHANGED  {}\n{}\n",
                dir.display(),
                diff.join("\n")
            ))?;
        }
    }
    if !args.update_expect {
        common::print(&format!("{passed} passed, {failed} failed\n"))?;
    }
    Ok(common::exit(failed > 0))
}
