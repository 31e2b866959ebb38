//! One server: connect, handshake, send chunks, match acks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hydra_buffer::Chunk;
use hydra_forward::{Reply, ReplyDecoder};
use hydra_io::{Conn, client_handshake};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::{SenderConfig, ServerConfig};

/// What a link tells the dispatcher.
pub(crate) enum Event {
    /// Connected (and authenticated): can take chunks.
    Up(usize),
    /// Disconnected, or could not connect.
    Down(usize, hydra_io::Error),
    /// A chunk reached the server (acked, when acks are on).
    Delivered(usize, Chunk),
    /// Chunks that were not delivered: to be sent again, maybe elsewhere.
    Failed(usize, Vec<Chunk>),
}

/// How long closing a connection may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Link {
    pub(crate) index: usize,
    pub(crate) server: ServerConfig,
    pub(crate) config: Arc<SenderConfig>,
    pub(crate) chunks: mpsc::Receiver<Chunk>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) backoff: Backoff,
    /// TLS, when the server has it: the connector and the name to verify.
    pub(crate) tls: Option<(hydra_tls::TlsConnector, hydra_tls::ServerName<'static>)>,
}

impl Link {
    fn address(&self) -> String {
        self.server.address()
    }

    pub(crate) async fn run(mut self) {
        loop {
            let error = match self.connect().await {
                Ok(stream) => {
                    self.backoff.reset();
                    info!(server = %self.address(), "Connected.");
                    let _ = self.events.send(Event::Up(self.index));
                    match self.serve(stream).await {
                        Ok(()) => return, // the dispatcher is gone
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            warn!(server = %self.address(), %error, "Server unavailable; its chunks go elsewhere.");
            let _ = self.events.send(Event::Down(self.index, error));
            // Whatever was routed here while it went down goes back.
            self.give_back(Vec::new());
            let delay = self.backoff.next_delay();
            let deadline = tokio::time::Instant::now() + delay;
            // Keep handing back chunks that arrive while waiting.
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    chunk = self.chunks.recv() => match chunk {
                        Some(c) => self.give_back(vec![c]),
                        None => return,
                    },
                }
            }
        }
    }

    fn give_back(&mut self, mut chunks: Vec<Chunk>) {
        while let Ok(c) = self.chunks.try_recv() {
            chunks.push(c);
        }
        if !chunks.is_empty() {
            let _ = self.events.send(Event::Failed(self.index, chunks));
        }
    }

    async fn connect(&mut self) -> Result<Conn, hydra_io::Error> {
        // Resolved on every attempt: a server's address may change.
        let target = self.server.target();
        let mut conn =
            hydra_io::connect(&target, self.tls.as_ref(), self.config.connect_timeout).await?;
        if let Some(key) = self.server.shared_key.as_deref() {
            let user = self
                .server
                .username
                .as_deref()
                .zip(self.server.password.as_deref());
            let timeout = self.config.ack_timeout.min(Duration::from_secs(30));
            client_handshake(&mut conn, &self.config.self_hostname, key, user, timeout).await?;
        }
        Ok(conn)
    }

    /// Sends chunks until the connection fails (`Err`) or the dispatcher
    /// goes away (`Ok`). Every chunk not delivered is given back.
    async fn serve(&mut self, stream: Conn) -> Result<(), hydra_io::Error> {
        let (read, mut write) = tokio::io::split(stream);
        let mut replies = FramedRead::new(read, ReplyDecoder::new());
        let mut in_flight: VecDeque<(Chunk, Instant)> = VecDeque::new();
        let ack = self.config.require_ack;
        let result = loop {
            let oldest = in_flight
                .front()
                .map(|(_, sent)| *sent + self.config.ack_timeout);
            tokio::select! {
                chunk = self.chunks.recv() => {
                    let Some(chunk) = chunk else { break Ok(()) };
                    let write_res = tokio::time::timeout(self.config.send_timeout, write.write_all(chunk.frame())).await;
                    match write_res {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => { in_flight.push_back((chunk, Instant::now())); break Err(hydra_io::Error::Send(e)); }
                        Err(_) => { in_flight.push_back((chunk, Instant::now())); break Err(hydra_io::Error::SendTimeout); }
                    }
                    if ack && chunk.id().is_some() {
                        in_flight.push_back((chunk, Instant::now()));
                    } else {
                        let _ = self.events.send(Event::Delivered(self.index, chunk));
                    }
                }
                reply = replies.next() => match reply {
                    Some(Ok(Reply::Ack(id))) => {
                        // Acks come in order in practice, but match by id.
                        let at = in_flight.iter().position(|(c, _)| c.id().is_some_and(|cid| cid.raw() == id.raw()));
                        match at.and_then(|i| in_flight.remove(i)) {
                            Some((chunk, _)) => { let _ = self.events.send(Event::Delivered(self.index, chunk)); }
                            None => debug!(server = %self.address(), "Ack for an unknown chunk."),
                        }
                    }
                    Some(Ok(_)) => break Err(hydra_io::Error::Unexpected),
                    Some(Err(e)) => break Err(hydra_io::Error::BadReply(e)),
                    None => break Err(hydra_io::Error::Closed),
                },
                () = async { tokio::time::sleep_until(oldest.unwrap_or_else(Instant::now).into()).await }, if oldest.is_some() => {
                    break Err(hydra_io::Error::AckTimeout(self.config.ack_timeout));
                }
            }
        };
        let undelivered: Vec<Chunk> = in_flight.into_iter().map(|(c, _)| c).collect();
        self.give_back(undelivered);
        // Closed, not dropped: over TLS, the server sees close_notify
        // rather than an unexpected EOF (an error line in fluentd's and
        // Fluent Bit's logs at every stop or reconnect).
        let mut conn = replies.into_inner().unsplit(write);
        let _ = tokio::time::timeout(CLOSE_WAIT, conn.shutdown()).await;
        result
    }
}
