//! Where multiline events begin: the rules that decide, line by line,
//! whether a line continues the event before it (a stack trace's frames)
//! or starts one of its own.
//!
//! The presets know the traces of four runtimes; a custom rule is a `start`
//! pattern, a `continue` pattern, or both. Grouping lines into events with
//! these rules, with offsets, timeouts and limits, is the tailer's job
//! (`hydra_tail::Joiner`).
//!
//! ```
//! use hydra_parse::multiline::{LineState, Preset, Rules};
//!
//! let rules = Rules::preset(Preset::Java)?;
//! let mut state = LineState::default();
//! let lines = ["2026-12-01 ERROR boom", "java.lang.IllegalStateException: x", "\tat a.B.c(B.java:1)", "2026-12-01 INFO next"];
//! let continues: Vec<bool> = lines.iter().map(|l| rules.continues(&mut state, l.as_bytes())).collect();
//! assert_eq!(continues, [false, true, true, false]);
//! # Ok::<(), hydra_parse::Error>(())
//! ```

use std::fmt;

use regex::bytes::Regex;

use crate::Error;

/// The stack traces hydra recognises without a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// `Exception in thread ...`, `pkg.SomeException: ...`, `\tat ...`,
    /// `Caused by: ...`, `Suppressed: ...`, `... N more`. The exception line
    /// continues the log line before it, as a logging framework prints it.
    Java,
    /// `Traceback (most recent call last):`, its indented frames, the final
    /// exception line, and chained tracebacks ("During handling of the
    /// above exception ..." / "The above exception was the direct cause
    /// ..."). The traceback continues the log line before it.
    Python,
    /// `panic:` or `fatal error:` start an event; `goroutine N [...]:`
    /// blocks, their frames (`pkg.f(...)`, `\t/path/file.go:12 +0x1d`) and
    /// `created by` lines continue it.
    Go,
    /// `\tfrom file.rb:12:in ...` backtrace lines continue the line before.
    Ruby,
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Java => "java",
            Preset::Python => "python",
            Preset::Go => "go",
            Preset::Ruby => "ruby",
        })
    }
}

/// Per file, what the lines so far said (a traceback's frames are being
/// read, say). Starts as [`LineState::default`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineState(u8);

// States of the stateful presets. 0 is "outside any trace" everywhere.
const OUTSIDE: u8 = 0;
const PY_FRAMES: u8 = 1;
const PY_RAISED: u8 = 2;
const PY_CHAIN: u8 = 3;
const GO_PANIC: u8 = 1;
const GO_STACKS: u8 = 2;

/// Compiled multiline rules.
#[derive(Clone)]
pub struct Rules {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Java(Regex),
    Python,
    Go(Regex),
    Ruby(Regex),
    Custom {
        start: Option<Regex>,
        cont: Option<Regex>,
    },
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Custom { start, cont } => f
                .debug_struct("Rules")
                .field("start", &start.as_ref().map(Regex::as_str))
                .field("continue", &cont.as_ref().map(Regex::as_str))
                .finish(),
            k => f.debug_tuple("Rules").field(&preset_of(k)).finish(),
        }
    }
}

fn preset_of(kind: &Kind) -> Option<Preset> {
    Some(match kind {
        Kind::Java(_) => Preset::Java,
        Kind::Python => Preset::Python,
        Kind::Go(_) => Preset::Go,
        Kind::Ruby(_) => Preset::Ruby,
        Kind::Custom { .. } => return None,
    })
}

/// Two rules are the same when built from the same preset or patterns.
impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (
                Kind::Custom { start, cont },
                Kind::Custom {
                    start: s2,
                    cont: c2,
                },
            ) => {
                start.as_ref().map(Regex::as_str) == s2.as_ref().map(Regex::as_str)
                    && cont.as_ref().map(Regex::as_str) == c2.as_ref().map(Regex::as_str)
            }
            (a, b) => preset_of(a).is_some() && preset_of(a) == preset_of(b),
        }
    }
}

impl Eq for Rules {}

fn compile(key: &'static str, pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|source| Error::Multiline {
        key,
        source: Box::new(source),
    })
}

