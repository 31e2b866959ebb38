//! A Kubernetes node's logs: the kubelet's file names carry each
//! container's pod, namespace and container; `path_fields` puts them in
//! the records and the tag. Operator defaults: `read_from_head: false`, a
//! positions file, files that appear after the start.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use hydra_test_support::{Behaviour, Receiver};

const ID: &str = "4f1c2b9a7d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

#[test]
fn path_fields_name_pods_namespaces_and_containers_in_records_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "containers",
        "pods/prod_web-7d9c8_5d1e-77aa/nginx",
        "srv/shop",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let (fwd, mon) = (free_port(), free_port());
    let tails = format!(
        "  - type: tail\n    path: {r}/containers/*.log\n    format: cri\n    path_fields: kubernetes\n    tag: kube.${{namespace_name}}.${{pod_name}}.${{container_name}}\n\
         \x20 - type: tail\n    path: {r}/pods/*/*/*.log\n    format: cri\n    path_fields: kubernetes\n    tag: pods.${{namespace_name}}.${{pod_uid}}\n\
         \x20 - type: tail\n    path: {r}/srv/*/*.log\n    path_fields: '/srv/(?<app>[^/]+)/(?<env>[^/.]+)\\.log$'\n    tag: app.${{app}}.${{env}}\n",
        r = root.display()
    );
    let config = format!(
        "positions: {}/positions.json\n{}",
        root.display(),
        stdout_config(fwd, mon, &tails)
    );
    let h = Hydra::start(root, &config);
    let cri = "2026-12-06T10:00:00.123456789Z stdout F hello from nginx\n";
    append_text(
        &root.join(format!("containers/web-7d9c8_prod_nginx-{ID}.log")),
        cri,
    );
    append_text(&root.join("pods/prod_web-7d9c8_5d1e-77aa/nginx/0.log"), cri);
    append_text(&root.join("srv/shop/prod.log"), "order 17 paid\n");
    // Names the kubelet never makes: read all the same, `_` in the tag.
    append_text(&root.join("containers/not-a-pod.log"), cri);
    let events = h.wait_events(4, 15);
    let by_tag: BTreeMap<String, serde_json::Value> = events
        .iter()
        .map(|e| (e["tag"].as_str().unwrap().to_owned(), e["record"].clone()))
        .collect();
    let tags: Vec<&str> = by_tag.keys().map(String::as_str).collect();
    assert_eq!(
        tags,
        [
            "app.shop.prod",
            "kube._._._",
            "kube.prod.web-7d9c8.nginx",
            "pods.prod.5d1e-77aa"
        ],
        "{events:?}"
    );
    let kube = &by_tag["kube.prod.web-7d9c8.nginx"];
    assert_eq!(kube["message"], "hello from nginx");
    assert_eq!(kube["stream"], "stdout");
    assert_eq!(
        kube["kubernetes"],
        serde_json::json!({
            "namespace_name": "prod",
            "pod_name": "web-7d9c8",
            "container_name": "nginx",
            "container_id": ID,
        })
    );
    assert_eq!(
        by_tag["pods.prod.5d1e-77aa"]["kubernetes"],
        serde_json::json!({
            "namespace_name": "prod",
            "pod_name": "web-7d9c8",
            "pod_uid": "5d1e-77aa",
            "container_name": "nginx",
        })
    );
    let app = &by_tag["app.shop.prod"];
    assert_eq!(
        (&app["message"], &app["app"], &app["env"]),
        (
            &serde_json::json!("order 17 paid"),
            &serde_json::json!("shop"),
            &serde_json::json!("prod")
        )
    );
    let unmatched = &by_tag["kube._._._"];
    assert_eq!(unmatched["message"], "hello from nginx");
    assert!(unmatched.get("kubernetes").is_none(), "{unmatched}");
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(
        v["path_unmatched"],
        serde_json::json!({
            "kube.${namespace_name}.${pod_name}.${container_name}": 1,
            "pods.${namespace_name}.${pod_uid}": 0,
            "app.${app}.${env}": 0,
        }),
        "{v}"
    );
    assert!(h.stop().success());
}

#[test]
fn check_config_refuses_unknown_names_and_bad_patterns() {
    let dir = tempfile::tempdir().unwrap();
    for (tail, says) in [
        (
            "path_fields: kubernetes\n    tag: kube.${pod}",
            "`tag`: the tag's ${pod} is not a name path_fields gives",
        ),
        ("tag: app.${app}", "without path_fields"),
        (
            "path_fields: '/srv/.*'\n    tag: app",
            "`path_fields`: the regexp \"/srv/.*\" has no named groups",
        ),
        (
            "path_fields: '(?<a>'\n    tag: app",
            "`path_fields`: invalid regexp",
        ),
    ] {
        let err = refused(
            dir.path(),
            "--check-config",
            &format!(
                "inputs:\n  - type: tail\n    path: /var/log/x.log\n    {tail}\noutput: {{ type: stdout }}\n"
            ),
        );
        assert!(
            err.contains("inputs[0] (tail)") && err.contains(says),
            "{tail}: {err}"
        );
    }
}

