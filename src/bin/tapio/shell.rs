//! `tapio completions` and `tapio man`: what a packaged command line brings along, made from the
//! same definitions as `--help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// A directory to write `tapio.1` and one page per subcommand (`tapio-replay.1`, …) into;
    /// without it, `tapio.1` is printed.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tapio", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("standard output")?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> Result<ExitCode> {
    let cmd = crate::Cli::command();
    let Some(dir) = args.output else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .context("rendering the man page")?;
        std::io::stdout()
            .write_all(&out)
            .context("standard output")?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut pages = vec![("tapio".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("tapio-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .with_context(|| format!("rendering {}", path.display()))?;
        std::fs::write(&path, out).with_context(|| path.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
