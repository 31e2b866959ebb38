//! The forward input: Forward protocol clients over TCP (and the UDP
//! heartbeat on the same port) or a unix socket.
//!
//! `mod.rs` binds and accepts; `conn` is one connection's life (read,
//! decode, append, answer); `reader` reads frames fairly within the
//! input's memory budget; `acks` keeps what is owed to clients with `ack:
//! delivered`; `causes` counts and logs why frames were dropped and
//! connections closed.

mod acks;
mod budget;
mod causes;
mod conn;
mod reader;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hydra_buffer::Buffer;
use hydra_config::{AckWhen, ForwardInput, Listen};
use hydra_forward::{Limits, udp_heartbeat_reply};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::error::Error;
use crate::listen::{Bound, Peer};
use crate::pulse::beating;
use hydra_io::{Conn, ServerSecurity};

use acks::Pending;
use budget::{Budget, Held};
use causes::{Causes, DeadLetters};
use conn::{Connection, finish_end};

/// Counters of all forward inputs.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    messages: AtomicU64,
    bytes: AtomicU64,
    disposed: AtomicU64,
    dropped_frames: AtomicU64,
    rejected: AtomicU64,
    connections: AtomicU64,
    acks: AtomicU64,
    resent: AtomicU64,
    over_budget: AtomicU64,
    auth_failures: AtomicU64,
    tls_failures: AtomicU64,
    causes: Causes,
    /// The acceptor's pulse ([`crate::pulse`]).
    beats: AtomicU64,
}

impl ReceiverCounters {
    pub(crate) fn beats(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self, address: Vec<String>) -> hydra_stats::Receiver {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (dropped, closed) = self.causes.snapshot();
        hydra_stats::Receiver {
            address,
            messages: l(&self.messages),
            bytes: l(&self.bytes),
            disposed: l(&self.disposed),
            dropped_frames: l(&self.dropped_frames),
            rejected_connections: l(&self.rejected),
            connections: l(&self.connections),
            acks: l(&self.acks),
            resent_chunks: l(&self.resent),
            over_budget: l(&self.over_budget),
            auth_failures: l(&self.auth_failures),
            tls_failures: l(&self.tls_failures),
            dropped_by_cause: dropped,
            closed_by_cause: closed,
            dropped_not_kept: l(&self.causes.not_kept),
            ..hydra_stats::Receiver::default()
        }
    }
}

/// A forward input ready to start: its TLS files and secrets loaded, its
/// sockets bound unless the running pipeline still holds the address.
pub(crate) struct Prepared {
    listen: Listen,
    mode: Option<u32>,
    owner: (Option<u32>, Option<u32>),
    sockets: Option<Bound>,
    settings: Settings,
    max_connections: usize,
}

