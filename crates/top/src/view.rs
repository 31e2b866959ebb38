//! What `hydra top` shows, as rows of text: the same rows feed the
//! full-screen view and `--once`, so both show the same numbers.

use std::fmt::Write as _;

use hydra_stats::{Server, Snapshot};

use crate::client::Sample;

/// The order of the files table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// By path.
    #[default]
    Path,
    /// Most bytes behind first.
    Behind,
    /// Fastest first.
    Rate,
    /// By tag, then path.
    Tag,
}

impl SortBy {
    /// The order named `path`, `behind`, `rate` or `tag`; by path for any
    /// other name.
    pub fn named(name: &str) -> SortBy {
        match name {
            "behind" => SortBy::Behind,
            "rate" => SortBy::Rate,
            "tag" => SortBy::Tag,
            _ => SortBy::Path,
        }
    }

    /// The next order (the `s` key).
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Path => SortBy::Behind,
            SortBy::Behind => SortBy::Rate,
            SortBy::Rate => SortBy::Tag,
            SortBy::Tag => SortBy::Path,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            SortBy::Path => "path",
            SortBy::Behind => "behind",
            SortBy::Rate => "lines/s",
            SortBy::Tag => "tag",
        }
    }
}

/// Sort order and filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Files table order.
    pub sort: SortBy,
    /// Only files and servers whose path, tag or address contain this.
    pub filter: String,
}

/// Column titles of the files table.
pub const FILE_COLUMNS: [&str; 7] = [
    "PATH", "TAG", "POSITION", "BEHIND", "LINES", "LINES/S", "ERROR",
];
/// Column titles of the forward inputs table.
pub const INPUT_COLUMNS: [&str; 6] = [
    "ADDRESS",
    "CONNECTIONS",
    "EVENTS/S",
    "EVENTS",
    "REJECTED_FRAMES",
    "AUTH_FAILURES",
];
/// Column titles of the servers table.
pub const SERVER_COLUMNS: [&str; 9] = [
    "ADDRESS",
    "STATE",
    "ROLE",
    "EVENTS/S",
    "DELIVERED",
    "ACKS_PENDING",
    "RETRIES",
    "LAST_SUCCESS",
    "ERROR",
];

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn rate(v: f64) -> String {
    format!("{v:.1}")
}

/// Bytes as `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if n >= 1 << 30 {
        format!("{:.1} GiB", f / f64::from(1u32 << 30))
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", f / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s_ago"),
        60..3600 => format!("{}m_ago", secs / 60),
        _ => format!("{}h_ago", secs / 3600),
    }
}

/// The files table: one row per tailed file.
pub fn file_rows(s: &Snapshot, o: &Options) -> Vec<[String; 7]> {
    let mut files: Vec<(&String, &hydra_stats::File)> = s
        .files
        .iter()
        .filter(|(p, f)| p.contains(&o.filter) || f.tag.contains(&o.filter))
        .collect();
    match o.sort {
        SortBy::Path => {}
        SortBy::Behind => files.sort_by(|a, b| b.1.behind.cmp(&a.1.behind).then(a.0.cmp(b.0))),
        SortBy::Rate => files.sort_by(|a, b| {
            b.1.lines_per_sec
                .total_cmp(&a.1.lines_per_sec)
                .then(a.0.cmp(b.0))
        }),
        SortBy::Tag => files.sort_by(|a, b| a.1.tag.cmp(&b.1.tag).then(a.0.cmp(b.0))),
    }
    files
        .into_iter()
        .map(|(p, f)| {
            [
                p.clone(),
                or_dash(&f.tag),
                f.position.to_string(),
                f.behind.to_string(),
                f.lines.to_string(),
                rate(f.lines_per_sec),
                or_dash(&f.error),
            ]
        })
        .collect()
}

/// The forward inputs, one row each.
pub fn input_rows(s: &Snapshot) -> Vec<[String; 6]> {
    s.listeners
        .iter()
        .map(|r| {
            [
                r.address.join(","),
                r.connections.to_string(),
                rate(r.events_per_sec),
                r.messages.to_string(),
                r.dropped_frames.to_string(),
                r.auth_failures.to_string(),
            ]
        })
        .collect()
}

fn role(i: usize, sv: &Server) -> String {
    let role = if sv.standby {
        "standby"
    } else if i == 0 {
        "primary"
    } else {
        "secondary"
    };
    if sv.active {
        format!("{role}*")
    } else {
        role.to_owned()
    }
}

/// The servers table. `now` is the Unix time, for "time since last
/// success". A `*` after the role marks the server(s) getting traffic.
pub fn server_rows(s: &Snapshot, o: &Options, now: u64) -> Vec<[String; 9]> {
    s.servers
        .iter()
        .enumerate()
        .filter(|(_, sv)| sv.address.contains(&o.filter))
        .map(|(i, sv)| {
            [
                sv.address.clone(),
                if sv.alive { "up" } else { "down" }.to_owned(),
                role(i, sv),
                rate(sv.events_per_sec),
                sv.messages.to_string(),
                sv.acks_pending.to_string(),
                sv.retries.to_string(),
                sv.last_delivery
                    .map_or_else(|| "never".to_owned(), |t| ago(now.saturating_sub(t))),
                or_dash(&sv.error),
            ]
        })
        .collect()
}

