//! `tapio record`: what the kernel sees, into a capture, until Ctrl-C, SIGTERM or --duration.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tapio::analysis::{RootKind, Severity};
use tapio::capture::Layout;
use tapio::event::Name;
use tapio::record::{self, Progress};
use tapio::source::Counters;

use tapio::report::Format;

use crate::common;
use crate::replay::Printer;
use tapio::source::kernel::{self, Probe};
use tapio::units::bytes;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the capture (created or truncated); with -C or -G the first of a rotated set
    /// (NAME-0.tapio, NAME-1.tapio …, or a strftime pattern with -G); with --ring a directory.
    /// Optional with --publish: then the stream is the only copy.
    #[arg(short = 'o', long, required_unless_present = "publish")]
    output: Option<PathBuf>,
    /// Start a new file once this one holds SIZE (K, M, G suffixes), as tcpdump -C does.
    #[arg(short = 'C', long = "file-size", value_name = "SIZE", value_parser = crate::nats::parse_size)]
    file_size: Option<u64>,
    /// Start a new file every DURATION (30s, 10m, 1h); -o may hold strftime patterns (UTC).
    #[arg(short = 'G', long = "rotate-every", value_name = "DURATION", value_parser = parse_duration)]
    rotate_every: Option<Duration>,
    /// Keep at most COUNT files of a rotated set; the oldest is removed.
    #[arg(short = 'W', long = "file-count", value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    file_count: Option<u64>,
    /// Flight recorder: keep only the last DURATION on disk; when an incident opens (see
    /// --trigger-severity, --trigger-on) or on SIGUSR1, keep the lead-up and --after into
    /// OUTPUT/<time>-<root cause>-<entity>.tapio.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with_all = ["file_size", "rotate_every", "file_count"])]
    ring: Option<Duration>,
    /// The flight recorder's ring holds at most SIZE on disk.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = crate::nats::parse_size, requires = "ring")]
    ring_size: u64,
    /// How long the flight recorder keeps recording after a trigger.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "ring")]
    after: Duration,
    /// Incidents of at least this severity trigger the flight recorder.
    #[arg(long, value_enum, default_value_t = TriggerSeverity::High, requires = "ring")]
    trigger_severity: TriggerSeverity,
    /// These root causes trigger the flight recorder whatever their severity (comma-separated:
    /// oom_container_limit, crash_loop …).
    #[arg(long, value_delimiter = ',', value_parser = RootKind::parse_name, requires = "ring")]
    trigger_on: Vec<RootKind>,
    /// The flight recorder keeps at most N captures; the oldest is removed.
    #[arg(long, value_name = "N", requires = "ring")]
    keep: Option<usize>,
    /// Stop after this long (30s, 5m, 1h); without it, record until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// The kernel probes to run, comma-separated: oom, exec, exit, signal, tcp, retransmit,
    /// pressure. Default: all, when the kernel can be recorded (root, BTF, tracefs).
    #[arg(long, value_delimiter = ',')]
    kind: Vec<Probe>,
    /// Do not record the kernel.
    #[arg(long, conflicts_with = "kind")]
    no_kernel: bool,
    /// This node's name, written into its events; with the Kubernetes watchers, only this node's
    /// Pods are recorded (the DaemonSet deployment). Default: the host name, all Pods.
    #[arg(long, env = "NODE_NAME")]
    node: Option<String>,
    /// Record Kubernetes objects and Events from the API server. Default: on when a kubeconfig
    /// ($KUBECONFIG, ~/.kube/config) or an in-cluster service account is found.
    #[arg(long, overrides_with = "no_kube")]
    kube: bool,
    /// Do not watch Kubernetes.
    #[arg(long)]
    no_kube: bool,
    /// The kubeconfig to use (implies --kube).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (implies --kube).
    #[arg(long)]
    context: Option<String>,
    /// Only this namespace's objects (Nodes and Namespaces are always recorded).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Receive applications' traces and logs over OTLP (gRPC on 4317, HTTP on 4318).
    #[arg(long)]
    otlp: bool,
    /// The address the OTLP receiver listens on (implies --otlp). An address other than
    /// loopback (0.0.0.0, ::) takes traces from other hosts: it needs
    /// --otlp-tls-cert/--otlp-tls-key or --otlp-token, or --otlp-insecure.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    otlp_listen: std::net::IpAddr,
    /// Serve OTLP over TLS with this certificate chain (PEM; with --otlp-tls-key).
    #[arg(long, value_name = "FILE", requires = "otlp_tls_key")]
    otlp_tls_cert: Option<PathBuf>,
    /// The private key of --otlp-tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "otlp_tls_cert")]
    otlp_tls_key: Option<PathBuf>,
    /// Take only OTLP requests that carry `Authorization: Bearer TOKEN` (gRPC: the same
    /// metadata); better given in $TAPIO_OTLP_TOKEN than on the command line.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TAPIO_OTLP_TOKEN",
        hide_env_values = true
    )]
    otlp_token: Option<String>,
    /// Accept OTLP from other hosts without TLS or a token.
    #[arg(long)]
    otlp_insecure: bool,
    /// The OTLP/gRPC port.
    #[arg(long, value_name = "PORT", default_value_t = 4317)]
    otlp_grpc_port: u16,
    /// The OTLP/HTTP port.
    #[arg(long, value_name = "PORT", default_value_t = 4318)]
    otlp_http_port: u16,
    /// Follow the containers' log files in /var/log/pods (default: on when it exists and can be
    /// read).
    #[arg(long, overrides_with = "no_logs")]
    logs: bool,
    /// Do not follow container logs.
    #[arg(long)]
    no_logs: bool,
    /// Where the kubelet writes pod logs.
    #[arg(long, value_name = "DIR", default_value = "/var/log/pods")]
    logs_dir: PathBuf,
    /// At most this many log lines a second per container; the excess is counted in the capture
    /// as dropped.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    logs_rate: u32,
    /// Log messages are cut at this many bytes (the cut is counted).
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    logs_max_line: usize,
    /// The kernel ring buffer's size (K, M suffixes; a power of two). A bigger buffer absorbs
    /// longer bursts before the kernel has to drop.
    #[arg(long, default_value = "8M", value_parser = parse_size)]
    ring_buffer: u32,
    /// How often memory pressure (PSI) and the pods' CPU throttling (cpu.stat) are sampled.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pressure_interval: Duration,
    /// Incidents as they open, change and close, on stdout: text, json (one JSON line per
    /// change) or none (record only).
    #[arg(long, value_enum, default_value_t = Verdicts::Text)]
    verdicts: Verdicts,
    /// Also print low-severity incidents as they close.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    hooks: common::Hooks,
    /// Keep secrets (Authorization headers, tokens, passwords in URLs and logs, secret environment
    /// values) instead of replacing them by [REDACTED:<kind>]; `tapio redact` can still make a
    /// copy to share.
    #[arg(long)]
    no_redact: bool,
    /// Also publish what is recorded to the cluster's NATS JetStream stream (the URL, or
    /// $NATS_URL when none is given); the stream is created if missing.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", help_heading = "NATS (the cluster's stream)")]
    publish: Option<String>,
    /// Where batches wait while NATS cannot be reached, sent in order once it is back. Default:
    /// /var/lib/tapio/spool/<cluster>.<node> as root, else under ~/.local/state/tapio.
    #[arg(
        long,
        value_name = "DIR",
        requires = "publish",
        help_heading = "NATS (the cluster's stream)"
    )]
    spool_dir: Option<PathBuf>,
    /// The spool holds at most SIZE; past it, batches are dropped and a drop marker says so.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = crate::nats::parse_size, requires = "publish", help_heading = "NATS (the cluster's stream)")]
    spool_max: u64,
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    #[command(flatten)]
    stream: crate::nats::StreamArgs,
    /// No status line.
    #[arg(short, long)]
    quiet: bool,
}

