//! What can go wrong on a connection.

use std::time::Duration;

/// Why a connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection was refused, or the name did not resolve.
    #[error("connect: {source}")]
    Connect {
        /// Where.
        target: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// No connection within the timeout.
    #[error("connect: timed out after {after:?}")]
    ConnectTimeout {
        /// Where.
        target: String,
        /// The timeout.
        after: Duration,
    },
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The TLS handshake took longer than the timeout.
    #[error("TLS: handshake timed out after {0:?}")]
    TlsTimeout(Duration),
    /// The shared-key handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// Writing a frame failed.
    #[error("send: {0}")]
    Send(std::io::Error),
    /// Writing a frame took longer than the timeout.
    #[error("send: timed out")]
    SendTimeout,
    /// A chunk's ack did not come within the timeout.
    #[error("no ack within {0:?}")]
    AckTimeout(Duration),
    /// The server closed the connection.
    #[error("connection closed by server")]
    Closed,
    /// The server sent bytes that are not a Forward reply.
    #[error("bad reply: {0}")]
    BadReply(hydra_forward::Error),
    /// The server sent a reply that does not belong here (a HELO or PONG
    /// after the handshake, an ack for another chunk).
    #[error("unexpected message from server")]
    Unexpected,
}

/// Why the shared-key handshake failed, on either side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The other side sent bytes that are not Forward messages.
    #[error("{0}")]
    Decode(hydra_forward::Error),
    /// The connection closed before the named message came.
    #[error("closed before {0}")]
    Closed(&'static str),
    /// Another message came where the named one was due.
    #[error("expected {0}")]
    Expected(&'static str),
    /// The server's PONG refused us, or did not prove it knows the key.
    #[error("{error}: {reason}")]
    Refused {
        /// What was wrong with the PONG.
        error: hydra_forward::Error,
        /// The reason the server gave, as it gave it.
        reason: String,
    },
    /// The client's PING was made with another shared key.
    #[error("shared_key mismatch")]
    SharedKey,
    /// The client's user name or password is not one of the configured.
    #[error("username/password mismatch")]
    User,
    /// The handshake took longer than the timeout.
    #[error("timed out")]
    TimedOut,
}

impl HandshakeError {
    /// The reason a server gives a refused client in its PONG.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::SharedKey => "shared_key mismatch",
            HandshakeError::User => "username/password mismatch",
            _ => "handshake failed",
        }
    }
}
