//! `airlock completions` and `airlock man`: shell completions (clap_complete) and manual
//! pages (clap_mangen), both made from the clap types, so they never fall behind the flags.

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;

use super::cli::{Cli, CompletionsArgs, ManArgs};
use super::{exit, write_stdout};

/// Prints the completion script of `args.shell` on standard output.
pub fn completions(args: CompletionsArgs) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "airlock", &mut script);
    write_stdout(&script);
    Ok(exit::OK)
}

/// Prints airlock(1), or airlock-COMMAND(1), as roff on standard output; with `--dir`, writes
/// every page into that directory instead.
pub fn man(args: ManArgs) -> Result<i32> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Builds the subcommands' display names (`airlock-pack`), which name their pages.
    cmd.build();
    if let Some(dir) = &args.dir {
        for page in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            page_of(page.clone())
                .generate_to(dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
        }
        return Ok(exit::OK);
    }
    let page = match &args.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                return Err(exit::usage(format!(
                    "airlock has no command {name}; its commands: {}",
                    names.join(", ")
                )));
            }
        },
    };
    let mut roff = Vec::new();
    page_of(page)
        .render(&mut roff)
        .context("rendering the manual page")?;
    write_stdout(&roff);
    Ok(exit::OK)
}

/// The page of `cmd`, which names airlock and its version (a subcommand has none of its own).
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("airlock {}", env!("CARGO_PKG_VERSION")))
}