/// `--trigger-severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TriggerSeverity {
    Medium,
    High,
    Critical,
}

/// `--verdicts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Verdicts {
    Text,
    Json,
    None,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    tapio::filter::parse_duration(s).map(Duration::from_nanos)
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.trim().to_ascii_uppercase() {
        t if t.ends_with('K') => (t[..t.len() - 1].to_string(), 1u64 << 10),
        t if t.ends_with('M') => (t[..t.len() - 1].to_string(), 1 << 20),
        t if t.ends_with('G') => (t[..t.len() - 1].to_string(), 1 << 30),
        t => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 256K or 8M)"))?;
    let bytes = n * mult;
    if !(4096..=(1 << 30)).contains(&bytes) {
        return Err(format!("{s:?}: the ring buffer takes 4K to 1G"));
    }
    Ok(bytes.next_power_of_two() as u32)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = options(&args)?;
    // The first Ctrl-C closes the capture cleanly.
    let stop = common::stop_on_signals()?;
    let mut opts = opts;
    if opts.trigger.is_some() {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&flag))
            .context("installing the signal handler")?;
        opts.trigger_now = Some(flag);
    }
    let hooks = args.hooks.start()?;
    let prepared = record::prepare(opts)?;
    for w in prepared.sources().flat_map(|s| s.warnings()) {
        say!("tapio: warning: {w}");
    }
    if !args.quiet {
        banner(&args, &prepared);
    }
    let bar = status_bar(&args);
    let mut status = Status::default();
    let printer = Printer::new(
        match args.verdicts {
            Verdicts::Json => Format::Json,
            _ => Format::Text,
        },
        false,
        args.all,
    )
    .live(true);
    let summary = record::run(prepared, &stop, &mut |p| status.show(&bar, p), &mut |c| {
        if args.verdicts != Verdicts::None {
            bar.suspend(|| printer.on_change(&c))
        }
    })?;
    bar.finish_and_clear();
    if args.verdicts != Verdicts::None {
        if let Some(v) = &summary.verdict {
            printer.finish(v)?;
        }
    }
    closing(&args, &summary);
    common::finish_hooks(hooks);
    Ok(ExitCode::SUCCESS)
}

