//! Event times read from a field of the line.

use std::str::FromStr;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{Datelike, Local, NaiveDate, NaiveDateTime, TimeZone};
use hydra_forward::EventTime;

use crate::Error;

/// How a time field is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2024-05-01T12:00:00.5+09:00` (also `Z`).
    Rfc3339,
    /// `01/May/2024:12:00:00 +0900`: Apache's and nginx's `%t`.
    Apache,
    /// `May  1 12:00:00`, in local time, of the year that puts it closest
    /// before now.
    Syslog,
    /// Seconds since the epoch, with an optional fraction.
    Unix,
    /// A strftime pattern (`%Y-%m-%d %H:%M:%S`); local time unless it has
    /// `%z`, `%:z` or `%s`.
    Strftime(String),
}

impl FromStr for TimeFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            "apache" | "nginx" => TimeFormat::Apache,
            "syslog" => TimeFormat::Syslog,
            "unix" | "epoch" => TimeFormat::Unix,
            pattern if pattern.contains('%') => {
                if StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
                    return Err(Error::TimeFormat {
                        format: pattern.to_owned(),
                    });
                }
                TimeFormat::Strftime(pattern.to_owned())
            }
            other => {
                return Err(Error::TimeFormat {
                    format: other.to_owned(),
                });
            }
        })
    }
}

impl TimeFormat {
    /// The time in `value`, or `None` when it is not in this format.
    pub fn parse(&self, value: &[u8]) -> Option<EventTime> {
        match self {
            TimeFormat::Apache => apache(value)
                .or_else(|| strftime(std::str::from_utf8(value).ok()?, "%d/%b/%Y:%H:%M:%S %z")),
            TimeFormat::Rfc3339 => {
                let dt =
                    chrono::DateTime::parse_from_rfc3339(std::str::from_utf8(value).ok()?).ok()?;
                event_time(dt.timestamp(), dt.timestamp_subsec_nanos())
            }
            TimeFormat::Syslog => syslog(std::str::from_utf8(value).ok()?),
            TimeFormat::Unix => unix(value),
            TimeFormat::Strftime(pattern) => strftime(std::str::from_utf8(value).ok()?, pattern),
        }
    }
}

fn event_time(secs: i64, nanos: u32) -> Option<EventTime> {
    Some(EventTime::new(u32::try_from(secs).ok()?, nanos))
}

/// ASCII digits as a number; `None` for anything else or an overflow.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn month(b: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let i = MONTHS.iter().position(|m| m.as_slice() == b)?;
    u32::try_from(i + 1).ok()
}

/// `dd/Mon/yyyy:HH:MM:SS +zzzz`, the one layout Apache and nginx write, read
/// without a general-purpose parser.
fn apache(v: &[u8]) -> Option<EventTime> {
    if v.len() != 26
        || v[2] != b'/'
        || v[6] != b'/'
        || v[11] != b':'
        || v[14] != b':'
        || v[17] != b':'
        || v[20] != b' '
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(&v[7..11])?).ok()?,
        month(&v[3..6])?,
        digits(&v[0..2])?,
    )?;
    let dt = date.and_hms_opt(
        digits(&v[12..14])?,
        digits(&v[15..17])?,
        digits(&v[18..20])?,
    )?;
    let offset = i64::from(digits(&v[22..24])? * 3600 + digits(&v[24..26])? * 60);
    let offset = match v[21] {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };
    event_time(dt.and_utc().timestamp() - offset, 0)
}

fn syslog(s: &str) -> Option<EventTime> {
    let now = Local::now();
    let with_year = format!("{} {s}", now.year());
    let naive = NaiveDateTime::parse_from_str(&with_year, "%Y %b %e %H:%M:%S").ok()?;
    let mut t = Local.from_local_datetime(&naive).earliest()?;
    // Syslog lines carry no year: a December line read in January is from
    // last year.
    if t > now + chrono::Duration::days(1) {
        let naive = naive.with_year(now.year() - 1)?;
        t = Local.from_local_datetime(&naive).earliest()?;
    }
    event_time(t.timestamp(), t.timestamp_subsec_nanos())
}

