//! Lines into multiline events, one pending event per file.
//!
//! A [`Joiner`] holds the event being built and the file offset of its
//! first line: the tailer hands out batches that end before that offset,
//! so a position is never committed into the middle of an event, and a
//! crash mid-event reads the event again from its first line.

use std::sync::Arc;
use std::time::Duration;

pub use hydra_parse::multiline::{LineState, Preset, Rules};

/// How a source's lines are joined into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multiline {
    /// Where events begin.
    pub rules: Arc<Rules>,
    /// A pending event is emitted after this long without new data.
    pub flush_timeout: Duration,
    /// An event is cut (and the cut counted) at this many lines.
    pub max_lines: usize,
    /// An event is cut (and the cut counted) before it grows past this many
    /// bytes. A single line longer than this is an event of its own (lines
    /// have their own limit).
    pub max_bytes: usize,
}

impl Multiline {
    /// `rules` with the defaults: 1 s flush timeout, 1,000 lines, 1 MiB.
    pub fn new(rules: Rules) -> Self {
        Multiline {
            rules: Arc::new(rules),
            flush_timeout: Duration::from_secs(1),
            max_lines: 1000,
            max_bytes: 1 << 20,
        }
    }
}

/// Joins one file's lines into events. The lines of an event are joined
/// with `\n`.
///
/// ```
/// use hydra_tail::{Joiner, Multiline};
/// use hydra_tail::multiline::{Preset, Rules};
///
/// let mut joiner = Joiner::new(&Multiline::new(Rules::preset(Preset::Java)?));
/// let mut events = Vec::new();
/// let mut at = 0;
/// for line in ["boom", "java.lang.IllegalStateException: x", "\tat a.B.c(B.java:1)", "next"] {
///     joiner.push(line.as_bytes(), at, |e| events.push(String::from_utf8_lossy(e).into_owned()));
///     at += line.len() as u64 + 1;
/// }
/// assert_eq!(events, ["boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)"]);
/// // "next" waits for the line after it (or the flush timeout), from offset 60.
/// assert_eq!(joiner.pending_since(), Some(60));
/// joiner.flush(|e| events.push(String::from_utf8_lossy(e).into_owned()));
/// assert_eq!(events[1], "next");
/// # Ok::<(), hydra_parse::Error>(())
/// ```
#[derive(Debug)]
pub struct Joiner {
    rules: Arc<Rules>,
    max_lines: usize,
    max_bytes: usize,
    state: LineState,
    event: Vec<u8>,
    lines: usize,
    start: u64,
    cuts: u64,
}

/// An event buffer this large is given back after its event is emitted:
/// one long trace must not pin its size for every quiet file.
const KEEP: usize = 64 << 10;

impl Joiner {
    /// A joiner with nothing pending.
    pub fn new(multiline: &Multiline) -> Self {
        Joiner {
            rules: multiline.rules.clone(),
            max_lines: multiline.max_lines.max(1),
            max_bytes: multiline.max_bytes.max(1),
            state: LineState::default(),
            event: Vec::new(),
            lines: 0,
            start: 0,
            cuts: 0,
        }
    }

    /// Takes the line that starts at file offset `at`. An event it
    /// completes (or cuts) is handed to `emit`.
    pub fn push(&mut self, line: &[u8], at: u64, mut emit: impl FnMut(&[u8])) {
        let continues = self.rules.continues(&mut self.state, line);
        if self.lines > 0 {
            if continues
                && self.lines < self.max_lines
                && self.event.len() + 1 + line.len() <= self.max_bytes
            {
                self.event.push(b'\n');
                self.event.extend_from_slice(line);
                self.lines += 1;
                return;
            }
            if continues {
                self.cuts += 1;
            }
            self.take(&mut emit);
        }
        self.event.extend_from_slice(line);
        self.lines = 1;
        self.start = at;
    }

    /// Emits the pending event, if any.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if self.lines > 0 {
            self.take(&mut emit);
        }
        // What comes next is read as a new start.
        self.state = LineState::default();
    }

    fn take(&mut self, emit: &mut impl FnMut(&[u8])) {
        emit(&self.event);
        self.event.clear();
        if self.event.capacity() > KEEP {
            self.event = Vec::new();
        }
        self.lines = 0;
    }

    /// The file offset of the pending event's first line.
    pub fn pending_since(&self) -> Option<u64> {
        (self.lines > 0).then_some(self.start)
    }

    /// Events cut at `max_lines` or `max_bytes` so far.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn joiner(max_lines: usize, max_bytes: usize) -> Joiner {
        let rules = Rules::custom(None, Some(r"^\s")).unwrap();
        Joiner::new(&Multiline {
            max_lines,
            max_bytes,
            ..Multiline::new(rules)
        })
    }

    fn feed(j: &mut Joiner, lines: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            j.push(l.as_bytes(), 0, |e| {
                out.push(String::from_utf8_lossy(e).into_owned());
            });
        }
        out
    }

    #[test]
    fn events_are_cut_at_max_lines_and_max_bytes_and_counted() {
        let mut j = joiner(3, 1 << 20);
        let out = feed(&mut j, &["a", " 1", " 2", " 3", " 4", "b"]);
        assert_eq!(out, ["a\n 1\n 2", " 3\n 4"]);
        assert_eq!(j.cuts(), 1);
        let mut j = joiner(100, 8);
        let out = feed(&mut j, &["abcd", " ef", " gh", "x"]);
        assert_eq!(out, ["abcd\n ef", " gh"]);
        assert_eq!(j.cuts(), 1);
    }

    #[test]
    fn the_pending_event_starts_at_its_first_line() {
        let mut j = joiner(100, 1 << 20);
        let mut out = Vec::new();
        for (at, l) in [(0, "a"), (2, " b"), (5, "c"), (7, " d")] {
            j.push(l.as_bytes(), at, |e| out.push(e.to_vec()));
        }
        assert_eq!(out, [b"a\n b".to_vec()]);
        assert_eq!(j.pending_since(), Some(5));
        j.flush(|e| out.push(e.to_vec()));
        assert_eq!(j.pending_since(), None);
        assert_eq!(out[1], b"c\n d");
    }
}
