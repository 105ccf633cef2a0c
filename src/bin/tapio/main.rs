//! `tapio`: incident investigation for Linux and Kubernetes. Parses the command line, runs the
//! subcommand, maps the outcome to an exit code: 0 ok, 1 a problem was found (rejected records,
//! skipped corruption), 2 an error.

/// `eprintln!` that a closed stderr cannot turn into a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cat;
mod common;
mod correlate;
#[cfg(feature = "tables")]
mod export;
mod generate;
mod import;
mod index;
mod info;
mod nats;
mod publish;
mod pull;
#[cfg(feature = "tables")]
mod query;
mod record;
mod redact;
mod replay;
mod report;
mod shell;
#[cfg(feature = "tables")]
mod stats;
#[cfg(feature = "tables")]
mod tables;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Why did this fail, what else is hit, what do we do: the kernel, Kubernetes and the
/// applications' traces on one timeline.
#[derive(Parser)]
#[command(name = "tapio", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record what the kernel sees (OOM kills, process exits and signals, TCP failures,
    /// retransmits, memory pressure) into a capture, attributed to containers. Needs root.
    #[command(after_help = "Examples:
  sudo tapio record -o incident.tapio                       # until Ctrl-C
  sudo tapio record -o incident.tapio --duration 10m --kind oom,exit,signal,tcp
  tapio replay incident.tapio                               # afterwards, anywhere

