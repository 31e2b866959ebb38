//! Multiline events through the real binary, on the defaults operators run
//! (`read_from_head: false`, a positions file, stdout output): every preset
//! on hand-written traces, a custom `start` pattern, the flush timeout, the
//! `max_lines` cut and its count, a rotation while an event is pending, and
//! `kill -9` mid-event.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The messages hydra printed for `tag`, in order.
fn messages(h: &Hydra, tag: &str) -> Vec<String> {
    h.events()
        .iter()
        .filter(|e| e["tag"] == tag)
        .filter_map(|e| e["record"]["message"].as_str().map(str::to_owned))
        .collect()
}

fn input(dir: &Path, file: &str, tag: &str, multiline: &str) -> String {
    format!(
        "  - type: tail\n    path: {}/{file}\n    tag: {tag}\n    multiline:\n{multiline}",
        dir.display()
    )
}

/// The defaults with one tail input, `app.log` tagged `app`.
fn app_config(d: &Path, multiline: &str) -> String {
    format!(
        "positions: {}/pos.json\ninputs:\n{}output:\n  type: stdout\n",
        d.display(),
        input(d, "app.log", "app", multiline)
    )
}

const JAVA: &str = "2026-12-01 12:00:00.001 ERROR [http-nio-8080-exec-1] c.e.OrderController - order failed
org.springframework.web.util.NestedServletException: Request processing failed; nested exception is java.lang.IllegalStateException: no stock
\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)
\tat javax.servlet.http.HttpServlet.service(HttpServlet.java:681)
\tSuppressed: java.io.IOException: stream closed
\t\tat com.example.Stream.close(Stream.java:88)
\t\t... 2 more
Caused by: java.lang.IllegalStateException: no stock
\tat com.example.Stock.take(Stock.java:31)
\tat com.example.OrderService.place(OrderService.java:57)
\t... 40 common frames omitted";

