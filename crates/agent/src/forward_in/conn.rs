//! One connection's life: opened (TLS, the shared-key handshake), then a
//! loop of four steps, each a function of its own: **read** a frame
//! within the memory budget, **decode** it (inflating it off the I/O
//! threads), **append** its events to the buffer, **answer** it. Every
//! frame with a chunk id gets exactly one answer on its connection: its
//! ack, or the connection closed (then the client sends it again).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hydra_buffer::{Buffer, Commit};
use hydra_config::AckWhen;
use hydra_forward::{EventBatch, Pong, Request};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use super::acks::{ACK_QUEUE, ACK_WRITE_TIMEOUT, ChunkKey, Owed};
use super::budget::Room;
use super::causes::{Closed, Dropped};
use super::reader::{CLOSE_WAIT, Next, Reader, inflate};
use super::{ReceiverCounters, Settings};
use crate::listen::Peer;
use crate::mapping::join_tag;
use hydra_io::{Conn, ServerHandshake};

/// Why a connection's loop ended.
#[derive(Debug)]
pub(super) enum End {
    /// The client closed it (or a read failed).
    Client,
    /// hydra is stopping: nothing more is read.
    Stopping,
    /// hydra closed it.
    Closed(Closed, String),
}

/// A frame, decoded.
#[derive(Debug)]
pub(super) enum Decoded {
    /// Events, with the room their inflation holds until appended.
    Events(EventBatch, Option<Room>),
    /// A whole frame that cannot be accepted.
    Dropped(Dropped, hydra_forward::Dropped),
    /// A PING on an input without a shared key.
    Ping,
    /// Nothing to answer (a request kind this input does not serve).
    Nothing,
}

/// What a frame's answer is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Nothing now: it did not ask for an ack, or its ack waits for
    /// delivery.
    Later,
    /// This ack, now.
    Ack(Bytes),
}

/// Aborts the task when dropped: a connection's ack writer ends with the
/// connection, even when the connection's task is aborted.
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection being served.
pub(super) struct Connection {
    pub(super) peer: Peer,
    pub(super) settings: Arc<Settings>,
    pub(super) counters: Arc<ReceiverCounters>,
    pub(super) buffer: Buffer,
    pub(super) reader: Reader,
    /// Acks go through one writer: with `ack: delivered` they are sent from
    /// delivery callbacks, possibly after the loop ended. Bounded, with a
    /// write timeout: a client that does not read its acks holds neither
    /// memory nor its connection slot for long.
    pub(super) acks: mpsc::Sender<Bytes>,
    pub(super) writer: AbortOnDrop,
    pub(super) writer_done: bool,
}

/// Starts the writer of `write`'s acks.
pub(super) fn ack_writer(
    mut write: tokio::io::WriteHalf<Conn>,
) -> (mpsc::Sender<Bytes>, AbortOnDrop) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(ACK_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(ack) = rx.recv().await {
            match tokio::time::timeout(ACK_WRITE_TIMEOUT, write.write_all(&ack)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        // Closed, not dropped: a TLS client sees close_notify rather than
        // an unexpected EOF.
        let _ = tokio::time::timeout(CLOSE_WAIT, write.shutdown()).await;
    });
    (tx, AbortOnDrop(task))
}

/// TLS, when the input has it: the connection, or why it was refused.
async fn accept_tls(stream: Conn, settings: &Settings) -> Result<Conn, End> {
    let Some(acceptor) = &settings.tls else {
        return Ok(stream);
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(End::Closed(Closed::Tls, e.to_string())),
        Err(_) => Err(End::Closed(Closed::Tls, "timed out".to_owned())),
    }
}

