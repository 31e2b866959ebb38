//! What makes a well-formed configuration usable, and where in the text a
//! YAML error is.

use crate::{Config, Error, Input, Listen, Output, Rule};

impl Config {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |at: String, rule: Rule| Err(Error::invalid(at, rule));
        if let Some(m) = &self.monitor {
            m.resolve_token()?;
            if m.unhealthy_after.is_zero() {
                return bad("monitor".to_owned(), Rule::Positive("unhealthy_after"));
            }
        }
        if let Err(e) = hydra_filter::Chain::new(&self.filters, "localhost") {
            return Err(Error::Filter(e));
        }
        for (i, input) in self.inputs.iter().enumerate() {
            match input {
                Input::Tail(t) => {
                    let at = || format!("inputs[{i}] (tail)");
                    if t.tag.trim().is_empty() {
                        return bad(at(), Rule::Empty("tag"));
                    }
                    if t.path.to_vec().iter().any(|p| p.trim().is_empty())
                        || t.path.to_vec().is_empty()
                    {
                        return bad(at(), Rule::NoPath);
                    }
                    if t.max_line_bytes.0 == 0 {
                        return bad(at(), Rule::Positive("max_line_bytes"));
                    }
                    if t.max_buffered_bytes.0 == 0 || t.max_buffered_bytes.0 > u64::from(u32::MAX) {
                        let range = "1 byte and 4GiB";
                        return bad(
                            at(),
                            Rule::Range {
                                key: "max_buffered_bytes",
                                range,
                            },
                        );
                    }
                    if t.poll_interval.is_zero() || t.refresh_interval.is_zero() {
                        return bad(at(), Rule::AllPositive("intervals"));
                    }
                    if let Err(e) = hydra_parse::Parser::new(&t.parser_spec(&self.field_name)) {
                        return bad(at(), Rule::Parser(e));
                    }
                    if let Err(rule) = t.path_rules() {
                        return bad(at(), rule);
                    }
                    if let Some(m) = &t.multiline {
                        if m.preset.is_some() && (m.start.is_some() || m.continue_.is_some()) {
                            return bad(at(), Rule::PresetAndPatterns);
                        }
                        if let Err(e) = m.rules() {
                            return bad(at(), Rule::Parser(e));
                        }
                        if m.flush_timeout.is_zero() || m.max_lines == 0 || m.max_bytes.0 == 0 {
                            return bad(
                                at(),
                                Rule::AllPositive(
                                    "`multiline.flush_timeout`, `max_lines` and `max_bytes`",
                                ),
                            );
                        }
                    }
                }
                Input::Forward(f) => {
                    let at = || format!("inputs[{i}] (forward)");
                    if let Some(s) = &f.security
                        && s.key.sources() != 1
                    {
                        return bad(at(), Rule::KeySources { needed: true });
                    }
                    if f.listen.tcp().is_some_and(|a| a.port() == 0) {
                        return bad(at(), Rule::PortZero);
                    }
                    if let Some(m) = &f.mode {
                        if !matches!(f.listen, Listen::Unix(_)) {
                            return bad(at(), Rule::ModeNotUnix);
                        }
                        if f.socket_mode().is_none() {
                            return bad(at(), Rule::ModeNotOctal(m.clone()));
                        }
                    }
                    if (f.owner.is_some() || f.group.is_some())
                        && !matches!(f.listen, Listen::Unix(_))
                    {
                        return bad(at(), Rule::OwnerNotUnix);
                    }
                    if let Err(rule) = f.socket_owner() {
                        return bad(at(), rule);
                    }
                    if f.max_pending_bytes.0 == 0 || f.max_pending_bytes.0 > u64::from(u32::MAX) {
                        let range = "1 byte and 4GiB";
                        return bad(
                            at(),
                            Rule::Range {
                                key: "max_pending_bytes",
                                range,
                            },
                        );
                    }
                    if f.idle_timeout.is_zero() {
                        return bad(at(), Rule::Positive("idle_timeout"));
                    }
                    if f.max_connections == 0 || f.max_frame_bytes.0 < 1024 {
                        return bad(at(), Rule::ConnectionsOrFrame);
                    }
                }
            }
        }
        let listens: Vec<Listen> = self
            .inputs
            .iter()
            .filter_map(|i| match i {
                Input::Forward(f) => Some(f.listen.clone()),
                Input::Tail(_) => None,
            })
            .chain(self.monitor.iter().map(|m| Listen::Tcp(m.listen)))
            .chain(
                self.monitor
                    .iter()
                    .filter_map(|m| m.zabbix_listen.map(Listen::Tcp)),
            )
            .collect();
        for (i, a) in listens.iter().enumerate() {
            if listens[..i].contains(a) {
                return Err(Error::AddressTwice {
                    address: a.to_string(),
                });
            }
        }
        if let Output::Forward(f) = &self.output {
            let at = || "output (forward)".to_owned();
            if f.servers.is_empty() {
                return bad(at(), Rule::NoServers);
            }
            for (i, s) in f.servers.iter().enumerate() {
                let at = || format!("output.servers[{i}]");
                if let Some(path) = &s.unix {
                    // Relative to whatever directory hydra was started in
                    // (`/` under systemd) is never what was meant.
                    if path.is_relative() {
                        return bad(at(), Rule::RelativePath("unix"));
                    }
                    for (given, key) in [
                        (!s.host.is_empty(), "host"),
                        (s.port.is_some(), "port"),
                        (s.tls.is_some(), "tls"),
                    ] {
                        if given {
                            return bad(at(), Rule::NotBoth("unix", key));
                        }
                    }
                } else if s.host.trim().is_empty() {
                    return bad(at(), Rule::Empty("host"));
                }
                if s.port == Some(0) {
                    return bad(
                        at(),
                        Rule::Range {
                            key: "port",
                            range: "1 and 65535",
                        },
                    );
                }
                if s.weight == 0 {
                    return bad(at(), Rule::Positive("weight"));
                }
                if s.key.sources() > 1 {
                    return bad(at(), Rule::KeySources { needed: false });
                }
                if s.username.is_some() != s.password.is_some() {
                    return bad(at(), Rule::Together("username", "password"));
                }
                if let Some(t) = &s.tls
                    && t.cert.is_some() != t.key.is_some()
                {
                    // A certificate without its key would be dropped
                    // silently, and the server would see no client
                    // certificate at all.
                    return bad(
                        format!("output.servers[{i}].tls"),
                        Rule::Together("cert", "key"),
                    );
                }
            }
            for (name, d) in [
                ("connect_timeout", f.connect_timeout),
                ("send_timeout", f.send_timeout),
                ("ack_timeout", f.ack_timeout),
            ] {
                if d.is_zero() {
                    // With `ack_timeout: 0` nothing would ever count as
                    // delivered.
                    return bad(at(), Rule::Positive(name));
                }
            }
            if f.chunk_bytes.0 == 0 || f.max_in_flight == 0 {
                return bad(at(), Rule::AllPositive("`chunk_bytes` and `max_in_flight`"));
            }
            if f.dead_letter.as_ref().is_some_and(|d| d.after == 0) {
                return bad("output.dead_letter".to_owned(), Rule::Positive("after"));
            }
            if f.chunk_bytes > self.buffer.max_bytes {
                return bad(at(), Rule::ChunkOverBuffer);
            }
        }
        if self.buffer.max_bytes.0 < 1024 || self.buffer.max_events == 0 {
            return bad("buffer".to_owned(), Rule::BufferTooSmall);
        }
        self.validate_disk()
    }

    /// `buffer.disk`, and the `ack: stored` that needs it. The directory
    /// need not exist: systemd's `StateDirectory` creates it at start.
    fn validate_disk(&self) -> Result<(), Error> {
        let bad = |at: String, rule: Rule| Err(Error::invalid(at, rule));
        if let Some(d) = &self.buffer.disk {
            let at = || "buffer.disk".to_owned();
            if !d.path.is_absolute() {
                return bad(at(), Rule::RelativePath("path"));
            }
            if d.max_bytes.0 < 1 << 20 {
                return bad(at(), Rule::AtLeast("max_bytes", "1MiB"));
            }
            if d.sync == crate::Sync::Every(std::time::Duration::ZERO) {
                return bad(at(), Rule::Positive("sync"));
            }
        }
        for (i, input) in self.inputs.iter().enumerate() {
            if let Input::Forward(f) = input
                && f.ack == Some(crate::AckWhen::Stored)
                && self.buffer.disk.is_none()
            {
                return bad(format!("inputs[{i}] (forward)"), Rule::StoredNeedsDisk);
            }
        }
        Ok(())
    }

    /// Fills in what the file left to the defaults that depend on other
    /// keys: a server's port (not with `unix`), a forward input's `ack`
    /// (`stored` with `buffer.disk`, `delivered` without).
    pub(crate) fn resolve(mut self) -> Config {
        if let Output::Forward(f) = &mut self.output {
            for s in &mut f.servers {
                if s.unix.is_none() {
                    s.port.get_or_insert(crate::DEFAULT_SERVER_PORT);
                }
            }
        }
        let disk = self.buffer.disk.is_some();
        for input in &mut self.inputs {
            if let Input::Forward(f) = input {
                f.ack.get_or_insert(if disk {
                    crate::AckWhen::Stored
                } else {
                    crate::AckWhen::Delivered
                });
            }
        }
        self
    }
}

