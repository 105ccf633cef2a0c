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
mod generate;
mod import;
mod info;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Why did this fail, what else is hit, what do we do: the kernel, Kubernetes and the
/// applications' traces on one timeline.
#[derive(Parser)]
#[command(name = "tapio", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert the dumps you already have (kubectl JSON/YAML, watch streams, OTLP or Zipkin
    /// traces, dmesg, syslog, journalctl) into one capture, ordered by time.
    Import(import::Args),
    /// Print the events of captures, one line each (or JSON lines), with filters.
    Cat(cat::Args),
    /// Describe a capture: header, time range, counts per source and kind, drops and gaps, size.
    Info(info::Args),
    /// Write a deterministic synthetic capture (benchmarks, demos).
    #[command(hide = true)]
    Generate(generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import(a) => import::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Info(a) => info::run(a),
        Command::Generate(a) => generate::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say!("tapio: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
