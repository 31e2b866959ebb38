//! JSON objects transcoded to msgpack as they are read: serde_json's
//! streaming deserializer drives visitors that write msgpack, so no value
//! tree is built.

use std::borrow::Cow;
use std::fmt;

use hydra_forward::EventTime;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::write::{self, MapWriter, finish_header, write_str};
use crate::{FieldType, Fields, LineResult, ParseStats, TimeFormat};

type TimeSlot = Option<Result<EventTime, ()>>;

pub(crate) fn object(
    line: &[u8],
    fields: &Fields,
    map: &mut MapWriter,
    out: &mut Vec<u8>,
    stats: &mut ParseStats,
) -> LineResult {
    let mut de = serde_json::Deserializer::from_slice(line);
    let mut time = None;
    let top = Top {
        fields,
        map,
        out,
        stats,
        time: &mut time,
    };
    let matched = de.deserialize_map(top).is_ok() && de.end().is_ok();
    LineResult { matched, time }
}

struct Top<'a> {
    fields: &'a Fields,
    map: &'a mut MapWriter,
    out: &'a mut Vec<u8>,
    stats: &'a mut ParseStats,
    time: &'a mut TimeSlot,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let key_at = self.out.len();
            self.map.key(self.out, key.as_bytes());
            let is_time = self.fields.is_time_key(key.as_bytes());
            let mut time = None;
            access.next_value_seed(Value {
                out: self.out,
                ty: self.fields.type_of(key.as_bytes()),
                time: is_time.then_some((&self.fields.time_format, &mut time)),
                stats: self.stats,
            })?;
            if is_time {
                // A missing or non-string/number time counts as a failure.
                *self.time = Some(time.unwrap_or(Err(())));
                if !self.fields.keep_time_key {
                    self.map.unkey(self.out, key_at);
                }
            }
        }
        Ok(())
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// One value of any shape, written as msgpack. `ty` and `time` apply to
/// top-level fields only.
struct Value<'a> {
    out: &'a mut Vec<u8>,
    ty: Option<FieldType>,
    time: Option<(&'a TimeFormat, &'a mut TimeSlot)>,
    stats: &'a mut ParseStats,
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Value<'_> {
    fn nested<'b>(&'b mut self) -> Value<'b> {
        Value {
            out: self.out,
            ty: None,
            time: None,
            stats: self.stats,
        }
    }

    fn number_time(&mut self, secs: f64) {
        if let Some((format, slot)) = self.time.as_mut() {
            **slot = Some(match format {
                TimeFormat::Unix if (0.0..4_294_967_296.0).contains(&secs) => {
                    // In range, checked above.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let whole = secs.trunc() as u32;
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let nanos = ((secs.fract() * 1e9).round() as u32).min(999_999_999);
                    Ok(EventTime::new(whole, nanos))
                }
                _ => Err(()),
            });
        }
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        let _ = rmp::encode::write_bool(self.out, v);
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        #[allow(clippy::cast_precision_loss)]
        self.number_time(v as f64);
        let _ = rmp::encode::write_sint(self.out, v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        #[allow(clippy::cast_precision_loss)]
        self.number_time(v as f64);
        let _ = rmp::encode::write_uint(self.out, v);
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.number_time(v);
        let _ = rmp::encode::write_f64(self.out, v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if let Some((format, slot)) = self.time {
            *slot = Some(format.parse(v.as_bytes()).ok_or(()));
        }
        write::write_typed(self.out, v.as_bytes(), self.ty, self.stats);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        let _ = rmp::encode::write_nil(self.out);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0xdd, 0, 0, 0, 0]);
        let mut n = 0u32;
        while seq.next_element_seed(self.nested())?.is_some() {
            n += 1;
        }
        finish_header(self.out, at, n, 0x90, 0xdc, 0xdd);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0xdf, 0, 0, 0, 0]);
        let mut n = 0u32;
        while let Some(key) = access.next_key_seed(KeySeed)? {
            write_str(self.out, key.as_bytes());
            access.next_value_seed(self.nested())?;
            n += 1;
        }
        finish_header(self.out, at, n, 0x80, 0xde, 0xdf);
        Ok(())
    }
}