const PYTHON: &str = "2026-12-01 12:00:00,002 ERROR worker: job 7 failed
Traceback (most recent call last):
  File \"/srv/app/jobs.py\", line 21, in run
    value = int(payload[\"count\"])
ValueError: invalid literal for int() with base 10: 'x'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"/srv/app/worker.py\", line 40, in loop
    job.run()
  File \"/srv/app/jobs.py\", line 23, in run
    raise JobError(\"bad payload\") from e
app.jobs.JobError: bad payload";

const GO: &str = "panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 23 [running]:
main.(*Server).handle(0x0, {0x7f3a20, 0xc0001a2000})
\t/srv/cmd/api/server.go:88 +0x2c
net/http.HandlerFunc.ServeHTTP(...)
\t/usr/lib/go/src/net/http/server.go:2166
created by net/http.(*Server).Serve in goroutine 1
\t/usr/lib/go/src/net/http/server.go:3285 +0x4b4";

const RUBY: &str = "/srv/app/lib/billing.rb:12:in `charge': card declined (Billing::Declined)
\tfrom /srv/app/lib/billing.rb:30:in `block in run'
\tfrom /srv/app/lib/billing.rb:29:in `each'
\tfrom /srv/app/bin/billing:5:in `<main>'";

#[test]
fn each_preset_joins_its_traces_on_the_default_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let presets = [
        (
            "java",
            JAVA,
            "2026-12-01 12:00:01.000 INFO [main] c.e.App - next",
        ),
        (
            "python",
            PYTHON,
            "2026-12-01 12:00:01,000 INFO worker: next",
        ),
        ("go", GO, "2026/12/01 12:00:01 api: restarted"),
        ("ruby", RUBY, "I, [2026-12-01T12:00:01] INFO -- : next"),
    ];
    let mut inputs = String::new();
    for (p, _, _) in presets {
        std::fs::write(d.join(format!("{p}.log")), "").unwrap();
        inputs += &input(d, &format!("{p}.log"), p, &format!("      preset: {p}\n"));
    }
    let cfg = format!(
        "positions: {}/pos.json\ninputs:\n{inputs}output:\n  type: stdout\n",
        d.display()
    );
    let h = Hydra::start(d, &cfg);
    for (p, trace, next) in presets {
        append_text(
            &d.join(format!("{p}.log")),
            &format!("before {p}\n{trace}\n{next}\n"),
        );
    }
    // The line after each trace closes it; that last line is emitted at
    // the flush timeout (1 s by default).
    assert!(wait(10, || presets
        .iter()
        .all(|(p, _, _)| messages(&h, p).len() >= 3)));
    std::thread::sleep(Duration::from_millis(300));
    for (p, trace, next) in presets {
        assert_eq!(
            messages(&h, p),
            [format!("before {p}").as_str(), trace, next],
            "preset {p}"
        );
    }
    assert!(h.stop().success());
}

#[test]
fn a_custom_start_pattern_flushes_on_time_and_cuts_long_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app.log"), "").unwrap();
    let monitor = free_port();
    let ml =
        "      start: '^\\d{4}-\\d\\d-\\d\\d '\n      flush_timeout: 400ms\n      max_lines: 5\n";
    let cfg = format!(
        "positions: {}/pos.json\ninputs:\n{}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{monitor}\n",
        d.display(),
        input(d, "app.log", "app", ml)
    );
    let h = Hydra::start(d, &cfg);
    let long: String = (0..11).map(|i| format!("  detail {i}\n")).collect();
    append_text(
        &d.join("app.log"),
        &format!("2026-12-01 a\n  more a\n2026-12-01 long\n{long}2026-12-01 last\n  more last\n"),
    );
    // No line follows `last`: only the flush timeout emits it.
    assert!(wait(10, || messages(&h, "app").len() >= 5));
    std::thread::sleep(Duration::from_millis(300));
    let got = messages(&h, "app");
    let lines: Vec<usize> = got.iter().map(|m| m.lines().count()).collect();
    assert_eq!(got[0], "2026-12-01 a\n  more a");
    assert_eq!(lines, [2, 5, 5, 2, 2], "{got:#?}");
    assert_eq!(got[4], "2026-12-01 last\n  more last");
    let json: serde_json::Value = serde_json::from_str(&http_get(monitor, "/")).unwrap();
    let file = &json["files"][d.join("app.log").display().to_string()];
    assert_eq!(file["multiline_cuts"], 2, "{json}");
    assert!(http_get(monitor, "/metrics").contains("hydra_file_multiline_cuts_total{"));
    assert!(h.stop().success());
}

#[test]
fn a_pending_event_survives_a_rotation_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = app_config(d, "      preset: java\n      flush_timeout: 1h\n");
    let h = Hydra::start(d, &cfg);
    append_text(&log, &format!("{JAVA}\n"));
    // Read, pending (the flush timeout is far away), then rotated.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&log, d.join("app.log.1")).unwrap();
    append_text(
        &log,
        "2026-12-01 12:00:02.000 INFO [main] c.e.App - after\n2026-12-01 12:00:03.000 INFO end\n",
    );
    assert!(wait(10, || messages(&h, "app").len() >= 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        messages(&h, "app"),
        [JAVA, "2026-12-01 12:00:02.000 INFO [main] c.e.App - after"]
    );
    assert!(h.stop().success());
}

/// Event `n`: a header and three continuation lines.
fn event(n: u64) -> String {
    format!("2026-12-01 event {n}\n  a {n}\n  b {n}\n  c {n}\n")
}

#[test]
fn kill_9_mid_event_then_a_restart_loses_nothing_and_cuts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = app_config(d, "      start: '^2026-'\n      flush_timeout: 1h\n");
    let mut h = Hydra::start(d, &cfg);
    let all: String = (0..200).map(event).collect();
    append_text(&log, &all);
    // Half of event 200: pending when hydra dies.
    append_text(&log, "2026-12-01 event 200\n  a 200\n");
    assert!(wait(10, || messages(&h, "app").len() >= 200));
    // A checkpoint passes.
    std::thread::sleep(Duration::from_millis(600));
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let mut runs = vec![messages(&h, "app")];
    append_text(&log, "  b 200\n  c 200\n");
    let more: String = (201..300).map(event).collect();
    append_text(&log, &format!("{more}2026-12-01 event 300\n"));
    h = Hydra::start(d, &cfg);
    assert!(wait(10, || messages(&h, "app").len() >= 100));
    std::thread::sleep(Duration::from_millis(500));
    runs.push(messages(&h, "app"));
    assert!(h.stop().success());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in runs.iter().flatten() {
        *counts.entry(m.clone()).or_default() += 1;
    }
    let expected: Vec<String> = (0..300).map(|n| event(n).trim_end().to_owned()).collect();
    let lost: Vec<&String> = expected
        .iter()
        .filter(|e| !counts.contains_key(*e))
        .collect();
    let whole = runs.iter().flatten().all(|m| expected.contains(m));
    println!(
        "kill -9 mid-event: {} events printed in two runs, {} lost",
        runs.iter().map(Vec::len).sum::<usize>(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(whole, "a half event was printed: {runs:?}");
    assert_eq!(
        counts[&expected[200]], 1,
        "event 200 was pending at the kill"
    );
}

fn hydra_test(config: &Path, cases: &Path) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(hydra_bin())
        // The examples' cases expect `${env:NODE_NAME}` empty.
        .env_remove("NODE_NAME")
        .arg("test")
        .arg(config)
        .arg(cases)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hydra_test_passes_the_examples_and_shows_how_a_failing_case_differs() {
    // Every cases file under examples/cases/ passes on its example.
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("examples/cases")).unwrap() {
        let cases = entry.unwrap().path();
        let config = repo().join("examples").join(cases.file_name().unwrap());
        let (code, out, err) = hydra_test(&config, &cases);
        assert_eq!(code, Some(0), "{}: {out}{err}", cases.display());
        assert!(out.ends_with(" 0 failed\n"), "{out}");
        checked += 1;
    }
    assert!(checked >= 2, "{checked} cases files");
    let example = repo().join("examples/java-app-server.yaml");

    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.yaml");
    std::fs::write(
        &cases,
        "- name: joined\n  input: app.java\n  lines: [\"boom\", \"\\tat a.B.c(B.java:1)\"]\n  expect:\n    - {tag: app.java, record: {message: \"boom\\n\\tat a.B.c(B.java:1)\", env: prod}}\n\
         - name: wrong\n  input: app.java\n  lines: [\"one\", \"two\"]\n  expect:\n    - {tag: app.java, record: {message: \"one\\ntwo\", env: prod}}\n",
    )
    .unwrap();
    let (code, out, _) = hydra_test(&example, &cases);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        out,
        "ok    joined\nFAIL  wrong\n  event 1:\n  - {\"tag\":\"app.java\",\"record\":{\"message\":\"one\\ntwo\",\"env\":\"prod\"}}\n  + {\"tag\":\"app.java\",\"record\":{\"message\":\"one\",\"env\":\"prod\"}}\n  event 2:\n  - (none)\n  + {\"tag\":\"app.java\",\"record\":{\"message\":\"two\",\"env\":\"prod\"}}\n2 cases, 1 failed\n"
    );

    std::fs::write(&cases, "- {name: n, input: nope, lines: [], expect: []}\n").unwrap();
    let (code, _, err) = hydra_test(&example, &cases);
    assert_eq!(code, Some(2));
    assert!(err.contains("no tail input has the tag \"nope\""), "{err}");
    std::fs::write(&cases, "- {name: n, lines: []}\n").unwrap();
    let (code, _, err) = hydra_test(&example, &cases);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cases.yaml") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn cri_and_docker_partial_lines_are_joined_and_traces_in_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["cri.log", "docker.log"] {
        std::fs::write(d.join(f), "").unwrap();
    }
    let cfg = format!(
        "positions: {pos}/pos.json\ninputs:\n  - type: tail\n    path: {pos}/cri.log\n    tag: kube.cri\n    format: cri\n    multiline:\n      preset: java\n  - type: tail\n    path: {pos}/docker.log\n    tag: kube.docker\n    format: docker\nfilters:\n  - match: kube.docker\n    type: record\n    set: {{ env: prod }}\noutput:\n  type: stdout\n",
        pos = d.display()
    );
    let h = Hydra::start(d, &cfg);
    append_text(
        &d.join("cri.log"),
        "2026-12-01T12:00:00.100000000Z stdout F starting\n\
         2026-12-01T12:00:01.000000000Z stderr P 2026-12-01 ERROR req\n\
         2026-12-01T12:00:01.000000001Z stderr F uest failed\n\
         2026-12-01T12:00:01.000000002Z stderr F java.lang.IllegalStateException: x\n\
         2026-12-01T12:00:01.000000003Z stderr F \tat a.B.c(B.java:1)\n\
         2026-12-01T12:00:02.000000000Z stdout F next\n\
         2026-12-01T12:00:03.000000000Z stdout F last\n",
    );
    append_text(
        &d.join("docker.log"),
        "{\"log\":\"first half, \",\"stream\":\"stdout\",\"time\":\"2026-12-01T12:00:00.5Z\"}\n\
         {\"log\":\"second half\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-01T12:00:00.6Z\"}\n\
         {\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-01T12:00:01Z\"}\n",
    );
    assert!(wait(10, || h.events().len() >= 6));
    std::thread::sleep(Duration::from_millis(300));
    let events = h.events();
    let of = |tag: &str| -> Vec<(String, String, String)> {
        events
            .iter()
            .filter(|e| e["tag"] == tag)
            .map(|e| {
                let r = &e["record"];
                (
                    e["time"].as_str().unwrap_or_default().to_owned(),
                    r["stream"].as_str().unwrap().to_owned(),
                    r["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // Through a filter too: the record keeps its stream and time.
    let docker: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["tag"] == "kube.docker")
        .collect();
    assert!(
        docker.iter().all(|e| e["record"]["env"] == "prod"),
        "{docker:?}"
    );
    let t = |s: &str| s.to_owned();
    assert_eq!(
        of("kube.cri"),
        [
            (
                t("2026-12-01T12:00:00.100000000Z"),
                t("stdout"),
                t("starting")
            ),
            (
                t("2026-12-01T12:00:01.000000000Z"),
                t("stderr"),
                t(
                    "2026-12-01 ERROR request failed\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)"
                )
            ),
            (t("2026-12-01T12:00:02.000000000Z"), t("stdout"), t("next")),
            (t("2026-12-01T12:00:03.000000000Z"), t("stdout"), t("last")),
        ]
    );
    assert_eq!(
        of("kube.docker"),
        [
            (
                t("2026-12-01T12:00:00.500000000Z"),
                t("stdout"),
                t("first half, second half")
            ),
            (t("2026-12-01T12:00:01.000000000Z"), t("stderr"), t("oops")),
        ]
    );
    assert!(h.stop().success());
}

/// Every `event(n)` printed across runs: (lost, printed more than once,
/// printed but not whole).
fn tally_events(runs: &[Vec<String>], expected: u64) -> (Vec<u64>, Vec<u64>, Vec<String>) {
    let whole: HashMap<String, u64> = (0..expected)
        .map(|n| (event(n).trim_end().to_owned(), n))
        .collect();
    let mut counts: HashMap<u64, usize> = HashMap::new();
    let mut broken = Vec::new();
    for m in runs.iter().flatten() {
        match whole.get(m) {
            Some(n) => *counts.entry(*n).or_default() += 1,
            None => broken.push(m.clone()),
        }
    }
    let lost = (0..expected).filter(|n| !counts.contains_key(n)).collect();
    let twice = (0..expected)
        .filter(|n| counts.get(n).is_some_and(|c| *c > 1))
        .collect();
    (lost, twice, broken)
}

#[test]
fn sighup_while_a_writer_writes_multiline_events_loses_doubles_and_cuts_nothing() {
    // The defaults: a positions file, read_from_head false, the multiline
    // flush timeout and limits as shipped. Reloads land while events are
    // half written.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let h = Hydra::start(d, &app_config(d, "      start: '^2026-'\n"));
    let writer = {
        std::thread::spawn(move || {
            for n in 0..600 {
                // Each event in two writes: a reload may fall between them.
                let e = event(n);
                let (head, rest) = e.split_at(e.find("  b").unwrap());
                append_text(&log, head);
                append_text(&log, rest);
                std::thread::sleep(Duration::from_millis(5));
            }
            // A last line closes event 599.
            append_text(&log, "2026-12-01 end\n");
        })
    };
    for nth in 1..=3 {
        std::thread::sleep(Duration::from_millis(700));
        h.signal("HUP");
        let reloaded = || {
            h.stderr
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("Reloaded."))
                .count()
                >= nth
        };
        assert!(
            wait(20, reloaded),
            "reload {nth}: {:?}",
            h.stderr.lock().unwrap()
        );
    }
    writer.join().unwrap();
    assert!(wait(20, || messages(&h, "app").len() >= 600));
    std::thread::sleep(Duration::from_millis(1500));
    let runs = vec![messages(&h, "app")];
    assert!(h.stop().success());
    let (lost, twice, broken) = tally_events(&runs, 600);
    println!(
        "3 SIGHUPs while a writer wrote 600 four-line events: {} printed, lost {}, doubled {}, not whole {}",
        runs[0].len(),
        lost.len(),
        twice.len(),
        broken
            .iter()
            .filter(|m| !m.starts_with("2026-12-01 end"))
            .count()
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(twice.is_empty(), "doubled {twice:?}");
    assert!(
        broken.iter().all(|m| m == "2026-12-01 end"),
        "not whole: {broken:?}"
    );
}

#[test]
fn kill_9_while_behind_on_the_default_multiline_settings_loses_nothing() {
    // The defaults again, and the crash while hydra is still reading a
    // backlog of 20,000 events: only what is past the saved position may
    // come twice, never half.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = app_config(d, "      preset: java\n");
    let java = |n: u64| {
        format!(
            "2026-12-01 ERROR event {n}\njava.lang.IllegalStateException: {n}\n\tat a.B.c(B.java:{n})\n"
        )
    };
    let expected: Vec<String> = (0..20_000).map(|n| java(n).trim_end().to_owned()).collect();
    let mut h = Hydra::start(d, &cfg);
    let backlog: String = (0..20_000).map(java).collect();
    append_text(&log, &backlog);
    assert!(wait(20, || messages(&h, "app").len() >= 2_000));
    let behind = messages(&h, "app").len();
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let mut runs = vec![messages(&h, "app")];
    // Events wholly before the saved position were delivered: they must
    // not come again.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("pos.json")).unwrap()).unwrap();
    let offset = saved["files"][0]["offset"].as_u64().unwrap_or(0);
    let safe = backlog.as_bytes()[..usize::try_from(offset).unwrap()]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        / 3;
    append_text(&log, "2026-12-01 INFO after the crash\n");
    h = Hydra::start(d, &cfg);
    assert!(wait(30, || messages(&h, "app")
        .iter()
        .any(|m| m == expected.last().unwrap())));
    std::thread::sleep(Duration::from_millis(500));
    runs.push(messages(&h, "app"));
    assert!(h.stop().success());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in runs.iter().flatten() {
        *counts.entry(m.as_str()).or_default() += 1;
    }
    let lost = expected
        .iter()
        .filter(|e| !counts.contains_key(e.as_str()))
        .count();
    let broken: Vec<&String> = runs
        .iter()
        .flatten()
        .filter(|m| !expected.contains(m) && !m.starts_with("2026-12-01 INFO after"))
        .collect();
    let twice = counts.values().filter(|c| **c > 1).count();
    let safe_twice = expected[..safe]
        .iter()
        .filter(|e| counts.get(e.as_str()).is_some_and(|c| *c > 1))
        .count();
    println!(
        "kill -9 after {behind} of 20,000 events, defaults: saved position past {safe} events, lost {lost}, printed twice {twice} ({safe_twice} before the saved position), not whole {}",
        broken.len()
    );
    assert_eq!(safe_twice, 0, "events before the saved position came again");
    assert!(behind < 20_000, "hydra was not behind at the kill");
    assert_eq!(lost, 0);
    assert!(
        broken.is_empty(),
        "half events: {:?}",
        &broken[..broken.len().min(3)]
    );
}
