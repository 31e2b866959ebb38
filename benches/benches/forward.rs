//! Forward codec throughput: PackedForward frames of 1,000 events whose
//! records are ~100 bytes, as a tailed access log produces.
//!
//! - `encode_lines`: log lines into a frame (the tail → forward hot path);
//! - `decode_forwarding`: a received frame validated and counted, entries
//!   kept as raw bytes (the forward → forward hot path);
//! - `decode_owned`: a received frame decoded into owned records.
//!
//! criterion prints events/s and bytes/s for each.

// Printing figures is what a benchmark is for.
#![allow(clippy::print_stderr)]

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_forward::{
    BatchMode, ChunkId, EventTime, ForwardDecoder, FrameBuilder, Request, TimeFormat,
};
use std::hint::black_box;
use tokio_util::codec::Decoder;

const EVENTS: usize = 1000;

fn lines() -> Vec<Vec<u8>> {
    (0..EVENTS)
        .map(|i| {
            format!(
                "127.0.0.1 - - [25/Nov/2026:10:00:{:02} +0000] \"GET /index/{i:05}.html HTTP/1.1\" 200 {}",
                i % 60,
                1000 + i
            )
            .into_bytes()
        })
        .collect()
}

fn frame(lines: &[Vec<u8>]) -> bytes::Bytes {
    let mut b = FrameBuilder::with_capacity(
        "app.access",
        BatchMode::PackedForward,
        TimeFormat::EventTime,
        128 * EVENTS,
    );
    let t = EventTime::new(1_700_000_000, 0);
    for l in lines {
        b.push_line(t, "message", l);
    }
    b.finish(Some(&ChunkId::generate()), None)
}

fn decode(bytes: &[u8]) -> hydra_forward::EventBatch {
    let mut buf = BytesMut::from(bytes);
    match ForwardDecoder::new().decode(&mut buf) {
        Ok(Some(Request::Events(batch))) => batch,
        other => panic!("expected events, got {other:?}"),
    }
}

fn codec(c: &mut Criterion) {
    let lines = lines();
    let frame = frame(&lines);
    let bytes = frame.len() as u64;
    let batch = decode(&frame);
    assert_eq!(batch.len(), EVENTS);
    // On stderr: a test runner lists the benchmarks from stdout.
    eprintln!(
        "frame: {EVENTS} events, {bytes} bytes, {} bytes per record",
        batch.entries().len() / EVENTS - 11
    );

    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::ElementsAndBytes {
        elements: EVENTS as u64,
        bytes,
    });
    let t = EventTime::new(1_700_000_000, 0);
    g.bench_function("encode_lines", |b| {
        b.iter(|| {
            let mut f = FrameBuilder::with_capacity(
                "app.access",
                BatchMode::PackedForward,
                TimeFormat::EventTime,
                128 * EVENTS,
            );
            for l in &lines {
                f.push_line(t, "message", black_box(l));
            }
            f.finish(None, None)
        });
    });
    let mut decoder = ForwardDecoder::new();
    g.bench_function("decode_forwarding", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&frame[..]));
            match decoder.decode(&mut buf) {
                Ok(Some(Request::Events(batch))) => batch.len(),
                _ => 0,
            }
        });
    });
    g.bench_function("decode_owned", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&frame[..]));
            match decoder.decode(&mut buf) {
                Ok(Some(Request::Events(batch))) => batch.to_events().len(),
                _ => 0,
            }
        });
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