/// The recording's options from the command line.
fn options(args: &Args) -> Result<record::Options> {
    let node = args.node.clone().unwrap_or_else(host_name);
    let kube_asked = args.kube || args.kubeconfig.is_some() || args.context.is_some();
    let kube_on = !args.no_kube && (kube_asked || tapio::source::kube::config_available());
    let kube = kube_on.then(|| tapio::source::kube::Options {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        only_node: args.node.clone(),
        node: Name::from(node.as_str()),
    });
    let probes = if args.kind.is_empty() {
        Probe::ALL.to_vec()
    } else {
        args.kind.clone()
    };
    let kinds: Vec<&str> = probes.iter().map(|p| p.as_str()).collect();
    let mut header_options = BTreeMap::new();
    header_options.insert("kind".to_string(), kinds.join(","));
    header_options.insert("ring_buffer".to_string(), args.ring_buffer.to_string());
    if let Some(d) = args.duration {
        header_options.insert("duration".to_string(), format!("{}s", d.as_secs_f64()));
    }
    if let Some(ns) = &args.namespace {
        header_options.insert("namespace".to_string(), ns.clone());
    }
    if let Some(n) = &args.node {
        header_options.insert("node".to_string(), n.clone());
    }
    header_options.insert(
        "redact".to_string(),
        if args.no_redact { "off" } else { "on" }.to_string(),
    );
    let mut kernel = (!args.no_kernel).then(|| kernel::Options {
        probes,
        ring_bytes: args.ring_buffer,
        pressure_every: args.pressure_interval,
        node: Name::from(node.as_str()),
    });
    let otlp_asked = args.otlp
        || args.otlp_listen != std::net::IpAddr::from([127, 0, 0, 1])
        || args.otlp_tls_cert.is_some()
        || args.otlp_token.is_some()
        || args.otlp_grpc_port != 4317
        || args.otlp_http_port != 4318;
    let otlp = otlp_asked.then(|| tapio::source::otlp::Options {
        listen: args.otlp_listen,
        grpc_port: args.otlp_grpc_port,
        http_port: args.otlp_http_port,
        node: Name::from(node.as_str()),
        tls: args
            .otlp_tls_cert
            .clone()
            .zip(args.otlp_tls_key.clone())
            .map(|(cert, key)| tapio::source::otlp::Tls { cert, key }),
        token: args.otlp_token.clone().filter(|t| !t.is_empty()),
        insecure: args.otlp_insecure,
        ..Default::default()
    });
    let logs_readable = std::fs::read_dir(&args.logs_dir).is_ok();
    let logs_asked = args.logs || args.logs_dir != std::path::Path::new("/var/log/pods");
    if logs_asked && !logs_readable {
        anyhow::bail!(
            "cannot read {}: the container logs are not there or not readable (run on a node, as root, or pass --logs-dir)",
            args.logs_dir.display()
        );
    }
    let logs = (!args.no_logs && (logs_asked || logs_readable)).then(|| {
        tapio::source::logs::follow::Options {
            root: args.logs_dir.clone(),
            rate: args.logs_rate,
            max_line: args.logs_max_line,
            node: Name::from(node.as_str()),
            ..Default::default()
        }
    });
    // The kernel when it can be recorded: when it cannot and was not asked for by name, the other
    // sources still record.
    let others = kube.is_some() || otlp.is_some() || logs.is_some();
    if kernel.is_some() && args.kind.is_empty() && others {
        if let Err(e) = kernel::preflight() {
            say!("tapio: warning: not recording the kernel: {e}");
            kernel = None;
        }
    }
    if kernel.is_none() && kube.is_none() && otlp.is_none() && logs.is_none() {
        anyhow::bail!("nothing to record: the kernel is off (--no-kernel), no Kubernetes configuration was found (--kube, --kubeconfig) and OTLP is off (--otlp)");
    }
    let layout_asked = args.ring.is_some()
        || args.file_size.is_some()
        || args.rotate_every.is_some()
        || args.file_count.is_some();
    if args.output.is_none() && layout_asked {
        anyhow::bail!("--ring, -C, -G and -W say how files are kept: give -o too");
    }
    // Publishing only: events are still numbered and counted, nothing is kept locally.
    let out_path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/null"));
    let output = if let Some(span) = args.ring {
        std::fs::create_dir_all(&out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        Layout::Ring {
            dir: out_path.clone(),
            span,
            max_bytes: args.ring_size,
            after: args.after,
            keep: args.keep,
        }
    } else if args.file_size.is_some() || args.rotate_every.is_some() || args.file_count.is_some() {
        if args.file_size.is_none() && args.rotate_every.is_none() {
            anyhow::bail!("-W keeps a number of rotated files: give -C SIZE or -G DURATION too");
        }
        Layout::Rotate {
            base: out_path.clone(),
            max_bytes: args.file_size,
            every: args.rotate_every,
            keep: args.file_count.map(|n| n as usize),
        }
    } else {
        Layout::Single(out_path.clone())
    };
    if args.ring.is_some() && args.verdicts == Verdicts::None && args.trigger_on.is_empty() {
        say!("tapio: warning: with --verdicts none only SIGUSR1 triggers the flight recorder");
    }
    let severity = match args.trigger_severity {
        TriggerSeverity::Medium => Severity::Medium,
        TriggerSeverity::High => Severity::High,
        TriggerSeverity::Critical => Severity::Critical,
    };
    Ok(record::Options {
        output,
        trigger: args.ring.map(|_| record::TriggerOn {
            severity,
            kinds: args.trigger_on.clone(),
        }),
        trigger_now: None,
        publish: match &args.publish {
            Some(url) => Some(tapio::cluster::PublishOptions {
                nats: args.nats.nats(Some(url))?,
                cluster: args.nats.cluster.clone(),
                stream: args.stream.settings(&args.nats.stream),
                spool_dir: args
                    .spool_dir
                    .clone()
                    .unwrap_or_else(|| crate::nats::default_spool(&args.nats.cluster, &node)),
                spool_max: args.spool_max,
                run: tapio::cluster::wire::run_id(None),
                live_clock: true,
                clock_offset_ns: 0,
                client_name: format!("tapio record {node}"),
            }),
            None => None,
        },
        node,
        kernel,
        kube,
        otlp,
        logs,
        duration: args.duration,
        header_options,
        redact: !args.no_redact,
        verdicts: (args.verdicts != Verdicts::None
            || args.ring.is_some()
            || args.hooks.on_incident.is_some()
            || args.hooks.webhook.is_some())
        .then(Default::default),
    })
}

/// What is recorded, where, for how long.
fn banner(args: &Args, prepared: &record::Prepared) {
    let what: Vec<String> = prepared.sources().map(|s| s.describe()).collect();
    let out = args.shown();
    let mut to = match (args.ring, args.file_size, args.rotate_every) {
        (Some(span), _, _) => format!(
            "the last {} in {out} (flight recorder: incidents are kept as captures there)",
            humantime(span),
        ),
        (None, None, None) => out,
        _ => format!("rotated files from {out}"),
    };
    if let Some(url) = &args.publish {
        let url = if url.is_empty() {
            std::env::var("NATS_URL").unwrap_or_default()
        } else {
            url.clone()
        };
        let to_stream = format!(
            "stream {} at {url} (cluster {})",
            args.nats.stream, args.nats.cluster
        );
        to = if args.output.is_some() {
            format!("{to} and {to_stream}")
        } else {
            to_stream
        };
    }
    say!(
        "tapio: recording {} to {} ({}; Ctrl-C to stop)",
        what.join(" and "),
        to,
        match args.duration {
            Some(d) => format!("for {}", humantime(d)),
            None => "until stopped".to_string(),
        }
    );
}

fn status_bar(args: &Args) -> ProgressBar {
    if args.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} recording to {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(args.shown());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The status line on stderr: events, rate, drops, size, time; the sources' warnings above it.
#[derive(Default)]
struct Status {
    last: Progress,
}

impl Status {
    fn show(&mut self, bar: &ProgressBar, p: &Progress) {
        for w in &p.warnings {
            bar.suspend(|| say!("tapio: warning: {w}"));
        }
        for k in &p.kept {
            bar.suspend(|| say!("{}", kept_line(k)));
        }
        let dt = p.elapsed.saturating_sub(self.last.elapsed).as_secs_f64();
        let rate = if dt > 0.0 {
            (p.events - self.last.events) as f64 / dt
        } else {
            0.0
        };
        if dt >= 1.0 || self.last.elapsed.is_zero() {
            let publish = p.publish.as_ref().map_or(String::new(), |s| {
                format!(
                    " · published {}{}",
                    s.events,
                    if s.spool_bytes > 0 {
                        format!(" (NATS away: {} spooled)", bytes(s.spool_bytes))
                    } else {
                        String::new()
                    }
                )
            });
            bar.set_message(format!(
                "· {} events · {:.0}/s · {} dropped · {} · {}{publish}",
                p.events,
                rate,
                p.dropped,
                bytes(p.bytes),
                humantime(p.elapsed)
            ));
            self.last = p.clone();
        }
    }
}

fn kept_line(k: &tapio::capture::Kept) -> String {
    format!(
        "tapio: flight recorder kept {} ({} events, {} → {})",
        k.path.display(),
        k.events,
        k.from,
        k.to
    )
}

/// What was recorded, and what each source counted.
fn closing(args: &Args, summary: &record::Summary) {
    let stats = &summary.trailer.stats;
    if !args.quiet {
        let per_event = if stats.events > 0 {
            summary.bytes as f64 / stats.events as f64
        } else {
            0.0
        };
        if args.output.is_some() {
            say!(
                "tapio: recorded {} events in {} to {} ({}, {:.1} bytes/event)",
                stats.events,
                humantime(summary.elapsed),
                args.shown(),
                bytes(summary.bytes),
                per_event
            );
        } else {
            say!(
                "tapio: recorded {} events in {}",
                stats.events,
                humantime(summary.elapsed)
            );
        }
        if let Some(line) = common::redacted(stats) {
            say!("tapio: {line}");
        }
        if let Some(p) = &summary.publish {
            say!(
                "tapio: published {} events in {} batches to stream {} ({} resends JetStream already had){}",
                p.events,
                p.batches,
                args.nats.stream,
                p.duplicates,
                if p.spool_bytes > 0 {
                    format!(
                        "; {} wait in the spool for the next run{}",
                        bytes(p.spool_bytes),
                        p.last_error
                            .as_ref()
                            .map_or(String::new(), |e| format!(" (NATS: {e})"))
                    )
                } else {
                    String::new()
                }
            );
            if p.dropped_events > 0 {
                say!(
                    "tapio: warning: {} events did not fit in the full spool (--spool-max); drop markers in the stream say when",
                    p.dropped_events
                );
            }
        }
        for k in &summary.kept {
            say!("{}", kept_line(k));
        }
        if let Some(Ok(path)) = &summary.verdict_kept {
            say!(
                "tapio: kept the verdict in {} (`tapio correlate` answers from it at once)",
                path.display()
            );
        }
        for c in &summary.sources {
            match c {
                Counters::Kernel(_) => {}
                Counters::Kube(k) => say!(
                    "tapio: Kubernetes: {} objects and Events written, {} repeats skipped, {} malformed, {} gaps",
                    k.written, k.repeats, k.malformed, k.gaps
                ),
                Counters::Otlp(o) => say!(
                    "tapio: OTLP: {} spans and {} log records received, {} records rejected (told to the client), {} requests refused while the writer was behind (retried by the client), {} malformed requests",
                    o.spans, o.logs, o.rejected, o.refused, o.malformed
                ),
                Counters::Logs(l) => {
                    say!(
                        "tapio: container logs: {} lines from {} files, {} over --logs-rate (counted as dropped), {} cut at --logs-max-line, {} not in a log format",
                        l.lines, l.files, l.limited, l.cut_lines, l.unparsed
                    );
                    if l.unread_bytes > 0 {
                        say!(
                            "tapio: warning: container logs: {} the files gained were not read (a flood the follower was behind; they are still in the files)",
                            bytes(l.unread_bytes)
                        );
                    }
                }
            }
        }
    }
    if let Some(Err(e)) = &summary.verdict_kept {
        say!("tapio: warning: the verdict was not kept beside the capture: {e}");
    }
    // What each source lost, said by the source that lost it.
    let kernel_dropped: u64 = summary
        .sources
        .iter()
        .map(|c| match c {
            Counters::Kernel(k) => k.dropped + k.malformed,
            _ => 0,
        })
        .sum();
    if kernel_dropped > 0 {
        say!(
            "tapio: warning: the kernel dropped {kernel_dropped} events (ring buffer full); the capture says when (tapio info {}). A larger --ring-buffer or fewer --kind absorb bursts.",
            args.shown()
        );
    }
    let other = stats.dropped.saturating_sub(kernel_dropped);
    if other > 0 {
        say!(
            "tapio: warning: {other} events were dropped in all (drop markers in the capture say which source, how many and when: tapio info {})",
            args.shown()
        );
    }
}

impl Args {
    /// Where the capture goes, for messages.
    fn shown(&self) -> String {
        match &self.output {
            Some(p) => p.display().to_string(),
            None => "no local capture".to_string(),
        }
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
