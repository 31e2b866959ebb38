//! Feeds arbitrary lines to every parser format. Each must append exactly
//! one valid msgpack map (nothing is lost), or nothing when a line is
//! dropped, and never panic.
#![no_main]

use std::cell::RefCell;

use hydra_parse::{Format, Parsed, Parser, ParserSpec};
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Compiling the presets' patterns per input would be most of the work.
    static PARSERS: RefCell<Vec<Parser>> = RefCell::new(
        [
            (Format::Ltsv, None, "rfc3339"),
            (Format::Json, None, "unix"),
            (Format::Regexp, Some("apache"), "apache"),
            (Format::Regexp, Some("syslog"), "syslog"),
            (Format::Ltsv, None, "%Y-%m-%d %H:%M:%S%.f%z"),
        ]
        .into_iter()
        .map(|(format, regexp, time_format)| {
            let spec = ParserSpec {
                format,
                regexp: regexp.map(str::to_owned),
                types: "code:integer,size:float,ok:bool".parse().unwrap(),
                time_parse: true,
                time_format: Some(time_format.to_owned()),
                ..ParserSpec::default()
            };
            Parser::new(&spec).unwrap()
        })
        .collect(),
    );
}

fuzz_target!(|line: &[u8]| {
    PARSERS.with_borrow_mut(|parsers| {
        for parser in parsers.iter_mut() {
            let mut out = Vec::new();
            let extra: [(&str, &[u8]); 1] = [("path", b"/var/log/x")];
            match parser.parse(line, &extra, &mut out) {
                Parsed::Record { .. } => {
                    let mut rest = out.as_slice();
                    let v = rmpv::decode::read_value(&mut rest).expect("valid msgpack");
                    assert!(rest.is_empty() && v.is_map());
                }
                Parsed::Dropped => assert!(out.is_empty()),
            }
        }
    });
});
