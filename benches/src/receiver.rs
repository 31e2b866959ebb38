//! A fast counting Forward receiver with acks: validates and counts every
//! frame, and samples end-to-end latency from the `ts=` of one event per
//! frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use hydra_forward::{ForwardDecoder, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

/// What the receiver counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Events received and acked.
    pub events: AtomicU64,
    /// Frames (chunks) received and acked.
    pub chunks: AtomicU64,
    /// Latency samples, nanoseconds.
    pub latencies: Mutex<Vec<u64>>,
    /// When the first and the latest events arrived.
    pub span: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
}

/// Starts a receiver on a free loopback port; returns the port.
pub async fn start(counts: Arc<Counts>) -> std::io::Result<u16> {
    start_on(counts, 0).await
}

/// Starts a receiver on loopback port `port` (0: a free one); returns the
/// port.
pub async fn start_on(counts: Arc<Counts>, port: u16) -> std::io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut decoder = ForwardDecoder::new();
                let mut buf = BytesMut::with_capacity(1 << 20);
                while sock.read_buf(&mut buf).await.unwrap_or(0) > 0 {
                    while let Ok(Some(Request::Events(batch))) = decoder.decode(&mut buf) {
                        if let Some(e) = batch.events().next() {
                            sample(&counts, &e.record());
                        }
                        counts
                            .events
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        counts.chunks.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut span) = counts.span.lock() {
                            let now = std::time::Instant::now();
                            *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
                        }
                        if let Some(ack) = batch.ack()
                            && sock.write_all(&ack).await.is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(port)
}

fn sample(counts: &Counts, record: &rmpv::Value) {
    let Some(msg) = record["message"].as_str() else {
        return;
    };
    let Some(ts) = msg
        .strip_prefix("ts=")
        .and_then(|r| r.split(' ').next())
        .and_then(|t| t.parse::<u128>().ok())
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    if let Ok(mut l) = counts.latencies.lock() {
        l.push(u64::try_from(now.saturating_sub(ts)).unwrap_or(u64::MAX));
    }
}

/// The `p`th percentile of `samples` (0..=100), in milliseconds.
pub fn percentile_ms(samples: &[u64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i.min(s.len() - 1)] as f64 / 1e6
}