/// Loads what `config` needs and, when `bind_now`, binds its sockets:
/// everything that can fail, done while a running pipeline still serves.
pub(crate) async fn prepare(
    config: &ForwardInput,
    prefix: Option<String>,
    bind_now: bool,
    dead_letter: Option<PathBuf>,
) -> Result<Prepared, Error> {
    let limits = Limits {
        max_frame_bytes: config.max_frame_bytes.as_usize(),
        max_decompressed_bytes: config.max_decompressed_bytes.map_or(
            config.max_frame_bytes.as_usize().saturating_mul(4),
            hydra_config::Size::as_usize,
        ),
        ..Limits::default()
    };
    let tls = match &config.tls {
        Some(t) => Some(
            hydra_tls::server_config(&hydra_tls::ServerTls {
                cert: t.cert.clone(),
                key: t.key.clone(),
                client_ca: t.client_ca.clone(),
            })
            .map_err(|source| Error::Tls {
                addr: config.listen.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let security = match &config.security {
        Some(s) => Some(ServerSecurity {
            shared_key: s.key.resolve()?.unwrap_or_default(),
            hostname: s.self_hostname.clone().unwrap_or_else(crate::hostname),
            users: s
                .users
                .iter()
                .map(|u| (u.username.clone(), u.password.clone()))
                .collect(),
        }),
        None => None,
    };
    let mode = config.socket_mode();
    // Checked when the configuration was read; looked up again here.
    let owner = config
        .socket_owner()
        .map_err(|rule| hydra_config::Error::Invalid {
            at: format!("forward input {}", config.listen),
            rule,
        })?;
    let sockets = if bind_now {
        Some(crate::listen::bind(&config.listen, mode, owner).await?)
    } else {
        None
    };
    Ok(Prepared {
        listen: config.listen.clone(),
        mode,
        owner,
        sockets,
        settings: Settings {
            tls,
            security,
            dead_letters: dead_letter.map(DeadLetters::new),
            ..Settings::new(config, prefix, limits)
        },
        max_connections: config.max_connections,
    })
}

pub(crate) async fn start(
    prepared: Prepared,
    buffer: Buffer,
    counters: Arc<ReceiverCounters>,
    stop: watch::Receiver<bool>,
    filters: Arc<hydra_filter::Chain>,
) -> Result<(Listen, Vec<JoinHandle<()>>), Error> {
    let bound = match prepared.sockets {
        Some(s) => s,
        None => crate::listen::bind(&prepared.listen, prepared.mode, prepared.owner).await?,
    };
    let addr = bound.local(&prepared.listen);
    let (listener, udp) = bound.split();
    let settings = Arc::new(Settings {
        filters,
        ..prepared.settings
    });
    let slots = Arc::new(Semaphore::new(prepared.max_connections));

    let mut udp_stop = stop.clone();
    let heartbeat = tokio::spawn(async move {
        let Some(udp) = udp else { return };
        let mut buf = [0u8; 64];
        loop {
            tokio::select! {
                _ = udp_stop.changed() => return,
                r = udp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        let _ = udp.send_to(udp_heartbeat_reply(&buf[..n]), from).await;
                    }
                }
            }
        }
    });

    let mut accept_stop = stop.clone();
    let acceptor = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        let mut failures = crate::log_limit::LogLimit::default();
        let beats = &counters.clone().beats;
        loop {
            let next = beating(
                beats,
                next_client(
                    &listener,
                    &slots,
                    &settings,
                    &mut accept_stop,
                    &mut failures,
                ),
            )
            .await;
            let Some((stream, peer, permit)) = next else {
                break;
            };
            let (buffer, counters, settings, stop) = (
                buffer.clone(),
                counters.clone(),
                settings.clone(),
                stop.clone(),
            );
            connections.spawn(async move {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                serve(stream, peer, buffer, counters.clone(), settings, stop).await;
                counters.connections.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
            // Reap finished connections as we go.
            while connections.try_join_next().is_some() {}
        }
        // Stop: connections stop reading; wait for them to hand over what
        // they were appending.
        while beating(beats, connections.join_next()).await.is_some() {}
    });
    Ok((addr, vec![acceptor, heartbeat]))
}

/// The next client, with its connection slot; `None` at a stop. Waits
/// while `max_connections` clients are connected and while the memory
/// budget is spent; meanwhile new clients wait in the kernel's backlog.
async fn next_client(
    listener: &crate::listen::Acceptor,
    slots: &Arc<Semaphore>,
    settings: &Settings,
    stop: &mut watch::Receiver<bool>,
    failures: &mut crate::log_limit::LogLimit,
) -> Option<(Conn, Peer, tokio::sync::OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        _ = stop.changed() => return None,
        p = slots.clone().acquire_owned() => p.ok()?,
    };
    tokio::select! {
        _ = stop.changed() => return None,
        () = settings.budget.any() => {}
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return None,
            r = listener.accept() => match r {
                Ok((stream, peer)) => return Some((stream, peer, permit)),
                Err(e) => {
                    // Out of file descriptors, typically: retrying at
                    // once would spin. The pending client waits in the
                    // backlog meanwhile.
                    if let Some(held_back) = failures.allow(std::time::Instant::now()) {
                        warn!(error = %e, held_back, "Accept failed; retrying every 100 ms (logged once per 10 s).");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

pub(super) struct Settings {
    prefix: Option<String>,
    ack: AckWhen,
    limits: Limits,
    idle: std::time::Duration,
    tls: Option<hydra_tls::TlsAcceptor>,
    security: Option<ServerSecurity>,
    pending: Pending,
    /// `max_pending_bytes`: what connections hold of partly read frames
    /// and inflated events beyond [`budget::FREE`] each.
    budget: Arc<Budget>,
    /// The most of the budget one connection may hold.
    share: usize,
    /// `min_frame_rate`, bytes per second.
    min_rate: u64,
    /// Inflations at once: one per core.
    inflating: Arc<Semaphore>,
    /// The configuration's filters.
    filters: Arc<hydra_filter::Chain>,
    /// Where dropped frames are kept: `output.dead_letter`.
    dead_letters: Option<DeadLetters>,
}

impl Settings {
    /// The settings of `config` without TLS, a shared key or a dead-letter
    /// file.
    fn new(config: &ForwardInput, prefix: Option<String>, limits: Limits) -> Settings {
        let total = usize::try_from(config.max_pending_bytes.0).unwrap_or(usize::MAX);
        Settings {
            prefix,
            ack: config.ack(),
            limits,
            idle: config.idle_timeout,
            tls: None,
            security: None,
            pending: Pending::default(),
            budget: Budget::new(total),
            share: Held::share(total, limits.max_frame_bytes),
            min_rate: config.min_frame_rate.0,
            inflating: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            filters: Arc::default(),
            dead_letters: None,
        }
    }
}

/// Serves one accepted connection until it ends, and counts how it ended.
async fn serve(
    stream: Conn,
    peer: Peer,
    buffer: Buffer,
    counters: Arc<ReceiverCounters>,
    settings: Arc<Settings>,
    mut stop: watch::Receiver<bool>,
) {
    match Connection::open(stream, peer, buffer, counters.clone(), settings).await {
        Ok(mut conn) => {
            let end = conn.run(&mut stop).await;
            conn.finish(end).await;
        }
        Err(end) => finish_end(&counters, peer, &end),
    }
}
