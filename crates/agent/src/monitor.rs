//! The monitor of a running pipeline: its HTTP server (`GET /`,
//! `/metrics`, `/tap`), the rate sampler behind it, and the Zabbix
//! passive checks, which read the same snapshot.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::agent::Agent;
use crate::forward_in::ReceiverCounters;
use crate::prepare::tap_allowed;
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
        let app = hydra_stats::monitor_router(snapshot, tap, token);
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
