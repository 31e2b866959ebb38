//! A client that sends one frame at a time and waits for its ack.

use std::time::Duration;

use futures_util::StreamExt;
use hydra_forward::{ChunkId, Reply, ReplyDecoder};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

use crate::{Conn, Error};

/// How long closing a connection may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// One connection, used one frame at a time.
pub struct Client {
    replies: FramedRead<ReadHalf<Conn>, ReplyDecoder>,
    write: WriteHalf<Conn>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `conn` (after its handshake, when there is one).
    pub fn new(conn: Conn) -> Client {
        let (read, write) = tokio::io::split(conn);
        Client {
            replies: FramedRead::new(read, ReplyDecoder::new()),
            write,
        }
    }

    /// Writes `frame`; with `chunk` (the id the frame carries), returns
    /// only once the server acked it, within `timeout`.
    pub async fn send(
        &mut self,
        frame: &[u8],
        chunk: Option<&ChunkId>,
        timeout: Duration,
    ) -> Result<(), Error> {
        match tokio::time::timeout(timeout, self.write.write_all(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Send(e)),
            Err(_) => return Err(Error::SendTimeout),
        }
        let Some(chunk) = chunk else { return Ok(()) };
        match tokio::time::timeout(timeout, self.replies.next()).await {
            Err(_) => Err(Error::AckTimeout(timeout)),
            Ok(None) => Err(Error::Closed),
            Ok(Some(Err(e))) => Err(Error::BadReply(e)),
            Ok(Some(Ok(Reply::Ack(id)))) if id == *chunk => Ok(()),
            Ok(Some(Ok(_))) => Err(Error::Unexpected),
        }
    }

    /// Closes the connection: over TLS, the server sees close_notify rather
    /// than an unexpected end of stream.
    pub async fn close(self) {
        let mut conn = self.replies.into_inner().unsplit(self.write);
        let _ = tokio::time::timeout(CLOSE_WAIT, conn.shutdown()).await;
    }
}
