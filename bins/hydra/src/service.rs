//! systemd's notify protocol: `READY=1` once hydra serves, `RELOADING=1`
//! then `READY=1` around a SIGHUP reload, `STOPPING=1` at SIGTERM, and
//! `WATCHDOG=1` only while every part of the pipeline turns. Without
//! `NOTIFY_SOCKET` nothing is sent, and without `WATCHDOG_USEC` there is
//! no watchdog.
//!
//! The datagrams are the `sd-notify` crate's: a small, maintained crate
//! with no dependency beyond libc, which also reads `WATCHDOG_USEC` and
//! `WATCHDOG_PID` the way libsystemd does.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

/// What hydra tells its service manager.
#[derive(Debug)]
pub(crate) struct Service {
    /// How often to ping the watchdog: half its timeout.
    watchdog: Option<Duration>,
}

impl Service {
    pub(crate) fn from_env() -> Service {
        Service {
            watchdog: sd_notify::watchdog_enabled().map(|t| t / 2),
        }
    }

    /// Every listener is bound and the tail positions are loaded.
    pub(crate) fn ready(&self) {
        send(&[NotifyState::Ready, NotifyState::Status("running")]);
    }

    /// A SIGHUP reload begins.
    pub(crate) fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading"),
            ]),
            Err(e) => {
                debug!(error = %e, "No monotonic clock for MONOTONIC_USEC.");
                send(&[NotifyState::Reloading, NotifyState::Status("reloading")]);
            }
        }
    }

    /// The reload is over: the new configuration runs, or `refused` says
    /// why the running one goes on.
    pub(crate) fn reloaded(&self, refused: Option<&str>) {
        match refused {
            None => send(&[NotifyState::Ready, NotifyState::Status("running")]),
            Some(why) => {
                let status =
                    format!("running the previous configuration; the new one was refused: {why}");
                send(&[NotifyState::Ready, NotifyState::Status(&status)]);
            }
        }
    }

    /// SIGTERM: delivering what was accepted, then exiting.
    pub(crate) fn stopping(&self) {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: delivering what was accepted"),
        ]);
    }

    /// Pings the watchdog.
    pub(crate) fn alive(&self) {
        send(&[NotifyState::Watchdog]);
    }

    /// A timer for watchdog pings, when systemd asked for them.
    pub(crate) fn watchdog_timer(&self) -> Option<tokio::time::Interval> {
        self.watchdog.map(|every| {
            let mut t = tokio::time::interval(every.max(Duration::from_millis(10)));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        })
    }
}

/// The next watchdog tick, or never.
pub(crate) async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn send(states: &[NotifyState<'_>]) {
    // A service manager that went away must not stop hydra: logged only.
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "Cannot notify the service manager.");
    }
}
