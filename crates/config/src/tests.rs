use super::*;

#[test]
fn the_embedded_default_is_valid() {
    let c = Config::embedded_default();
    assert!(matches!(c.output, Output::Stdout(_)));
    assert_eq!(
        c.monitor.unwrap().listen,
        "127.0.0.1:24220".parse().unwrap()
    );
    let [Input::Forward(f)] = &c.inputs[..] else {
        panic!()
    };
    assert_eq!(f.listen, "127.0.0.1:24224".parse().unwrap());
}

#[test]
fn the_documented_shape_parses() {
    let c = Config::from_yaml(
        r#"
tag_prefix: nginx
field_name: message
positions: /var/lib/hydra/positions.json
inputs:
  - type: tail
    path: /var/log/nginx/access.log
    tag: access
    read_from_head: false
  - type: forward
    listen: 127.0.0.1:24224
output:
  type: forward
  servers:
    - { host: 127.0.0.1, port: 24224 }
    - { host: backup.example, port: 24224, standby: true }
  require_ack: true
  flush_interval: 1s
  compress: gzip
buffer: { max_bytes: 64MiB }
monitor: { listen: 127.0.0.1:24220 }
"#,
    )
    .unwrap();
    assert_eq!(c.buffer.max_bytes, Size(64 << 20));
    let Output::Forward(f) = &c.output else {
        panic!()
    };
    assert_eq!(f.flush_interval, Duration::from_secs(1));
    assert!(f.servers[1].standby);
    assert_eq!(f.compress, Some(Compression::Gzip));
    // The effective config round-trips.
    assert_eq!(Config::from_yaml(&c.to_yaml()).unwrap(), c);
}

#[test]
fn errors_name_the_problem_and_its_line() {
    let unknown = Config::from_yaml("output:\n  type: stdout\nbogus: 1\n")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("bogus") && unknown.contains("line 3"),
        "{unknown}"
    );
    let nested = Config::from_yaml("inputs:\n  - type: tail\n    path: /x\n    tag: t\n    colour: red\noutput: {type: stdout}\n")
            .unwrap_err()
            .to_string();
    assert!(
        nested.contains("colour") && nested.contains("line 5"),
        "{nested}"
    );
    let port =
        Config::from_yaml("output:\n  type: forward\n  servers:\n    - { host: a, port: 70000 }\n")
            .unwrap_err()
            .to_string();
    assert!(port.contains("line 4"), "{port}");
    let zero = Config::from_yaml("output:\n  type: forward\n  servers: [{ host: a, port: 0 }]\n")
        .unwrap_err()
        .to_string();
    assert!(zero.contains("port"), "{zero}");
    let dur = Config::from_yaml(
        "output:\n  type: forward\n  flush_interval: soon\n  servers: [{host: a}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        dur.contains("flush_interval") || dur.contains("line 3"),
        "{dur}"
    );
    let missing =
        Config::from_yaml("inputs:\n  - type: tail\n    tag: t\noutput: {type: stdout}\n")
            .unwrap_err()
            .to_string();
    assert!(missing.contains("path"), "{missing}");
    let size = Config::from_yaml("output: {type: stdout}\nbuffer: { max_bytes: lots }\n")
        .unwrap_err()
        .to_string();
    assert!(size.contains("invalid size"), "{size}");
    let empty = Config::from_yaml("output: {type: forward, servers: []}\n")
        .unwrap_err()
        .to_string();
    assert!(empty.contains("at least one server"), "{empty}");
}

#[test]
fn security_and_tls_shapes() {
    let c = Config::from_yaml(
        r#"
inputs:
  - type: forward
    listen: 0.0.0.0:24224
    tls: { cert: /etc/hydra/server.crt, key: /etc/hydra/server.key, client_ca: /etc/hydra/ca.crt }
    security:
      self_hostname: aggregator-1
      shared_key: secret
      users: [ { username: alice, password: pw } ]
output:
  type: forward
  self_hostname: web-1
  servers:
    - host: agg.example
      port: 24224
      shared_key_env: HYDRA_TEST_UNSET_VARIABLE
      username: alice
      password: pw
      tls: { ca: /etc/hydra/ca.crt, server_name: agg.example }
"#,
    )
    .unwrap();
    let Input::Forward(f) = &c.inputs[0] else {
        panic!()
    };
    let s = f.security.as_ref().unwrap();
    assert_eq!(s.key.resolve().unwrap().as_deref(), Some("secret"));
    assert_eq!(s.users[0].username, "alice");
    let Output::Forward(o) = &c.output else {
        panic!()
    };
    let err = o.servers[0].key.resolve().unwrap_err().to_string();
    assert!(err.contains("HYDRA_TEST_UNSET_VARIABLE"), "{err}");
    let text = c.to_yaml();
    assert!(!text.contains("secret") && !text.contains(": pw"), "{text}");
    assert!(text.contains("shared_key_env"));
    let two = Config::from_yaml(
        "inputs:\n  - type: forward\n    security: { shared_key: a, shared_key_file: /k }\noutput: {type: stdout}\n",
    );
    assert!(two.unwrap_err().to_string().contains("exactly one"));
}

