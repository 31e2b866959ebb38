#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::time::Duration;

use hydra_forward::EventTime;

use super::*;

fn ev(fields: &[(&str, Value)]) -> Event {
    Event {
        time: EventTime::default(),
        record: Value::Map(
            fields
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        ),
    }
}

fn specs(specs: &[Spec]) -> Chain {
    Chain::new(specs, "web-1").unwrap()
}

fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn grep_keeps_when_every_include_matches_and_drops_when_any_exclude_does() {
    let chain = specs(&[Spec::Grep {
        pattern: "app.**".into(),
        include: map(&[("level", "^(ERROR|WARN)$"), ("status", "^5")]),
        exclude: map(&[("message", "healthcheck")]),
    }]);
    let mut events = vec![
        ev(&[
            ("level", "ERROR".into()),
            ("status", 503.into()),
            ("message", "boom".into()),
        ]),
        ev(&[("level", "INFO".into()), ("status", 500.into())]),
        ev(&[
            ("level", "WARN".into()),
            ("status", 502.into()),
            ("message", "GET /healthcheck".into()),
        ]),
        ev(&[("level", "WARN".into())]),
        // A map where a pattern expects text: passed unchanged, counted.
        ev(&[("level", Value::Map(vec![])), ("status", 500.into())]),
    ];
    let keep = [events[0].clone(), events[4].clone()];
    chain.apply_now("app.web", &mut events);
    assert_eq!(events, keep);
    let st = &chain.stats()[0];
    assert_eq!((st.passed, st.dropped, st.errors), (2, 3, 1));
    let mut other = vec![ev(&[("level", "INFO".into())])];
    chain.apply_now("db", &mut other);
    assert_eq!(other.len(), 1, "other tags are not filtered");
    assert!(!chain.applies("db") && chain.applies("app"));
}

#[test]
fn record_sets_removes_and_renames_with_templates() {
    let chain = specs(&[Spec::Record {
        pattern: "**".into(),
        set: [
            ("host".to_owned(), Scalar::Str("${hostname}".into())),
            (
                "origin".to_owned(),
                Scalar::Str("${tag}@${hostname}".into()),
            ),
            ("home".to_owned(), Scalar::Str("${env:HOME}".into())),
            ("n".to_owned(), Scalar::Int(3)),
        ]
        .into(),
        remove: vec!["password".into()],
        rename: map(&[("msg", "message")]).into_iter().collect(),
    }]);
    let mut events = vec![ev(&[
        ("msg", "hi".into()),
        ("password", "x".into()),
        ("n", 1.into()),
    ])];
    chain.apply_now("app.web", &mut events);
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        events,
        [ev(&[
            ("message", "hi".into()),
            ("n", 3.into()),
            ("home", home.as_str().into()),
            ("host", "web-1".into()),
            ("origin", "app.web@web-1".into()),
        ])]
    );
}

#[test]
fn bad_filters_are_errors_naming_the_filter() {
    let e = Chain::new(
        &[Spec::Grep {
            pattern: "**".into(),
            include: map(&[("a", "(")]),
            exclude: Default::default(),
        }],
        "h",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("filters[0] (grep): the pattern for \"a\""),
        "{e}"
    );
    let e = Chain::new(
        &[Spec::Record {
            pattern: "**".into(),
            set: [("a".to_owned(), Scalar::Str("${nope}".into()))].into(),
            remove: vec![],
            rename: Default::default(),
        }],
        "h",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown template \"${nope}\""),
        "{e}"
    );
    assert!("10/x".parse::<Rate>().is_err() && "0/s".parse::<Rate>().is_err());
    assert_eq!("60/m".parse::<Rate>().unwrap().per_sec, 1.0);
    assert_eq!("60/m".parse::<Rate>().unwrap().to_string(), "60/m");
}

fn batch(n: usize) -> Vec<Event> {
    (0..n).map(|i| ev(&[("n", (i as u64).into())])).collect()
}

#[tokio::test(start_paused = true)]
async fn a_throttle_holds_events_back_to_its_rate() {
    let chain = specs(&[Spec::Throttle {
        pattern: "noisy.**".into(),
        rate: "100/s".parse().unwrap(),
        burst: Some(50),
        drop: false,
    }]);
    let start = tokio::time::Instant::now();
    let mut passed = 0;
    for _ in 0..30 {
        let mut events = batch(25);
        chain.apply("noisy.app", &mut events).await;
        passed += events.len();
    }
    // 750 events: 50 at once, 700 more at 100/s.
    let took = start.elapsed();
    assert_eq!(passed, 750);
    assert!(
        took >= Duration::from_millis(6900) && took <= Duration::from_millis(7100),
        "{took:?}"
    );
    let st = &chain.stats()[0];
    assert_eq!((st.passed, st.dropped), (750, 0));
    assert!(st.held_ms >= 6900, "{st:?}");
    // Another tag has its own bucket.
    let before = tokio::time::Instant::now();
    chain.apply("noisy.other", &mut batch(50)).await;
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_dropping_throttle_keeps_what_its_bucket_holds_and_counts_the_rest() {
    let chain = specs(&[Spec::Throttle {
        pattern: "**".into(),
        rate: "10/s".parse().unwrap(),
        burst: None,
        drop: true,
    }]);
    let mut events = batch(25);
    chain.apply("a", &mut events).await;
    assert_eq!(events.len(), 10);
    tokio::time::advance(Duration::from_millis(500)).await;
    let mut events = batch(25);
    chain.apply("a", &mut events).await;
    assert_eq!(events.len(), 5);
    let st = &chain.stats()[0];
    assert_eq!((st.passed, st.dropped), (15, 35));
}
