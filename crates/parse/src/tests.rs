use proptest::prelude::*;
use rmpv::Value;

use super::*;

use crate::samples::{APACHE as APACHE_LINE, JSON as JSON_LINE, LTSV as LTSV_LINE, PLAIN};

fn spec(format: Format) -> ParserSpec {
    ParserSpec {
        format,
        ..ParserSpec::default()
    }
}

fn run(spec: &ParserSpec, line: &[u8]) -> (Parsed, Value, ParseStats) {
    let mut p = Parser::new(spec).expect("valid spec");
    let mut out = Vec::new();
    let parsed = p.parse(line, &hydra_forward::ExtraFields::new(), &mut out);
    let value = if out.is_empty() {
        Value::Nil
    } else {
        let mut slice = out.as_slice();
        let v = rmpv::decode::read_value(&mut slice).expect("valid msgpack");
        assert!(slice.is_empty(), "one value, nothing after it");
        v
    };
    (parsed, value, p.stats())
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_map()
        .map(|m| m.iter().filter_map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn none_is_the_line_as_it_is() {
    let (parsed, v, _) = run(&spec(Format::None), PLAIN);
    assert_eq!(parsed, Parsed::Record { time: None });
    assert_eq!(get(&v, "message").and_then(Value::as_slice), Some(PLAIN));
    assert!(
        Parser::new(&spec(Format::None))
            .expect("ok")
            .is_passthrough()
    );
}

#[test]
fn ltsv_sample_line() {
    let s = ParserSpec {
        types: "code:integer,size:integer".parse().expect("types"),
        ..spec(Format::Ltsv)
    };
    let (_, v, stats) = run(&s, LTSV_LINE);
    assert_eq!(
        keys(&v),
        [
            "time", "host", "user", "method", "path", "code", "size", "referer", "agent"
        ]
    );
    assert_eq!(get(&v, "code"), Some(&Value::from(200)));
    assert_eq!(get(&v, "size"), Some(&Value::from(777)));
    assert_eq!(get(&v, "agent").and_then(Value::as_str), Some("Opera/12.0"));
    assert_eq!(stats, ParseStats::default());
}

#[test]
fn json_sample_line() {
    let (_, v, _) = run(&spec(Format::Json), JSON_LINE);
    assert_eq!(get(&v, "code"), Some(&Value::from(200)));
    assert_eq!(get(&v, "host").and_then(Value::as_str), Some("192.168.0.1"));
    assert_eq!(keys(&v).len(), 9);
}

#[test]
fn apache_preset_sample_line() {
    let s = ParserSpec {
        regexp: Some("apache".into()),
        types: "code:integer,size:integer".parse().expect("types"),
        time_parse: true,
        ..spec(Format::Regexp)
    };
    let (parsed, v, stats) = run(&s, APACHE_LINE);
    assert_eq!(
        parsed,
        Parsed::Record {
            time: Some(EventTime::new(1_362_020_400, 0))
        }
    );
    for (k, want) in [
        ("host", Value::from("192.168.0.1")),
        ("user", Value::from("-")),
        ("time", Value::from("28/Feb/2013:12:00:00 +0900")),
        ("method", Value::from("GET")),
        ("path", Value::from("/")),
        ("code", Value::from(200)),
        ("size", Value::from(777)),
        ("referer", Value::from("-")),
        ("agent", Value::from("Opera/12.0")),
    ] {
        assert_eq!(get(&v, k), Some(&want), "{k}");
    }
    assert_eq!(stats, ParseStats::default());
}

#[test]
fn nginx_and_syslog_presets() {
    let line = br#"10.0.0.1 - bob [28/Feb/2013:12:00:00 +0900] "POST /api?x=1 HTTP/2.0" 201 12 "https://example.com/" "curl/8.0" 1.2.3.4"#;
    let s = ParserSpec {
        regexp: Some("nginx".into()),
        time_parse: true,
        ..spec(Format::Regexp)
    };
    let (parsed, v, _) = run(&s, line);
    assert_eq!(
        parsed,
        Parsed::Record {
            time: Some(EventTime::new(1_362_020_400, 0))
        }
    );
    assert_eq!(get(&v, "remote").and_then(Value::as_str), Some("10.0.0.1"));
    assert_eq!(get(&v, "user").and_then(Value::as_str), Some("bob"));
    assert_eq!(get(&v, "path").and_then(Value::as_str), Some("/api?x=1"));
    assert_eq!(
        get(&v, "http_x_forwarded_for").and_then(Value::as_str),
        Some("1.2.3.4")
    );

    let s = ParserSpec {
        regexp: Some("syslog".into()),
        time_parse: true,
        ..spec(Format::Regexp)
    };
    let (parsed, v, stats) = run(
        &s,
        b"Feb 28 12:00:00 web1 sshd[4242]: Accepted publickey for deploy",
    );
    assert!(matches!(parsed, Parsed::Record { time: Some(_) }));
    assert_eq!(get(&v, "host").and_then(Value::as_str), Some("web1"));
    assert_eq!(get(&v, "ident").and_then(Value::as_str), Some("sshd"));
    assert_eq!(get(&v, "pid").and_then(Value::as_str), Some("4242"));
    assert_eq!(
        get(&v, "message").and_then(Value::as_str),
        Some("Accepted publickey for deploy")
    );
    assert_eq!(stats.time_errors, 0);
}

#[test]
fn unmatched_lines_are_emitted_or_dropped_and_counted() {
    for format in [Format::Ltsv, Format::Json, Format::Regexp] {
        let s = ParserSpec {
            regexp: Some("apache".into()),
            field_name: "msg".into(),
            ..spec(format)
        };
        let (parsed, v, stats) = run(&s, b"invalid line");
        assert_eq!(parsed, Parsed::Record { time: None }, "{format:?}");
        assert_eq!(get(&v, "msg").and_then(Value::as_str), Some("invalid line"));
        assert_eq!(keys(&v), ["msg"]);
        assert_eq!(stats.unmatched, 1);

        let s = ParserSpec {
            unmatched: Unmatched::Drop,
            ..s
        };
        let (parsed, v, stats) = run(&s, b"invalid line");
        assert_eq!(parsed, Parsed::Dropped);
        assert_eq!(v, Value::Nil);
        assert_eq!((stats.unmatched, stats.dropped), (1, 1));
    }
    // JSON that is not an object, or has trailing bytes, is unmatched too.
    for line in [&b"[1,2]"[..], b"{\"a\":1} x", b"{\"a\":", b""] {
        let (_, v, stats) = run(&spec(Format::Json), line);
        assert_eq!(stats.unmatched, 1, "{line:?}");
        assert_eq!(get(&v, "message").and_then(Value::as_slice), Some(line));
    }
}

#[test]
fn values_that_do_not_convert_stay_strings() {
    let s = ParserSpec {
        types: "reqtime:float,size:integer,status:integer,ok:bool"
            .parse()
            .expect("types"),
        ..spec(Format::Ltsv)
    };
    let (_, v, stats) = run(&s, b"reqtime:0.25\tsize:-\tstatus:200\tok:true");
    assert_eq!(get(&v, "reqtime"), Some(&Value::F64(0.25)));
    assert_eq!(get(&v, "size").and_then(Value::as_str), Some("-"));
    assert_eq!(get(&v, "status"), Some(&Value::from(200)));
    assert_eq!(get(&v, "ok"), Some(&Value::Boolean(true)));
    assert_eq!(stats.type_errors, 1);
}

#[test]
fn types_as_text_or_map_and_bad_entries() {
    let t: Types = "a:float, b:integer ,c:bool,d:string".parse().expect("ok");
    assert_eq!(t.to_string(), "a:float,b:integer,c:bool,d:string");
    assert!("a".parse::<Types>().is_err());
    assert!("a:decimal".parse::<Types>().is_err());
    assert!(":int".parse::<Types>().is_err());
}

#[test]
fn time_from_the_line_or_counted() {
    let s = ParserSpec {
        time_parse: true,
        time_key: "ts".into(),
        time_format: Some("unix".into()),
        ..spec(Format::Json)
    };
    let (parsed, _, _) = run(&s, br#"{"ts":1362020400.5,"m":"x"}"#);
    assert_eq!(
        parsed,
        Parsed::Record {
            time: Some(EventTime::new(1_362_020_400, 500_000_000))
        }
    );
    let (parsed, _, _) = run(&s, br#"{"ts":"1362020400","m":"x"}"#);
    assert_eq!(
        parsed,
        Parsed::Record {
            time: Some(EventTime::new(1_362_020_400, 0))
        }
    );
    for line in [
        &br#"{"ts":"yesterday"}"#[..],
        br#"{"m":"no time"}"#,
        br#"{"ts":[1]}"#,
    ] {
        let (parsed, _, stats) = run(&s, line);
        assert_eq!(parsed, Parsed::Record { time: None });
        assert_eq!(stats.time_errors, 1, "{}", String::from_utf8_lossy(line));
    }
    // keep_time_key: false removes the field once read.
    let s = ParserSpec {
        keep_time_key: false,
        ..s
    };
    let (_, v, _) = run(&s, br#"{"ts":1362020400,"m":"x"}"#);
    assert_eq!(keys(&v), ["m"]);
    let s = ParserSpec {
        format: Format::Ltsv,
        ..s
    };
    let (parsed, v, _) = run(&s, b"ts:1362020400\tm:x");
    assert_eq!(keys(&v), ["m"]);
    assert!(matches!(parsed, Parsed::Record { time: Some(_) }));
}

#[test]
fn extra_fields_follow_the_parsed_ones() {
    let mut p = Parser::new(&spec(Format::Ltsv)).expect("ok");
    let mut out = Vec::new();
    let mut extra = hydra_forward::ExtraFields::new();
    extra
        .str("path", b"/var/log/x.log")
        .str("host", b"web1")
        .map("kubernetes", &[("pod_name", b"web")]);
    p.parse(b"a:1", &extra, &mut out);
    let v = rmpv::decode::read_value(&mut out.as_slice()).expect("msgpack");
    assert_eq!(keys(&v), ["a", "path", "host", "kubernetes"]);
    assert_eq!(hydra_forward::to_json(&v)["kubernetes"]["pod_name"], "web");
}

#[test]
fn nested_json_and_escapes() {
    let line =
        br#"{"a\"b":{"x":[1,-2,3.5,null,true,"s\u00e9"]},"big":18446744073709551615,"e":{}}"#;
    let (_, v, stats) = run(&spec(Format::Json), line);
    assert_eq!(stats, ParseStats::default());
    let want: serde_json::Value = serde_json::from_slice(line).expect("json");
    assert_eq!(hydra_forward::to_json(&v), want);
}

#[test]
fn bad_specs_are_errors() {
    let bad = |s: ParserSpec| Parser::new(&s).is_err();
    assert!(bad(spec(Format::Regexp)));
    assert!(bad(ParserSpec {
        regexp: Some("(unclosed".into()),
        ..spec(Format::Regexp)
    }));
    assert!(bad(ParserSpec {
        regexp: Some("^no names$".into()),
        ..spec(Format::Regexp)
    }));
    assert!(bad(ParserSpec {
        time_parse: true,
        ..spec(Format::None)
    }));
    assert!(bad(ParserSpec {
        types: "a:integer".parse().expect("types"),
        ..spec(Format::None)
    }));
    assert!(bad(ParserSpec {
        time_format: Some("%Y-%Q".into()),
        ..spec(Format::Ltsv)
    }));
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..20).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..20)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_objects_transcode_exactly(
        m in prop::collection::btree_map(".{0,8}", json_value(), 0..40)
    ) {
        let obj = serde_json::Value::Object(m.into_iter().collect());
        let line = serde_json::to_vec(&obj).expect("json");
        let (parsed, v, stats) = run(&spec(Format::Json), &line);
        prop_assert_eq!(parsed, Parsed::Record { time: None });
        prop_assert_eq!(stats, ParseStats::default());
        prop_assert_eq!(hydra_forward::to_json(&v), obj);
    }

    #[test]
    fn ltsv_columns_round_trip(
        cols in prop::collection::vec(("[a-z_]{1,8}", "[^\t\n]{0,16}"), 1..20)
    ) {
        let line = cols
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join("\t");
        let (_, v, stats) = run(&spec(Format::Ltsv), line.as_bytes());
        prop_assert_eq!(stats.unmatched, 0);
        let got: Vec<(String, String)> = v
            .as_map()
            .expect("map")
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        prop_assert_eq!(got, cols);
    }

    /// Whatever the bytes, every format appends exactly one msgpack map
    /// that holds the line or its fields, and never panics.
    #[test]
    fn any_bytes_make_one_map(line in prop::collection::vec(any::<u8>(), 0..300)) {
        for format in [Format::None, Format::Ltsv, Format::Json, Format::Regexp] {
            let parsed = format != Format::None;
            let s = ParserSpec {
                regexp: Some("apache".into()),
                time_parse: parsed,
                types: if parsed { "code:integer,size:float".parse().expect("types") } else { Types::default() },
                ..spec(format)
            };
            let (parsed, v, _) = run(&s, &line);
            prop_assert!(matches!(parsed, Parsed::Record { .. }), "not a record");
            prop_assert!(v.is_map());
        }
    }
}
