//! The shared-key handshake (HELO, PING, PONG) and the client side's reply
//! decoder.
//!
//! The server opens with HELO (a nonce, and a salt for user authentication);
//! the client proves it knows the shared key with PING; the server proves
//! the same with PONG. Digests are lowercase hex SHA-512, compared in
//! constant time.

use bytes::{Bytes, BytesMut};
use rmpv::Value;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use tokio_util::codec::Decoder;

use crate::Error;
use crate::msgpack;
use crate::options::ChunkId;
use crate::scan::{Scan, Scanner};

fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn digest_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The PING digest: `sha512(salt + client_hostname + nonce + shared_key)`.
pub fn ping_digest(salt: &[u8], client_hostname: &str, nonce: &[u8], shared_key: &str) -> String {
    sha512_hex(&[
        salt,
        client_hostname.as_bytes(),
        nonce,
        shared_key.as_bytes(),
    ])
}

/// The PONG digest: `sha512(salt + server_hostname + nonce + shared_key)`,
/// where `salt` is the one the client sent in PING.
pub fn pong_digest(salt: &[u8], server_hostname: &str, nonce: &[u8], shared_key: &str) -> String {
    sha512_hex(&[
        salt,
        server_hostname.as_bytes(),
        nonce,
        shared_key.as_bytes(),
    ])
}

/// The user-authentication digest: `sha512(auth_salt + username + password)`.
pub fn password_digest(auth_salt: &[u8], username: &str, password: &str) -> String {
    sha512_hex(&[auth_salt, username.as_bytes(), password.as_bytes()])
}

/// `["HELO", {"nonce": .., "auth": .., "keepalive": ..}]`, server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helo {
    /// Random bytes the client mixes into its digest.
    pub nonce: Bytes,
    /// Salt for user authentication; empty when the server has none.
    pub auth: Bytes,
    /// Whether the server keeps the connection open after a chunk.
    pub keepalive: bool,
}

impl Helo {
    /// A HELO with a fresh 16-byte nonce, and a fresh auth salt when
    /// `user_auth` is on.
    pub fn generate(user_auth: bool, keepalive: bool) -> Self {
        Helo {
            nonce: Bytes::copy_from_slice(&rand::random::<[u8; 16]>()),
            auth: if user_auth {
                Bytes::copy_from_slice(&rand::random::<[u8; 16]>())
            } else {
                Bytes::new()
            },
            keepalive,
        }
    }

    /// The msgpack encoding.
    pub fn to_msgpack(&self) -> Bytes {
        let v = Value::Array(vec![
            Value::from("HELO"),
            Value::Map(vec![
                (Value::from("nonce"), Value::Binary(self.nonce.to_vec())),
                (Value::from("auth"), Value::Binary(self.auth.to_vec())),
                (Value::from("keepalive"), Value::Boolean(self.keepalive)),
            ]),
        ]);
        encode(&v)
    }

    fn from_value(v: &Value) -> Result<Self, Error> {
        let bad = |reason| Error::BadMessage {
            what: "HELO",
            reason,
        };
        let items = v.as_array().ok_or(bad("not an array"))?;
        let [_, Value::Map(opts)] = items.as_slice() else {
            return Err(bad("expected [\"HELO\", options]"));
        };
        let get = |k: &str| {
            opts.iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v)
        };
        Ok(Helo {
            nonce: get("nonce")
                .and_then(bytes_of)
                .ok_or(bad("missing nonce"))?,
            auth: get("auth").and_then(bytes_of).unwrap_or_default(),
            keepalive: get("keepalive").and_then(Value::as_bool).unwrap_or(true),
        })
    }
}

/// `["PING", hostname, salt, digest, username, password_digest]`, client to
/// server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// The client's self-declared host name.
    pub client_hostname: String,
    /// A random salt chosen by the client.
    pub shared_key_salt: Bytes,
    /// [`ping_digest`] in hex.
    pub shared_key_digest: String,
    /// The user name, or empty.
    pub username: String,
    /// [`password_digest`] in hex, or empty.
    pub password_digest: String,
}

impl Ping {
    /// The client's answer to `helo`. User credentials are hashed only when
    /// the server asked for them with a non-empty `auth` salt.
    pub fn answer(
        helo: &Helo,
        client_hostname: &str,
        shared_key: &str,
        user: Option<(&str, &str)>,
    ) -> Self {
        let salt = hex::encode(rand::random::<[u8; 16]>());
        // As Fluentd: the user name always, the digest only when the HELO
        // carried an auth salt (of the empty credentials if none are set).
        let (u, p) = user.unwrap_or(("", ""));
        let password_digest = if helo.auth.is_empty() {
            String::new()
        } else {
            password_digest(&helo.auth, u, p)
        };
        let username = u.to_owned();
        Ping {
            client_hostname: client_hostname.to_owned(),
            shared_key_digest: ping_digest(
                salt.as_bytes(),
                client_hostname,
                &helo.nonce,
                shared_key,
            ),
            shared_key_salt: Bytes::from(salt),
            username,
            password_digest,
        }
    }

