//! Line formats end to end (file → hydra → the npm FluentServer), and the Go
//! fluent-agent-hydra's TOML configuration and command line.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use hydra_test_support::FluentServer;
use serde_json::{Value, json};

const APACHE: &str =
    r#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0""#;
const LTSV: &str = "time:2013-02-28T12:00:00+09:00\thost:192.168.0.1\tmethod:GET\tpath:/\tcode:200\tsize:777\treqtime:0.25\tok:true";
const JSON: &str = r#"{"time":1362020400,"host":"192.168.0.1","method":"GET","path":"/","code":200,"size":777,"nested":{"a":[1,null]}}"#;
/// 2013-02-28T03:00:00Z, the time of every sample line.
const SAMPLE_TIME: u64 = 1_362_020_400;

fn append(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn by_tag(server: &FluentServer, tag: &str) -> Vec<Value> {
    server
        .entries()
        .into_iter()
        .filter(|e| e["tag"] == tag)
        .collect()
}

#[test]
fn every_format_from_file_to_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = FluentServer::start(&[]);
    let mon = free_port();
    let config = format!(
        r#"
inputs:
  - {{type: tail, path: {d}/plain.log, tag: plain, read_from_head: true}}
  - type: tail
    path: {d}/ltsv.log
    tag: ltsv
    read_from_head: true
    format: ltsv
    types: "code:integer,size:integer,reqtime:float,ok:bool,method:integer"
    time_parse: true
    time_format: rfc3339
  - type: tail
    path: {d}/json.log
    tag: json
    read_from_head: true
    format: json
    time_parse: true
    time_format: unix
    keep_time_key: false
  - type: tail
    path: {d}/apache.log
    tag: apache
    read_from_head: true
    format: regexp
    regexp: apache
    types: {{code: integer, size: integer}}
    time_parse: true
    path_key: file
  - type: tail
    path: {d}/custom.log
    tag: custom
    read_from_head: true
    format: regexp
    regexp: '^(?<level>[A-Z]+) (?<at>\S+ \S+) (?<msg>.*)$'
    time_parse: true
    time_key: at
    time_format: "%Y-%m-%d %H:%M:%S%z"
    unmatched: drop
output:
  type: forward
  flush_interval: 100ms
  servers: [{{host: 127.0.0.1, port: {port}}}]
monitor: {{listen: 127.0.0.1:{mon}}}
"#,
        d = d.display(),
        port = server.port
    );
    append(&d.join("plain.log"), &["just a line", APACHE]);
    append(&d.join("ltsv.log"), &[LTSV, "not ltsv"]);
    append(&d.join("json.log"), &[JSON, "{\"time\":\"soon\"}", "[1]"]);
    append(&d.join("apache.log"), &[APACHE, "invalid regexp line"]);
    append(
        &d.join("custom.log"),
        &[
            "WARN 2013-02-28 12:00:00+0900 disk almost full",
            "no match here",
            "INFO 2013-02-28 03:00:00+0000 ok",
        ],
    );
    let h = Hydra::start(d, &config);
    // 2 + 2 + 3 + 2 + 2 (one custom line dropped).
    assert!(
        wait(20, || server.entries().len() >= 11),
        "got {:?}",
        server.entries()
    );
    server.settle();
    assert_eq!(server.entries().len(), 11, "{:?}", server.entries());

    let plain = by_tag(&server, "plain");
    assert_eq!(plain[0]["record"], json!({"message": "just a line"}));
    assert_eq!(plain[1]["record"], json!({"message": APACHE}));

    let ltsv = by_tag(&server, "ltsv");
    assert_eq!(
        ltsv[0]["record"],
        json!({"time": "2013-02-28T12:00:00+09:00", "host": "192.168.0.1", "method": "GET",
               "path": "/", "code": 200, "size": 777, "reqtime": 0.25, "ok": true})
    );
    assert_eq!(ltsv[0]["time"], SAMPLE_TIME);
    assert_eq!(ltsv[1]["record"], json!({"message": "not ltsv"}));

    let js = by_tag(&server, "json");
    assert_eq!(
        js[0]["record"],
        json!({"host": "192.168.0.1", "method": "GET", "path": "/", "code": 200, "size": 777,
               "nested": {"a": [1, null]}})
    );
    assert_eq!(js[0]["time"], SAMPLE_TIME);
    // A time that does not parse: the record stays, with the read time.
    assert_eq!(js[1]["record"], json!({}));
    assert!(js[1]["time"].as_u64().unwrap() > SAMPLE_TIME + 86_400);
    assert_eq!(js[2]["record"], json!({"message": "[1]"}));

    let apache = by_tag(&server, "apache");
    let file = d.join("apache.log").display().to_string();
    assert_eq!(
        apache[0]["record"],
        json!({"host": "192.168.0.1", "user": "-", "time": "28/Feb/2013:12:00:00 +0900",
               "method": "GET", "path": "/", "code": 200, "size": 777, "referer": "-",
               "agent": "Opera/12.0", "file": file})
    );
    assert_eq!(apache[0]["time"], SAMPLE_TIME);
    assert_eq!(
        apache[1]["record"],
        json!({"message": "invalid regexp line", "file": file})
    );

    let custom = by_tag(&server, "custom");
    assert_eq!(custom.len(), 2);
    assert_eq!(
        custom[0]["record"],
        json!({"level": "WARN", "at": "2013-02-28 12:00:00+0900", "msg": "disk almost full"})
    );
    assert_eq!(custom[0]["time"], SAMPLE_TIME);
    assert_eq!(custom[1]["time"], SAMPLE_TIME);

    let v: Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    let p = &v["parsing"];
    assert!(p.get("plain").is_none(), "format none has no parser: {p}");
    assert_eq!(
        p["ltsv"],
        json!({"unmatched": 1, "dropped": 0, "type_errors": 1, "time_errors": 0})
    );
    assert_eq!(
        p["json"],
        json!({"unmatched": 1, "dropped": 0, "type_errors": 0, "time_errors": 1})
    );
    assert_eq!(
        p["apache"],
        json!({"unmatched": 1, "dropped": 0, "type_errors": 0, "time_errors": 0})
    );
    assert_eq!(
        p["custom"],
        json!({"unmatched": 1, "dropped": 1, "type_errors": 0, "time_errors": 0})
    );
    // Every line was accounted for, the dropped one included: positions
    // reached the end of each file.
    for name in ["plain", "ltsv", "json", "apache", "custom"] {
        let path = d.join(format!("{name}.log"));
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(
            wait(5, || {
                let v: Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
                v["files"][path.display().to_string()]["committed"] == len
            }),
            "{name}"
        );
    }
    let metrics = http_get(mon, "/metrics");
    assert!(
        metrics.contains(r#"hydra_parse_errors_total{tag="custom",kind="dropped"} 1"#),
        "{metrics}"
    );
    assert!(h.stop().success());
}

/// Starts hydra with `args`, appends the same lines to each log file, and
/// returns what the receiver got: (tag, time, record), sorted.
fn run_go_style(dir: &Path, args: &[&std::ffi::OsStr], server: &FluentServer) -> Vec<Value> {
    let h = Hydra::start_args(args, &[], dir.join("unused.yaml"));
    let before = server.entries().len();
    append(&dir.join("plain.log"), &["plain one", "plain two"]);
    append(&dir.join("ltsv.log"), &[LTSV]);
    append(&dir.join("access.log"), &[APACHE, "not apache"]);
    assert!(
        wait(20, || server.entries().len() >= before + 5),
        "{:?} {:?}",
        server.entries(),
        h.stderr.lock().unwrap()
    );
    server.settle();
    assert!(h.stop().success());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut got: Vec<Value> = server.entries()[before..].to_vec();
    // Lines without a time of their own carry the time they were read: the
    // two runs differ there, so it is checked and then set aside.
    for e in &mut got {
        if e["time"] != SAMPLE_TIME {
            let t = e["time"].as_u64().unwrap();
            assert!(t.abs_diff(now) < 120, "{e}");
            e["time"] = json!("read time");
        }
    }
    got.sort_by_key(ToString::to_string);
    got
}

#[test]
fn a_go_toml_config_behaves_like_its_yaml_equivalent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["plain.log", "ltsv.log", "access.log"] {
        std::fs::write(d.join(f), "").unwrap();
    }
    let server = FluentServer::start(&[]);
    let (mon, dead) = (free_port(), free_port());
    let toml = format!(
        r#"TagPrefix = "go"
FieldName = "msg"
ReadBufferSize = 65536
ServerRoundRobin = false
SubSecondTime = false

[[Logs]]
Tag = "plain"
File = "{d}/plain.log"

[[Logs]]
Tag = "ltsv"
File = "{d}/ltsv.log"
Format = "ltsv"
Types = "code:integer,size:integer,reqtime:float"
TimeParse = true
TimeKey = "time"
TimeFormat = "2006-01-02T15:04:05Z07:00"

[[Logs]]
Tag = "access"
File = "{d}/access.log"
FieldName = "line"
Format = "regexp"
Regexp = "apache"
TimeParse = true
TimeFormat = "02/Jan/2006:15:04:05 -0700"

[[Servers]]
Host = "127.0.0.1"
Port = {dead}

[[Servers]]
Host = "127.0.0.1"
Port = {port}

[Monitor]
Host = "127.0.0.1"
Port = {mon}
"#,
        d = d.display(),
        port = server.port
    );
    let toml_path = d.join("hydra.toml");
    std::fs::write(&toml_path, &toml).unwrap();
    let from_toml = run_go_style(d, &["-c".as_ref(), toml_path.as_os_str()], &server);

    // `--check-config` prints the YAML equivalent; it runs the same.
    let out = std::process::Command::new(hydra_bin())
        .arg("--check-config")
        .arg(&toml_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("time_as_integer: true"), "{yaml}");
    let yaml_path = d.join("hydra.yaml");
    std::fs::write(&yaml_path, &yaml).unwrap();
    let from_yaml = run_go_style(d, &["-c".as_ref(), yaml_path.as_os_str()], &server);
    assert_eq!(from_toml, from_yaml);

    assert_eq!(from_toml.len(), 5);
    let find = |tag: &str, key: &str, val: &str| {
        from_toml
            .iter()
            .find(|e| e["tag"] == tag && e["record"][key] == val)
            .unwrap_or_else(|| panic!("{tag} {key}={val} in {from_toml:?}"))
            .clone()
    };
    find("go.plain", "msg", "plain one");
    let l = find("go.ltsv", "method", "GET");
    assert_eq!(
        (l["time"].as_u64(), &l["record"]["code"]),
        (Some(SAMPLE_TIME), &json!(200))
    );
    assert_eq!(l["record"]["reqtime"], 0.25);
    let a = find("go.access", "agent", "Opera/12.0");
    assert_eq!(a["time"], SAMPLE_TIME);
    find("go.access", "line", "not apache");
}

