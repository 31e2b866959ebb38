//! The Zabbix agent protocol, passive checks: the client side
//! (`zabbix_get`) and the pieces a passive-check server needs.
//!
//! A packet is `"ZBXD"`, a flags byte, the data length and a reserved field
//! (u32 little-endian each, or u64 with the large-packet flag), then the
//! data. With the compressed flag the data is zlib and the reserved field
//! holds its inflated length. The reserved field is never required to be 0:
//! zabbix_agent2 puts the body's length there.
//!
//! ```
//! use hydra_zabbix::{decode_reply, encode_request, Reply};
//! let request = encode_request("agent.ping");
//! assert_eq!(&request[..5], b"ZBXD\x01");
//! let reply = decode_reply(b"ZBXD\x01\x01\x00\x00\x00\x00\x00\x00\x001", 1 << 20)?;
//! assert_eq!(reply, Reply::Value("1".into()));
//! # Ok::<(), hydra_zabbix::Error>(())
//! ```

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Header flag: always set.
pub const FLAG_PROTOCOL: u8 = 0x01;
/// Header flag: the data is zlib-compressed.
pub const FLAG_COMPRESSED: u8 = 0x02;
/// Header flag: lengths are 64-bit.
pub const FLAG_LARGE: u8 = 0x04;
const NOT_SUPPORTED: &[u8] = b"ZBX_NOTSUPPORTED\0";

/// What can go wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reply does not start with `ZBXD`.
    #[error("reply has no ZBXD header")]
    MissingHeader,
    /// The header's flags lack the protocol bit or have unknown bits.
    #[error("unsupported header flags 0x{0:02x}")]
    Flags(u8),
    /// Fewer bytes than the header announced.
    #[error("reply truncated: expected {expected} bytes of data, got {got}")]
    Truncated {
        /// Announced.
        expected: u64,
        /// Received.
        got: u64,
    },
    /// More than the configured limit.
    #[error("reply of {0} bytes is over the limit")]
    TooLarge(u64),
    /// Compressed data that does not inflate.
    #[error("compressed reply does not inflate: {0}")]
    Inflate(std::io::Error),
    /// The connection closed before any reply.
    #[error("connection closed by the agent before replying")]
    Closed,
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The timeout passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// What an agent answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The item's value.
    Value(String),
    /// `ZBX_NOTSUPPORTED` and the agent's reason.
    NotSupported(String),
}

impl std::fmt::Display for Reply {
    /// As `zabbix_get` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Value(v) => f.write_str(v),
            Reply::NotSupported(r) => write!(f, "ZBX_NOTSUPPORTED: {r}"),
        }
    }
}

/// A packet around `data`, with 32-bit lengths.
fn packet(data: &[u8], reserved: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + data.len());
    out.extend_from_slice(b"ZBXD");
    out.push(FLAG_PROTOCOL);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&reserved.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A passive-check request for `key`.
pub fn encode_request(key: &str) -> Vec<u8> {
    packet(key.as_bytes(), 0)
}

/// A reply carrying `reply`, as zabbix_agentd sends it.
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    match reply {
        Reply::Value(v) => packet(v.as_bytes(), 0),
        Reply::NotSupported(r) => {
            let mut data = NOT_SUPPORTED.to_vec();
            data.extend_from_slice(r.as_bytes());
            packet(&data, 0)
        }
    }
}

/// Header: (flags, data length, reserved, header length), or `Ok(None)` if
/// more bytes are needed.
fn header(buf: &[u8]) -> Result<Option<(u8, u64, u64, usize)>, Error> {
    if buf.len() < 5 {
        return if b"ZBXD".starts_with(&buf[..buf.len().min(4)]) {
            Ok(None)
        } else {
            Err(Error::MissingHeader)
        };
    }
    if &buf[..4] != b"ZBXD" {
        return Err(Error::MissingHeader);
    }
    let flags = buf[4];
    if flags & FLAG_PROTOCOL == 0 || flags & !(FLAG_PROTOCOL | FLAG_COMPRESSED | FLAG_LARGE) != 0 {
        return Err(Error::Flags(flags));
    }
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let (n, hdr) = if flags & FLAG_LARGE != 0 {
        (8, 21)
    } else {
        (4, 13)
    };
    if buf.len() < hdr {
        return Ok(None);
    }
    Ok(Some((
        flags,
        le(&buf[5..5 + n]),
        le(&buf[5 + n..5 + 2 * n]),
        hdr,
    )))
}

