//! What hydra's binaries share on the command line.
//!
//! [`records`] reads events from standard input for the tools that send
//! them.
//!
//! Each binary takes a hidden `--generate KIND` that prints its man page or
//! a shell completion script, made from its own clap definition, so they
//! never drift from the real flags (`scripts/gen-docs` writes them all).
//! Their `--version` is `bins/build-version.rs`'s `HYDRA_VERSION`: the
//! package version, and the git revision when built from a checkout.
//!
//! ```
//! use clap::CommandFactory;
//! #[derive(clap::Parser)]
//! /// A tool.
//! struct Args { #[arg(long)] verbose: bool }
//! let mut out = Vec::new();
//! hydra_cmdline::generate(hydra_cmdline::Generate::CompleteBash, Args::command(), &mut out).unwrap();
//! assert!(String::from_utf8(out).unwrap().contains("complete -F"));
//! ```

pub mod records;

/// Logs to stderr (stdout may carry events) at `default_level`, or as
/// `RUST_LOG` says; colours only on a terminal.
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

use std::io::Write;

use clap::ValueEnum;

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// A roff man page.
    Man,
    /// bash completion.
    CompleteBash,
    /// zsh completion.
    CompleteZsh,
    /// fish completion.
    CompleteFish,
}

/// Writes `kind` for `cmd` to `out`. A reader that went away (a closed
/// pipe, as with `| head`) is not an error.
pub fn generate(
    kind: Generate,
    mut cmd: clap::Command,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_owned();
    // Rendered in memory first: clap_complete panics when its writer fails.
    let mut text = Vec::new();
    let shell = match kind {
        Generate::Man => {
            clap_mangen::Man::new(cmd.clone()).render(&mut text)?;
            None
        }
        Generate::CompleteBash => Some(clap_complete::Shell::Bash),
        Generate::CompleteZsh => Some(clap_complete::Shell::Zsh),
        Generate::CompleteFish => Some(clap_complete::Shell::Fish),
    };
    if let Some(shell) = shell {
        clap_complete::generate(shell, &mut cmd, name, &mut text);
    }
    match out.write_all(&text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// [`generate`] to stdout for a binary's `--generate`: exit 0, or 1 with
/// the reason on stderr.
pub fn print(kind: Generate, cmd: clap::Command) -> std::process::ExitCode {
    let program = cmd.get_name().to_owned();
    match generate(kind, cmd, &mut std::io::stdout()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The binary's one way to report; there is no logger yet.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{program}: {e}");
            }
            std::process::ExitCode::from(1)
        }
    }
}
