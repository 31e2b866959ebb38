//! Feeds arbitrary lines to every parser format. Each must append exactly
//! one valid msgpack map (nothing is lost), or nothing when a line is
//! dropped, and never panic. The same bytes, split on newlines, go through
//! every multiline preset and a custom rule: the events, joined, must be
//! the lines, joined (none lost, doubled or reordered). And they go through
//! the CRI and Docker decoders and the tailer's partial-line joining, which
//! must not panic, must make no more events than lines, and must keep
//! every complete line's log.
#![no_main]

use std::cell::RefCell;

use hydra_parse::multiline::{Preset, Rules};
use hydra_parse::{Format, Parsed, Parser, ParserSpec};
use hydra_parse::container::{Container, decode};
use hydra_tail::{Joiner, Multiline, Source};
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
    static JOINERS: Vec<Multiline> = [Preset::Java, Preset::Python, Preset::Go, Preset::Ruby]
        .into_iter()
        .map(|p| Rules::preset(p).unwrap())
        .chain([Rules::custom(Some(r"^\d{4}-"), Some(r"^\s")).unwrap()])
        .map(Multiline::new)
        .collect();
}

fuzz_target!(|line: &[u8]| {
    JOINERS.with(|multilines| {
        let lines: Vec<&[u8]> = line.split(|b| *b == b'\n').collect();
        for m in multilines {
            let mut joiner = Joiner::new(m);
            let mut events: Vec<Vec<u8>> = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                joiner.push(l, i as u64, |e| events.push(e.to_vec()));
            }
            joiner.flush(|e| events.push(e.to_vec()));
            assert_eq!(events.join(&b'\n'), lines.join(&b'\n'));
        }
        for container in [Container::Cri, Container::Docker] {
            let source = Source {
                container: Some(container),
                ..Source::new("")
            };
            let (events, meta) = hydra_tail::group_lines(&source, &lines);
            assert!(events.len() <= lines.len() && meta.len() == events.len());
            let logs: usize = lines.iter().map(|l| decode(container, l).log.len()).sum();
            assert!(events.iter().map(Vec::len).sum::<usize>() <= logs);
        }
    });
    PARSERS.with_borrow_mut(|parsers| {
        for parser in parsers.iter_mut() {
            let mut out = Vec::new();
            let mut extra = hydra_forward::ExtraFields::new();
            extra
                .str("path", b"/var/log/x")
                .map("kubernetes", &[("pod_name", b"web")]);
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
