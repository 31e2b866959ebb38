//! Zabbix passive checks about hydra itself (`monitor.zabbix_listen`), so an
//! existing Zabbix setup can watch hydra like any agent.

use std::time::Duration;

use hydra_stats::{SnapshotFn, zabbix_item};
use hydra_zabbix::{Reply, decode_request, encode_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::debug;

/// Requests are a key: a few hundred bytes at most.
const MAX_REQUEST: usize = 64 << 10;

pub(crate) async fn serve(
    listener: TcpListener,
    snapshot: SnapshotFn,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
        };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            if let Err(e) =
                tokio::time::timeout(Duration::from_secs(5), answer(stream, &snapshot)).await
            {
                debug!(%peer, error = %e, "Zabbix request timed out.");
            }
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