Requirements: Linux ≥ 5.8 with BTF (/sys/kernel/btf/vmlinux), tracefs (mounted if missing),
root or CAP_BPF + CAP_PERFMON. OOM kills from eBPF need Linux ≥ 6.8.
Exit status: 0 recorded (drops, if any, are in the capture and reported), 2 error.")]
    Record(Box<record::Args>),
    /// Convert the dumps you already have (kubectl JSON/YAML, watch streams, OTLP or Zipkin
    /// traces, dmesg, syslog, journalctl) into one capture, ordered by time.
    #[command(after_help = "Examples:
  tapio import -o incident.tapio pods.json events.yaml dmesg.txt kubelet.log trace.json
  tapio import -o incident.tapio --boot-time 2024-05-01T08:00:00Z dmesg.txt
  tapio import -o incident.tapio --year 2024 --tz Europe/Berlin /var/log/syslog
  tapio import -o incident.tapio pods.json /var/log/pods/shop_cart-7d8f9-x2x4k_*/cart/*.log*
  kubectl logs -n shop cart-7d8f9-x2x4k --previous > cart.log
  tapio import -o incident.tapio pods.json --pod shop/cart-7d8f9-x2x4k --previous cart.log

Exit status: 0 all imported, 1 some records or files rejected (the rest is in the capture), 2 error.")]
    Import(import::Args),
    /// Print the events of captures, one line each (or JSON lines), with filters.
    #[command(after_help = "Examples:
  tapio cat incident.tapio --kind oom,k8s.event --since 10:02 --until +5m
  tapio cat incident.tapio --pod shop/cart-7d8f9
  tapio cat incident.tapio --trace-id 2ea75461946a7dd10f2c15ab36a076cb -o json
  tapio cat node-1.tapio node-2.tapio --namespace shop
  tapio cat live.tapio --follow

Exit status: 0 ok (also for a capture cut short: a warning says where), 1 corrupt data skipped
(--skip-corrupt), 2 error.")]
    Cat(cat::Args),
    /// Describe a capture: header, time range, counts per source and kind, drops and gaps, size.
    #[command(after_help = "Examples:
  tapio info incident.tapio
  tapio info incident.tapio -o json | jq '.by_kind'

Exit status: 0 ok, 1 corrupt data skipped (--skip-corrupt), 2 error.")]
    Info(info::Args),
    /// Build the block index of captures that have none (format 1, or not closed cleanly), kept
    /// beside each as CAPTURE.tidx, so that cat, correlate and report read only the blocks they need;
    /// with --verdict, keep the captures' verdict too, for correlate to answer from.
    #[command(after_help = "Examples:
  tapio index old-incident.tapio       (writes old-incident.tapio.tidx)
  tapio index /var/lib/tapio/          (every capture of a rotated set)
  tapio index day.tapio --verdict      (writes day.tapio.verdict; then, at once:
  tapio correlate day.tapio --trace-id 4bf92f3577b34da6a3ce929d0e0e4736)

Captures closed cleanly by this version carry their own index: nothing to do for them.")]
    Index(index::Args),
    /// Write a capture's events as typed tables (kernel, spans, logs, k8s_events, objects) to
    /// Parquet, CSV, JSON lines or Arrow IPC, for DuckDB, polars or a notebook.
    #[command(after_help = "Examples:
  tapio export incident.tapio -o tables/            (tables/kernel.parquet, tables/spans.parquet, …)
  tapio export incident.tapio --table spans -o spans.csv --service checkout
  duckdb -c \"SELECT pod, count(*) FROM 'tables/kernel.parquet' WHERE kind = 'oom' GROUP BY pod\"

The columns of every table are in docs/tables.md. Exit status: 0 ok, 1 corrupt data skipped
(--skip-corrupt), 2 error.")]
    #[cfg(feature = "tables")]
    Export(export::Args),
    /// Ask a capture in SQL: polars SQL over the tables of `export`, printed as a table, CSV, JSON
    /// lines or Parquet.
    #[command(after_help = "Examples:
  tapio query incident.tapio \"SELECT pod, count(*) AS kills FROM kernel WHERE kind = 'oom' GROUP BY pod\"
  tapio query incident.tapio -o csv \"SELECT date_trunc('1m', ts) AS minute, count(*) FILTER (WHERE status = 'error') * 1.0 / count(*) AS error_rate FROM spans WHERE service = 'checkout' GROUP BY minute ORDER BY minute\"
  tapio query incident.tapio \"SELECT root_kind, entity, summary FROM incidents\"

The tables and their columns are in docs/tables.md; a query names the tables it needs, and only
those are built. Exit status: 0 ok, 1 corrupt data skipped (--skip-corrupt), 2 error (an error in
the SQL lists the tables and columns).")]
    #[cfg(feature = "tables")]
    Query(query::Args),
    /// The first questions of an investigation, as tables: restarts, OOM kills and error exits
    /// by pod; failed connections; requests, errors and latency by service; error log lines;
    /// node conditions and pressure; drops and gaps.
    #[command(after_help = "Examples:
  tapio stats incident.tapio
  tapio stats incident.tapio --by 5m --namespace shop --top 5
  tapio stats incident.tapio -o json | jq '.services'
  tapio stats incident.tapio -o csv --section service_buckets --by 1m > buckets.csv

Exit status: 0 ok, 1 corrupt data skipped (--skip-corrupt), 2 error.")]
    #[cfg(feature = "tables")]
    Stats(stats::Args),
    /// Run the whole pipeline over captures and print each incident: root cause, chain with
    /// evidence, impact, actions. With --expect, check captured incidents' verdicts (CI).
    #[command(after_help = "Examples:
  tapio replay incident.tapio
  tapio replay node-1.tapio node-2.tapio -o json
  tapio replay fixtures/incidents --expect          # CI: exit 1 with a diff when a verdict changed
  tapio replay --follow nats://nats.tapio:4222 --cluster prod --serve 0.0.0.0:8080   # the cluster, live
  tapio replay fixtures/incidents/oom-cascade --update-expect

Exit status: 0 ok (verdicts as expected), 1 a verdict changed (--expect) or corrupt data was
skipped (--skip-corrupt), 2 error.")]
    Replay(replay::Args),
    /// The incidents that explain one request (--trace-id) or one entity (--pod, --service, --node).
    #[command(after_help = "Examples:
  tapio correlate incident.tapio --trace-id 2ea75461946a7dd10f2c15ab36a076cb
  tapio correlate incident.tapio --pod shop/cart-7d8f9 --explain
  tapio correlate incident.tapio --node node-7 --since 10:00 --until 10:30 -o json

Exit status: 0 ok (also when no incident is involved), 2 error.")]
    Correlate(correlate::Args),
    /// The incident report people share: one self-contained HTML page with a timeline picture
    /// per incident, Markdown for a ticket, or the pictures alone as SVG.
    #[command(after_help = "Examples:
  tapio report incident.tapio -o incident.html
  tapio report incident.tapio -o incident.md               # for a ticket or a GitHub issue
  tapio report incident.tapio -o timeline.svg --pod shop/cart-7d8f9
  tapio report node-*.tapio --since 10:00 --until +30m --all -o report.html

The HTML needs no network: inline CSS and SVG, a few lines of JavaScript to filter the evidence.
Exit status: 0 ok, 2 error.")]
    Report(report::Args),
    /// Send captures to the cluster's NATS JetStream stream, as a node's recorder would have (a
    /// post-mortem upload).
    #[command(after_help = "Examples:
  tapio publish node-1.tapio node-2.tapio nats://nats.tapio:4222 --cluster prod
  NATS_URL=nats://127.0.0.1:4222 tapio publish fixtures/incidents/oom-cascade

Publishing the same captures again stores nothing twice (JetStream drops the repeated message ids).
Exit status: 0 all sent, 2 error (NATS did not take everything within --timeout).")]
    Publish(publish::Args),
    /// A window of the cluster's stream as an ordinary capture (post-mortem from the cluster).
    #[command(after_help = "Examples:
  tapio pull nats://nats.tapio:4222 --cluster prod --since 10:00 --until +30m -o incident.tapio
  tapio pull --since 2024-05-01T10:00:00Z --until 2024-05-01T10:30:00Z --node node-3 -o n3.tapio
  tapio replay incident.tapio

The Kubernetes objects as they stood at --since come first, so the capture explains itself.
Exit status: 0 ok, 1 messages that were not tapio batches were skipped, 2 error.")]
    Pull(pull::Args),
    /// A copy of captures that can be shared: secrets replaced by [REDACTED:<kind>], and with
    /// --names the names and addresses by stable pseudonyms.
    #[command(after_help = "Examples:
  tapio redact incident.tapio -o shareable.tapio
  tapio redact node-1.tapio node-2.tapio --names --map names.json -o for-vendor.tapio
  tapio replay for-vendor.tapio                       # the same verdict, with the pseudonyms

The secrets replaced are those `record` and `import` replace by default (see `tapio info`'s
secrets line). --names learns the names from the capture itself (objects, resources, nodes),
then replaces them wherever they appear; keep the --map file, it holds every real name.
Exit status: 0 ok, 1 corrupt data was skipped (--skip-corrupt), 2 error.")]
    Redact(redact::Args),
    /// Print a shell's completion script for tapio.
    #[command(after_help = "Examples:
  tapio completions bash > /etc/bash_completion.d/tapio
  tapio completions zsh > \"${fpath[1]}/_tapio\"
  tapio completions fish > ~/.config/fish/completions/tapio.fish")]
    Completions(shell::CompletionsArgs),
    /// Print tapio's man page, or write it and one page per subcommand into a directory.
    #[command(after_help = "Examples:
  tapio man | man -l -
  sudo tapio man -o /usr/local/share/man/man1 && man tapio-replay")]
    Man(shell::ManArgs),
    /// Write a deterministic synthetic capture (benchmarks, demos).
    #[command(hide = true)]
    Generate(generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(&cli.command, Command::Record(_))
        || matches!(&cli.command, Command::Replay(a) if a.follows())
    {
        bound_malloc_arenas();
    }
    let result = match cli.command {
        Command::Record(a) => record::run(*a),
        Command::Import(a) => import::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Info(a) => info::run(a),
        Command::Index(a) => index::run(a),
        #[cfg(feature = "tables")]
        Command::Export(a) => export::run(a),
        #[cfg(feature = "tables")]
        Command::Query(a) => query::run(a),
        #[cfg(feature = "tables")]
        Command::Stats(a) => stats::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Publish(a) => publish::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Redact(a) => redact::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Correlate(a) => correlate::run(a),
        Command::Report(a) => report::run(a),
        Command::Completions(a) => shell::completions(a),
        Command::Man(a) => shell::man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say!("tapio: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// At most two glibc malloc arenas for the commands that run for days (`MALLOC_ARENA_MAX` in the
/// environment still decides). Events are allocated on the threads that receive them and freed on
/// the thread that writes them; with glibc's default of eight arenas a core, the freed memory
/// stays spread over the arenas, and a recorder under a flood of spans crept from 290 to 480 MiB
/// in a minute. With two it stays flat. Replay keeps the default: two arenas cost it 15 %.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists; mallopt only sets a malloc parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
