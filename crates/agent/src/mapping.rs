//! The configuration mapped onto the library crates' own settings.

use std::time::Duration;

use hydra_buffer::BufferConfig;
use hydra_config::{Config, Output};
use hydra_forward::TimeFormat;
use hydra_sender::{SenderConfig, ServerConfig};

use crate::error::Error;

/// The sender's settings for the forward output `f`, secrets resolved.
pub(crate) fn sender_config(f: &hydra_config::ForwardOutput) -> Result<SenderConfig, Error> {
    Ok(SenderConfig {
        servers: f
            .servers
            .iter()
            .map(|s| {
                Ok(ServerConfig {
                    host: if s.unix.is_some() {
                        "localhost".to_owned()
                    } else {
                        s.host.clone()
                    },
                    port: s.port(),
                    weight: s.weight,
                    standby: s.standby,
                    shared_key: s.key.resolve()?,
                    username: s.username.clone(),
                    password: s.password.clone(),
                    tls: s.tls.as_ref().map(|t| hydra_tls::ClientTls {
                        ca: t.ca.clone(),
                        server_name: t.server_name.clone(),
                        cert: t.cert.clone(),
                        key: t.key.clone(),
                        insecure: t.insecure,
                    }),
                    unix: s.unix.clone(),
                })
            })
            .collect::<Result<_, Error>>()?,
        balance: f.balance,
        require_ack: f.require_ack,
        connect_timeout: f.connect_timeout,
        send_timeout: f.send_timeout,
        ack_timeout: f.ack_timeout,
        recover_wait: f.recover_wait,
        max_in_flight: f.max_in_flight,
        self_hostname: f.self_hostname.clone().unwrap_or_else(hostname),
        dead_letter: f.dead_letter.as_ref().map(|d| hydra_sender::DeadLetter {
            path: d.path.clone(),
            after: d.after,
        }),
        ..SenderConfig::default()
    })
}

pub(crate) fn join_tag(prefix: Option<&str>, tag: &str) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}.{tag}"),
        None => tag.to_owned(),
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The buffer's settings: its ceiling from `buffer:`, its chunking from the
/// output (stdout gets small chunks, sealed often).
pub(crate) fn buffer_config(config: &Config) -> BufferConfig {
    let (flush_interval, chunk_bytes, require_ack, compress, time_format) = match &config.output {
        Output::Forward(f) => (
            f.flush_interval,
            f.chunk_bytes.as_usize(),
            f.require_ack,
            f.compress,
            if f.time_as_integer {
                TimeFormat::Integer
            } else {
                TimeFormat::EventTime
            },
        ),
        Output::Stdout(_) => (
            Duration::from_millis(100),
            256 << 10,
            false,
            None,
            TimeFormat::EventTime,
        ),
    };
    BufferConfig {
        max_bytes: config.buffer.max_bytes.as_usize(),
        max_events: config.buffer.max_events,
        chunk_bytes,
        flush_interval,
        time_format,
        require_ack,
        compress,
    }
}