fn unix(v: &[u8]) -> Option<EventTime> {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &[][..]),
    };
    if int.is_empty() || int.len() > 10 || frac.len() > 9 {
        return None;
    }
    let secs = digits(int)?;
    let nanos = if frac.is_empty() {
        0
    } else {
        digits(frac)? * 10u32.pow(9 - u32::try_from(frac.len()).ok()?)
    };
    Some(EventTime::new(secs, nanos))
}

fn strftime(s: &str, pattern: &str) -> Option<EventTime> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, StrftimeItems::new(pattern)).ok()?;
    if parsed.offset().is_some() || parsed.timestamp().is_some() {
        let dt = parsed.to_datetime().ok()?;
        return event_time(dt.timestamp(), dt.timestamp_subsec_nanos());
    }
    let naive = parsed.to_naive_datetime_with_offset(0).ok()?;
    let t = Local.from_local_datetime(&naive).earliest()?;
    event_time(t.timestamp(), t.timestamp_subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: &str, value: &str) -> Option<EventTime> {
        format.parse::<TimeFormat>().ok()?.parse(value.as_bytes())
    }

    #[test]
    fn apache_with_offsets() {
        // 2013-02-28T03:00:00Z
        assert_eq!(
            parse("apache", "28/Feb/2013:12:00:00 +0900"),
            Some(EventTime::new(1_362_020_400, 0))
        );
        assert_eq!(
            parse("nginx", "27/Feb/2013:22:00:00 -0500"),
            Some(EventTime::new(1_362_020_400, 0))
        );
        assert_eq!(parse("apache", "30/Feb/2013:12:00:00 +0900"), None);
        assert_eq!(parse("apache", "28/Foo/2013:12:00:00 +0900"), None);
        assert_eq!(parse("apache", "garbage"), None);
    }

    #[test]
    fn rfc3339_and_unix() {
        assert_eq!(
            parse("rfc3339", "2013-02-28T12:00:00.25+09:00"),
            Some(EventTime::new(1_362_020_400, 250_000_000))
        );
        assert_eq!(
            parse("rfc3339", "2013-02-28T03:00:00Z"),
            Some(EventTime::new(1_362_020_400, 0))
        );
        // The Go agent's own benchmark line has this (invalid) form.
        assert_eq!(parse("rfc3339", "2013-02-28T12:00:00Z+09:00"), None);
        assert_eq!(
            parse("unix", "1362020400.5"),
            Some(EventTime::new(1_362_020_400, 500_000_000))
        );
        assert_eq!(
            parse("unix", "1362020400"),
            Some(EventTime::new(1_362_020_400, 0))
        );
        assert_eq!(parse("unix", "-1"), None);
        assert_eq!(parse("unix", "99999999999"), None);
        // Ten digits that do not fit in 32 bits (found by fuzzing: this
        // overflowed instead of being refused).
        assert_eq!(parse("unix", "7420400508."), None);
        assert_eq!(
            parse("unix", "4294967295"),
            Some(EventTime::new(u32::MAX, 0))
        );
    }

    #[test]
    fn strftime_with_and_without_offset() {
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S %z", "2013-02-28 12:00:00 +0900"),
            Some(EventTime::new(1_362_020_400, 0))
        );
        let local = Local
            .with_ymd_and_hms(2013, 2, 28, 12, 0, 0)
            .earliest()
            .map(|t| t.timestamp());
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S", "2013-02-28 12:00:00").map(|t| i64::from(t.secs)),
            local
        );
        assert!("%Q".parse::<TimeFormat>().is_err());
        assert!("no-such-name".parse::<TimeFormat>().is_err());
    }

    #[test]
    fn syslog_is_never_in_the_future() {
        let t = parse("syslog", "Dec 31 23:59:59").expect("parses");
        let now = Local::now().timestamp();
        assert!(i64::from(t.secs) <= now + 86_400);
        assert!(i64::from(t.secs) > now - 366 * 86_400);
        assert!(parse("syslog", "Foo 31 23:59:59").is_none());
    }
}
