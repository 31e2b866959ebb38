use super::*;
use hydra_forward::EventTime;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

#[test]
fn a_split_commit_runs_once_every_piece_was_delivered() {
    let ran = Arc::new(AtomicUsize::new(0));
    let commit = |ran: &Arc<AtomicUsize>| {
        let ran = ran.clone();
        Some(Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }) as Commit)
    };
    let mut pieces = split_commit(commit(&ran), 3);
    assert_eq!(pieces.len(), 3);
    // Delivered out of order.
    for i in [2, 0] {
        (pieces[i].take().unwrap())();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a piece is undelivered");
    (pieces[1].take().unwrap())();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // A piece dropped undelivered: never runs.
    let mut pieces = split_commit(commit(&ran), 2);
    (pieces[0].take().unwrap())();
    drop(pieces);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // One piece: the commit itself; none: no commits.
    assert!(split_commit(commit(&ran), 1)[0].is_some());
    assert!(split_commit(None, 4).iter().all(Option::is_none));
}

fn line(frame: &mut FrameBuilder, text: &str) {
    frame.push_line(EventTime::new(1, 0), "m", text.as_bytes());
}

#[tokio::test]
async fn seals_by_size_and_by_interval() {
    let buffer = Buffer::new(BufferConfig {
        chunk_bytes: 100,
        flush_interval: Duration::from_millis(50),
        ..BufferConfig::default()
    });
    for i in 0..10 {
        buffer
            .append("a", 30, 1, None, |f| line(f, &format!("event {i}")))
            .await
            .unwrap();
    }
    let first = buffer.try_next_chunk().unwrap();
    assert!(first.events() >= 3 && first.events() < 10);
    // The rest is sealed by the interval.
    let start = Instant::now();
    let mut total = first.events();
    while total < 10 {
        total += buffer.next_chunk().await.unwrap().events();
    }
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_batch_that_would_cross_chunk_bytes_starts_a_new_chunk() {
    // Batches of 400 bytes into 1,000-byte chunks: two fit, the third
    // would cross, so it opens the next chunk. No chunk's frame grows
    // past the room reserved for it.
    let buffer = Buffer::new(BufferConfig {
        chunk_bytes: 1_000,
        flush_interval: Duration::from_millis(20),
        ..BufferConfig::default()
    });
    let text = "x".repeat(380);
    for _ in 0..5 {
        buffer
            .append("t", 400, 1, None, |f| line(f, &text))
            .await
            .unwrap();
    }
    let mut sizes = Vec::new();
    while sizes.iter().sum::<usize>() < 5 {
        let chunk = buffer.next_chunk().await.unwrap();
        assert!(chunk.frame().len() < 1_000, "{}", chunk.frame().len());
        sizes.push(chunk.events());
    }
    assert_eq!(sizes, [2, 2, 1]);
}

#[tokio::test]
async fn producers_wait_when_full_and_resume_on_delivery() {
    // Room for 200 bytes of events in up to four chunks.
    let max = 200 + 4 * crate::CHUNK_COST;
    let buffer = Buffer::new(BufferConfig {
        max_bytes: max,
        chunk_bytes: 50,
        ..BufferConfig::default()
    });
    let producer = {
        let buffer = buffer.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                buffer
                    .append("t", 25, 1, None, |f| line(f, &format!("e{i:03}")))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!producer.is_finished());
    let stats = buffer.stats();
    assert!(stats.bytes <= max + 25, "{stats:?}");
    assert!(stats.producer_waits >= 1);
    let mut got = 0;
    while got < 100 {
        let chunk = match buffer.try_next_chunk() {
            Some(c) => c,
            None => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        got += chunk.events();
        assert!(buffer.stats().bytes <= max + 25);
        buffer.delivered(chunk);
    }
    producer.await.unwrap();
    assert_eq!(buffer.stats().events, 0);
}

#[tokio::test]
async fn commits_run_only_on_delivery_and_retries_keep_them() {
    let buffer = Buffer::new(BufferConfig::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    buffer
        .append(
            "t",
            10,
            1,
            Some(Box::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })),
            |f| line(f, "x"),
        )
        .await
        .unwrap();
    buffer.close();
    let chunk = buffer.next_chunk().await.unwrap();
    let frame = chunk.frame().clone();
    buffer.retry(chunk);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let again = buffer.next_chunk().await.unwrap();
    assert_eq!(again.attempts(), 1);
    assert_eq!(
        again.frame(),
        &frame,
        "a retry sends the same bytes and chunk id"
    );
    buffer.delivered(again);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(buffer.next_chunk().await.is_none());
    assert_eq!(
        buffer.append("t", 1, 1, None, |_| {}).await,
        Err(Error::Closed)
    );
}

#[tokio::test]
async fn a_waiting_consumer_gets_a_chunk_by_the_flush_interval() {
    // Regression: the consumer waited before any chunk was open and was
    // never woken to arm the flush timer.
    let buffer = Buffer::new(BufferConfig {
        flush_interval: Duration::from_millis(50),
        ..BufferConfig::default()
    });
    let consumer = {
        let b = buffer.clone();
        tokio::spawn(async move { b.next_chunk().await.map(|c| c.events()) })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    buffer
        .append("t", 10, 1, None, |f| line(f, "x"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), consumer).await;
    assert_eq!(got.expect("sealed by the flush interval").unwrap(), Some(1));
}

#[tokio::test]
async fn try_append_refuses_instead_of_waiting() {
    let buffer = Buffer::new(BufferConfig {
        max_bytes: 100,
        ..BufferConfig::default()
    });
    assert_eq!(
        buffer.try_append("t", 60, 1, None, |f| line(f, &"x".repeat(60))),
        Ok(true)
    );
    assert_eq!(
        buffer.try_append("t", 60, 1, None, |f| line(f, &"y".repeat(60))),
        Ok(false)
    );
    assert_eq!(buffer.stats().events, 1);
    buffer.close();
    assert_eq!(
        buffer.try_append("t", 1, 1, None, |_| {}),
        Err(Error::Closed)
    );
}

#[tokio::test]
async fn drain_reports_what_was_left() {
    let buffer = Buffer::new(BufferConfig::default());
    buffer
        .append("t", 10, 2, None, |f| {
            line(f, "a");
            line(f, "b");
        })
        .await
        .unwrap();
    buffer.close();
    let left = buffer
        .drain(Instant::now() + Duration::from_millis(20))
        .await;
    assert_eq!(left.0, 2);
    let chunk = buffer.next_chunk().await.unwrap();
    buffer.delivered(chunk);
    assert_eq!(
        buffer.drain(Instant::now() + Duration::from_secs(1)).await,
        (0, 0)
    );
}

#[tokio::test]
async fn an_oversized_batch_gets_in_when_the_buffer_is_empty() {
    let buffer = Buffer::new(BufferConfig {
        max_bytes: 10,
        ..BufferConfig::default()
    });
    buffer
        .append("t", 1000, 1, None, |f| line(f, &"x".repeat(1000)))
        .await
        .unwrap();
    assert!(buffer.stats().bytes > 1000);
}

#[tokio::test]
async fn each_chunk_counts_its_cost_beside_its_events() {
    // Clients that wait for their acks make a chunk per frame: a frame of
    // a few bytes still holds a chunk's bookkeeping, and the ceiling counts
    // it, so producers wait before small chunks pile up in memory.
    let buffer = Buffer::new(BufferConfig {
        max_bytes: 10 * crate::CHUNK_COST,
        ..BufferConfig::default()
    });
    let mut appended = 0;
    for i in 0..100 {
        let tag = format!("t{i}");
        let fits = buffer
            .try_append(&tag, 10, 1, None, |f| line(f, "x"))
            .unwrap();
        if !fits {
            break;
        }
        buffer.flush(&tag);
        appended += 1;
    }
    assert!((9..=10).contains(&appended), "{appended} chunks of 1 event");
    // Delivering one gives its cost back.
    let chunk = buffer.try_next_chunk().unwrap();
    buffer.delivered(chunk);
    assert!(
        buffer
            .try_append("u", 10, 1, None, |f| line(f, "x"))
            .unwrap()
    );
}
