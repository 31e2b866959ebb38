//! Filter throughput, one thread (events/s per core), on records shaped like
//! a parsed JSON access line: `grep` (an include and an exclude pattern)
//! and `record` (two fields set, one removed, one renamed), each over a
//! batch of already-decoded events, as the inputs run them.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hydra_filter::{Chain, Scalar, Spec};
use hydra_forward::{Event, EventTime};
use rmpv::Value;

const EVENTS: usize = 1000;

fn events() -> Vec<Event> {
    (0..EVENTS)
        .map(|i| Event {
            time: EventTime::new(1_700_000_000, 0),
            record: Value::Map(vec![
                (
                    "level".into(),
                    if i % 4 == 0 { "ERROR" } else { "INFO" }.into(),
                ),
                ("msg".into(), format!("GET /api/items/{i} 200").into()),
                ("code".into(), 200.into()),
                ("password".into(), "s3cret".into()),
            ]),
        })
        .collect()
}

fn filters(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(EVENTS as u64));
    let grep = Chain::new(
        &[Spec::Grep {
            pattern: "app.**".into(),
            include: [("level".to_owned(), "^(ERROR|WARN)$".to_owned())].into(),
            exclude: [("msg".to_owned(), "healthcheck".to_owned())].into(),
        }],
        "web-1",
    )
    .expect("grep");
    let record = Chain::new(
        &[Spec::Record {
            pattern: "**".into(),
            set: [
                ("host".to_owned(), Scalar::Str("${hostname}".into())),
                ("origin".to_owned(), Scalar::Str("${tag}".into())),
            ]
            .into(),
            remove: vec!["password".into()],
            rename: [("msg".to_owned(), "message".to_owned())].into(),
        }],
        "web-1",
    )
    .expect("record");
    for (name, chain) in [("grep", &grep), ("record", &record)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                events,
                |mut e| {
                    chain.apply_now("app.web", &mut e);
                    e
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
