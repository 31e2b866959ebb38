// The binary talks to people: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]
//! `hydra`: parses flags, loads the configuration, runs the agent, and
//! turns errors into exit codes (0 done, 1 bad configuration or start
//! failure; `hydra test`: 1 a case failed, 2 unusable configuration or
//! cases).

mod buffer;
mod reload;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use hydra_agent::Agent;
use hydra_config::Config;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

/// A small, fast log agent: follows log files and accepts Fluentd Forward
/// clients, and forwards everything to Fluentd or Fluent Bit aggregators.
///
/// Without --config, hydra runs on its embedded default: a Forward input on
/// 127.0.0.1:24224, the monitor on 127.0.0.1:24220, events printed to
/// stdout as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "hydra", version = env!("HYDRA_VERSION"), about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file: YAML, or the Go fluent-agent-hydra's TOML
    /// (chosen by extension, else by content).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate FILE, print the effective configuration, and exit: 0 if it
    /// is valid, 1 if not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Print a man page or a shell completion script, and exit.
    #[arg(long, value_enum, hide = true)]
    generate: Option<hydra_cmdline::Generate>,
    /// With TAG FILE SERVER...: the record key of a line (default message).
    #[arg(short = 'f', long, value_name = "FIELD", requires = "go_args")]
    field_name: Option<String>,
    /// With TAG FILE SERVER...: serve the monitor on HOST:PORT.
    #[arg(short = 'm', long, value_name = "HOST:PORT", requires = "go_args")]
    monitor: Option<String>,
    /// TAG FILE PRIMARY [SECONDARY...]: follow FILE as TAG and forward to
    /// the servers (host or host:port), the Go fluent-agent-hydra's
    /// command-line form.
    #[arg(
        value_names = ["TAG", "FILE", "SERVER"],
        num_args = 3..,
        conflicts_with_all = ["config", "check_config"]
    )]
    go_args: Vec<String>,
}