/// `line N` messages and their tags, from every receiver given.
fn received(rxs: &[&Receiver]) -> Vec<(u64, String)> {
    rxs.iter()
        .flat_map(|rx| {
            let messages = rx.messages.lock().unwrap().clone();
            let tags = rx.message_tags.lock().unwrap().clone();
            messages.into_iter().zip(tags)
        })
        .filter_map(|(m, t)| Some((m.strip_prefix("line ")?.parse().ok()?, t)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_rotation_a_reload_and_kill_9_while_behind_keep_every_line_once_with_its_pod() {
    // Operator defaults: `read_from_head: false`, a positions file, a
    // forward output on its defaults (acks). Two containers of one pod
    // write numbered CRI lines (even numbers nginx, odd ones the sidecar)
    // while hydra reloads; then the aggregator goes down, the kubelet
    // rotates nginx's log (0.log to 0.log.<time>, outside the glob) and
    // hydra is killed with kill -9 while it is behind. (A reload while
    // nothing can be delivered waits out shutdown_timeout first:
    // restarts.rs has that case.) A new hydra, the
    // aggregator back, delivers every line once, each with its own
    // container's tag.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let pod = root.join("pods/prod_web-7d9c8_5d1e-77aa");
    let logs = [pod.join("nginx/0.log"), pod.join("sidecar/0.log")];
    for l in &logs {
        std::fs::create_dir_all(l.parent().unwrap()).unwrap();
        std::fs::write(l, "").unwrap();
    }
    let rx = Receiver::start(Behaviour::Ack).await;
    let config = format!(
        "positions: {r}/positions.json\ninputs:\n  - type: tail\n    path: {r}/pods/*/*/*.log\n    format: cri\n    path_fields: kubernetes\n    tag: kube.${{namespace_name}}.${{pod_name}}.${{container_name}}\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {p} }}]\n",
        r = root.display(),
        p = rx.port()
    );
    let mut h = Hydra::start(&root, &config);
    assert!(h.wait_log("hydra is running", 10));
    let total: u64 = 4_000;
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (logs, written) = (logs.clone(), written.clone());
        std::thread::spawn(move || {
            // 400 lines/s, the containers in turn.
            for n in 0..total {
                let line = format!("2026-12-06T10:00:00.000000000Z stdout F line {n}\n");
                append_text(&logs[usize::from(n % 2 == 1)], &line);
                written.store(n + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(2_500));
            }
        })
    };
    assert!(
        wait(15, || received(&[&rx]).len() >= 400),
        "the first lines were not delivered: {:?}",
        h.stderr.lock().unwrap()
    );
    h.signal("HUP");
    assert!(
        h.wait_log("Reloaded.", 10),
        "{:?}",
        h.stderr.lock().unwrap()
    );
    // A checkpoint passes, then the aggregator goes away.
    std::thread::sleep(Duration::from_millis(1200));
    rx.stop();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&logs[0], logs[0].with_extension("log.20261206-100000")).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let before_kill = written.load(Ordering::SeqCst);
    assert!(before_kill < total, "the writer finished before the kill");
    assert!(
        (received(&[&rx]).len() as u64) < before_kill,
        "hydra was not behind at the kill"
    );
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let healthy = Receiver::start_on(rx.port(), Behaviour::Ack).await;
    let h = Hydra::start(&root, &config);
    writer.join().unwrap();
    let arrived = wait(30, || {
        received(&[&rx, &healthy]).len() >= usize::try_from(total).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.stop().success());
    let got = received(&[&rx, &healthy]);
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for (n, tag) in &got {
        *counts.entry(*n).or_default() += 1;
        let container = if n % 2 == 1 { "sidecar" } else { "nginx" };
        assert_eq!(tag, &format!("kube.prod.web-7d9c8.{container}"), "line {n}");
    }
    let lost: Vec<u64> = (0..total).filter(|n| !counts.contains_key(n)).collect();
    let twice: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    println!(
        "kubelet rotation, reload, kill -9 at line {before_kill}, behind: {} received, lost {}, twice {}",
        got.len(),
        lost.len(),
        twice.len()
    );
    assert!(
        arrived && lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        twice.is_empty(),
        "{} lines twice, first {:?}",
        twice.len(),
        twice.first()
    );
}
