//! Fields an input adds to every record of a source (its path, the host,
//! what the path's name says), encoded once and copied into each record.

use crate::msgpack;

/// Record fields, already msgpack: key/value pairs to append to a map.
///
/// ```
/// use hydra_forward::{BatchMode, EventTime, ExtraFields, FrameBuilder, TimeFormat};
/// let mut extra = ExtraFields::new();
/// extra.str("host", b"web-1");
/// extra.map("kubernetes", &[("pod_name", b"web-7d9c8"), ("namespace_name", b"prod")]);
/// let mut f = FrameBuilder::new("kube", BatchMode::Forward, TimeFormat::EventTime);
/// f.push_fields_with(EventTime::new(1, 0), &[("log", b"hello")], &extra);
/// let frame = f.finish(None, None);
/// let json = hydra_forward::to_json(&rmpv::decode::read_value(&mut &frame[..]).unwrap()).to_string();
/// assert!(json.contains(r#""kubernetes":{"pod_name":"web-7d9c8","namespace_name":"prod"}"#), "{json}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraFields {
    count: usize,
    encoded: Vec<u8>,
}

impl ExtraFields {
    /// No fields.
    pub fn new() -> ExtraFields {
        ExtraFields::default()
    }

    /// Adds `key: value`, the value a msgpack str (bytes passed through).
    pub fn str(&mut self, key: &str, value: &[u8]) -> &mut Self {
        msgpack::write_str(&mut self.encoded, key.as_bytes());
        msgpack::write_str(&mut self.encoded, value);
        self.count += 1;
        self
    }

    /// Adds `key: {k: v, ...}`, a map of strs.
    pub fn map(&mut self, key: &str, fields: &[(&str, &[u8])]) -> &mut Self {
        msgpack::write_str(&mut self.encoded, key.as_bytes());
        msgpack::write_map_header(&mut self.encoded, fields.len());
        for (k, v) in fields {
            msgpack::write_str(&mut self.encoded, k.as_bytes());
            msgpack::write_str(&mut self.encoded, v);
        }
        self.count += 1;
        self
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The pairs, to follow a map header that counts them.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}
