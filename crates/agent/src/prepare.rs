//! What a pipeline binds and loads before it starts: listeners, TLS files
//! and secrets, so that a reload can fail before the running pipeline lets
//! go of anything.

use std::net::SocketAddr;

use hydra_config::{Config, Input, Output};
use hydra_sender::SenderConfig;

use crate::error::Error;
use crate::forward_in;
use crate::mapping::sender_config;

/// A TCP address to listen on: bound already, or to bind at start because
/// the pipeline being replaced still holds it.
pub(crate) enum Socket {
    Bound(tokio::net::TcpListener, SocketAddr),
    Later(SocketAddr),
}

impl Socket {
    /// Binds `addr` now unless `running` listens there (or on the same port
    /// of every address) too.
    pub(crate) async fn new(addr: SocketAddr, running: &[SocketAddr]) -> Result<Socket, Error> {
        if shares(addr, running) {
            return Ok(Socket::Later(addr));
        }
        tokio::net::TcpListener::bind(addr)
            .await
            .map(|l| Socket::Bound(l, addr))
            .map_err(|source| bind_error(addr, source))
    }

    /// The listener, bound now if it was not yet, and its address.
    pub(crate) async fn listen(self) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
        let (listener, addr) = match self {
            Socket::Bound(l, addr) => (l, addr),
            Socket::Later(addr) => (
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| bind_error(addr, source))?,
                addr,
            ),
        };
        let local = listener
            .local_addr()
            .map_err(|source| bind_error(addr, source))?;
        Ok((listener, local))
    }
}

pub(crate) fn bind_error(addr: SocketAddr, source: std::io::Error) -> Error {
    Error::Bind {
        addr: hydra_config::Listen::Tcp(addr),
        source,
    }
}

/// Whether a forward input's `listen` is held by the running pipeline: a
/// TCP address that [`shares`] a port of `held` (the running pipeline's
/// TCP addresses), or the same unix socket path.
pub(crate) fn listen_held(
    listen: &hydra_config::Listen,
    held: &[SocketAddr],
    running: Option<&Config>,
) -> bool {
    match listen {
        hydra_config::Listen::Tcp(a) => shares(*a, held),
        hydra_config::Listen::Unix(_) => running.is_some_and(|r| {
            r.inputs
                .iter()
                .any(|i| matches!(i, Input::Forward(f) if f.listen == *listen))
        }),
    }
}

/// Whether `addr` collides with an address the running pipeline listens
/// on: the same port on the same or an unspecified address. Port 0 never
/// does.
pub(crate) fn shares(addr: SocketAddr, running: &[SocketAddr]) -> bool {
    addr.port() != 0
        && running.iter().any(|r| {
            r.port() == addr.port()
                && (r.ip() == addr.ip() || r.ip().is_unspecified() || addr.ip().is_unspecified())
        })
}

/// Everything a configuration needs that can fail, loaded (and bound,
/// where no running pipeline holds the address) before its pipeline
/// starts.
pub(crate) struct Prepared {
    /// The forward output's settings; `None` for stdout.
    pub(crate) sender: Option<SenderConfig>,
    pub(crate) forward: Vec<forward_in::Prepared>,
    pub(crate) monitor: Option<Socket>,
    pub(crate) zabbix: Option<Socket>,
    pub(crate) token: Option<String>,
    /// The disk buffer, opened now: at the first start, or on a reload
    /// that adds one. A reload that keeps it takes the running one's.
    pub(crate) disk: Option<crate::disk::Disk>,
}

