//! What makes a well-formed configuration usable, and where in the text a
//! YAML error is.

use crate::{Config, Error, Input, Listen, Output};

impl Config {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Invalid(m));
        if let Some(m) = &self.monitor {
            m.resolve_token()?;
        }
        if let Err(e) = hydra_filter::Chain::new(&self.filters, "localhost") {
            return bad(e.to_string());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            match input {
                Input::Tail(t) => {
                    if t.tag.trim().is_empty() {
                        return bad(format!("inputs[{i}] (tail): `tag` must not be empty"));
                    }
                    if t.path.to_vec().iter().any(|p| p.trim().is_empty())
                        || t.path.to_vec().is_empty()
                    {
                        return bad(format!(
                            "inputs[{i}] (tail): `path` must name a file or a glob"
                        ));
                    }
                    if t.max_line_bytes.0 == 0 {
                        return bad(format!(
                            "inputs[{i}] (tail): `max_line_bytes` must be positive"
                        ));
                    }
                    if t.max_buffered_bytes.0 == 0 || t.max_buffered_bytes.0 > u64::from(u32::MAX) {
                        return bad(format!(
                            "inputs[{i}] (tail): `max_buffered_bytes` must be between 1 byte and 4GiB"
                        ));
                    }
                    if t.poll_interval.is_zero() || t.refresh_interval.is_zero() {
                        return bad(format!("inputs[{i}] (tail): intervals must be positive"));
                    }
                    if let Err(e) = hydra_parse::Parser::new(&t.parser_spec(&self.field_name)) {
                        return bad(format!("inputs[{i}] (tail): {e}"));
                    }
                    if let Some(m) = &t.multiline {
                        if m.preset.is_some() && (m.start.is_some() || m.continue_.is_some()) {
                            return bad(format!(
                                "inputs[{i}] (tail): `multiline` takes a `preset` or `start`/`continue` patterns, not both"
                            ));
                        }
                        if let Err(e) = m.rules() {
                            return bad(format!("inputs[{i}] (tail): {e}"));
                        }
                        if m.flush_timeout.is_zero() || m.max_lines == 0 || m.max_bytes.0 == 0 {
                            return bad(format!(
                                "inputs[{i}] (tail): `multiline.flush_timeout`, `max_lines` and `max_bytes` must be positive"
                            ));
                        }
                    }
                }
                Input::Forward(f) => {
                    if let Some(s) = &f.security
                        && s.key.sources() != 1
                    {
                        return bad(format!(
                            "inputs[{i}] (forward): `security` needs exactly one of `shared_key`, `shared_key_file`, `shared_key_env`"
                        ));
                    }
                    if f.listen.tcp().is_some_and(|a| a.port() == 0) {
                        return bad(format!(
                            "inputs[{i}] (forward): `listen` needs a port other than 0"
                        ));
                    }
                    if let Some(m) = &f.mode {
                        if !matches!(f.listen, Listen::Unix(_)) {
                            return bad(format!(
                                "inputs[{i}] (forward): `mode` is for `listen: unix:PATH`"
                            ));
                        }
                        if f.socket_mode().is_none() {
                            return bad(format!(
                                "inputs[{i}] (forward): `mode` {m:?} is not an octal file mode such as \"0660\""
                            ));
                        }
                    }
                    if f.max_pending_bytes.0 == 0 || f.max_pending_bytes.0 > u64::from(u32::MAX) {
                        return bad(format!(
                            "inputs[{i}] (forward): `max_pending_bytes` must be between 1 byte and 4GiB"
                        ));
                    }
                    if f.idle_timeout.is_zero() {
                        return bad(format!(
                            "inputs[{i}] (forward): `idle_timeout` must be positive"
                        ));
                    }
                    if f.max_connections == 0 || f.max_frame_bytes.0 < 1024 {
                        return bad(format!(
                            "inputs[{i}] (forward): `max_connections` must be positive and `max_frame_bytes` at least 1KiB"
                        ));
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
                return bad(format!(
                    "{a} is used twice (forward inputs and the monitor need their own addresses)"
                ));
            }
        }
        if let Output::Forward(f) = &self.output {
            if f.servers.is_empty() {
                return bad("output (forward): `servers` must list at least one server".to_owned());
            }
            for (i, s) in f.servers.iter().enumerate() {
                if s.host.trim().is_empty() {
                    return bad(format!("output.servers[{i}]: `host` must not be empty"));
                }
                if s.port == 0 {
                    return bad(format!(
                        "output.servers[{i}]: `port` must be between 1 and 65535"
                    ));
                }
                if s.weight == 0 {
                    return bad(format!("output.servers[{i}]: `weight` must be positive"));
                }
                if s.key.sources() > 1 {
                    return bad(format!(
                        "output.servers[{i}]: use only one of `shared_key`, `shared_key_file`, `shared_key_env`"
                    ));
                }
                if s.username.is_some() != s.password.is_some() {
                    return bad(format!(
                        "output.servers[{i}]: `username` and `password` go together"
                    ));
                }
                if let Some(t) = &s.tls
                    && t.cert.is_some() != t.key.is_some()
                {
                    // A certificate without its key would be dropped
                    // silently, and the server would see no client
                    // certificate at all.
                    return bad(format!(
                        "output.servers[{i}].tls: `cert` and `key` go together"
                    ));
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
                    return bad(format!("output (forward): `{name}` must be positive"));
                }
            }
            if f.chunk_bytes.0 == 0 || f.max_in_flight == 0 {
                return bad(
                    "output (forward): `chunk_bytes` and `max_in_flight` must be positive"
                        .to_owned(),
                );
            }
            if f.dead_letter.as_ref().is_some_and(|d| d.after == 0) {
                return bad("output.dead_letter: `after` must be positive".to_owned());
            }
            if f.chunk_bytes > self.buffer.max_bytes {
                return bad(
                    "output (forward): `chunk_bytes` must not exceed `buffer.max_bytes`".to_owned(),
                );
            }
        }
        if self.buffer.max_bytes.0 < 1024 || self.buffer.max_events == 0 {
            return bad(
                "buffer: `max_bytes` must be at least 1KiB and `max_events` positive".to_owned(),
            );
        }
        Ok(())
    }
}

/// A serde_yaml error with its line. For an unknown key, the line is the
/// key's own: inside a tagged section (`type: ...`) serde_yaml can only
/// point at the section's start.
pub(crate) fn describe(e: &serde_yaml::Error, text: &str) -> String {
    let msg = e.to_string();
    let from = e.location().map_or(0, |l| l.line().saturating_sub(1));
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
        if let Some(n) = text
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| is_key(l))
            .map(|(n, _)| n)
        {
            let base = msg.split(" at line ").next().unwrap_or(&msg);
            return format!("{base} at line {}", n + 1);
        }
    }
    // A bad value: find the line that holds it (`70000`, "lots").
    let token = msg
        .split('`')
        .nth(1)
        .or_else(|| msg.split('"').nth(1))
        .filter(|t| !t.is_empty() && !t.contains(' '));
    if let Some(token) = token
        && let Some(n) = text
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| l.contains(token))
            .map(|(n, _)| n)
    {
        let base = msg.split(" at line ").next().unwrap_or(&msg);
        return format!("{base} at line {}", n + 1);
    }
    match e.location() {
        Some(loc) if !msg.contains(" at line ") => format!("{msg} at line {}", loc.line()),
        _ => msg,
    }
}