/// The server side of the shared-key handshake, when the input has it:
/// HELO, the client's PING read with the connection's own reader, PONG.
async fn handshake(
    reader: &mut Reader,
    write: &mut tokio::io::WriteHalf<Conn>,
    settings: &Settings,
) -> Result<(), End> {
    let Some(security) = &settings.security else {
        return Ok(());
    };
    let refused = |e: hydra_io::HandshakeError| End::Closed(Closed::Auth, e.to_string());
    let greeting = ServerHandshake::greet(write, security)
        .await
        .map_err(refused)?;
    let ping = match reader.next(std::time::Duration::from_secs(10)).await {
        Next::Request(Request::Ping(p)) => p,
        _ => return Err(refused(hydra_io::HandshakeError::Expected("PING"))),
    };
    reader.settle();
    greeting
        .answer(write, &ping, security)
        .await
        .map_err(refused)
}

impl Connection {
    /// TLS and the handshake done, the ack writer started.
    pub(super) async fn open(
        stream: Conn,
        peer: Peer,
        buffer: Buffer,
        counters: Arc<ReceiverCounters>,
        settings: Arc<Settings>,
    ) -> Result<Connection, End> {
        let conn = accept_tls(stream, &settings).await?;
        let (read, mut write) = tokio::io::split(conn);
        let mut reader = Reader::for_input(read, &settings);
        handshake(&mut reader, &mut write, &settings).await?;
        let (acks, writer) = ack_writer(write);
        Ok(Connection {
            peer,
            settings,
            counters,
            buffer,
            reader,
            acks,
            writer,
            writer_done: false,
        })
    }

