//! The monitor of a running pipeline: its HTTP server (`GET /`,
//! `/metrics`, `/tap`), the rate sampler behind it, and the Zabbix
//! passive checks, which read the same snapshot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::agent::{Agent, Listeners};
use crate::forward_in::ReceiverCounters;
use crate::prepare::tap_allowed;
use crate::pulse::{Signals, Tracker};
use crate::zabbix_in;

impl Agent {
    /// Serves the monitor on `listener` (and Zabbix checks on `zabbix`)
    /// until `monitor_rx` turns.
    pub(crate) fn serve_monitor(
        &mut self,
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        listeners: Vec<(String, Arc<ReceiverCounters>)>,
        token: Option<String>,
        zabbix: Option<tokio::net::TcpListener>,
        monitor_rx: watch::Receiver<bool>,
    ) {
        // /tap streams the logs themselves: off on an address other
        // hosts can reach unless a token guards it.
        let tap_allowed = tap_allowed(addr, token.as_deref());
        if !tap_allowed {
            warn!(%addr, "The monitor has no token and other hosts can reach it: GET /tap is refused.");
        }
        let sampler = hydra_stats::RateSampler::new(self.snapshot_fn(listeners));
        let snapshot = sampler.snapshot_fn();
        let mut stop = self.monitor_stop.subscribe();
        self.rates = Some(tokio::spawn(sampler.run(async move {
            let _ = stop.changed().await;
        })));
        let tap = tap_allowed.then(hydra_stats::TapHub::new);
        if let Some(tap) = &tap {
            let observer = tap.clone();
            self.buffer
                .set_observer(Arc::new(move |tag: &str, frame: &bytes::Bytes, n| {
                    observer.observe(tag, frame, n);
                }));
        }
        self.tap.clone_from(&tap);
        if let Some(z) = zabbix {
            let (snapshot, stop) = (snapshot.clone(), self.monitor_stop.subscribe());
            info!(addr = ?z.local_addr().ok(), "Answering Zabbix passive checks.");
            self.zabbix = Some(tokio::spawn(zabbix_in::serve(z, snapshot, stop)));
        }
        let app = hydra_stats::monitor_router(hydra_stats::Monitor {
            snapshot,
            tap,
            token,
            health: Some(self.health_fn()),
        });
        let mut stop = monitor_rx;
        self.monitor = Some(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                warn!(%addr, error = %e, "Monitor stopped.");
            }
        }));
        info!(%addr, "Monitor listening.");
    }
}

impl Agent {
    /// Starts looking at every part's pulse once a second.
    pub(crate) fn start_pulse(&mut self, listeners: &Listeners) {
        let unhealthy_after = self
            .config
            .monitor
            .as_ref()
            .map_or(hydra_config::DEFAULT_UNHEALTHY_AFTER, |m| m.unhealthy_after);
        let tail = self.tailer.as_ref().map(hydra_tail::Tailer::pulse_fn);
        let consumer = self.parse_counters.clone();
        let output = self.output.clone();
        let inputs: Vec<Arc<ReceiverCounters>> = listeners.iter().map(|(_, c)| c.clone()).collect();
        let buffer = self.buffer.clone();
        let disk = self.disk.as_ref().map(|d| d.store.clone());
        let signals = move || {
            let b = buffer.stats();
            let d = disk.as_ref().map(|s| s.stats());
            Signals {
                tail: tail.as_ref().map(|f| f()),
                consumer: consumer.as_ref().map(|c| c.beats.load(Ordering::Relaxed)),
                sender: output.servers().map(|s| s.beats),
                inputs: inputs.iter().map(|c| c.beats()).collect(),
                delivered: b.events_delivered,
                waiting: b.events > 0 || d.as_ref().is_some_and(|d| d.counts.chunks > 0),
                disk_full: d.as_ref().is_some_and(|d| d.full),
                disk_failing: d.as_ref().is_some_and(|d| d.failing),
            }
        };
        self.pulse = Some(tokio::spawn(crate::pulse::watch(
            Tracker::new(unhealthy_after),
            signals,
            self.verdicts.clone(),
        )));
    }

    /// Whether the pipeline delivers and turns, as `GET /health` and
    /// `GET /live` tell it: [`hydra_stats::Health::live`] is what
    /// systemd's watchdog is told.
    pub fn health(&self) -> hydra_stats::Health {
        self.verdicts.now()
    }

    /// [`Agent::health`] as a function, for the monitor.
    pub(crate) fn health_fn(&self) -> hydra_stats::HealthFn {
        let verdicts = self.verdicts.clone();
        Arc::new(move || verdicts.now())
    }
}