impl Rules {
    /// A preset's rules.
    pub fn preset(preset: Preset) -> Result<Rules, Error> {
        let kind = match preset {
            Preset::Java => Kind::Java(compile(
                "preset",
                concat!(
                    r"^(?:\s+at\s|\s*Caused by:|\s*Suppressed:|\s+\.\.\. \d+ (?:more|common frames omitted)",
                    r"|(?:[\w$]+\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$))"
                ),
            )?),
            Preset::Python => Kind::Python,
            // A frame's function line: `main.main()`,
            // `net/http.(*conn).serve(0xc000, {0x6c1f58, 0xc00})`.
            Preset::Go => Kind::Go(compile("preset", r"^\S+\(.*\)$")?),
            Preset::Ruby => Kind::Ruby(compile("preset", r"^\s+(?:from\s+)?\S+:\d+:in\s")?),
        };
        Ok(Rules { kind })
    }

    /// Custom rules: a line matching `start` starts an event; with
    /// `continue`, only lines matching it continue one (others start). At
    /// least one of the two is needed.
    pub fn custom(start: Option<&str>, cont: Option<&str>) -> Result<Rules, Error> {
        let start = start.map(|p| compile("start", p)).transpose()?;
        let cont = cont.map(|p| compile("continue", p)).transpose()?;
        if start.is_none() && cont.is_none() {
            return Err(Error::MultilineRule);
        }
        Ok(Rules {
            kind: Kind::Custom { start, cont },
        })
    }

    /// Whether `line` continues the event before it, updating `state`. The
    /// answer is about the line alone: the caller knows whether an event is
    /// pending at all (a continuing line with none before it starts one).
    pub fn continues(&self, state: &mut LineState, line: &[u8]) -> bool {
        match &self.kind {
            Kind::Java(re) | Kind::Ruby(re) => re.is_match(line),
            Kind::Custom { start, cont } => {
                !start.as_ref().is_some_and(|s| s.is_match(line))
                    && cont.as_ref().is_none_or(|c| c.is_match(line))
            }
            Kind::Python => python(state, line),
            Kind::Go(frame) => go(state, line, frame),
        }
    }
}

