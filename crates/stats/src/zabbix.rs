//! The Zabbix item keys hydra answers about itself.

use crate::Snapshot;

/// The value of a Zabbix item key about hydra, for passive checks, or
/// `None` for a key hydra does not know.
///
/// Keys: `agent.ping`, `hydra.receiver.{messages,bytes,buffered,disposed,
/// connections,acks}`, `hydra.buffer.{bytes,events,max_bytes}`,
/// `hydra.reload_failures`,
/// `hydra.sent.messages[TAG]`, `hydra.sent.bytes[TAG]`,
/// `hydra.server.alive[ADDR]` (1 or 0), `hydra.server.messages[ADDR]`,
/// `hydra.file.position[PATH]`, `hydra.file.behind[PATH]`,
/// `hydra.file.error[PATH]`.
pub fn zabbix_item(s: &Snapshot, key: &str) -> Option<String> {
    let (name, param) = match key.split_once('[') {
        Some((n, rest)) => (n, Some(rest.strip_suffix(']')?.trim_matches('"'))),
        None => (key, None),
    };
    let r = &s.receiver;
    let b = &s.buffer;
    let v = match (name, param) {
        ("agent.ping", None) => 1.to_string(),
        ("hydra.receiver.messages", None) => r.messages.to_string(),
        ("hydra.receiver.bytes", None) => r.bytes.to_string(),
        ("hydra.receiver.buffered", None) => r.buffered.to_string(),
        ("hydra.receiver.disposed", None) => r.disposed.to_string(),
        ("hydra.receiver.connections", None) => r.connections.to_string(),
        ("hydra.receiver.acks", None) => r.acks.to_string(),
        ("hydra.buffer.bytes", None) => b.bytes.to_string(),
        ("hydra.buffer.events", None) => b.events.to_string(),
        ("hydra.buffer.max_bytes", None) => b.max_bytes.to_string(),
        ("hydra.reload_failures", None) => s.reload_failures.to_string(),
        ("hydra.sent.messages", Some(tag)) => s.sent.get(tag).map_or(0, |t| t.messages).to_string(),
        ("hydra.sent.bytes", Some(tag)) => s.sent.get(tag).map_or(0, |t| t.bytes).to_string(),
        ("hydra.server.alive", Some(addr)) => {
            u8::from(s.servers.iter().find(|sv| sv.address == addr)?.alive).to_string()
        }
        ("hydra.server.messages", Some(addr)) => s
            .servers
            .iter()
            .find(|sv| sv.address == addr)?
            .messages
            .to_string(),
        ("hydra.file.position", Some(path)) => s.files.get(path)?.position.to_string(),
        ("hydra.file.behind", Some(path)) => s.files.get(path)?.behind.to_string(),
        ("hydra.file.error", Some(path)) => s.files.get(path)?.error.clone(),
        _ => return None,
    };
    Some(v)
}
