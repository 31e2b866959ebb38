//! What the sender is told: its servers, timeouts and dead-letter file.

use std::time::Duration;

use crate::{Backoff, Balance, Error};

/// A server's share in round robin, unless configured.
pub const DEFAULT_WEIGHT: u32 = 60;
/// How long connecting may take, unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing a chunk may take, unless configured.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an ack may take, unless configured.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Health a returning server needs before it takes traffic back, unless
/// configured.
pub const DEFAULT_RECOVER_WAIT: Duration = Duration::from_secs(10);
/// Chunks in flight per connection, unless configured.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Host name or address; resolved on each connection attempt.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Share in round robin.
    pub weight: u32,
    /// Used only while every non-standby server is down.
    pub standby: bool,
    /// Shared key for the handshake; none: no handshake.
    pub shared_key: Option<String>,
    /// User for the handshake's user authentication.
    pub username: Option<String>,
    /// Password for it.
    pub password: Option<String>,
    /// TLS to this server; none: plain TCP.
    pub tls: Option<hydra_tls::ClientTls>,
    /// A unix socket to connect to instead of `host:port` (fluentd's
    /// in_unix, hydra's `listen: unix:PATH`).
    pub unix: Option<std::path::PathBuf>,
}

impl ServerConfig {
    /// A server at `host:port` with default settings.
    pub fn new(host: &str, port: u16) -> Self {
        ServerConfig {
            host: host.to_owned(),
            port,
            weight: DEFAULT_WEIGHT,
            standby: false,
            shared_key: None,
            username: None,
            password: None,
            tls: None,
            unix: None,
        }
    }

    /// A server on the unix socket `path`, with default settings.
    pub fn unix(path: impl Into<std::path::PathBuf>) -> Self {
        let path = path.into();
        ServerConfig {
            unix: Some(path),
            ..ServerConfig::new("localhost", 0)
        }
    }

    /// Where to connect: the unix socket, or `host:port`.
    pub fn target(&self) -> hydra_io::Target {
        match &self.unix {
            Some(path) => hydra_io::Target::Unix(path.clone()),
            None => hydra_io::Target::Tcp {
                host: self.host.clone(),
                port: self.port,
            },
        }
    }

    /// How the server is named in stats and logs: `host:port`, or
    /// `unix:PATH`.
    pub fn address(&self) -> String {
        match &self.unix {
            Some(path) => format!("unix:{}", path.display()),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// Its TLS connector and expected name, built from the files it names
    /// (`None` without TLS).
    pub fn tls_connector(
        &self,
    ) -> Result<Option<(hydra_tls::TlsConnector, hydra_tls::ServerName<'static>)>, Error> {
        let Some(t) = &self.tls else { return Ok(None) };
        let wrap = |source| Error::Tls {
            server: self.address(),
            source,
        };
        Ok(Some((
            hydra_tls::client_config(t).map_err(wrap)?,
            hydra_tls::server_name(t, &self.host).map_err(wrap)?,
        )))
    }
}

/// How to send.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Destinations, in priority order.
    pub servers: Vec<ServerConfig>,
    /// Failover or round robin.
    pub balance: Balance,
    /// Wait for `{"ack": chunk}` before a chunk counts as delivered.
    pub require_ack: bool,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up writing a chunk after this long.
    pub send_timeout: Duration,
    /// Give up waiting for an ack after this long: the connection is
    /// dropped and its chunks go elsewhere.
    pub ack_timeout: Duration,
    /// Health a returning server needs before taking traffic back.
    pub recover_wait: Duration,
    /// Chunks sent but not yet acked, per connection.
    pub max_in_flight: usize,
    /// First reconnection delay.
    pub backoff_min: Duration,
    /// Longest reconnection delay.
    pub backoff_max: Duration,
    /// Host name sent in the handshake.
    pub self_hostname: String,
    /// Where a chunk refused `after` times goes; retried for ever without.
    pub dead_letter: Option<DeadLetter>,
}

impl SenderConfig {
    /// Checks what [`crate::Sender::spawn`] would refuse (backoff bounds, each
    /// server's TLS files) without starting anything.
    pub fn check(&self) -> Result<(), Error> {
        Backoff::try_new(self.backoff_min, self.backoff_max, 0.2)?;
        for server in &self.servers {
            server.tls_connector()?;
        }
        Ok(())
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            servers: Vec::new(),
            balance: Balance::Failover,
            require_ack: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            recover_wait: DEFAULT_RECOVER_WAIT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            self_hostname: "hydra".to_owned(),
            dead_letter: None,
        }
    }
}

/// Where chunks the servers keep refusing go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Appended to, one Forward frame per chunk, as it was sent.
    pub path: std::path::PathBuf,
    /// Failed sends with the chunk first in line before it is written
    /// there.
    pub after: u32,
}
