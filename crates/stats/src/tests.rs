use super::*;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

fn sample() -> Snapshot {
    let mut s = Snapshot::default();
    s.receiver.messages = 42;
    s.servers.push(Server {
        address: "127.0.0.1:24224".into(),
        alive: true,
        messages: 40,
        ..Server::default()
    });
    s.files.insert(
        "/var/log/a.log".into(),
        File {
            tag: "app.a".into(),
            position: 100,
            ..File::default()
        },
    );
    s.sent.insert(
        "app.a".into(),
        Sent {
            messages: 40,
            bytes: 4000,
        },
    );
    s
}

async fn get(path: &str) -> (u16, String) {
    get_from(router(Arc::new(sample)), path).await
}

async fn get_from(app: axum::Router, path: &str) -> (u16, String) {
    let resp = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn root_has_the_go_shape() {
    let (status, body) = get("/").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["receiver"]["messages"], 42);
    assert_eq!(v["servers"][0]["alive"], true);
    assert_eq!(v["servers"][0]["address"], "127.0.0.1:24224");
    assert_eq!(v["servers"][0]["error"], "");
    assert_eq!(v["files"]["/var/log/a.log"]["position"], 100);
    assert_eq!(v["files"]["/var/log/a.log"]["tag"], "app.a");
    assert_eq!(v["sent"]["app.a"]["messages"], 40);
    assert_eq!(v["sent"]["app.a"]["bytes"], 4000);
}

#[test]
fn zabbix_items() {
    let s = sample();
    assert_eq!(zabbix_item(&s, "agent.ping").as_deref(), Some("1"));
    assert_eq!(
        zabbix_item(&s, "hydra.receiver.messages").as_deref(),
        Some("42")
    );
    assert_eq!(
        zabbix_item(&s, "hydra.sent.messages[app.a]").as_deref(),
        Some("40")
    );
    assert_eq!(
        zabbix_item(&s, "hydra.sent.messages[\"app.a\"]").as_deref(),
        Some("40")
    );
    assert_eq!(
        zabbix_item(&s, "hydra.sent.messages[other]").as_deref(),
        Some("0")
    );
    assert_eq!(
        zabbix_item(&s, "hydra.server.alive[127.0.0.1:24224]").as_deref(),
        Some("1")
    );
    assert_eq!(zabbix_item(&s, "hydra.server.alive[10.0.0.9:1]"), None);
    assert_eq!(
        zabbix_item(&s, "hydra.file.position[/var/log/a.log]").as_deref(),
        Some("100")
    );
    assert_eq!(zabbix_item(&s, "no.such.key"), None);
    assert_eq!(zabbix_item(&s, "hydra.sent.messages[unclosed"), None);
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let app = || router_with_token(Arc::new(sample), "t0ken".to_owned());
    let call = |auth: Option<&'static str>| {
        let mut req = Request::get("/metrics");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        app().oneshot(req.body(Body::empty()).unwrap())
    };
    assert_eq!(call(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        call(Some("Bearer nope!")).await.unwrap().status().as_u16(),
        401
    );
    // Same length, one byte off; a prefix; the token and more.
    for wrong in [
        "Bearer t0kem",
        "Bearer t0ke",
        "Bearer t0ken!",
        "Basic t0ken",
    ] {
        assert_eq!(call(Some(wrong)).await.unwrap().status().as_u16(), 401);
    }
    assert_eq!(
        call(Some("Bearer t0ken")).await.unwrap().status().as_u16(),
        200
    );
}

#[tokio::test]
async fn system_and_metrics() {
    let (status, body) = get("/system").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["rss_bytes"].as_u64().unwrap() > 0);
    assert!(v["open_fds"].as_u64().unwrap() > 0);
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("hydra_receiver_events_total 42\n"), "{text}");
    assert!(text.contains("hydra_server_up{server=\"127.0.0.1:24224\"} 1\n"));
    assert!(text.contains("hydra_sent_events_total{tag=\"app.a\"} 40\n"));
    assert!(text.contains("# TYPE hydra_buffer_bytes gauge"));
    assert_eq!(get("/nope").await.0, 404);
}

#[tokio::test]
async fn tap_streams_matching_events_as_json_lines() {
    assert_eq!(get("/tap").await.0, 403, "no tap hub, no /tap");
    let hub = TapHub::new();
    let locked = monitor_router(Monitor {
        tap: Some(hub.clone()),
        token: Some("t0ken".into()),
        ..Monitor::new(Arc::new(sample))
    });
    let resp = locked
        .oneshot(Request::get("/tap").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "the log stream needs the token"
    );
    let app = monitor_router(Monitor {
        tap: Some(hub.clone()),
        ..Monitor::new(Arc::new(sample))
    });
    let resp = app
        .oneshot(Request::get("/tap?tag=app.*").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut frame = hydra_forward::FrameBuilder::new(
        "app.a",
        hydra_forward::BatchMode::PackedForward,
        hydra_forward::TimeFormat::EventTime,
    );
    frame.push_line(
        hydra_forward::EventTime::new(1_700_000_000, 5),
        "message",
        b"hello",
    );
    let frame = frame.finish(None, None);
    hub.observe("other", &frame, 1);
    hub.observe("app.a", &frame, 1);
    hub.close();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "{\"tag\":\"app.a\",\"time\":\"2023-11-14T22:13:20.000000005Z\",\"record\":{\"message\":\"hello\"}}\n"
    );
}

#[tokio::test]
async fn health_and_live_answer_without_the_token_with_reason_codes_only() {
    let now = Arc::new(std::sync::Mutex::new(Health::ok()));
    let source = now.clone();
    let app = || {
        let source = source.clone();
        monitor_router(Monitor {
            token: Some("t0ken".into()),
            health: Some(Arc::new(move || source.lock().unwrap().clone())),
            ..Monitor::new(Arc::new(sample))
        })
    };
    let call = |path: &'static str| get_from(app(), path);
    assert_eq!(
        call("/health").await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    assert_eq!(call("/live").await, (200, r#"{"status":"ok"}"#.to_owned()));
    assert_eq!(call("/").await.0, 401, "the rest still needs the token");
    now.lock().unwrap().add(Reason::NotDelivering);
    now.lock().unwrap().add(Reason::DiskFull);
    now.lock().unwrap().add(Reason::NotDelivering);
    assert_eq!(
        call("/health").await,
        (
            503,
            r#"{"status":"unhealthy","reasons":["not_delivering","disk_full"]}"#.to_owned()
        )
    );
    assert_eq!(
        call("/live").await,
        (200, r#"{"status":"ok"}"#.to_owned()),
        "an aggregator away never fails liveness"
    );
    now.lock().unwrap().add(Reason::TailReaderStalled);
    assert_eq!(
        call("/live").await,
        (
            503,
            r#"{"status":"wedged","reasons":["tail_reader_stalled"]}"#.to_owned()
        )
    );
    assert_eq!(call("/health").await.0, 503);
    *now.lock().unwrap() = Health::ok();
    assert_eq!(
        call("/health").await.0,
        200,
        "back as soon as the cause is gone"
    );
    assert_eq!(
        get("/health").await.0,
        404,
        "served only with checks to give"
    );
}

#[test]
fn reason_codes_are_what_serde_writes() {
    for r in Reason::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), r.code());
    }
    let mut sorted = Reason::ALL;
    sorted.sort();
    assert_eq!(sorted, Reason::ALL, "ALL in the verdicts' order");
}
