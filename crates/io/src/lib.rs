//! Connections for the Forward protocol, for every part of hydra that
//! opens or accepts one.
//!
//! - [`Conn`]: one boxed I/O type, whatever is underneath (TCP or a unix
//!   socket, plain or TLS), so the code above it is written once.
//! - [`connect`]: a client connection to a [`Target`], with TLS when asked.
//! - [`client_handshake`] and [`ServerHandshake`]: the two sides of the
//!   shared-key handshake, side by side, with a typed [`HandshakeError`].
//! - [`Client`]: sends frames one at a time and waits for each ack, for
//!   tools that must know every event arrived (`hydra-cat`).
//!
//! ```
//! use std::time::Duration;
//! use hydra_forward::{BatchMode, ChunkId, EventTime, FrameBuilder, TimeFormat};
//! use hydra_io::{Client, ServerHandshake, ServerSecurity, client_handshake};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hydra_io::Error> {
//! // Both ends of a connection in one process: a client and a server
//! // that share a key.
//! let (client_end, mut server_end) = tokio::io::duplex(64 << 10);
//! let security = ServerSecurity {
//!     hostname: "aggregator".into(),
//!     shared_key: "s3cret".into(),
//!     users: Vec::new(),
//! };
//! let server = tokio::spawn(async move {
//!     use futures_util::StreamExt;
//!     use hydra_forward::{ForwardDecoder, Request};
//!     use tokio::io::AsyncWriteExt;
//!     let greeting = ServerHandshake::greet(&mut server_end, &security).await?;
//!     let (read, mut write) = tokio::io::split(server_end);
//!     let mut requests = tokio_util::codec::FramedRead::new(read, ForwardDecoder::new());
//!     let Some(Ok(Request::Ping(ping))) = requests.next().await else { panic!("no PING") };
//!     greeting.answer(&mut write, &ping, &security).await?;
//!     // Ack the one chunk of events that follows.
//!     let Some(Ok(Request::Events(batch))) = requests.next().await else { panic!("no events") };
//!     write.write_all(&batch.ack().expect("a chunk id")).await.map_err(hydra_io::Error::Send)?;
//!     Ok::<usize, hydra_io::Error>(batch.len())
//! });
//!
//! let mut conn: hydra_io::Conn = Box::new(client_end);
//! client_handshake(&mut conn, "web-1", "s3cret", None, Duration::from_secs(5)).await?;
//! let mut client = Client::new(conn);
//! let mut frame = FrameBuilder::new("app", BatchMode::PackedForward, TimeFormat::EventTime);
//! frame.push_line(EventTime::new(1_700_000_000, 0), "message", b"hello");
//! let chunk = ChunkId::generate();
//! // Returns once the server acked the chunk.
//! client.send(&frame.finish(Some(&chunk), None), Some(&chunk), Duration::from_secs(5)).await?;
//! client.close().await;
//! assert_eq!(server.await.expect("the server task")?, 1);
//! # Ok(())
//! # }
//! ```

#![deny(clippy::too_many_lines)]

mod client;
mod conn;
mod error;
mod handshake;

pub use client::Client;
pub use conn::{Conn, Io, Target, connect};
pub use error::{Error, HandshakeError};
pub use handshake::{ServerHandshake, ServerSecurity, client_handshake};