/// The monitor to talk to.
#[derive(Debug, clap::Args)]
struct MonitorArgs {
    /// The monitor's address.
    #[arg(long, default_value = "http://127.0.0.1:24220")]
    url: String,
    /// Bearer token, when the monitor requires one.
    #[arg(long, env = "HYDRA_MONITOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// A live view of a running hydra: files, inputs, servers, the buffer.
    /// Keys: q quit, s sort, / filter.
    Top {
        #[command(flatten)]
        monitor: MonitorArgs,
        /// Time between refreshes.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Print the view once as plain text and exit.
        #[arg(long)]
        once: bool,
        /// Order of the files: path, behind, rate, tag.
        #[arg(long, default_value = "path", value_parser = ["path", "behind", "rate", "tag"])]
        sort: String,
        /// Only files and servers whose path, tag or address contain this.
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Stream the events flowing through a running hydra as JSON lines.
    Tap {
        #[command(flatten)]
        monitor: MonitorArgs,
        /// Only tags matching this Fluentd pattern (`app.*`, `app.**`,
        /// `{a,b}.x`); every tag when absent.
        #[arg(value_name = "TAG_GLOB")]
        tag: Option<String>,
    },
    /// Read a disk buffer (`buffer.disk.path`) without changing it; safe
    /// while hydra writes it.
    Buffer {
        #[command(subcommand)]
        command: BufferCommand,
    },
    /// Reload a running hydra (SIGHUP) and wait until it runs the new
    /// configuration or refused it: exit 0 or 1. For systemd's
    /// `ExecReload=`.
    Reload(reload::ReloadArgs),
    /// Run a configuration's multiline and format rules on the lines of a
    /// cases file (no files, sockets or outputs) and show how each failing
    /// case differs. Exit 0 only if every case passes.
    Test {
        /// The configuration.
        config: PathBuf,
        /// A YAML list of cases: `name`, `input` (a tail input's tag),
        /// `lines`, `expect` (a list of `{tag, record}`).
        cases: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum BufferCommand {
    /// Print its chunks, events, bytes, the oldest chunk's age, and any
    /// damaged records with their offsets. Exit 0 if clean, 1 if damaged,
    /// 2 if the buffer cannot be read.
    Check {
        /// The buffer's directory.
        dir: PathBuf,
    },
    /// Print the events it holds as JSON lines, as `hydra tap` does.
    Dump {
        /// The buffer's directory.
        dir: PathBuf,
    },
}

/// Runs `hydra top` or `hydra tap`; exit 1 when the monitor cannot be used.
fn run_command(command: Command) -> ExitCode {
    if let Command::Buffer { command } = &command {
        return match command {
            BufferCommand::Check { dir } => buffer::check(dir),
            BufferCommand::Dump { dir } => buffer::dump(dir),
        };
    }
    if let Command::Test { config, cases } = &command {
        return match hydra_agent::cases::run_files(config, cases) {
            Ok((report, passed)) => {
                print!("{report}");
                ExitCode::from(u8::from(!passed))
            }
            Err(e) => {
                eprintln!("hydra: {:#}", anyhow::Error::from(e));
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hydra: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match command {
        Command::Top {
            monitor,
            interval,
            once,
            sort,
            filter,
        } => {
            let sort = hydra_top::view::SortBy::named(&sort);
            let view = hydra_top::view::Options { sort, filter };
            let opts = hydra_top::TopOptions { interval, view };
            hydra_top::Client::new(&monitor.url, monitor.token).and_then(|client| {
                if once {
                    let text = runtime.block_on(hydra_top::top_once(&client, &opts))?;
                    print!("{text}");
                    Ok(())
                } else {
                    // The view's own loop; it is not run inside this runtime.
                    drop(runtime);
                    hydra_top::top(&client, &opts)
                }
            })
        }
        Command::Tap { monitor, tag } => hydra_top::Client::new(&monitor.url, monitor.token)
            .and_then(|client| {
                runtime.block_on(hydra_top::tap(
                    &client,
                    tag.as_deref().unwrap_or(""),
                    std::io::stdout().lock(),
                ))
            }),
        Command::Reload(args) => {
            return runtime.block_on(reload::run(&args)).unwrap_or_else(|e| {
                eprintln!("hydra: {e:#}");
                ExitCode::from(1)
            });
        }
        Command::Test { .. } | Command::Buffer { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hydra: {e}");
            ExitCode::from(1)
        }
    }
}

impl Args {
    /// The configuration to run, and the file to read again on SIGHUP.
    fn load(&self) -> anyhow::Result<(Config, Option<PathBuf>)> {
        if let [tag, file, servers @ ..] = self.go_args.as_slice() {
            let args = hydra_config::GoArgs {
                tag: tag.clone(),
                file: file.clone(),
                servers: servers.to_vec(),
                field_name: self.field_name.clone(),
                monitor: self.monitor.clone(),
            };
            return Ok((Config::from_go_args(&args)?, None));
        }
        match &self.config {
            Some(p) => Ok((Config::load(p)?, Some(p.clone()))),
            None => Ok((Config::embedded_default(), None)),
        }
    }
}

async fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    hydra_cmdline::init_logging(config.log_level.as_deref().unwrap_or("info"));
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let service = service::Service::from_env();
    let mut agent = Agent::start(config).await.context("starting")?;
    info!(version = env!("CARGO_PKG_VERSION"), bound = ?agent.bound, "hydra is running.");
    service.ready();
    let mut watchdog = service.watchdog_timer();
    let mut wedged = false;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                service.reloading();
                let Some(p) = path.as_ref() else {
                    info!("SIGHUP: not running from a configuration file; nothing to reload.");
                    agent.count_refused_reload();
                    service.reloaded(Some("not running from a configuration file"));
                    continue;
                };
                let refused;
                (agent, refused) = reload(agent, p).await?;
                service.reloaded(refused.as_deref());
            }
            () = service::tick(&mut watchdog) => {
                let health = agent.health();
                if health.live() {
                    service.alive();
                    wedged = false;
                } else if !wedged {
                    wedged = true;
                    error!(reasons = ?health.wedged(), "Part of the pipeline stopped turning: the watchdog is no longer pinged.");
                }
            }
        }
    }
    service.stopping();
    info!("Stopping: delivering what was accepted.");
    let report = agent.stop().await;
    if let Some(disk) = &report.disk {
        // Open chunks sealed and synced: a clean stop loses nothing there.
        disk.close();
    }
    if report.undelivered_events > 0 {
        warn!(
            events = report.undelivered_events,
            "Stopped with undelivered events: tail lines are read again from the saved positions and `ack: delivered` clients send theirs again; events acked with `ack: buffered` are lost."
        );
    } else {
        info!("Stopped; everything accepted was delivered.");
    }
    Ok(())
}

/// Replaces `agent` with one running the configuration at `path` (see
/// [`Agent::reload`]), logging what happened, and why the new
/// configuration was refused if it was; an invalid file changes nothing
/// but the count of refused reloads.
async fn reload(agent: Agent, path: &std::path::Path) -> anyhow::Result<(Agent, Option<String>)> {
    let new = match Config::load(path) {
        Ok(new) => new,
        Err(e) => {
            let error = format!("{:#}", anyhow::Error::from(e));
            error!(
                error,
                "SIGHUP: the new configuration is invalid; keeping the running one."
            );
            agent.count_refused_reload();
            return Ok((agent, Some(error)));
        }
    };
    info!("SIGHUP: reloading; delivering what was accepted first.");
    let reloaded = agent
        .reload(new)
        .await
        .context("starting the running configuration again after a failed reload")?;
    if reloaded.undelivered_events > 0 {
        warn!(
            events = reloaded.undelivered_events,
            "Undelivered at reload: tail lines are read again and `ack: delivered` clients send theirs again; events acked with `ack: buffered` are lost."
        );
    }
    let refused = match reloaded.refused {
        None => {
            info!(bound = ?reloaded.agent.bound, "Reloaded.");
            None
        }
        Some(e) => {
            let error = format!("{:#}", anyhow::Error::from(e));
            error!(
                error,
                "SIGHUP: the new configuration cannot start; going on with the running one."
            );
            Some(error)
        }
    };
    Ok((reloaded.agent, refused))
}

fn try_main(mut args: Args) -> anyhow::Result<ExitCode> {
    if let Some(command) = args.command.take() {
        return Ok(run_command(command));
    }
    if let Some(kind) = args.generate {
        return Ok(hydra_cmdline::print(kind, Args::command()));
    }
    if let Some(path) = args.check_config {
        let config = Config::load(&path)?;
        print!("{}", config.to_yaml());
        return Ok(ExitCode::SUCCESS);
    }
    let (config, path) = args.load()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = builder.worker_threads(2).enable_all().build();
    runtime
        .context("cannot start the runtime")?
        .block_on(run(config, path))?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    try_main(Args::parse()).unwrap_or_else(|e| {
        eprintln!("hydra: {e:#}");
        ExitCode::from(1)
    })
}
