//! A Kubernetes node's logs: the kubelet's file names carry each
//! container's pod, namespace and container; `path_fields` puts them in
//! the records and the tag. Operator defaults: `read_from_head: false`, a
//! positions file, files that appear after the start.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::collections::BTreeMap;

use common::*;

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
