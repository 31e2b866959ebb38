//! `hydra reload`: SIGHUP to a running hydra, then waiting until its
//! monitor shows the reload over, for systemd's `ExecReload=` (systemd 252
//! has no `Type=notify-reload`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use hydra_config::Config;

/// What `hydra reload` was given.
#[derive(Debug, clap::Args)]
pub(crate) struct ReloadArgs {
    /// The running hydra's process id (`$MAINPID` in a unit).
    #[arg(long)]
    pid: u32,
    /// Its configuration file: where its monitor listens, and its token.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The monitor's address, instead of the one in --config (default
    /// http://127.0.0.1:24220).
    #[arg(long)]
    url: Option<String>,
    /// Bearer token, when the monitor requires one.
    #[arg(long, env = "HYDRA_MONITOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How long to wait for the reload: the old pipeline first delivers
    /// what it accepted, for up to its `shutdown_timeout`.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Where the monitor is, and its token; `None` when the configuration has
/// no monitor to ask.
fn monitor(args: &ReloadArgs) -> anyhow::Result<Option<(String, Option<String>)>> {
    let config = match &args.config {
        Some(p) => Some(Config::load(p)?),
        None => None,
    };
    let from_file = config.as_ref().map(|c| c.monitor.clone());
    let (url, token) = match (&args.url, from_file) {
        (Some(url), _) => (url.clone(), None),
        (None, Some(Some(m))) => (format!("http://{}", m.listen), m.resolve_token()?),
        (None, Some(None)) => return Ok(None),
        (None, None) => ("http://127.0.0.1:24220".to_owned(), None),
    };
    Ok(Some((url, args.token.clone().or(token))))
}

/// Reloads done and refused so far.
async fn reloads(client: &hydra_top::Client) -> anyhow::Result<(u64, u64)> {
    let s = client.snapshot().await?;
    Ok((s.reloads, s.reload_failures))
}

/// 0: the new configuration runs; 1: it was refused (the old one runs) or
/// the reload could not be confirmed.
pub(crate) async fn run(args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    let Some((url, token)) = monitor(args)? else {
        rustix::process::kill_process(pid(args.pid)?, rustix::process::Signal::HUP)
            .with_context(|| format!("sending SIGHUP to {}", args.pid))?;
        eprintln!(
            "hydra: sent SIGHUP to {}; the configuration has no monitor to confirm the reload with",
            args.pid
        );
        return Ok(ExitCode::SUCCESS);
    };
    let client = hydra_top::Client::new(&url, token)?;
    let (done, refused) = reloads(&client)
        .await
        .with_context(|| format!("reading the monitor before the reload ({url})"))?;
    rustix::process::kill_process(pid(args.pid)?, rustix::process::Signal::HUP)
        .with_context(|| format!("sending SIGHUP to {}", args.pid))?;
    let deadline = Instant::now() + args.timeout;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Unreachable for a moment is normal: the monitor is bound again
        // by the new pipeline.
        if let Ok((d, r)) = reloads(&client).await {
            if d > done {
                println!("hydra reloaded its configuration");
                return Ok(ExitCode::SUCCESS);
            }
            if r > refused {
                eprintln!(
                    "hydra: the new configuration was refused; the running one goes on (the reason is in hydra's log)"
                );
                return Ok(ExitCode::from(1));
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "no reload seen on {url} within {}",
                humantime::format_duration(args.timeout)
            );
        }
    }
}

fn pid(pid: u32) -> anyhow::Result<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .with_context(|| format!("{pid} is not a process id"))
}