fn indented(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

fn python(state: &mut LineState, line: &[u8]) -> bool {
    if line.trim_ascii() == b"Traceback (most recent call last):" {
        *state = LineState(PY_FRAMES);
        return true;
    }
    match state.0 {
        PY_FRAMES => {
            if !indented(line) && !line.is_empty() {
                // The exception the frames led to.
                state.0 = PY_RAISED;
            }
            true
        }
        PY_RAISED if line.is_empty() => {
            // A chained traceback may follow, after a blank line.
            state.0 = PY_CHAIN;
            true
        }
        PY_RAISED => {
            let more = indented(line);
            if !more {
                state.0 = OUTSIDE;
            }
            more
        }
        PY_CHAIN => {
            let chained = line.is_empty()
                || line.starts_with(b"During handling of the above exception")
                || line.starts_with(b"The above exception was the direct cause");
            if !chained {
                state.0 = OUTSIDE;
            }
            chained
        }
        _ => false,
    }
}

fn go(state: &mut LineState, line: &[u8], frame: &Regex) -> bool {
    if line.starts_with(b"panic: ") || line.starts_with(b"fatal error: ") {
        state.0 = GO_PANIC;
        return false;
    }
    let goroutine = line.starts_with(b"goroutine ") && line.ends_with(b":");
    match state.0 {
        GO_PANIC | GO_STACKS => {
            if goroutine {
                state.0 = GO_STACKS;
                return true;
            }
            let more = line.is_empty()
                || indented(line)
                || line.starts_with(b"[signal ")
                || (state.0 == GO_STACKS
                    && (line.starts_with(b"created by ")
                        || line.starts_with(b"...additional frames elided...")
                        || frame.is_match(line)));
            if !more {
                state.0 = OUTSIDE;
            }
            more
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Groups `text`'s lines the way the tailer does: a continuing line
    /// joins the event before it.
    fn group(rules: &Rules, text: &str) -> Vec<String> {
        let mut state = LineState::default();
        let mut events: Vec<String> = Vec::new();
        for line in text.lines() {
            let more = rules.continues(&mut state, line.as_bytes());
            match events.last_mut() {
                Some(e) if more => {
                    e.push('\n');
                    e.push_str(line);
                }
                _ => events.push(line.to_owned()),
            }
        }
        events
    }

    #[test]
    fn java_traces_with_causes_and_suppressed_are_one_event() {
        let trace = "2026-12-01 12:00:00 ERROR [main] c.e.App - request failed
java.lang.IllegalStateException: outer
\tat com.example.App.handle(App.java:42)
\tat com.example.App.main(App.java:10)
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Res.close(Res.java:7)
\t\t... 2 more
Caused by: java.lang.NullPointerException: Cannot invoke \"String.length()\"
\tat com.example.Inner.run(Inner.java:5)
\t... 1 more";
        let text = format!(
            "{trace}\n2026-12-01 12:00:01 INFO [main] c.e.App - next\nException in thread \"main\" java.lang.RuntimeException: boom\n\tat Main.main(Main.java:3)\n2026-12-01 12:00:02 INFO done"
        );
        let events = group(&Rules::preset(Preset::Java).unwrap(), &text);
        assert_eq!(events.len(), 4, "{events:#?}");
        assert_eq!(events[0], trace);
        assert!(events[2].starts_with("Exception in thread"));
        assert!(events[2].ends_with("Main.java:3)"));
    }

    #[test]
    fn python_tracebacks_and_their_chains_are_one_event() {
        let trace = "2026-12-01 12:00:00,123 ERROR app: failed
Traceback (most recent call last):
  File \"/srv/app.py\", line 3, in <module>
    int(\"x\")
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"/srv/app.py\", line 5, in <module>
    raise RuntimeError(\"wrapped\") from None
RuntimeError: wrapped";
        let text = format!("{trace}\n2026-12-01 12:00:01,000 INFO app: next\nplain");
        let events = group(&Rules::preset(Preset::Python).unwrap(), &text);
        assert_eq!(
            events,
            [trace, "2026-12-01 12:00:01,000 INFO app: next", "plain"]
        );
    }

    #[test]
    fn go_panics_with_every_goroutine_are_one_event() {
        let trace = "panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/srv/main.go:8
main.main()
\t/srv/main.go:12 +0x1d

goroutine 6 [chan receive]:
net/http.(*conn).serve(0xc000126000, {0x6c1f58, 0xc0000a2000})
\t/usr/lib/go/src/net/http/server.go:2009 +0x5f4
created by net/http.(*Server).Serve in goroutine 1
\t/usr/lib/go/src/net/http/server.go:3086 +0x5cb";
        let text = format!("2026/12/01 12:00:00 serving\n{trace}\n2026/12/01 12:00:05 restarted");
        let events = group(&Rules::preset(Preset::Go).unwrap(), &text);
        assert_eq!(
            events,
            [
                "2026/12/01 12:00:00 serving",
                trace,
                "2026/12/01 12:00:05 restarted"
            ]
        );
    }

    #[test]
    fn ruby_backtraces_are_one_event() {
        let trace = "app.rb:2:in `fail_hard': boom (RuntimeError)
\tfrom app.rb:5:in `block in <main>'
\tfrom app.rb:4:in `each'
\tfrom app.rb:4:in `<main>'";
        let text =
            format!("I, [2026-12-01] INFO -- : start\n{trace}\nI, [2026-12-01] INFO -- : again");
        let events = group(&Rules::preset(Preset::Ruby).unwrap(), &text);
        assert_eq!(events.len(), 3, "{events:#?}");
        assert_eq!(events[1], trace);
    }

    #[test]
    fn custom_start_and_continue_patterns() {
        let start = Rules::custom(Some(r"^\d{4}-\d\d-\d\d "), None).unwrap();
        assert_eq!(
            group(&start, "2026-12-01 a\nmore\n more\n2026-12-02 b"),
            ["2026-12-01 a\nmore\n more", "2026-12-02 b"]
        );
        let cont = Rules::custom(None, Some(r"^\s")).unwrap();
        assert_eq!(group(&cont, "a\n b\nc"), ["a\n b", "c"]);
        let both = Rules::custom(Some("^BEGIN"), Some(r"^\s")).unwrap();
        assert_eq!(
            group(&both, "BEGIN\n x\nBEGIN\n y\nstray"),
            ["BEGIN\n x", "BEGIN\n y", "stray"]
        );
    }

    #[test]
    fn bad_custom_rules_are_errors_naming_the_key() {
        let e = Rules::custom(Some("("), None).unwrap_err();
        assert!(e.to_string().contains("multiline.start"), "{e}");
        let e = Rules::custom(None, Some("[")).unwrap_err();
        assert!(e.to_string().contains("multiline.continue"), "{e}");
        assert!(matches!(
            Rules::custom(None, None),
            Err(Error::MultilineRule)
        ));
    }

    #[test]
    fn every_preset_compiles() {
        for p in [Preset::Java, Preset::Python, Preset::Go, Preset::Ruby] {
            assert_eq!(Rules::preset(p).unwrap(), Rules::preset(p).unwrap(), "{p}");
        }
    }
}
