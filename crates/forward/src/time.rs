use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// msgpack extension type that carries an [`EventTime`].
pub const EVENT_TIME_EXT: i8 = 0;

/// An event timestamp with nanosecond precision: Forward's `EventTime`.
///
/// On the wire it is msgpack extension type 0 with 8 bytes: seconds and
/// nanoseconds, each a big-endian `u32`. Events may also carry a plain
/// integer time (seconds); both decode to this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime {
    /// Seconds since the Unix epoch.
    pub secs: u32,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl EventTime {
    /// A time from seconds and nanoseconds.
    pub const fn new(secs: u32, nanos: u32) -> Self {
        EventTime { secs, nanos }
    }

    /// The current wall-clock time. Times before 1970 or after 2106 (outside
    /// what `u32` seconds can hold) are clamped.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`], clamping to the representable range.
    pub fn from_system_time(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        match u32::try_from(d.as_secs()) {
            Ok(secs) => EventTime::new(secs, d.subsec_nanos()),
            Err(_) => EventTime::new(u32::MAX, 999_999_999),
        }
    }

    /// One nanosecond later (the last representable time stays itself).
    #[inline]
    pub fn next(self) -> Self {
        if self.nanos < 999_999_999 {
            EventTime::new(self.secs, self.nanos + 1)
        } else if self.secs < u32::MAX {
            EventTime::new(self.secs + 1, 0)
        } else {
            self
        }
    }

    /// The 10-byte msgpack encoding (fixext8, type 0).
    pub fn to_msgpack(self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[0] = 0xd7;
        out[1] = 0x00;
        out[2..6].copy_from_slice(&self.secs.to_be_bytes());
        out[6..10].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }

    /// Decodes the 8-byte extension payload.
    pub fn from_ext_payload(payload: &[u8]) -> Option<Self> {
        let b: &[u8; 8] = payload.try_into().ok()?;
        Some(EventTime::new(
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ))
    }
}

impl From<EventTime> for SystemTime {
    fn from(t: EventTime) -> SystemTime {
        UNIX_EPOCH + Duration::new(u64::from(t.secs), t.nanos)
    }
}

/// How an encoder writes event times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// `EventTime` with nanoseconds (Fluentd ≥ 0.14, Fluent Bit).
    #[default]
    EventTime,
    /// Whole seconds as an integer, for old receivers.
    Integer,
}

#[cfg(test)]
mod tests {

    #[test]
    fn next_is_one_nanosecond_later() {
        assert_eq!(EventTime::new(5, 7).next(), EventTime::new(5, 8));
        assert_eq!(EventTime::new(5, 999_999_999).next(), EventTime::new(6, 0));
        let last = EventTime::new(u32::MAX, 999_999_999);
        assert_eq!(last.next(), last);
    }

    use super::*;

    #[test]
    fn msgpack_layout_is_fixext8_type0_big_endian() {
        let t = EventTime::new(1_700_000_001, 100_000_000);
        assert_eq!(
            t.to_msgpack(),
            [0xd7, 0x00, 0x65, 0x53, 0xf1, 0x01, 0x05, 0xf5, 0xe1, 0x00]
        );
        assert_eq!(EventTime::from_ext_payload(&t.to_msgpack()[2..]), Some(t));
        assert_eq!(EventTime::from_ext_payload(&[0; 7]), None);
    }

    #[test]
    fn system_time_round_trip() {
        let t = EventTime::new(1_700_000_000, 123_456_789);
        assert_eq!(EventTime::from_system_time(t.into()), t);
        assert_eq!(
            EventTime::from_system_time(UNIX_EPOCH - Duration::from_secs(5)),
            EventTime::new(0, 0)
        );
    }
}
