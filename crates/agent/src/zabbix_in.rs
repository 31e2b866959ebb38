//! Zabbix passive checks about hydra itself (`monitor.zabbix_listen`), so an
//! existing Zabbix setup can watch hydra like any agent.

use std::sync::Arc;
use std::time::Duration;

use hydra_stats::{SnapshotFn, zabbix_item};
use hydra_zabbix::{Reply, decode_request, encode_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

/// Requests are a key: a few hundred bytes at most.
const MAX_REQUEST: usize = 64 << 10;

/// Requests answered at once; each takes at most 5 s.
const MAX_CONNECTIONS: usize = 64;

pub(crate) async fn serve(
    listener: TcpListener,
    snapshot: SnapshotFn,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut failures = crate::log_limit::LogLimit::default();
    loop {
        // Past MAX_CONNECTIONS, new requests wait in the kernel's backlog.
        let permit = tokio::select! {
            _ = stop.changed() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, typically: retrying at once
                    // would spin.
                    if let Some(held_back) = failures.allow(std::time::Instant::now()) {
                        warn!(error = %e, held_back, "Zabbix accept failed; retrying every 100 ms (logged once per 10 s).");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            if let Err(e) =
                tokio::time::timeout(Duration::from_secs(5), answer(stream, &snapshot)).await
            {
                debug!(%peer, error = %e, "Zabbix request timed out.");
            }
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, snapshot: &SnapshotFn) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // Read until a whole request: a ZBXD packet of its announced length,
    // or a plain key ending in a newline.
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return;
        }
        let complete = if buf.starts_with(b"ZBXD") {
            buf.len() >= 13 && {
                let len = u32::from_le_bytes([buf[5], buf[6], buf[7], buf[8]]) as usize;
                buf.len() >= 13 + len
            }
        } else {
            buf.contains(&b'\n')
        };
        if complete {
            break;
        }
    }
    let Ok(key) = decode_request(&buf, MAX_REQUEST) else {
        return;
    };
    let reply = match zabbix_item(&snapshot(), key.trim()) {
        Some(v) => Reply::Value(v),
        None => Reply::NotSupported("Unsupported item key.".to_owned()),
    };
    let _ = stream.write_all(&encode_reply(&reply)).await;
}
