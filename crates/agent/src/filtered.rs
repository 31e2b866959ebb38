//! Events through the filters and into the buffer: what tail and forward
//! inputs do for tags a filter matches.

use hydra_buffer::{Buffer, Commit, split_commit};
use hydra_filter::Chain;
use hydra_forward::Event;

/// Filters `events` a throttle's burst at a time (so a large batch leaves
/// at the rate, not in one lump after one long wait) and appends what is
/// left in pieces within `chunk_bytes`. `commit` runs once every piece was
/// delivered, `stored` once every piece is durable (on a durable view); a
/// step whose events were all dropped counts as both. False when the buffer
/// closed (shutting down: not accepted).
pub(crate) async fn append(
    buffer: &Buffer,
    filters: &Chain,
    tag: &str,
    mut events: Vec<Event>,
    commit: Option<Commit>,
    stored: Option<Commit>,
) -> bool {
    let step = filters.step(tag).max(1);
    let steps = events.len().div_ceil(step).max(1);
    let mut commits = split_commit(commit, steps).into_iter();
    let mut storeds = split_commit(stored, steps).into_iter();
    let max = buffer.config().chunk_bytes.max(1);
    loop {
        let rest = events.split_off(step.min(events.len()));
        let mut part = std::mem::replace(&mut events, rest);
        let commit = commits.next().flatten();
        let stored = storeds.next().flatten();
        filters.apply(tag, &mut part).await;
        // Each record encoded once, to size the pieces and to be copied in.
        let encoded: Vec<Vec<u8>> = part
            .iter()
            .map(|e| {
                let mut b = Vec::new();
                // Writing to a Vec cannot fail.
                let _ = rmpv::encode::write_value(&mut b, &e.record);
                b
            })
            .collect();
        let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, r) in encoded.iter().enumerate() {
            let size = r.len() + 16;
            if i > start && bytes + size > max {
                pieces.push((start, i, bytes));
                (start, bytes) = (i, 0);
            }
            bytes += size;
        }
        if start < encoded.len() {
            pieces.push((start, encoded.len(), bytes));
        }
        if pieces.is_empty() {
            for c in [stored, commit].into_iter().flatten() {
                c();
            }
            if events.is_empty() {
                return true;
            }
            continue;
        }
        let n = pieces.len();
        let split = split_commit(commit, n)
            .into_iter()
            .zip(split_commit(stored, n));
        for ((from, to, bytes), (commit, stored)) in pieces.into_iter().zip(split) {
            let appended = buffer
                .append_stored(tag, bytes, to - from, commit, stored, |f| {
                    for (e, r) in part[from..to].iter().zip(&encoded[from..to]) {
                        f.push_raw(e.time, r);
                    }
                })
                .await;
            if appended.is_err() {
                return false;
            }
        }
        if events.is_empty() {
            return true;
        }
    }
}
