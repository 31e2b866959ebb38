//! The Go fluent-agent-hydra's TOML configuration and command line, read
//! into hydra's configuration.

use hydra_config::{Config, Format, GoArgs, Input, Output};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> Config {
    Config::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_go_key_means_what_its_yaml_equivalent_says() {
    let go = load("go-every-key.toml");
    let yaml = load("go-every-key.yaml");
    // Types written as a map come out sorted by name; compare them as sets.
    let norm = |mut c: Config| {
        for i in &mut c.inputs {
            if let Input::Tail(t) = i {
                t.types.0.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
        c
    };
    assert_eq!(norm(go.clone()), norm(yaml));
    // And the printed YAML of the TOML file loads back to the same thing.
    let printed = Config::from_yaml(&go.to_yaml()).expect("printed YAML loads");
    assert_eq!(printed, go);
}

#[test]
fn the_file_type_is_chosen_by_extension_or_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = std::fs::read_to_string(fixture("go-every-key.toml")).expect("read");
    for name in ["hydra.conf", "hydra", "hydra.toml"] {
        let p = dir.path().join(name);
        std::fs::write(&p, &toml).expect("write");
        let c = Config::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.inputs.len(), 5, "{name}");
    }
    // A .yaml file is YAML even if it would pass as TOML: the error says so.
    let p = dir.path().join("hydra.yaml");
    std::fs::write(&p, &toml).expect("write");
    assert!(Config::load(&p).is_err());
}

#[test]
fn go_defaults() {
    let c = Config::from_go_toml(
        "[[Servers]]\nHost = \"127.0.0.1\"\n[[Logs]]\nTag = \"t\"\nFile = \"/tmp/x.log\"\n[Monitor]\nHost = \"127.0.0.1\"\n",
    )
    .expect("loads");
    assert_eq!(c.field_name, "message");
    let Output::Forward(out) = &c.output else {
        panic!("forward output")
    };
    assert_eq!(out.servers[0].port(), 24224);
    // Whole seconds, as the Go agent sent without SubSecondTime.
    assert!(out.time_as_integer);
    assert_eq!(c.monitor.as_ref().map(|m| m.listen.port()), Some(24223));
    let Input::Tail(t) = &c.inputs[0] else {
        panic!("tail input")
    };
    assert_eq!((t.format, t.time_key.as_str()), (Format::None, "time"));
    assert!(!t.read_from_head);
}

#[test]
fn go_settings_that_meant_nothing_are_ignored_as_go_did() {
    let c = Config::from_go_toml(
        "[[Servers]]\nHost = \"h\"\n[[Logs]]\nTag = \"t\"\nFile = \"/x\"\nTimeParse = true\nTypes = \"a:integer\"\n",
    )
    .expect("a plain log with TimeParse loads, as in the Go agent");
    let Input::Tail(t) = &c.inputs[0] else {
        panic!("tail")
    };
    assert!(!t.time_parse && t.types.is_empty());
}

#[test]
fn go_mistakes_are_clear_errors() {
    for (toml, says) in [
        ("[[Servers]]\nHost = \"h\"\nPortt = 1\n", "Portt"),
        ("[[Logs]]\nTag = \"t\"\nFile = \"/x\"\n", "Servers"),
        (
            "[[Servers]]\nHost = \"h\"\n[[Logs]]\nTag = \"t\"\nFile = \"/x\"\nFormat = \"csv\"\n",
            "csv",
        ),
        (
            "[[Servers]]\nHost = \"h\"\n[[Logs]]\nTag = \"t\"\nFile = \"/x\"\nFormat = \"regexp\"\nRegexp = \"(x\"\n",
            "regexp",
        ),
        (
            "[[Servers]]\nHost = \"h\"\n[[Logs]]\nTag = \"t\"\nFile = \"/x\"\nTypes = \"a:money\"\n",
            "a:money",
        ),
        (
            "[[Servers]]\nHost = \"h\"\n[[Logs]]\nTag = \"t\"\nFile = \"-\"\n",
            "standard input",
        ),
        ("TagPrefix = 3\n", "TagPrefix"),
    ] {
        let e = Config::from_go_toml(toml).expect_err(toml).to_string();
        assert!(e.contains(says), "{toml:?}: {e}");
    }
}

#[test]
fn the_go_command_line() {
    let c = Config::from_go_args(&GoArgs {
        tag: "app.log".into(),
        file: "/var/log/app.log".into(),
        servers: vec![
            "10.0.0.1".into(),
            "10.0.0.2:24225".into(),
            "[::1]:24226".into(),
        ],
        field_name: Some("msg".into()),
        monitor: Some("127.0.0.1:24223".into()),
    })
    .expect("valid");
    assert_eq!(c.field_name, "msg");
    let Output::Forward(out) = &c.output else {
        panic!("forward output")
    };
    let servers: Vec<(&str, u16)> = out
        .servers
        .iter()
        .map(|s| (s.host.as_str(), s.port()))
        .collect();
    assert_eq!(
        servers,
        [("10.0.0.1", 24224), ("10.0.0.2", 24225), ("::1", 24226)]
    );
    assert_eq!(
        c.monitor.map(|m| m.listen.to_string()).as_deref(),
        Some("127.0.0.1:24223")
    );
    let bad = Config::from_go_args(&GoArgs {
        tag: "t".into(),
        file: "/x".into(),
        servers: vec!["h:notaport".into()],
        ..GoArgs::default()
    });
    assert!(bad.is_err());
}

#[test]
fn a_go_time_layout_parses_what_go_parsed() {
    let c = load("go-every-key.toml");
    let Input::Tail(t) = &c.inputs[1] else {
        panic!("tail")
    };
    let format: hydra_parse::TimeFormat = t
        .time_format
        .as_deref()
        .expect("set")
        .parse()
        .expect("valid");
    for v in ["28/Feb/2013:12:00:00 +0900", "28/Feb/2013:03:00:00 Z"] {
        assert_eq!(
            format.parse(v.as_bytes()).map(|t| t.secs),
            Some(1_362_020_400),
            "{v}"
        );
    }
}
