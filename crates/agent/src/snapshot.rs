//! The monitor's snapshot of a running pipeline.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::agent::{Agent, TailStatsFn};
use crate::forward_in::ReceiverCounters;
use crate::tail_in;

impl Agent {
    pub(crate) fn snapshot_fn(
        &self,
        listeners: Vec<(String, Arc<ReceiverCounters>)>,
    ) -> hydra_stats::SnapshotFn {
        let buffer = self.buffer.clone();
        let tail_stats: Option<TailStatsFn> = self.tailer.as_ref().map(|t| t.stats_fn());
        let output = self.output.clone();
        let tags: Vec<String> = tail_in::tags(&self.config);
        let parse_counters = self.parse_counters.clone();
        let filters = self.filters.clone();
        let reload_failures = self.reload_failures.clone();
        let reloads = self.reloads.clone();
        let verdicts = self.verdicts.clone();
        let disk = self.disk.as_ref().map(|d| {
            let max = self
                .config
                .buffer
                .disk
                .as_ref()
                .map_or(0, |c| c.max_bytes.0);
            (d.path.display().to_string(), d.store.clone(), max)
        });
        Arc::new(move || {
            let b = buffer.stats();
            let per_listener: Vec<hydra_stats::Receiver> = listeners
                .iter()
                .map(|(addr, c)| c.snapshot(vec![addr.clone()]))
                .collect();
            let mut snap = hydra_stats::Snapshot {
                receiver: hydra_stats::Receiver::total(&per_listener, b.events as u64),
                listeners: per_listener,
                buffer: hydra_stats::Buffer {
                    bytes: b.bytes as u64,
                    events: b.events as u64,
                    max_bytes: b.max_bytes as u64,
                    queued_chunks: b.queued_chunks as u64,
                    retried_chunks: b.chunks_retried,
                    producer_waits: b.producer_waits,
                    delivered: b.events_delivered,
                    dead_lettered: 0,
                },
                reload_failures: reload_failures.load(Ordering::Relaxed),
                reloads: reloads.load(Ordering::Relaxed),
                health: verdicts.now().reasons,
                ..hydra_stats::Snapshot::default()
            };
            if let Some(f) = &tail_stats {
                let (files, positions_error) = f();
                for fs in files {
                    snap.files.insert(
                        fs.path.display().to_string(),
                        hydra_stats::File {
                            tag: tags.get(fs.source).cloned().unwrap_or_default(),
                            position: fs.position,
                            committed: fs.committed,
                            behind: fs.size.saturating_sub(fs.position),
                            lines: fs.lines,
                            multiline_cuts: fs.multiline_cuts,
                            error: fs.error.unwrap_or_default(),
                            ..hydra_stats::File::default()
                        },
                    );
                }
                snap.errors
                    .extend(positions_error.map(|e| format!("positions: {e}")));
            }
            snap.filters = filters
                .stats()
                .into_iter()
                .map(|f| hydra_stats::Filter {
                    pattern: f.pattern,
                    kind: f.kind.to_owned(),
                    passed: f.passed,
                    dropped: f.dropped,
                    errors: f.errors,
                    held_ms: f.held_ms,
                })
                .collect();
            if let Some(c) = &parse_counters {
                snap.parsing = c.snapshot().into_iter().collect();
                snap.path_unmatched = c.path_unmatched().into_iter().collect();
            }
            snap.disk = disk
                .as_ref()
                .map(|(path, store, max)| disk_stats(path, &store.stats(), *max));
            if let Some(s) = output.servers() {
                servers_into(&mut snap, s);
            }
            snap
        })
    }
}

/// The disk buffer's figures for the monitor.
fn disk_stats(path: &str, d: &hydra_disk::DiskStats, max_bytes: u64) -> hydra_stats::Disk {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    hydra_stats::Disk {
        path: path.to_owned(),
        bytes: d.counts.bytes,
        max_bytes,
        chunks: d.counts.chunks,
        oldest_secs: d.oldest.map_or(0, |o| now.saturating_sub(o)),
        syncs: d.syncs,
        sync_ms: d.sync_last_us as f64 / 1000.0,
        sync_max_ms: d.sync_max_us as f64 / 1000.0,
        full_waits: d.full_waits,
        failing_waits: d.failing_waits,
        full: d.full,
        failing: d.failing,
        corrupt_records: d.counts.corrupt_records,
        torn_tails: d.counts.torn_tails,
        write_errors: d.counts.write_errors,
    }
}

/// The output's servers and what it sent, into `snap`.
fn servers_into(snap: &mut hydra_stats::Snapshot, s: hydra_sender::SenderStats) {
    snap.buffer.dead_lettered = s.dead_lettered_events;
    snap.servers = s
        .servers
        .into_iter()
        .map(|sv| hydra_stats::Server {
            active: sv.active,
            address: sv.address,
            alive: sv.alive,
            error: sv.error.unwrap_or_default(),
            standby: sv.standby,
            messages: sv.events,
            chunks: sv.chunks,
            retries: sv.retries,
            acks_pending: sv.in_flight as u64,
            last_delivery: sv.last_delivery,
            ..hydra_stats::Server::default()
        })
        .collect();
    snap.sent = s
        .sent
        .into_iter()
        .map(|(t, v)| {
            (
                t,
                hydra_stats::Sent {
                    messages: v.messages,
                    bytes: v.bytes,
                },
            )
        })
        .collect();
}