#[test]
fn the_go_command_line_form_tails_and_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "written before start: not sent\n").unwrap();
    let server = FluentServer::start(&[]);
    let (mon, dead) = (free_port(), free_port());
    let monitor = format!("127.0.0.1:{mon}");
    // A primary that is down, then the live secondary.
    let primary = format!("127.0.0.1:{dead}");
    let secondary = format!("127.0.0.1:{}", server.port);
    let h = Hydra::start_args(
        &[
            "-f".as_ref(),
            "msg".as_ref(),
            "-m".as_ref(),
            monitor.as_ref(),
            "app.log".as_ref(),
            log.as_os_str(),
            primary.as_ref(),
            secondary.as_ref(),
        ],
        &[],
        d.join("unused.yaml"),
    );
    append(&log, &["one", "two", "three"]);
    assert!(
        wait(20, || server.entries().len() >= 3),
        "{:?}",
        server.entries()
    );
    server.settle();
    let got: Vec<Value> = server
        .entries()
        .iter()
        .map(|e| e["record"].clone())
        .collect();
    assert_eq!(
        got,
        [
            json!({"msg": "one"}),
            json!({"msg": "two"}),
            json!({"msg": "three"})
        ]
    );
    assert!(server.entries().iter().all(|e| e["tag"] == "app.log"));
    let v: Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(v["files"][log.display().to_string()]["tag"], "app.log");
    assert_eq!(v["servers"][1]["alive"], true);
    assert!(h.stop().success());

    // Too few arguments, or a bad server, are usage errors.
    for (args, code) in [
        (&["tag", "file"][..], 2),
        (&["tag", "file", "host:port:x"], 1),
        (&["tag", "file", "h:1", "-m", "nohost"], 1),
    ] {
        let mut child = std::process::Command::new(hydra_bin())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut status = None;
        wait(10, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let _ = child.kill();
        assert_eq!(status.and_then(|s| s.code()), Some(code), "{args:?}");
    }
}
