//! A forward input's listening socket: TCP (with the UDP heartbeat on the
//! same port) or a unix stream socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hydra_config::Listen;
use hydra_io::Conn;
use tokio::net::{TcpListener, UdpSocket, UnixListener};

use crate::error::Error;

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer {
    Tcp(SocketAddr),
    /// A process on this host.
    Unix,
}

impl Peer {
    /// The client's host, which tells resent chunks apart.
    pub(crate) fn host(self) -> IpAddr {
        match self {
            Peer::Tcp(a) => a.ip(),
            Peer::Unix => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix => f.write_str("unix socket"),
        }
    }
}

/// A bound listening socket.
pub(crate) enum Bound {
    Tcp(TcpListener, UdpSocket),
    Unix(UnixSocket),
}

/// A unix listener and the file it made, removed when it closes (if it is
/// still that file).
pub(crate) struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `listen`. A unix socket file left by a process that is gone (no
/// one accepts on it) is replaced; a live one, or a path that is not a
/// socket, is an error naming it. `mode` sets a unix socket's permissions,
/// `owner` its user and group ids.
pub(crate) async fn bind(
    listen: &Listen,
    mode: Option<u32>,
    owner: (Option<u32>, Option<u32>),
) -> Result<Bound, Error> {
    let bind_error = |source| Error::Bind {
        addr: listen.clone(),
        source,
    };
    match listen {
        Listen::Tcp(addr) => {
            let tcp = TcpListener::bind(addr).await.map_err(bind_error)?;
            let local = tcp.local_addr().map_err(bind_error)?;
            let udp = UdpSocket::bind(local).await.map_err(bind_error)?;
            Ok(Bound::Tcp(tcp, udp))
        }
        Listen::Unix(path) => {
            clear_stale(path)?;
            let listener = UnixListener::bind(path).map_err(bind_error)?;
            if let Some(mode) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(bind_error)?;
            }
            if owner != (None, None) {
                std::os::unix::fs::chown(path, owner.0, owner.1).map_err(bind_error)?;
            }
            let meta = std::fs::symlink_metadata(path).map_err(bind_error)?;
            Ok(Bound::Unix(UnixSocket {
                listener,
                path: path.clone(),
                identity: (meta.dev(), meta.ino()),
            }))
        }
    }
}

/// Removes a socket file nothing listens on any more (hydra was killed).
fn clear_stale(path: &Path) -> Result<(), Error> {
    let unusable = |reason| Error::UnixPath {
        path: path.to_owned(),
        reason,
    };
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(unusable("exists and is not a socket"));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(unusable("another process listens on it")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|source| Error::Bind {
                addr: Listen::Unix(path.to_owned()),
                source,
            }),
        Err(_) => Err(unusable("exists and cannot be checked")),
    }
}

impl Bound {
    /// Where it listens: a TCP port chosen by the system is filled in.
    pub(crate) fn local(&self, asked: &Listen) -> Listen {
        match self {
            Bound::Tcp(tcp, _) => tcp.local_addr().map_or(asked.clone(), Listen::Tcp),
            Bound::Unix(u) => Listen::Unix(u.path.clone()),
        }
    }

    /// Splits off the UDP heartbeat socket (TCP only).
    pub(crate) fn split(self) -> (Acceptor, Option<UdpSocket>) {
        match self {
            Bound::Tcp(tcp, udp) => (Acceptor::Tcp(tcp), Some(udp)),
            Bound::Unix(u) => (Acceptor::Unix(u), None),
        }
    }
}

/// What accepts connections.
pub(crate) enum Acceptor {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

impl Acceptor {
    pub(crate) async fn accept(&self) -> std::io::Result<(Conn, Peer)> {
        match self {
            Acceptor::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), Peer::Tcp(peer)))
            }
            Acceptor::Unix(u) => {
                let (s, _) = u.listener.accept().await?;
                Ok((Box::new(s), Peer::Unix))
            }
        }
    }
}