/// A serde_yaml error with the line it is about. serde_yaml's own location
/// is where it noticed the error: for an unknown key inside a tagged
/// section (`type: ...`) that is the section's start, so the key's own
/// line is looked for from there; for a bad value, the line that holds it.
pub(crate) fn yaml_error(error: serde_yaml::Error, text: &str) -> Error {
    let line = yaml_line(&error, text);
    Error::Yaml { line, error }
}

fn yaml_line(e: &serde_yaml::Error, text: &str) -> Option<usize> {
    let msg = e.to_string();
    let from = e.location().map_or(0, |l| l.line().saturating_sub(1));
    let line_of = |found: &dyn Fn(&str) -> bool| {
        text.lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| found(l))
            .map(|(n, _)| n + 1)
    };
    let unknown = msg
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    if let Some(key) = unknown {
        let is_key = |line: &str| {
            line.trim_start()
                .trim_start_matches('-')
                .trim_start()
                .starts_with(&format!("{key}:"))
                || line.contains(&format!("{{ {key}:"))
                || line.contains(&format!(", {key}:"))
        };
        if let Some(n) = line_of(&is_key) {
            return Some(n);
        }
    }
    // A bad value: find the line that holds it (`70000`, "lots").
    let token = msg
        .split('`')
        .nth(1)
        .or_else(|| msg.split('"').nth(1))
        .filter(|t| !t.is_empty() && !t.contains(' '));
    if let Some(token) = token
        && let Some(n) = line_of(&|l: &str| l.contains(token))
    {
        return Some(n);
    }
    e.location().map(|l| l.line())
}
