//! Line parsing throughput, per format, on the four sample lines of
//! `hydra_parse::samples`: each line parsed into a msgpack record and
//! appended to a Forward frame, as the tail input does.
//!
//! - `none`: the zero-parse path (`{message: line}`);
//! - `ltsv`, `json`: all fields, `code` and `size` converted to integers;
//! - `regexp_apache`: the apache preset, with the time read from the line.
//!
//! criterion prints lines/s (elements/s) for each: one thread, so the
//! figure is lines/s per core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_forward::{BatchMode, EventTime, FrameBuilder, TimeFormat};
use hydra_parse::{Format, Parsed, Parser, ParserSpec, samples};
use std::hint::black_box;

const LINES: usize = 1000;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(LINES as u64));
    let t = EventTime::new(1_700_000_000, 0);
    group.bench_function("none", |b| {
        b.iter(|| {
            let mut frame =
                FrameBuilder::new("app", BatchMode::PackedForward, TimeFormat::EventTime);
            for _ in 0..LINES {
                frame.push_line(t, "message", black_box(samples::PLAIN));
            }
            black_box(frame.len())
        });
    });
    let cases = [
        ("ltsv", Format::Ltsv, None, false, samples::LTSV),
        ("json", Format::Json, None, false, samples::JSON),
        (
            "regexp_apache",
            Format::Regexp,
            Some("apache"),
            true,
            samples::APACHE,
        ),
    ];
    for (name, format, regexp, time_parse, line) in cases {
        let spec = ParserSpec {
            format,
            regexp: regexp.map(str::to_owned),
            time_parse,
            types: "code:integer,size:integer".parse().expect("types"),
            ..ParserSpec::default()
        };
        let mut parser = Parser::new(&spec).expect("spec");
        let mut record = Vec::with_capacity(256);
        let no_extra = hydra_forward::ExtraFields::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut frame =
                    FrameBuilder::new("app", BatchMode::PackedForward, TimeFormat::EventTime);
                for _ in 0..LINES {
                    record.clear();
                    if let Parsed::Record { time } =
                        parser.parse(black_box(line), &no_extra, &mut record)
                    {
                        frame.push_raw(time.unwrap_or(t), &record);
                    }
                }
                black_box(frame.len())
            });
        });
        assert_eq!(
            parser.stats().unmatched,
            0,
            "{name}: the sample line matches"
        );
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
