//! One access-log request written four ways: as plain text, an Apache
//! combined log line, LTSV and JSON. These are the lines the Go
//! fluent-agent-hydra benchmarks its parsers with, so figures for hydra and
//! for it can be set side by side.

/// A line with no structure to parse.
pub const PLAIN: &[u8] = b"2013-02-28T12:00:00+09:00 192.168.0.1 GET / 200 777 Opera/12.0";
/// Apache's combined log format.
pub const APACHE: &[u8] =
    br#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0""#;
/// LTSV.
pub const LTSV: &[u8] = b"time:2013-02-28T12:00:00Z+09:00\thost:192.168.0.1\tuser:-\tmethod:GET\tpath:/\tcode:200\tsize:777\treferer:-\tagent:Opera/12.0";
/// JSON.
pub const JSON: &[u8] = br#"{"time":"2013-02-28T12:00:00Z+09:00","host":"192.168.0.1","user":"-","method":"GET","path":"/","code":200,"size":777,"referer":"-","agent":"Opera/12.0"}"#;