/// How full the buffer is, 0 to 1, and the line that says so.
pub fn buffer_line(s: &Snapshot) -> (f64, String) {
    let b = &s.buffer;
    #[allow(clippy::cast_precision_loss)]
    let ratio = if b.max_bytes == 0 {
        0.0
    } else {
        (b.bytes as f64 / b.max_bytes as f64).clamp(0.0, 1.0)
    };
    let mut line = format!(
        "buffer {:.1}% {} of {}, {} events, {} chunks queued, {} retried",
        ratio * 100.0,
        bytes(b.bytes),
        bytes(b.max_bytes),
        b.events,
        b.queued_chunks,
        b.retried_chunks
    );
    if let Some(d) = &s.disk {
        let _ = write!(
            line,
            "; disk {} of {}, {} chunks, oldest {} s, {} corrupt{}{}",
            bytes(d.bytes),
            bytes(d.max_bytes),
            d.chunks,
            d.oldest_secs,
            d.corrupt_records,
            if d.full { ", FULL" } else { "" },
            if d.failing { ", FAILING" } else { "" },
        );
    }
    (ratio, line)
}

/// The header: who, since when, how big.
pub fn header(url: &str, sample: &Sample, status: &str) -> String {
    let sys = &sample.system;
    let health = &sample.snapshot.health;
    let health = if health.is_empty() {
        "ok".to_owned()
    } else {
        health
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "hydra {} at {url} [{status}] health {health}; up {}s, rss {}, cpu {:.1}s, {} threads, {} fds",
        or_dash(&sys.version),
        sys.uptime_seconds.round(),
        bytes(sys.rss_bytes),
        sys.cpu_seconds,
        sys.threads,
        sys.open_fds
    )
}

/// `values` as a line of block characters, scaled to the largest.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0f64, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let i = ((v / max) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

fn table<const N: usize>(out: &mut String, title: &str, columns: [&str; N], rows: &[[String; N]]) {
    let _ = writeln!(out, "\n{title}");
    let mut widths: [usize; N] = columns.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(columns.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        let _ = writeln!(out, "(none)");
    }
}

/// Everything as plain text: what `hydra top --once` prints.
pub fn render_text(url: &str, sample: &Sample, o: &Options, now: u64) -> String {
    let s = &sample.snapshot;
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(url, sample, "connected"));
    let _ = writeln!(out, "{}", buffer_line(s).1);
    let _ = writeln!(
        out,
        "delivered {} events/s, last minute: {}",
        rate(s.delivered_per_sec),
        sparkline(&s.delivered_history)
    );
    table(
        &mut out,
        &format!("FILES (sorted by {})", o.sort.name()),
        FILE_COLUMNS,
        &file_rows(s, o),
    );
    table(&mut out, "FORWARD INPUTS", INPUT_COLUMNS, &input_rows(s));
    table(&mut out, "SERVERS", SERVER_COLUMNS, &server_rows(s, o, now));
    for e in &s.errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hydra_stats::File;

    fn sample() -> Sample {
        let mut s = Snapshot::default();
        for (p, behind, rate) in [("/b.log", 10, 1.0), ("/a.log", 5, 9.0), ("/c.log", 99, 3.0)] {
            s.files.insert(
                p.into(),
                File {
                    tag: format!("t{p}"),
                    behind,
                    lines_per_sec: rate,
                    ..File::default()
                },
            );
        }
        s.servers = vec![
            Server {
                address: "h:1".into(),
                alive: false,
                error: "connection refused".into(),
                ..Server::default()
            },
            Server {
                address: "h:2".into(),
                alive: true,
                active: true,
                last_delivery: Some(95),
                ..Server::default()
            },
        ];
        Sample {
            snapshot: s,
            ..Sample::default()
        }
    }

    #[test]
    fn sort_and_filter() {
        let s = sample().snapshot;
        let paths = |o: &Options| -> Vec<String> {
            file_rows(&s, o).into_iter().map(|r| r[0].clone()).collect()
        };
        let mut o = Options::default();
        assert_eq!(paths(&o), ["/a.log", "/b.log", "/c.log"]);
        o.sort = o.sort.next();
        assert_eq!(paths(&o), ["/c.log", "/b.log", "/a.log"]);
        o.sort = o.sort.next();
        assert_eq!(paths(&o), ["/a.log", "/c.log", "/b.log"]);
        o.filter = "c.".into();
        assert_eq!(paths(&o), ["/c.log"]);
    }

    #[test]
    fn text_has_every_table() {
        let text = render_text("http://x", &sample(), &Options::default(), 100);
        assert!(text.contains("FILES (sorted by path)"), "{text}");
        let server = text
            .lines()
            .find(|l| l.starts_with("h:2"))
            .expect("server row");
        let cells: Vec<&str> = server.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "h:2",
                "up",
                "secondary*",
                "0.0",
                "0",
                "0",
                "0",
                "5s_ago",
                "-"
            ]
        );
        assert!(text.contains("connection refused"));
        assert_eq!(sparkline(&[0.0, 5.0, 10.0]), "▁▅█");
    }
}