#[test]
fn secrets_are_never_printed() {
    let c = Config::from_yaml("output:\n  type: forward\n  servers: [{ host: a, shared_key: s3cret, username: u, password: pw }]\n").unwrap();
    let text = c.to_yaml();
    assert!(!text.contains("s3cret") && !text.contains("pw"), "{text}");
}

#[test]
fn the_disk_buffer_shape_and_the_ack_it_makes_the_default() {
    let with = |disk: &str, ack: &str| {
        Config::from_yaml(&format!(
            "inputs:\n  - type: forward\n    listen: 127.0.0.1:24224\n{ack}output:\n  type: stdout\nbuffer:\n  max_bytes: 64MiB\n{disk}"
        ))
    };
    let disk = "  disk:\n    path: /var/lib/hydra/buffer\n    max_bytes: 1GiB\n    sync: 1s\n";
    let c = with(disk, "").unwrap();
    let d = c.buffer.disk.as_ref().unwrap();
    assert_eq!(
        (d.max_bytes, d.sync),
        (
            Size(1 << 30),
            Sync::Every(std::time::Duration::from_secs(1))
        )
    );
    let Input::Forward(f) = &c.inputs[0] else {
        panic!()
    };
    assert_eq!(
        f.ack,
        Some(AckWhen::Stored),
        "stored is the default with a disk buffer"
    );
    assert!(c.to_yaml().contains("ack: stored"));
    let c = with("", "").unwrap();
    let Input::Forward(f) = &c.inputs[0] else {
        panic!()
    };
    assert_eq!(f.ack, Some(AckWhen::Delivered), "delivered without one");
    let always = with(
        "  disk:\n    path: /b\n    sync: always\n",
        "    ack: buffered\n",
    )
    .unwrap();
    assert_eq!(always.buffer.disk.unwrap().sync, Sync::Always);
    for (disk, ack, says) in [
        ("", "    ack: stored\n", "`ack: stored` needs `buffer.disk`"),
        (
            "  disk:\n    path: var/buffer\n",
            "",
            "`path` must be an absolute path",
        ),
        (
            "  disk:\n    path: /b\n    sync: sometimes\n",
            "",
            "`sync` is a duration or `always`",
        ),
        (
            "  disk:\n    path: /b\n    max_bytes: 1KiB\n",
            "",
            "`max_bytes` must be at least 1MiB",
        ),
        (
            "  disk:\n    path: /b\n    sync: 0s\n",
            "",
            "`sync` must be positive",
        ),
    ] {
        let e = with(disk, ack).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn a_server_on_a_unix_socket_takes_no_host_port_or_tls() {
    let c = Config::from_yaml(
        "output:\n  type: forward\n  servers:\n    - unix: /run/fluentd.sock\n      shared_key: k\n    - host: agg\n",
    )
    .unwrap();
    let Output::Forward(o) = &c.output else {
        panic!()
    };
    assert_eq!(
        o.servers[0].unix.as_deref(),
        Some(std::path::Path::new("/run/fluentd.sock"))
    );
    assert_eq!(o.servers[0].port, None, "a unix server has no port");
    assert_eq!(
        o.servers[1].port,
        Some(24224),
        "resolved for --check-config"
    );
    let text = c.to_yaml();
    assert!(
        text.contains("unix: /run/fluentd.sock") && text.contains("port: 24224"),
        "{text}"
    );
    for (server, says) in [
        (
            "{ unix: /s, host: a }",
            "output.servers[0]: use `unix` or `host`, not both",
        ),
        (
            "{ unix: /s, port: 24224 }",
            "output.servers[0]: use `unix` or `port`, not both",
        ),
        (
            "{ unix: /s, tls: {} }",
            "output.servers[0]: use `unix` or `tls`, not both",
        ),
        ("{ unix: run/s }", "`unix`"),
        ("{ port: 24224 }", "`host`"),
    ] {
        let e = Config::from_yaml(&format!(
            "output:\n  type: forward\n  servers: [{server}]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(says), "{server}: {e}");
    }
}