    /// Serves frames until the client, hydra or a limit ends it.
    pub(super) async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        loop {
            // The request before this one was handled: its room in the
            // budget goes back.
            self.reader.settle();
            let request = match self.read(stop).await {
                Ok(r) => r,
                Err(end) => return end,
            };
            let answer = match self.decode(request).await {
                Ok(Decoded::Events(batch, _room)) => match self.append(&batch).await {
                    Some(answer) => answer,
                    // Shutting down: not accepted, so not acked; the
                    // client sends it again.
                    None => return End::Stopping,
                },
                Ok(Decoded::Dropped(cause, frame)) => self.drop_frame(cause, frame).await,
                Ok(Decoded::Ping) => {
                    let pong = Pong::refuse("this server does not use a shared key");
                    let _ = self.acks.send(pong.to_msgpack()).await;
                    return End::Closed(Closed::UnexpectedPing, "no shared key".to_owned());
                }
                Ok(Decoded::Nothing) => Answer::Later,
                Err(end) => return end,
            };
            if let Err(end) = self.answer(answer).await {
                return end;
            }
        }
    }

    /// The next request, or why there is none.
    pub(super) async fn read(&mut self, stop: &mut watch::Receiver<bool>) -> Result<Request, End> {
        let next = tokio::select! {
            _ = stop.changed() => return Err(End::Stopping),
            _ = &mut self.writer.0, if !self.writer_done => {
                self.writer_done = true;
                return Err(End::Closed(Closed::AcksUnread, "its acks went unread".to_owned()));
            }
            n = self.reader.next(self.settings.idle) => n,
        };
        match next {
            Next::Request(r) => Ok(r),
            Next::Closed => Err(End::Client),
            Next::Idle => Err(End::Closed(Closed::Idle, "idle".to_owned())),
            Next::Corrupt(e) => Err(End::Closed(Closed::Corrupt, e.to_string())),
            Next::OverBudget => Err(End::Closed(
                Closed::OverBudget,
                "no room in max_pending_bytes".to_owned(),
            )),
            Next::TooSlow { got, after } => Err(End::Closed(
                Closed::TooSlow,
                format!("{got} bytes of a frame in {after:.1?}"),
            )),
        }
    }

    /// A request as events, a dropped frame, or a PING.
    pub(super) async fn decode(&mut self, request: Request) -> Result<Decoded, End> {
        let request = match request {
            Request::Compressed(c) => match inflate(c, &self.settings, self.reader.held.n).await {
                Some((Request::Events(batch), room)) => {
                    return Ok(Decoded::Events(batch, Some(room)));
                }
                Some((other, _)) => other,
                None => {
                    return Err(End::Closed(
                        Closed::OverBudget,
                        "no room in max_pending_bytes to inflate a frame".to_owned(),
                    ));
                }
            },
            r => r,
        };
        Ok(match request {
            Request::Events(batch) => Decoded::Events(batch, None),
            Request::Dropped(d) => Decoded::Dropped(Dropped::of(&d.error), d),
            Request::Ping(_) => Decoded::Ping,
            _ => Decoded::Nothing,
        })
    }

    /// Appends a frame's events; its answer, or `None` when the buffer
    /// closed (hydra is stopping) before it took them.
    pub(super) async fn append(&mut self, batch: &EventBatch) -> Option<Answer> {
        let (settings, counters) = (&self.settings, &self.counters);
        counters
            .disposed
            .fetch_add(batch.skipped() as u64, Ordering::Relaxed);
        let n = batch.len();
        // A frame whose events were all invalid is acked too (as Fluentd
        // does): sending it again would not make it valid.
        if n == 0 {
            return Some(batch.ack().map_or(Answer::Later, Answer::Ack));
        }
        let tag = join_tag(settings.prefix.as_deref(), batch.tag());
        let commit = match self.owed(batch, &tag) {
            Owing::Resent => return Some(Answer::Later),
            Owing::Commit(c) => Some(c),
            Owing::No => None,
        };
        let waits_for_delivery = commit.is_some();
        let stored = self.stored(batch);
        // Waiting here for room is the TCP backpressure: nothing more is
        // read from this client meanwhile (a throttle filter waits here
        // too). With the disk buffer, the events are in its file before
        // anything more is read.
        let accepted = if settings.filters.applies(&tag) {
            let events = batch.to_events();
            crate::filtered::append(
                &self.buffer,
                &settings.filters,
                &tag,
                events,
                commit,
                stored,
            )
            .await
        } else {
            append_pieces(&self.buffer, &tag, batch, commit, stored).await
        };
        if !accepted {
            return None;
        }
        if waits_for_delivery {
            // Its client waits for the ack: sent now rather than after
            // flush_interval, so a client that sends a chunk at a time is
            // not held to one per flush_interval.
            self.buffer.flush(&tag);
        }
        counters.messages.fetch_add(n as u64, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(batch.entries().len() as u64, Ordering::Relaxed);
        Some(match (batch.ack(), settings.ack) {
            (Some(a), AckWhen::Buffered) => Answer::Ack(a),
            _ => Answer::Later,
        })
    }

    /// With `ack: stored`, what acks `batch` once its events are durable.
    fn stored(&self, batch: &EventBatch) -> Option<Commit> {
        let (Some(ack), AckWhen::Stored) = (batch.ack(), self.settings.ack) else {
            return None;
        };
        let (acks, counters) = (self.acks.clone(), self.counters.clone());
        Some(Box::new(move || {
            // A full queue is a client that stopped reading: its writer
            // times out and closes the connection; the client resends.
            if acks.try_send(ack).is_ok() {
                counters.acks.fetch_add(1, Ordering::Relaxed);
            }
        }))
    }

    /// With `ack: delivered`, the commit that acks `batch` once it was
    /// delivered; a resent chunk joins the first copy's waiters instead.
    fn owed(&self, batch: &EventBatch, tag: &str) -> Owing {
        let (Some(chunk), AckWhen::Delivered) = (&batch.options().chunk, self.settings.ack) else {
            return Owing::No;
        };
        let key = ChunkKey {
            host: self.peer.host(),
            tag: tag.to_owned(),
            chunk: chunk.clone(),
            events: batch.len(),
            bytes: batch.entries().len(),
        };
        {
            let mut pending = self.settings.pending.lock();
            if let Some(waiters) = pending.get_mut(&key) {
                // Resent while the first copy is still on its way: acked
                // with it.
                waiters.push(self.acks.clone());
                self.counters.resent.fetch_add(1, Ordering::Relaxed);
                return Owing::Resent;
            }
            pending.insert(key.clone(), vec![self.acks.clone()]);
        }
        let owed = Owed {
            key: Some(key),
            ack: chunk.ack(),
            settings: self.settings.clone(),
            counters: self.counters.clone(),
        };
        Owing::Commit(Box::new(move || owed.deliver()))
    }

    /// A frame that cannot be accepted: counted, kept in the dead-letter
    /// file (within its cap), and acked when it asked for an ack.
    pub(super) async fn drop_frame(&mut self, cause: Dropped, d: hydra_forward::Dropped) -> Answer {
        self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
        self.counters.causes.dropped(cause, &self.peer, &d.error);
        let ack = d.ack();
        if let Some(dl) = &self.settings.dead_letters
            && !dl.write(cause, d.frame).await
        {
            self.counters
                .causes
                .not_kept
                .fetch_add(1, Ordering::Relaxed);
        }
        ack.map_or(Answer::Later, Answer::Ack)
    }

    /// Sends the answer. Waiting for room in the ack queue is backpressure
    /// on a client slow to read its acks.
    pub(super) async fn answer(&mut self, answer: Answer) -> Result<(), End> {
        let Answer::Ack(ack) = answer else {
            return Ok(());
        };
        if self.acks.send(ack).await.is_err() {
            return Err(End::Closed(
                Closed::AcksUnread,
                "its acks went unread".to_owned(),
            ));
        }
        self.counters.acks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts and logs how the connection ended, then waits for the acks
    /// still owed to be written (or dropped).
    pub(super) async fn finish(mut self, end: End) {
        finish_end(&self.counters, self.peer, &end);
        drop(self.acks);
        if !self.writer_done {
            let _ = (&mut self.writer.0).await;
        }
    }
}

/// Counts and logs `end`.
pub(super) fn finish_end(counters: &ReceiverCounters, peer: Peer, end: &End) {
    match end {
        End::Client | End::Stopping => debug!(%peer, ?end, "Connection ended."),
        End::Closed(cause, detail) => {
            match cause {
                Closed::Corrupt => counters.rejected.fetch_add(1, Ordering::Relaxed),
                Closed::OverBudget => counters.over_budget.fetch_add(1, Ordering::Relaxed),
                Closed::Tls => counters.tls_failures.fetch_add(1, Ordering::Relaxed),
                Closed::Auth => counters.auth_failures.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            counters.causes.closed(*cause, &peer, detail);
        }
    }
}

/// What `ack: delivered` owes a frame.
enum Owing {
    /// Nothing: it asked for no ack, or the input acks once buffered.
    No,
    /// Its ack, once delivered.
    Commit(Commit),
    /// A resend of a chunk still on its way: acked with it.
    Resent,
}

/// Appends a frame's entries as they are, in pieces within `chunk_bytes`
/// (what a downstream accepts: Fluent Bit takes 6 MiB by default); the
/// commit runs once every piece was delivered, `stored` once every piece is
/// durable. False when the buffer closed (shutting down: not accepted).
pub(super) async fn append_pieces(
    buffer: &Buffer,
    tag: &str,
    batch: &EventBatch,
    commit: Option<Commit>,
    stored: Option<Commit>,
) -> bool {
    let pieces = batch.pieces(buffer.config().chunk_bytes);
    let n = pieces.len();
    let commits = hydra_buffer::split_commit(commit, n)
        .into_iter()
        .zip(hydra_buffer::split_commit(stored, n));
    for ((piece, count), (commit, stored)) in pieces.iter().zip(commits) {
        let appended = buffer
            .append_stored(tag, piece.len(), *count, commit, stored, |f| {
                f.extend_entries(piece, *count);
            })
            .await;
        if appended.is_err() {
            return false;
        }
    }
    true
}
