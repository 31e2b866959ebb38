//! hydra-cat against the npm FluentServer, an independent receiver.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::process::Output;

use hydra_test_support::FluentServer;

fn hydra_cat(args: &[&str], stdin: &[u8]) -> Output {
    hydra_test_support::run_with_stdin(
        std::path::Path::new(env!("CARGO_BIN_EXE_hydra-cat")),
        args,
        stdin,
    )
}

fn json_lines(n: u64) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"n\":{i},\"msg\":\"event {i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn every_mode_with_acks() {
    let server = FluentServer::start(&[]);
    let port = server.port.to_string();
    let modes: [&[&str]; 5] = [
        &["--mode", "message"],
        &["--mode", "forward"],
        &["--mode", "packed"],
        &["--compress", "gzip"],
        &["--time-as-integer"],
    ];
    for (i, mode) in modes.iter().enumerate() {
        let tag = format!("cat.fs.{i}");
        let mut args = vec!["-p", &port, "--batch", "9"];
        args.extend_from_slice(mode);
        args.push(&tag);
        let out = hydra_cat(&args, &json_lines(40));
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.settle();
    let entries = server.entries();
    for i in 0..5 {
        let tag = format!("cat.fs.{i}");
        let mut ns: Vec<u64> = entries
            .iter()
            .filter(|e| e["tag"] == tag.as_str())
            .map(|e| e["record"]["n"].as_u64().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..40).collect::<Vec<_>>(), "{tag}");
    }
}

#[test]
fn with_a_shared_key_and_a_wrong_one() {
    let server = FluentServer::start(&["--shared-key", "s3cret", "--hostname", "agg"]);
    let port = server.port.to_string();
    let ok = hydra_cat(
        &[
            "-p",
            &port,
            "--shared-key",
            "s3cret",
            "--event",
            "cat.key",
            "{\"n\":1}",
        ],
        b"",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = hydra_cat(
        &[
            "-p",
            &port,
            "-t",
            "3",
            "--shared-key",
            "nope",
            "--event",
            "cat.key",
            "{\"n\":2}",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("handshake"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    server.settle();
    assert_eq!(server.numbers(), vec![1]);
}

#[test]
fn msgpack_and_plain_input() {
    let server = FluentServer::start(&[]);
    let port = server.port.to_string();
    let mut packed = Vec::new();
    for i in 0..10u64 {
        let v = rmpv::Value::Map(vec![(rmpv::Value::from("n"), rmpv::Value::from(i))]);
        rmpv::encode::write_value(&mut packed, &v).unwrap();
    }
    let out = hydra_cat(&["-p", &port, "--format", "msgpack", "cat.mp"], &packed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hydra_cat(
        &["-p", &port, "--format", "none", "cat.plain"],
        b"first line\nsecond \xff line\n",
    );
    assert!(out.status.success());
    server.settle();
    let entries = server.entries();
    assert_eq!(entries.iter().filter(|e| e["tag"] == "cat.mp").count(), 10);
    let plain: Vec<&str> = entries
        .iter()
        .filter(|e| e["tag"] == "cat.plain")
        .map(|e| e["record"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(plain, ["first line", "second \u{fffd} line"]);
}

#[test]
fn a_large_input_streams_through() {
    let server = FluentServer::start(&[]);
    let port = server.port.to_string();
    let out = hydra_cat(&["-p", &port, "cat.big"], &json_lines(100_000));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.settle();
    assert_eq!(server.entries().len(), 100_000);
}
