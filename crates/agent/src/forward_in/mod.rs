//! The forward input: Forward protocol clients over TCP (and the UDP
//! heartbeat on the same port) or a unix socket.
//!
//! `mod.rs` binds and accepts and serves a connection; `acks` keeps what is
//! owed to clients with `ack: delivered`; `reader` reads frames within the
//! input's memory budget.

mod acks;
mod reader;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use hydra_buffer::{Buffer, Commit};
use hydra_config::{AckWhen, ForwardInput, Listen};
use hydra_forward::{ForwardDecoder, Limits, Pong, Request, udp_heartbeat_reply};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::listen::{Bound, Peer};
use crate::{Error, join_tag};
use hydra_io::{Conn, ServerHandshake, ServerSecurity};

use acks::{ACK_QUEUE, ACK_WRITE_TIMEOUT, ChunkKey, Owed, Pending};
use reader::{CLOSE_WAIT, Held, Next, Reader, inflate};

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
}

impl ReceiverCounters {
    pub(crate) fn snapshot(&self, address: Vec<String>) -> hydra_stats::Receiver {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
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
            prefix,
            ack: config.ack,
            limits,
            idle: config.idle_timeout,
            tls,
            security,
            pending: Pending::default(),
            budget: Arc::new(Semaphore::new(
                usize::try_from(config.max_pending_bytes.0).unwrap_or(usize::MAX),
            )),
            budget_total: usize::try_from(config.max_pending_bytes.0).unwrap_or(usize::MAX),
            inflating: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            filters: Arc::default(),
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
        loop {
            // Past max_connections, new clients wait in the kernel's backlog.
            let permit = tokio::select! {
                _ = accept_stop.changed() => break,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            // New connections wait while the memory budget is spent.
            let budget = settings.budget.clone();
            tokio::select! {
                _ = accept_stop.changed() => break,
                p = budget.acquire() => drop(p),
            }
            let (stream, peer) = tokio::select! {
                _ = accept_stop.changed() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors, typically: retrying at
                        // once would spin. The pending client waits in the
                        // backlog meanwhile.
                        if let Some(held_back) = failures.allow(std::time::Instant::now()) {
                            warn!(error = %e, held_back, "Accept failed; retrying every 100 ms (logged once per 10 s).");
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (buffer, counters, settings, stop) = (
                buffer.clone(),
                counters.clone(),
                settings.clone(),
                stop.clone(),
            );
            connections.spawn(async move {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                serve(stream, peer, &buffer, &counters, &settings, stop).await;
                counters.connections.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
            // Reap finished connections as we go.
            while connections.try_join_next().is_some() {}
        }
        // Stop: connections stop reading; wait for them to hand over what
        // they were appending.
        while connections.join_next().await.is_some() {}
    });
    Ok((addr, vec![acceptor, heartbeat]))
}

struct Settings {
    prefix: Option<String>,
    ack: AckWhen,
    limits: Limits,
    idle: std::time::Duration,
    tls: Option<hydra_tls::TlsAcceptor>,
    security: Option<ServerSecurity>,
    pending: Pending,
    /// `max_pending_bytes`, in bytes: what connections hold of partly
    /// read frames and inflated events beyond [`reader::FREE`] each.
    budget: Arc<Semaphore>,
    budget_total: usize,
    /// Inflations at once: one per core.
    inflating: Arc<Semaphore>,
    /// The configuration's filters.
    filters: Arc<hydra_filter::Chain>,
}

/// Appends a frame's entries as they are, in pieces within `chunk_bytes`;
/// false when the buffer closed (shutting down: not accepted).
async fn append_pieces(
    buffer: &Buffer,
    tag: &str,
    batch: &hydra_forward::EventBatch,
    commit: Option<Commit>,
) -> bool {
    let pieces = batch.pieces(buffer.config().chunk_bytes);
    let commits = hydra_buffer::split_commit(commit, pieces.len());
    for ((piece, count), commit) in pieces.iter().zip(commits) {
        let appended = buffer
            .append(tag, piece.len(), *count, commit, |f| {
                f.extend_entries(piece, *count);
            })
            .await;
        if appended.is_err() {
            return false;
        }
    }
    true
}

/// Aborts the task when dropped: a connection's ack writer ends with the
/// connection, even when the connection's task is aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The server side of the shared-key handshake: HELO, the client's PING
/// read with the connection's own reader, PONG.
async fn handshake(
    reader: &mut Reader,
    write: &mut tokio::io::WriteHalf<Conn>,
    security: &ServerSecurity,
) -> Result<(), hydra_io::HandshakeError> {
    let greeting = ServerHandshake::greet(write, security).await?;
    let ping = match reader.next(std::time::Duration::from_secs(10)).await {
        Next::Request(Request::Ping(p)) => p,
        _ => return Err(hydra_io::HandshakeError::Expected("PING")),
    };
    reader.settle();
    greeting.answer(write, &ping, security).await
}

async fn serve(
    stream: Conn,
    peer: Peer,
    buffer: &Buffer,
    counters: &Arc<ReceiverCounters>,
    settings: &Arc<Settings>,
    mut stop: watch::Receiver<bool>,
) {
    let conn: Conn = match &settings.tls {
        None => Box::new(stream),
        Some(acceptor) => {
            match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, error = %e, "TLS handshake failed.");
                    return;
                }
                Err(_) => {
                    counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, "TLS handshake timed out.");
                    return;
                }
            }
        }
    };
    let (read, mut write) = tokio::io::split(conn);
    let mut reader = Reader {
        read,
        buf: BytesMut::with_capacity(8 << 10),
        decoder: ForwardDecoder::with_limits(settings.limits).defer_inflation(),
        held: Held {
            budget: settings.budget.clone(),
            total: settings.budget_total,
            n: 0,
        },
        large: false,
    };
    if let Some(security) = &settings.security
        && let Err(error) = handshake(&mut reader, &mut write, security).await
    {
        counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, %error, "Client refused in the shared-key handshake.");
        return;
    }
    // Acks go through one writer: with `ack: delivered` they are sent from
    // delivery callbacks, possibly after this loop ended.
    // Bounded, with a write timeout: a client that does not read its acks
    // holds neither memory nor its connection slot for long.
    let (ack_tx, mut ack_rx) = mpsc::channel::<Bytes>(ACK_QUEUE);
    let mut writer = AbortOnDrop(tokio::spawn(async move {
        while let Some(ack) = ack_rx.recv().await {
            match tokio::time::timeout(ACK_WRITE_TIMEOUT, write.write_all(&ack)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        // Closed, not dropped: a TLS client sees close_notify rather than
        // an unexpected EOF.
        let _ = tokio::time::timeout(CLOSE_WAIT, write.shutdown()).await;
    }));
    let mut writer_done = false;
    loop {
        // The request before this one was handled (or skipped): its room
        // in the budget goes back.
        reader.settle();
        let next = tokio::select! {
            _ = stop.changed() => break,
            _ = &mut writer.0, if !writer_done => {
                writer_done = true;
                debug!(%peer, "Closing a connection that does not read its acks.");
                break;
            }
            n = reader.next(settings.idle) => n,
        };
        let request = match next {
            Next::Idle => {
                debug!(%peer, "Idle connection closed.");
                break;
            }
            Next::Closed => break,
            Next::Corrupt(e) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, error = %e, "Closing a connection whose input cannot be decoded.");
                break;
            }
            Next::OverBudget => {
                counters.over_budget.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, "Closing a connection that waited too long for room in max_pending_bytes; its client sends again.");
                break;
            }
            Next::Request(r) => r,
        };
        // Room for the inflated events, held until they are appended.
        let mut _inflated = None;
        let request = match request {
            Request::Compressed(c) => match inflate(c, settings, reader.held.n).await {
                Some((r, permit)) => {
                    _inflated = Some(permit);
                    r
                }
                None => {
                    counters.over_budget.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, "Closing a connection whose compressed frame found no room in max_pending_bytes; its client sends again.");
                    break;
                }
            },
            r => r,
        };
        match request {
            Request::Events(batch) => {
                counters
                    .disposed
                    .fetch_add(batch.skipped() as u64, Ordering::Relaxed);
                let n = batch.len();
                let ack = batch.ack();
                if n > 0 {
                    let tag = join_tag(settings.prefix.as_deref(), batch.tag());
                    let entries = batch.entries();
                    let commit: Option<Commit> = match (&batch.options().chunk, settings.ack) {
                        (Some(chunk), AckWhen::Delivered) => {
                            let key = ChunkKey {
                                host: peer.host(),
                                tag: tag.clone(),
                                chunk: chunk.clone(),
                                events: n,
                                bytes: entries.len(),
                            };
                            {
                                let mut pending = settings.pending.lock();
                                if let Some(waiters) = pending.get_mut(&key) {
                                    // Resent while the first copy is still
                                    // on its way: acked with it.
                                    waiters.push(ack_tx.clone());
                                    counters.resent.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                pending.insert(key.clone(), vec![ack_tx.clone()]);
                            }
                            let owed = Owed {
                                key: Some(key),
                                ack: chunk.ack(),
                                settings: settings.clone(),
                                counters: counters.clone(),
                            };
                            Some(Box::new(move || owed.deliver()))
                        }
                        _ => None,
                    };
                    // Waiting here for room is the TCP backpressure: nothing
                    // more is read from this client meanwhile.
                    // A frame larger than a chunk goes out as several, each
                    // within what a downstream accepts (Fluent Bit takes 6 MiB
                    // by default); the ack waits for all of them.
                    let waits_for_delivery = commit.is_some();
                    let accepted = if settings.filters.applies(&tag) {
                        // A throttle waits here: nothing more is read from
                        // the client meanwhile.
                        let events = batch.to_events();
                        crate::filtered::append(buffer, &settings.filters, &tag, events, commit)
                            .await
                    } else {
                        append_pieces(buffer, &tag, &batch, commit).await
                    };
                    if !accepted {
                        // Shutting down: not accepted, so not acked; the
                        // client will send it again.
                        break;
                    }
                    if waits_for_delivery {
                        // Its client waits for the ack: sent now rather
                        // than after flush_interval, so a client that
                        // sends a chunk at a time is not held to one per
                        // flush_interval.
                        buffer.flush(&tag);
                    }
                    counters.messages.fetch_add(n as u64, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                }
                // A frame whose events were all invalid is acked too (as
                // Fluentd does): sending it again would not make it valid.
                if let Some(a) = ack
                    && (settings.ack == AckWhen::Buffered || n == 0)
                {
                    // Waiting for room is backpressure on a client slow to
                    // read its acks.
                    if ack_tx.send(a).await.is_err() {
                        break;
                    }
                    counters.acks.fetch_add(1, Ordering::Relaxed);
                }
            }
            Request::Dropped(d) => {
                counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, error = %d.error, "Dropped a frame; the connection goes on.");
            }
            Request::Ping(_) => {
                // No shared key is configured on this input.
                let _ = ack_tx
                    .send(Pong::refuse("this server does not use a shared key").to_msgpack())
                    .await;
                break;
            }
            _ => {}
        }
    }
    drop(ack_tx);
    // The writer ends once every pending delivered-ack was sent or dropped.
    if !writer_done {
        let _ = (&mut writer.0).await;
    }
}
