//! `hydra test`: a configuration's line handling (multiline joining, the
//! input's `format`, then the filters, throttles letting everything
//! through) run on the lines of a cases file, without files, sockets or
//! outputs, and compared with the events the case expects.

use std::fmt::Write;

use hydra_config::{Case, Config, Event, Input};
use hydra_parse::Parser;
use hydra_tail::Source;

use crate::error::Error;
use crate::mapping::join_tag;

/// What one case gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// What it expected.
    pub expected: Vec<Event>,
    /// What the configuration made of its lines.
    pub got: Vec<Event>,
}

impl Outcome {
    /// Whether the events are the expected ones.
    pub fn passed(&self) -> bool {
        self.got == self.expected
    }
}

/// Runs every case through `config`. A case naming no tail input of the
/// configuration is an error, as is a rule that does not compile.
///
/// ```
/// use hydra_config::Config;
///
/// let config = Config::from_yaml(
///     "inputs:\n  - {type: tail, path: /var/log/app.log, tag: app, multiline: {preset: java}}\noutput: {type: stdout}\n",
/// )?;
/// let cases = hydra_config::cases_from_yaml(
///     r#"
/// - name: a trace is one event
///   input: app
///   lines: ["boom", "java.lang.IllegalStateException: x", "\tat a.B.c(B.java:1)"]
///   expect:
///     - {tag: app, record: {message: "boom\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)"}}
/// "#,
/// )?;
/// let outcomes = hydra_agent::cases::run(&config, &cases)?;
/// assert!(outcomes[0].passed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(config: &Config, cases: &[Case]) -> Result<Vec<Outcome>, Error> {
    let filters = hydra_filter::Chain::new(&config.filters, &crate::hostname())?;
    cases
        .iter()
        .map(|case| run_one(config, &filters, case))
        .collect()
}

/// Loads a configuration and a cases file and runs them: the report
/// [`report`] prints, and whether every case passed.
pub fn run_files(
    config: &std::path::Path,
    cases: &std::path::Path,
) -> Result<(String, bool), Error> {
    let config = Config::load(config)?;
    let cases = hydra_config::load_cases(cases)?;
    Ok(report(&run(&config, &cases)?))
}

/// The tag and the `path_fields` of a case's file, as the tailer would
/// give them.
fn path_meta(
    prefix: Option<&str>,
    input: &hydra_config::TailInput,
    path: Option<&str>,
) -> Result<(String, hydra_forward::ExtraFields), Error> {
    let (rules, template) = input
        .path_rules()
        .map_err(|rule| hydra_config::Error::Invalid {
            at: format!("tail input {}", input.tag),
            rule,
        })?;
    let values = rules
        .as_ref()
        .zip(path)
        .and_then(|(r, p)| r.read(p.as_bytes()));
    let mut extra = hydra_forward::ExtraFields::new();
    if let Some(v) = &values {
        v.write(&mut extra);
    }
    let tag = match template {
        Some(t) => join_tag(prefix, &t.render(values.as_ref())),
        None => join_tag(prefix, &input.tag),
    };
    Ok((tag, extra))
}

fn run_one(config: &Config, filters: &hydra_filter::Chain, case: &Case) -> Result<Outcome, Error> {
    let prefix = config.tag_prefix.as_deref();
    let input = config
        .inputs
        .iter()
        .find_map(|i| match i {
            Input::Tail(t) if t.tag == case.input || join_tag(prefix, &t.tag) == case.input => {
                Some(t)
            }
            _ => None,
        })
        .ok_or_else(|| Error::NoSuchInput {
            case: case.name.clone(),
            input: case.input.clone(),
        })?;
    let (tag, extra) = path_meta(prefix, input, case.path.as_deref())?;
    let mut parser =
        Parser::new(&input.parser_spec(&config.field_name)).map_err(|source| Error::Parser {
            tag: input.tag.clone(),
            source,
        })?;
    let source = Source {
        max_line_bytes: input.max_line_bytes.as_usize(),
        multiline: crate::tail_in::multiline(input)?,
        container: input.format.container(),
        ..Source::new("")
    };
    let lines: Vec<&[u8]> = case.lines.iter().map(|l| l.as_bytes()).collect();
    let (events, meta) = hydra_tail::group_lines(&source, &lines);
    let mut record = Vec::new();
    let mut records: Vec<hydra_forward::Event> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let read_time = hydra_forward::EventTime::default();
            crate::tail_in::event(&mut parser, e, &extra, meta.get(i), read_time, &mut record)
        })
        .collect();
    filters.apply_now(&tag, &mut records);
    let got = records
        .iter()
        .map(|e| Event {
            tag: tag.clone(),
            record: hydra_forward::to_json(&e.record),
        })
        .collect();
    Ok(Outcome {
        name: case.name.clone(),
        expected: case.expect.clone(),
        got,
    })
}

