//! Container runtimes' log lines: CRI (`<time> <stream> <P|F> <log>`, as
//! containerd and CRI-O write them under `/var/log/containers`) and
//! Docker's json-file driver (`{"log":"...\n","stream":"stdout","time":"..."}`).
//! A runtime splits a long line into partial pieces (CRI `P`, a Docker
//! `log` without its `\n`); the tailer joins them before anything else.
//!
//! ```
//! use hydra_parse::container::{Container, Stream, decode};
//!
//! let piece = decode(Container::Cri, b"2026-12-01T12:00:00.5Z stderr P half of a ");
//! assert_eq!((piece.stream, piece.partial), (Stream::Stderr, true));
//! assert_eq!(&piece.log[..], b"half of a ");
//! let piece = decode(Container::Docker, br#"{"log":"done\n","stream":"stdout","time":"2026-12-01T12:00:00Z"}"#);
//! assert_eq!((&piece.log[..], piece.partial), (&b"done"[..], false));
//! ```

use std::borrow::Cow;

use hydra_forward::EventTime;
use serde::{Deserialize, Serialize};

use crate::TimeFormat;

/// Which runtime wrote the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    /// containerd, CRI-O.
    Cri,
    /// Docker's json-file driver.
    Docker,
}

/// The stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line, decoded. A line that is not in the runtime's format is kept
/// whole as its own `log`, complete, without a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<'a> {
    /// When the runtime wrote it.
    pub time: Option<EventTime>,
    /// Where the container wrote it.
    pub stream: Stream,
    /// Only part of a line: the next piece continues it.
    pub partial: bool,
    /// What the container wrote (without the runtime's newline).
    pub log: Cow<'a, [u8]>,
}

/// Decodes one line.
pub fn decode(container: Container, line: &[u8]) -> Piece<'_> {
    let parsed = match container {
        Container::Cri => cri(line),
        Container::Docker => docker(line),
    };
    parsed.unwrap_or(Piece {
        time: None,
        stream: Stream::Stdout,
        partial: false,
        log: Cow::Borrowed(line),
    })
}

fn stream(s: &[u8]) -> Option<Stream> {
    match s {
        b"stdout" => Some(Stream::Stdout),
        b"stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

fn cri(line: &[u8]) -> Option<Piece<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = TimeFormat::Rfc3339.parse(parts.next()?)?;
    let stream = stream(parts.next()?)?;
    // `P` or `F`, possibly with more flags after a `:` in later versions.
    let tag = parts.next()?;
    let partial = match tag.split(|b| *b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Piece {
        time: Some(time),
        stream,
        partial,
        log: Cow::Borrowed(parts.next().unwrap_or_default()),
    })
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

fn docker(line: &[u8]) -> Option<Piece<'_>> {
    let d: DockerLine<'_> = serde_json::from_slice(line).ok()?;
    let time = d
        .time
        .as_deref()
        .and_then(|t| TimeFormat::Rfc3339.parse(t.as_bytes()));
    let stream = d
        .stream
        .as_deref()
        .and_then(|s| stream(s.as_bytes()))
        .unwrap_or_default();
    let (log, partial) = match d.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(s) => (Cow::Borrowed(s.as_bytes()), false),
            None => (Cow::Borrowed(s.as_bytes()), true),
        },
        Cow::Owned(mut s) => {
            let complete = s.ends_with('\n');
            if complete {
                s.pop();
            }
            (Cow::Owned(s.into_bytes()), !complete)
        }
    };
    Some(Piece {
        time,
        stream,
        partial,
        log,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_and_their_flags() {
        let p = decode(
            Container::Cri,
            b"2026-12-01T12:00:00.123456789Z stdout F hello world",
        );
        assert_eq!(p.time, Some(EventTime::new(1_796_126_400, 123_456_789)));
        assert_eq!(
            (p.stream, p.partial, &p.log[..]),
            (Stream::Stdout, false, &b"hello world"[..])
        );
        let p = decode(Container::Cri, b"2026-12-01T12:00:00+01:00 stderr P ");
        assert_eq!(
            (p.stream, p.partial, &p.log[..]),
            (Stream::Stderr, true, &b""[..])
        );
        let p = decode(Container::Cri, b"2026-12-01T12:00:00Z stdout F");
        assert_eq!(&p.log[..], b"");
    }

    #[test]
    fn docker_lines_with_escapes_and_partials() {
        let p = decode(
            Container::Docker,
            br#"{"log":"tab\there \"q\" \u00e9\n","stream":"stderr","time":"2026-12-01T12:00:00.5Z"}"#,
        );
        assert_eq!(&p.log[..], "tab\there \"q\" \u{e9}".as_bytes());
        assert_eq!((p.stream, p.partial), (Stream::Stderr, false));
        assert_eq!(p.time, Some(EventTime::new(1_796_126_400, 500_000_000)));
        let p = decode(
            Container::Docker,
            br#"{"log":"16k of it","stream":"stdout"}"#,
        );
        assert!(p.partial);
    }

    #[test]
    fn lines_in_no_known_shape_are_kept_whole() {
        for (c, line) in [
            (Container::Cri, &b"not a cri line"[..]),
            (Container::Cri, b"2026-12-01T12:00:00Z stdin F x"),
            (Container::Docker, b"{\"log\": 3}"),
            (Container::Docker, b"plain"),
        ] {
            let p = decode(c, line);
            assert_eq!((&p.log[..], p.partial, p.time), (line, false, None));
        }
    }
}