/// The request key of a complete request packet, or of a plain-text key
/// (old agents' clients send the key followed by a newline, no header).
pub fn decode_request(buf: &[u8], max: usize) -> Result<String, Error> {
    if !buf.starts_with(b"ZBXD") {
        let text = String::from_utf8_lossy(buf);
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    let data = decode_packet(buf, max)?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

fn decode_packet(buf: &[u8], max: usize) -> Result<Vec<u8>, Error> {
    let Some((flags, len, reserved, hdr)) = header(buf)? else {
        return Err(Error::Truncated {
            expected: 13,
            got: buf.len() as u64,
        });
    };
    if len > max as u64 {
        return Err(Error::TooLarge(len));
    }
    let body = &buf[hdr..];
    if (body.len() as u64) < len {
        return Err(Error::Truncated {
            expected: len,
            got: body.len() as u64,
        });
    }
    let body = &body[..usize::try_from(len).unwrap_or(0)];
    if flags & FLAG_COMPRESSED == 0 {
        return Ok(body.to_vec());
    }
    if reserved > max as u64 {
        return Err(Error::TooLarge(reserved));
    }
    let mut out = Vec::with_capacity(usize::try_from(reserved).unwrap_or(0).min(max));
    flate2::read::ZlibDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Error::Inflate)?;
    if out.len() > max {
        return Err(Error::TooLarge(out.len() as u64));
    }
    Ok(out)
}

/// Decodes a complete reply of at most `max` bytes of data.
pub fn decode_reply(buf: &[u8], max: usize) -> Result<Reply, Error> {
    let data = decode_packet(buf, max)?;
    Ok(match data.strip_prefix(NOT_SUPPORTED) {
        Some(reason) => Reply::NotSupported(String::from_utf8_lossy(reason).into_owned()),
        // An agent that sends the marker without its NUL.
        None if data == NOT_SUPPORTED[..NOT_SUPPORTED.len() - 1] => {
            Reply::NotSupported(String::new())
        }
        None => Reply::Value(String::from_utf8_lossy(&data).into_owned()),
    })
}

/// How to reach an agent.
#[derive(Debug, Clone)]
pub struct Client {
    /// The agent's address.
    pub addr: SocketAddr,
    /// Source address to connect from.
    pub source: Option<IpAddr>,
    /// Limit for connecting, sending and receiving together.
    pub timeout: Duration,
    /// Largest reply data accepted.
    pub max_reply: usize,
}

impl Client {
    /// Asks for `key`: one connection per key, as `zabbix_get` does.
    pub async fn get(&self, key: &str) -> Result<Reply, Error> {
        let work = async {
            let socket = if self.addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            if let Some(ip) = self.source {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let mut stream = socket.connect(self.addr).await?;
            stream.write_all(&encode_request(key)).await?;
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 8192];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                // Stop reading once a complete reply is in, or refuse one
                // that announces more than the limit, before buffering it.
                if let Some((_, len, _, hdr)) = header(&buf)? {
                    if len > self.max_reply as u64 {
                        return Err(Error::TooLarge(len));
                    }
                    if buf.len() as u64 >= hdr as u64 + len {
                        break;
                    }
                }
            }
            if buf.is_empty() {
                return Err(Error::Closed);
            }
            decode_reply(&buf, self.max_reply)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flags_lengths_and_compression() {
        assert!(matches!(
            decode_reply(b"HTTP/1.1 400", 100),
            Err(Error::MissingHeader)
        ));
        assert!(matches!(
            decode_reply(b"ZBXD\x08", 100),
            Err(Error::Flags(8))
        ));
        // Large packet: 8-byte lengths.
        let mut large = b"ZBXD\x05".to_vec();
        large.extend_from_slice(&3u64.to_le_bytes());
        large.extend_from_slice(&0u64.to_le_bytes());
        large.extend_from_slice(b"abc");
        assert_eq!(
            decode_reply(&large, 100).unwrap(),
            Reply::Value("abc".into())
        );
        // Compressed, reserved = inflated length.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"ZBX_NOTSUPPORTED\0Unknown metric").unwrap();
        let body = z.finish().unwrap();
        let mut packet = b"ZBXD\x03".to_vec();
        packet.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        packet.extend_from_slice(&31u32.to_le_bytes());
        packet.extend_from_slice(&body);
        assert_eq!(
            decode_reply(&packet, 100).unwrap(),
            Reply::NotSupported("Unknown metric".into())
        );
        // Bounded, both announced and inflated.
        assert!(matches!(decode_reply(&packet, 10), Err(Error::TooLarge(_))));
        let mut huge = b"ZBXD\x01".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            decode_reply(&huge, 1 << 20),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            decode_reply(b"ZBXD\x01\x05\0\0\0\0\0\0\0ab", 100),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn requests_and_replies_round_trip() {
        assert_eq!(
            decode_request(&encode_request("hydra.sent.messages[app]"), 100).unwrap(),
            "hydra.sent.messages[app]"
        );
        assert_eq!(decode_request(b"agent.ping\n", 100).unwrap(), "agent.ping");
        for r in [Reply::Value("42".into()), Reply::NotSupported("no".into())] {
            assert_eq!(decode_reply(&encode_reply(&r), 100).unwrap(), r);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode_reply(&bytes, 1024);
            let mut with_header = b"ZBXD".to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = decode_reply(&with_header, 1024);
            let _ = decode_request(&with_header, 1024);
        }
    }
}
