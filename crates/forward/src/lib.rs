//! Fluentd's Forward protocol v1, as hydra speaks it on both sides.
//!
//! - [`ForwardDecoder`], a tokio-util [`Decoder`](tokio_util::codec::Decoder)
//!   for the receiving side, accepts every mode real clients send (Message,
//!   Forward, PackedForward with str or bin entries, gzip with several
//!   members, `compressed: "text"`, integer and `EventTime` times,
//!   `[EventTime, metadata]`, `nil` heartbeats) and the handshake's PING.
//!   Every event comes out as raw msgpack `[time, record]` entries, so a
//!   received PackedForward frame is forwarded without being re-encoded.
//! - [`FrameBuilder`] builds PackedForward (or Forward) frames on the sending
//!   side, writing events straight into the frame; [`encode_message`] builds
//!   Message frames; [`FrameParts`] wraps received entries for forwarding.
//! - [`ReplyDecoder`] reads what a server answers: acks, HELO and PONG.
//! - [`Helo`], [`Ping`], [`Pong`] and the digest functions implement the
//!   shared-key handshake.
//!
//! Untrusted input is bounded by [`Limits`]: frame size and nesting depth
//! are checked before bytes are buffered, inflated size while inflating.
//! Errors say, through [`Error::can_continue`], whether only one frame was
//! dropped or the connection must close.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use hydra_forward::{BatchMode, ChunkId, EventTime, ForwardDecoder, FrameBuilder, Request, TimeFormat};
//! use tokio_util::codec::Decoder;
//!
//! // A client batches two log lines and asks for an ack.
//! let mut frame = FrameBuilder::new("nginx.access", BatchMode::PackedForward, TimeFormat::EventTime);
//! frame.push_line(EventTime::new(1_700_000_000, 0), "message", b"GET / 200");
//! frame.push_line(EventTime::new(1_700_000_001, 0), "message", b"GET /favicon.ico 404");
//! let chunk = ChunkId::generate();
//! let bytes = frame.finish(Some(&chunk), None);
//!
//! // The server decodes it, possibly from many small reads.
//! let mut decoder = ForwardDecoder::new();
//! let mut buf = BytesMut::new();
//! let (first, rest) = bytes.split_at(7);
//! buf.extend_from_slice(first);
//! assert!(decoder.decode(&mut buf)?.is_none()); // needs more bytes
//! buf.extend_from_slice(rest);
//! let Some(Request::Events(batch)) = decoder.decode(&mut buf)? else { panic!("expected events") };
//! assert_eq!(batch.tag(), "nginx.access");
//! assert_eq!(batch.len(), 2);
//! let first = batch.events().next().unwrap();
//! assert_eq!(first.time, EventTime::new(1_700_000_000, 0));
//! assert_eq!(first.record()["message"].as_str(), Some("GET / 200"));
//! // Once the events are safe, the server answers with the ack.
//! assert_eq!(batch.ack(), Some(chunk.ack()));
//! # Ok::<(), hydra_forward::Error>(())
//! ```

#![deny(clippy::too_many_lines)]

mod alloc;
mod batch;
mod decode;
mod encode;
mod error;
mod fields;
mod handshake;
mod json;
mod limits;
mod msgpack;
mod options;
mod request;
mod scan;
mod tag;
mod time;

pub use alloc::transient_capacity;
pub use batch::{Event, EventBatch, EventRef, Events, Mode, entry_pieces};
pub use decode::{ForwardDecoder, udp_heartbeat_reply};
pub use encode::{BatchMode, FrameBuilder, FrameParts, encode_message, encode_record};
pub use error::Error;
pub use fields::ExtraFields;
pub use handshake::{
    Helo, Ping, Pong, Reply, ReplyDecoder, password_digest, ping_digest, pong_digest,
};
pub use json::{from_json, json_lines, to_json};
pub use limits::Limits;
pub use options::{ChunkId, Compression, Options};
pub use request::{Compressed, Dropped, Request};
pub use tag::TagPattern;
pub use time::{EVENT_TIME_EXT, EventTime, TimeFormat};