    /// Whether the client knows `shared_key`, given the nonce the server sent.
    pub fn verify_shared_key(&self, nonce: &[u8], shared_key: &str) -> bool {
        let expected = ping_digest(
            &self.shared_key_salt,
            &self.client_hostname,
            nonce,
            shared_key,
        );
        digest_eq(&expected, &self.shared_key_digest)
    }

    /// Whether the client's credentials match `username`/`password`, given the
    /// auth salt the server sent.
    pub fn verify_password(&self, auth_salt: &[u8], username: &str, password: &str) -> bool {
        let expected = password_digest(auth_salt, username, password);
        digest_eq(&self.username, username) & digest_eq(&expected, &self.password_digest)
    }

    /// The msgpack encoding.
    pub fn to_msgpack(&self) -> Bytes {
        encode(&Value::Array(vec![
            Value::from("PING"),
            Value::from(self.client_hostname.as_str()),
            Value::from(String::from_utf8_lossy(&self.shared_key_salt).as_ref()),
            Value::from(self.shared_key_digest.as_str()),
            Value::from(self.username.as_str()),
            Value::from(self.password_digest.as_str()),
        ]))
    }

    pub(crate) fn from_msgpack(b: &[u8]) -> Result<Self, Error> {
        let bad = |reason| Error::BadMessage {
            what: "PING",
            reason,
        };
        let v = msgpack::read_value(b, "PING")?;
        let items = v.as_array().ok_or(bad("not an array"))?;
        let [tag, host, salt, digest, user, pass] = items.as_slice() else {
            return Err(bad("expected 6 elements"));
        };
        if tag.as_str() != Some("PING") {
            return Err(bad("not a PING"));
        }
        let text = |v: &Value| text_of(v).ok_or(bad("expected a string field"));
        Ok(Ping {
            client_hostname: text(host)?,
            shared_key_salt: bytes_of(salt).ok_or(bad("salt is not a string"))?,
            shared_key_digest: text(digest)?,
            username: text(user)?,
            password_digest: text(pass)?,
        })
    }
}

/// `["PONG", ok, reason, server_hostname, digest]`, server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Whether the client was accepted.
    pub auth_result: bool,
    /// Why not, when it was refused.
    pub reason: String,
    /// The server's host name.
    pub server_hostname: String,
    /// [`pong_digest`] in hex.
    pub shared_key_digest: String,
}

impl Pong {
    /// The server's acceptance of `ping`.
    pub fn accept(ping: &Ping, nonce: &[u8], server_hostname: &str, shared_key: &str) -> Self {
        Pong {
            auth_result: true,
            reason: String::new(),
            server_hostname: server_hostname.to_owned(),
            shared_key_digest: pong_digest(
                &ping.shared_key_salt,
                server_hostname,
                nonce,
                shared_key,
            ),
        }
    }

    /// A refusal: `["PONG", false, reason, "", ""]`.
    pub fn refuse(reason: &str) -> Self {
        Pong {
            auth_result: false,
            reason: reason.to_owned(),
            server_hostname: String::new(),
            shared_key_digest: String::new(),
        }
    }

    /// Checks the server's answer to our `ping`: accepted, not our own host
    /// name (a loop back to ourselves), and a digest that proves the server
    /// knows the key.
    pub fn verify(&self, ping: &Ping, nonce: &[u8], shared_key: &str) -> Result<(), Error> {
        if !self.auth_result {
            return Err(Error::AuthFailed("server refused the handshake"));
        }
        if self.server_hostname == ping.client_hostname {
            return Err(Error::AuthFailed(
                "server has the same hostname as this client",
            ));
        }
        let expected = pong_digest(
            &ping.shared_key_salt,
            &self.server_hostname,
            nonce,
            shared_key,
        );
        if !digest_eq(&expected, &self.shared_key_digest) {
            return Err(Error::AuthFailed(
                "server's shared key digest does not match",
            ));
        }
        Ok(())
    }

    /// The msgpack encoding.
    pub fn to_msgpack(&self) -> Bytes {
        encode(&Value::Array(vec![
            Value::from("PONG"),
            Value::Boolean(self.auth_result),
            Value::from(self.reason.as_str()),
            Value::from(self.server_hostname.as_str()),
            Value::from(self.shared_key_digest.as_str()),
        ]))
    }

    fn from_value(v: &Value) -> Result<Self, Error> {
        let bad = |reason| Error::BadMessage {
            what: "PONG",
            reason,
        };
        let items = v.as_array().ok_or(bad("not an array"))?;
        let [_, ok, reason, host, digest] = items.as_slice() else {
            return Err(bad("expected 5 elements"));
        };
        let text = |v: &Value| text_of(v).ok_or(bad("expected a string field"));
        Ok(Pong {
            auth_result: ok.as_bool().ok_or(bad("result is not a bool"))?,
            reason: text(reason)?,
            server_hostname: text(host)?,
            shared_key_digest: text(digest)?,
        })
    }
}

