//! The dispatcher: takes sealed chunks from the buffer and hands each to
//! the server the selector picks; hears from the links what was delivered
//! and what comes back.

use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hydra_buffer::{Buffer, Chunk};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::{DeadLetter, Selector, SenderConfig, SenderStats, Shared, link};

pub(crate) struct LinkState {
    pub(crate) tx: mpsc::Sender<Chunk>,
    pub(crate) in_flight: usize,
}

pub(crate) struct Dispatcher {
    pub(crate) config: Arc<SenderConfig>,
    pub(crate) buffer: Buffer,
    pub(crate) links: Vec<LinkState>,
    pub(crate) selector: Selector,
    pub(crate) events: mpsc::UnboundedReceiver<link::Event>,
    pub(crate) shared: Arc<Shared>,
    /// Which servers the stats show as active.
    pub(crate) active: Vec<bool>,
}

impl Dispatcher {
    fn stats(&self) -> std::sync::MutexGuard<'_, SenderStats> {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn run(mut self) {
        let max = self.config.max_in_flight.max(1);
        let mut buffer_done = false;
        let mut closed_seen = false;
        // The dispatcher's pulse: it turns at least this often while well.
        let mut beat = tokio::time::interval(std::time::Duration::from_secs(1));
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.shared
                .beats
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let total: usize = self.links.iter().map(|l| l.in_flight).sum();
            if buffer_done && total == 0 {
                return;
            }
            let now = Instant::now();
            self.publish_active(now);
            let links = &self.links;
            let target = self.selector.pick(now, |i| links[i].in_flight < max);
            // With every server down nothing is taken from the buffer, so
            // its end must be noticed here: a shutdown with nothing left to
            // send is not held up by servers that are down.
            if target.is_none() && !buffer_done && total == 0 && self.buffer.is_finished() {
                return;
            }
            // A recovering server becomes eligible with no event: wake then.
            let settles = self.selector.next_change(now);
            // With every server down and nothing in flight, only the
            // buffer's end needs noticing (see above).
            let idle = target.is_none() && !buffer_done && total == 0;
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(e) => self.handle(e),
                    None => return,
                },
                chunk = self.buffer.next_chunk(), if target.is_some() && !buffer_done => match chunk {
                    Some(chunk) => self.dispatch(target.unwrap_or(0), chunk),
                    None => buffer_done = true,
                },
                () = self.buffer.closed(), if idle && !closed_seen => closed_seen = true,
                () = until(settles) => {}
                _ = beat.tick() => {}
            }
            // A retried chunk re-opens the buffer's queue after it reported
            // the end.
            if buffer_done && self.buffer.stats().queued_chunks > 0 {
                buffer_done = false;
            }
        }
    }

    /// Appends `chunk`'s frame to the dead-letter file and counts it
    /// delivered: it is safe on disk, and its commits (acks, positions)
    /// may run. If the file cannot be written the chunk is retried.
    fn dead_letter(&mut self, dl: &DeadLetter, chunk: Chunk) {
        use std::io::Write;
        // The disk buffer's `dead/` is made the first time it is needed.
        if let Some(dir) = dl.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&dl.path)
            .and_then(|mut f| {
                f.write_all(chunk.frame())?;
                f.sync_data()
            });
        match written {
            Ok(()) => {
                error!(
                    path = %dl.path.display(),
                    tag = chunk.tag(),
                    events = chunk.events(),
                    refusals = dl.after,
                    "A chunk failed every send; it was written to the dead-letter file."
                );
                {
                    let mut s = self.stats();
                    s.dead_lettered_chunks += 1;
                    s.dead_lettered_events += chunk.events() as u64;
                }
                self.buffer.delivered(chunk);
            }
            Err(e) => {
                error!(path = %dl.path.display(), error = %e, "Cannot write the dead-letter file; the chunk is retried.");
                self.buffer.retry(chunk);
            }
        }
    }

    /// Copies which servers are active into the stats, when it changed.
    fn publish_active(&mut self, now: Instant) {
        let active = self.selector.active(now);
        if active != self.active {
            let mut s = self.stats();
            for (server, a) in s.servers.iter_mut().zip(&active) {
                server.active = *a;
            }
            drop(s);
            self.active = active;
        }
    }

    fn dispatch(&mut self, i: usize, chunk: Chunk) {
        match self.links[i].tx.try_send(chunk) {
            Ok(()) => self.links[i].in_flight += 1,
            Err(mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c)) => {
                self.buffer.retry(c);
            }
        }
    }

    fn handle(&mut self, event: link::Event) {
        match event {
            link::Event::Up(i) => {
                self.selector.up(i, Instant::now());
                let mut s = self.stats();
                s.servers[i].alive = true;
                s.servers[i].error = None;
            }
            link::Event::Down(i, error) => {
                self.selector.down(i);
                let mut s = self.stats();
                s.servers[i].alive = false;
                s.servers[i].error = Some(error.to_string());
            }
            link::Event::Delivered(i, chunk) => {
                self.links[i].in_flight = self.links[i].in_flight.saturating_sub(1);
                {
                    let mut s = self.stats();
                    let server = &mut s.servers[i];
                    server.chunks += 1;
                    server.events += chunk.events() as u64;
                    server.bytes += chunk.frame().len() as u64;
                    server.in_flight = self.links[i].in_flight;
                    server.last_delivery = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs());
                    let tag = s.sent.entry(chunk.tag().to_owned()).or_default();
                    tag.messages += chunk.events() as u64;
                    tag.bytes += chunk.frame().len() as u64;
                }
                self.buffer.delivered(chunk);
            }
            link::Event::Failed(i, chunks) => {
                self.links[i].in_flight = self.links[i].in_flight.saturating_sub(chunks.len());
                {
                    let mut s = self.stats();
                    s.servers[i].retries += chunks.len() as u64;
                    s.servers[i].in_flight = self.links[i].in_flight;
                }
                // The oldest chunk is the one a server that closes or never
                // acks was refusing, if it refused one: the others failed
                // with it.
                let mut chunks = chunks;
                let mut head = None;
                if !chunks.is_empty() {
                    let mut first = chunks.remove(0);
                    let refusals = first.refused();
                    match self.config.dead_letter.clone() {
                        Some(dl) if refusals >= dl.after => self.dead_letter(&dl, first),
                        _ => {
                            if refusals % 10 == 0 {
                                warn!(
                                    tag = first.tag(),
                                    events = first.events(),
                                    refusals,
                                    "A chunk keeps failing; it holds back the ones behind it (output.dead_letter sets it aside)."
                                );
                            }
                            head = Some(first);
                        }
                    }
                }
                // Back to the front, oldest first.
                for c in chunks.into_iter().rev().chain(head) {
                    self.buffer.retry(c);
                }
            }
        }
    }
}

/// Returns at `at`, or never. The timer is made only once polled: select!
/// builds every branch's future on each turn, and a dispatch turn (one per
/// chunk) with no server recovering then costs no timer.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
