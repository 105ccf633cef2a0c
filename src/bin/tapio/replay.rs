//! `tapio replay`: the whole pipeline over captures, the incident summaries, and CI checks of a
//! captured incident's verdict.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tapio::capture::{ReadOptions, Warning};
use tapio::pipeline::{self, Options, Outcome};
use tapio::report::{self, Expected, Severity, Verdict};

use crate::common::{self, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Captures (several are merged by time: several nodes), or incident fixture directories
    /// (`fixtures/incidents/NAME` holding `*.tapio` and `expected.json`, or `fixtures/incidents`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
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
    /// Decoding threads per capture (the output does not depend on it).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Events per batch between stages (the output does not depend on it).
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    skip_corrupt: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = Options {
        threads: args.threads,
        batch: args.batch,
        read: ReadOptions {
            skip_corrupt: args.skip_corrupt,
            ..Default::default()
        },
        ..Options::default()
    };
    if args.expect || args.update_expect {
        return check_fixtures(&args, &opts);
    }
    let captures: Vec<PathBuf> = args
        .paths
        .iter()
        .flat_map(|p| pipeline::captures_in(p))
        .collect();
    if captures.is_empty() {
        bail!("no capture (*.tapio) in {}", args.paths[0].display());
    }
    let outcome = pipeline::run(&captures, &opts)?;
    let problem = warn(&outcome);
    print_verdict(&outcome.verdict, args.output, args.explain, args.all)?;
    Ok(common::exit(problem))
}

/// Prints the warnings; says whether data was skipped.
pub fn warn(outcome: &Outcome) -> bool {
    for (path, w) in &outcome.warnings {
        common::warn(path, w);
    }
    outcome
        .warnings
        .iter()
        .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. }))
}

pub fn print_verdict(v: &Verdict, output: Output, explain: bool, all: bool) -> Result<()> {
    if output == Output::Json {
        common::print(&format!("{}\n", serde_json::to_string_pretty(v)?))?;
        return Ok(());
    }
    let shown: Vec<_> = v
        .incidents
        .iter()
        .filter(|i| all || i.severity >= Severity::Medium)
        .collect();
    let hidden = v.incidents.len() - shown.len();
    let mut out = String::new();
    if shown.is_empty() {
        out.push_str("no incident\n");
    }
    for inc in shown {
        out.push_str(&report::incident_text(inc));
        if explain {
            out.push_str(&report::explain(inc));
        }
        out.push('\n');
    }
    if hidden > 0 {
        out.push_str(&format!(
            "({hidden} low-severity incident{} not shown: --all shows them)\n",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    common::print(&out)?;
    Ok(())
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
        let outcome = pipeline::run(&captures, opts)
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
