//! Byte sizes as the configuration writes them: `64MiB`, `512KiB`, `1GB`
//! or a number of bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte size: `64MiB`, `1GB`, `512KiB`, or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// As `usize`, saturating.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.as_u64()))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "invalid size {s:?} (examples: 64MiB, 512KiB, 1GB)"
                    ))
                }),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let text = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
            .iter()
            .find(|(unit, _)| n >= *unit && n.is_multiple_of(*unit))
            .map_or_else(
                || n.to_string(),
                |(unit, name)| format!("{}{name}", n / unit),
            );
        s.serialize_str(&text)
    }
}
