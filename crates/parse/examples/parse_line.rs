//! Parses lines from standard input with a format given on the command line
//! and prints each record as JSON.
//!
//! ```text
//! printf 'a:1\tb:x\n' | cargo run -p hydra-parse --example parse_line -- ltsv
//! echo '127.0.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 7' \
//!   | cargo run -p hydra-parse --example parse_line -- regexp apache
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::BufRead;

use hydra_parse::{Format, Parser, ParserSpec};

fn main() {
    let mut args = std::env::args().skip(1);
    let format = match args.next().as_deref() {
        Some("ltsv") => Format::Ltsv,
        Some("json") => Format::Json,
        Some("regexp") => Format::Regexp,
        _ => Format::None,
    };
    let spec = ParserSpec {
        format,
        regexp: args.next(),
        time_parse: format == Format::Regexp,
        ..ParserSpec::default()
    };
    let mut parser = match Parser::new(&spec) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("parse_line: {e}");
            std::process::exit(1);
        }
    };
    let mut record = Vec::new();
    for line in std::io::stdin().lock().split(b'\n').map_while(Result::ok) {
        record.clear();
        let parsed = parser.parse(&line, &hydra_forward::ExtraFields::new(), &mut record);
        match rmpv::decode::read_value(&mut record.as_slice()) {
            Ok(v) => println!("{parsed:?} {v}"),
            Err(_) => println!("{parsed:?}"),
        }
    }
    eprintln!("{:?}", parser.stats());
}