/// What a Forward server sends back to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The start of the shared-key handshake.
    Helo(Helo),
    /// The end of the handshake.
    Pong(Pong),
    /// `{"ack": chunk}`: the chunk is safe on the server.
    Ack(ChunkId),
}

/// A tokio-util [`Decoder`] for the sending side: HELO, PONG and acks.
/// Replies are small, so frames are capped at 64 KiB.
#[derive(Debug, Clone)]
pub struct ReplyDecoder {
    scanner: Scanner,
}

impl Default for ReplyDecoder {
    fn default() -> Self {
        ReplyDecoder {
            scanner: Scanner::new(64 << 10, 16),
        }
    }
}

impl ReplyDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for ReplyDecoder {
    type Item = Reply;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, Error> {
        if src.is_empty() {
            return Ok(None);
        }
        let n = match self.scanner.scan(src)? {
            Scan::NeedMore(_) => return Ok(None),
            Scan::Complete(n) => n,
        };
        let frame = src.split_to(n).freeze();
        parse_reply(&frame).map(Some)
    }
}

fn parse_reply(frame: &Bytes) -> Result<Reply, Error> {
    // An ack is a one-entry map; keep its value's raw bytes so it can be
    // compared with the chunk id exactly as sent.
    if frame.starts_with(&[0x81, 0xa3, b'a', b'c', b'k']) {
        return Ok(Reply::Ack(ChunkId::from_raw(frame.slice(5..))));
    }
    let v = msgpack::read_value(frame, "reply")?;
    match v.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
        Some("HELO") => Helo::from_value(&v).map(Reply::Helo),
        Some("PONG") => Pong::from_value(&v).map(Reply::Pong),
        _ => Err(Error::BadMessage {
            what: "reply",
            reason: "neither HELO, PONG nor an ack",
        }),
    }
}

fn encode(v: &Value) -> Bytes {
    let mut out = Vec::new();
    msgpack::write_value(&mut out, v);
    out.into()
}

fn bytes_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::Binary(b) => Some(Bytes::copy_from_slice(b)),
        Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        _ => None,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_handshake_verifies_both_ways() {
        let helo = Helo::generate(true, true);
        let ping = Ping::answer(&helo, "client-1", "secret", Some(("alice", "pw")));
        assert!(ping.verify_shared_key(&helo.nonce, "secret"));
        assert!(!ping.verify_shared_key(&helo.nonce, "wrong"));
        assert!(ping.verify_password(&helo.auth, "alice", "pw"));
        assert!(!ping.verify_password(&helo.auth, "alice", "nope"));
        assert!(!ping.verify_password(&helo.auth, "bob", "pw"));
        let pong = Pong::accept(&ping, &helo.nonce, "server-1", "secret");
        pong.verify(&ping, &helo.nonce, "secret").unwrap();
        assert!(pong.verify(&ping, &helo.nonce, "other").is_err());
        let looped = Pong::accept(&ping, &helo.nonce, "client-1", "secret");
        assert!(looped.verify(&ping, &helo.nonce, "secret").is_err());
        assert!(
            Pong::refuse("no")
                .verify(&ping, &helo.nonce, "secret")
                .is_err()
        );
    }

    #[test]
    fn credentials_are_hashed_only_when_the_server_asks_for_them() {
        // Fluentd's client: the user name always, the digest only with an
        // auth salt; of the empty credentials when none are configured.
        let plain = Helo::generate(false, true);
        let ping = Ping::answer(&plain, "c", "k", Some(("alice", "pw")));
        assert_eq!(
            (ping.username.as_str(), ping.password_digest.as_str()),
            ("alice", "")
        );
        let asking = Helo::generate(true, true);
        let ping = Ping::answer(&asking, "c", "k", None);
        assert_eq!(ping.username, "");
        assert_eq!(ping.password_digest, password_digest(&asking.auth, "", ""));
        assert!(
            Ping::answer(&plain, "c", "k", None)
                .password_digest
                .is_empty()
        );
    }

    #[test]
    fn messages_round_trip_through_their_decoders() {
        let helo = Helo::generate(false, true);
        let mut buf = BytesMut::from(&helo.to_msgpack()[..]);
        assert_eq!(
            ReplyDecoder::new().decode(&mut buf).unwrap(),
            Some(Reply::Helo(helo.clone()))
        );
        let ping = Ping::answer(&helo, "c", "k", None);
        assert_eq!(Ping::from_msgpack(&ping.to_msgpack()).unwrap(), ping);
        let pong = Pong::refuse("shared_key mismatch");
        let mut buf = BytesMut::from(&pong.to_msgpack()[..]);
        assert_eq!(
            ReplyDecoder::new().decode(&mut buf).unwrap(),
            Some(Reply::Pong(pong))
        );
        let chunk = ChunkId::generate();
        let mut buf = BytesMut::from(&chunk.ack()[..]);
        assert_eq!(
            ReplyDecoder::new().decode(&mut buf).unwrap(),
            Some(Reply::Ack(chunk))
        );
    }
}
