//! Both sides of the shared-key handshake: the server sends HELO, the
//! client answers PING, the server checks it and answers PONG, which the
//! client checks in turn.

use std::time::Duration;

use futures_util::StreamExt;
use hydra_forward::{Helo, Ping, Pong, Reply, ReplyDecoder};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::HandshakeError;

/// The client side, on a fresh connection: reads HELO, answers PING, and
/// checks the server's PONG, all within `timeout`. `user` is sent when the
/// server asks for user authentication.
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    self_hostname: &str,
    shared_key: &str,
    user: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<(), HandshakeError> {
    let work = async {
        let mut replies = tokio_util::codec::FramedRead::new(&mut *stream, ReplyDecoder::new());
        let helo = match replies.next().await {
            Some(Ok(Reply::Helo(h))) => h,
            Some(Ok(_)) => return Err(HandshakeError::Expected("HELO")),
            Some(Err(e)) => return Err(HandshakeError::Decode(e)),
            None => return Err(HandshakeError::Closed("HELO")),
        };
        let ping = Ping::answer(&helo, self_hostname, shared_key, user);
        replies.get_mut().write_all(&ping.to_msgpack()).await?;
        match replies.next().await {
            Some(Ok(Reply::Pong(pong))) => {
                pong.verify(&ping, &helo.nonce, shared_key)
                    .map_err(|error| HandshakeError::Refused {
                        error,
                        reason: pong.reason.clone(),
                    })
            }
            Some(Ok(_)) => Err(HandshakeError::Expected("PONG")),
            Some(Err(e)) => Err(HandshakeError::Decode(e)),
            None => Err(HandshakeError::Closed("PONG")),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(HandshakeError::TimedOut))
}

/// What a server checks clients against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSecurity {
    /// The server's name in PONG.
    pub hostname: String,
    /// The key both sides know.
    pub shared_key: String,
    /// User names and passwords; empty when no user authentication is
    /// asked for.
    pub users: Vec<(String, String)>,
}

/// The server side, begun: HELO sent, the client's PING awaited. The
/// server reads the PING with its own reader (it is the first frame the
/// client sends) and passes it to [`ServerHandshake::answer`].
#[derive(Debug)]
pub struct ServerHandshake {
    helo: Helo,
}

impl ServerHandshake {
    /// Sends HELO, asking for user authentication when users are
    /// configured.
    pub async fn greet<W: AsyncWrite + Unpin>(
        write: &mut W,
        security: &ServerSecurity,
    ) -> Result<ServerHandshake, HandshakeError> {
        let helo = Helo::generate(!security.users.is_empty(), true);
        write.write_all(&helo.to_msgpack()).await?;
        Ok(ServerHandshake { helo })
    }

    /// Checks the client's PING and answers PONG: an accepting one, or
    /// `["PONG", false, reason, "", ""]` with the error's reason.
    pub async fn answer<W: AsyncWrite + Unpin>(
        self,
        write: &mut W,
        ping: &Ping,
        security: &ServerSecurity,
    ) -> Result<(), HandshakeError> {
        let helo = &self.helo;
        let refused = if !ping.verify_shared_key(&helo.nonce, &security.shared_key) {
            Some(HandshakeError::SharedKey)
        } else if !security.users.is_empty()
            && !security
                .users
                .iter()
                .any(|(u, p)| ping.verify_password(&helo.auth, u, p))
        {
            Some(HandshakeError::User)
        } else {
            None
        };
        let pong = match &refused {
            Some(e) => Pong::refuse(e.reason()),
            None => Pong::accept(ping, &helo.nonce, &security.hostname, &security.shared_key),
        };
        write.write_all(&pong.to_msgpack()).await?;
        refused.map_or(Ok(()), Err)
    }
}