/// The report `hydra test` prints: one line per case, and for a failing
/// one, each event that differs (`-` expected, `+` got). True when every
/// case passed.
pub fn report(outcomes: &[Outcome]) -> (String, bool) {
    let mut out = String::new();
    let json = |e: Option<&Event>| {
        e.map_or_else(
            || "(none)".to_owned(),
            |e| serde_json::json!({"tag": e.tag, "record": e.record}).to_string(),
        )
    };
    for o in outcomes {
        if o.passed() {
            let _ = writeln!(out, "ok    {}", o.name);
            continue;
        }
        let _ = writeln!(out, "FAIL  {}", o.name);
        for i in 0..o.expected.len().max(o.got.len()) {
            let (want, got) = (o.expected.get(i), o.got.get(i));
            if want != got {
                let _ = writeln!(
                    out,
                    "  event {}:\n  - {}\n  + {}",
                    i + 1,
                    json(want),
                    json(got)
                );
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let _ = writeln!(out, "{} cases, {failed} failed", outcomes.len());
    (out, failed == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn a_failing_case_shows_the_events_that_differ() {
        let config = Config::from_yaml(
            "tag_prefix: web\ninputs:\n  - {type: tail, path: /x.log, tag: app, format: json}\noutput: {type: stdout}\n",
        )
        .unwrap();
        let case = |expect: serde_json::Value| Case {
            name: "json".into(),
            input: "app".into(),
            lines: vec![r#"{"a":1}"#.into(), "not json".into()],
            path: None,
            expect: serde_json::from_value(expect).unwrap(),
        };
        let good = case(serde_json::json!([
            {"tag": "web.app", "record": {"a": 1}},
            {"tag": "web.app", "record": {"message": "not json"}},
        ]));
        let bad = case(serde_json::json!([{"tag": "web.app", "record": {"a": 2}}]));
        let outcomes = run(&config, &[good, bad]).unwrap();
        let (text, ok) = report(&outcomes);
        assert!(!ok);
        assert!(text.starts_with("ok    json\nFAIL  json\n"), "{text}");
        assert!(
            text.contains("  event 1:\n  - {\"tag\":\"web.app\",\"record\":{\"a\":2}}\n  + {\"tag\":\"web.app\",\"record\":{\"a\":1}}\n"),
            "{text}"
        );
        assert!(
            text.contains("  event 2:\n  - (none)\n  + {\"tag\":\"web.app\",\"record\":{\"message\":\"not json\"}}\n"),
            "{text}"
        );
        assert!(text.ends_with("2 cases, 1 failed\n"), "{text}");
    }

    #[test]
    fn a_case_with_a_path_gets_its_path_fields_and_tag() {
        let config = Config::from_yaml(
            "inputs:\n  - {type: tail, path: /srv/*/*.log, tag: 'app.${app}', path_fields: '/srv/(?<app>[^/]+)/'}\noutput: {type: stdout}\n",
        )
        .unwrap();
        let case = |path: Option<&str>, expect: serde_json::Value| Case {
            name: "path".into(),
            input: "app.${app}".into(),
            lines: vec!["hi".into()],
            path: path.map(str::to_owned),
            expect: serde_json::from_value(expect).unwrap(),
        };
        let cases = [
            case(
                Some("/srv/shop/x.log"),
                serde_json::json!([{"tag": "app.shop", "record": {"message": "hi", "app": "shop"}}]),
            ),
            case(
                None,
                serde_json::json!([{"tag": "app._", "record": {"message": "hi"}}]),
            ),
        ];
        let (text, ok) = report(&run(&config, &cases).unwrap());
        assert!(ok, "{text}");
    }

    #[test]
    fn a_case_for_an_input_that_does_not_exist_is_an_error() {
        let config = Config::from_yaml(
            "inputs:\n  - {type: tail, path: /x.log, tag: app}\noutput: {type: stdout}\n",
        )
        .unwrap();
        let case = Case {
            name: "n".into(),
            input: "nope".into(),
            lines: vec![],
            path: None,
            expect: vec![],
        };
        let e = run(&config, &[case]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
