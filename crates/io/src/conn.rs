//! The connection type every side uses, and opening one as a client.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::Error;

/// What a connection is underneath: TCP or a unix socket, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Any connection, plain or TLS, TCP or unix.
pub type Conn = Box<dyn Io>;

/// Where a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A host name or address, and a port; the name is resolved on every
    /// connect, so a server whose address changes is found again.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix stream socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Connects to `target` within `timeout`, then runs TLS over it when `tls`
/// is given (the connector and the name to verify), within the same
/// timeout again. TCP connections send small frames at once (no Nagle).
pub async fn connect(
    target: &Target,
    tls: Option<&(hydra_tls::TlsConnector, hydra_tls::ServerName<'static>)>,
    timeout: Duration,
) -> Result<Conn, Error> {
    let connected = match target {
        Target::Tcp { host, port } => tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), *port)),
        )
        .await
        .map(|r| {
            r.map(|s| {
                let _ = s.set_nodelay(true);
                Box::new(s) as Conn
            })
        }),
        Target::Unix(path) => tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
            .await
            .map(|r| r.map(|s| Box::new(s) as Conn)),
    };
    let conn = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(source)) => {
            return Err(Error::Connect {
                target: target.to_string(),
                source,
            });
        }
        Err(_) => {
            return Err(Error::ConnectTimeout {
                target: target.to_string(),
                after: timeout,
            });
        }
    };
    let Some((connector, name)) = tls else {
        return Ok(conn);
    };
    match tokio::time::timeout(timeout, connector.connect(name.clone(), conn)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(Error::Tls(e)),
        Err(_) => Err(Error::TlsTimeout(timeout)),
    }
}