impl Prepared {
    /// Prepares `config`; `running` is the configuration of the pipeline
    /// it will replace, whose addresses are bound only once it stopped.
    pub(crate) async fn new(config: &Config, running: Option<&Config>) -> Result<Prepared, Error> {
        let held: Vec<SocketAddr> = running.map(listen_addrs).unwrap_or_default();
        let disk = prepare_disk(config, running).await?;
        let sender = match &config.output {
            Output::Forward(f) => {
                let mut sender = sender_config(f)?;
                // A chunk every server refuses must not pin its file on
                // disk until the disk fills.
                if sender.dead_letter.is_none()
                    && let Some(d) = &config.buffer.disk
                {
                    sender.dead_letter = Some(hydra_sender::DeadLetter {
                        path: d.path.join("dead").join("refused.forward"),
                        after: hydra_config::DEFAULT_DEAD_LETTER_AFTER,
                    });
                }
                sender.check()?;
                Some(sender)
            }
            Output::Stdout(_) => None,
        };
        // Frames a forward input drops are kept beside the chunks the
        // output could not deliver.
        let dead_letter = match &config.output {
            Output::Forward(f) => f.dead_letter.as_ref().map(|d| d.path.clone()),
            Output::Stdout(_) => None,
        };
        let mut forward = Vec::new();
        for input in &config.inputs {
            if let Input::Forward(f) = input {
                let prefix = match (&config.tag_prefix, &f.tag_prefix) {
                    (Some(a), Some(b)) => Some(format!("{a}.{b}")),
                    (a, b) => a.clone().or_else(|| b.clone()),
                };
                forward.push(
                    forward_in::prepare(
                        f,
                        prefix,
                        !listen_held(&f.listen, &held, running),
                        dead_letter.clone(),
                    )
                    .await?,
                );
            }
        }
        let (monitor, zabbix, token) = match &config.monitor {
            Some(m) => (
                Some(Socket::new(m.listen, &held).await?),
                match m.zabbix_listen {
                    Some(z) => Some(Socket::new(z, &held).await?),
                    None => None,
                },
                m.resolve_token()?,
            ),
            None => (None, None, None),
        };
        Ok(Prepared {
            sender,
            forward,
            monitor,
            zabbix,
            token,
            disk,
        })
    }
}

/// Opens `config`'s disk buffer unless the running pipeline has it. A
/// reload that would move or remove it is refused.
async fn prepare_disk(
    config: &Config,
    running: Option<&Config>,
) -> Result<Option<crate::disk::Disk>, Error> {
    let path = |c: &Config| c.buffer.disk.as_ref().map(|d| d.path.clone());
    if let Some(r) = running
        && r.buffer.disk.is_some()
    {
        if path(r) != path(config) {
            return Err(Error::DiskChanged {
                from: path(r),
                to: path(config),
            });
        }
        return Ok(None);
    }
    if config.buffer.disk.is_none() {
        return Ok(None);
    }
    // Recovery reads every chunk file: off the runtime's threads.
    let config = config.clone();
    tokio::task::spawn_blocking(move || crate::disk::open(&config))
        .await
        .map_err(|_| Error::Disk(hydra_disk::Error::Closed))?
}

/// Whether the monitor on `addr` serves `GET /tap`: the stream of log
/// contents is for this host only, or for whoever holds the token.
pub(crate) fn tap_allowed(addr: SocketAddr, token: Option<&str>) -> bool {
    addr.ip().is_loopback() || token.is_some()
}

/// Every address `config` listens on.
pub(crate) fn listen_addrs(config: &Config) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = config
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Forward(f) => f.listen.tcp(),
            Input::Tail(_) => None,
        })
        .collect();
    if let Some(m) = &config.monitor {
        addrs.push(m.listen);
        addrs.extend(m.zabbix_listen);
    }
    addrs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn tap_is_served_off_this_host_only_with_a_token() {
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(tap_allowed(at("127.0.0.1:24220"), None));
        assert!(tap_allowed(at("[::1]:24220"), None));
        assert!(!tap_allowed(at("0.0.0.0:24220"), None));
        assert!(!tap_allowed(at("10.1.2.3:24220"), None));
        assert!(tap_allowed(at("0.0.0.0:24220"), Some("t0ken")));
    }

    #[test]
    fn an_address_is_shared_by_port_on_the_same_or_any_address() {
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        let running = [at("127.0.0.1:24224"), at("0.0.0.0:24220")];
        assert!(shares(at("127.0.0.1:24224"), &running));
        assert!(shares(at("0.0.0.0:24224"), &running));
        assert!(shares(at("127.0.0.2:24220"), &running));
        assert!(!shares(at("127.0.0.2:24224"), &running));
        assert!(!shares(at("127.0.0.1:24225"), &running));
        assert!(!shares(at("127.0.0.1:0"), &[at("127.0.0.1:0")]));
    }
}
