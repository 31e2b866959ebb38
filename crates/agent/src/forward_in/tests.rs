use super::reader::FREE;
use super::*;
use hydra_forward::{BatchMode, EventTime, FrameBuilder, TimeFormat};

fn reader(read: tokio::io::ReadHalf<Conn>, budget: &Arc<Semaphore>, total: usize) -> Reader {
    Reader {
        read,
        buf: BytesMut::with_capacity(8 << 10),
        decoder: ForwardDecoder::with_limits(hydra_forward::Limits::default()).defer_inflation(),
        held: Held {
            budget: budget.clone(),
            total,
            n: 0,
        },
        large: false,
    }
}

#[tokio::test]
async fn a_large_frame_is_freed_when_its_room_goes_back() {
    // A connection that stays open after one large frame: its buffer
    // kept the frame's whole allocation alive (shared with what was
    // left of it) while the frame's room in max_pending_bytes was given
    // back. Idle clients that once sent a large frame held memory the
    // budget no longer counted.
    let total = 8 << 20;
    let budget = Arc::new(Semaphore::new(total));
    let (client, server) = tokio::io::duplex(1 << 20);
    let (read, _write) = tokio::io::split(Box::new(server) as Conn);
    let mut reader = reader(read, &budget, total);
    let mut f = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    let pad = vec![b'x'; 1000];
    for _ in 0..2_000 {
        f.push_fields(EventTime::new(1_700_000_000, 0), &[("p", &pad)]);
    }
    let frame = f.finish(None, None);
    assert!(frame.len() > 2 * FREE);
    let mut client = client;
    let send = tokio::spawn(async move {
        client.write_all(&frame).await.unwrap();
        client
    });
    let entries = match reader.next(std::time::Duration::from_secs(10)).await {
        Next::Request(Request::Events(batch)) => batch.entries().clone(),
        _ => panic!("no events"),
    };
    assert!(budget.available_permits() < total, "the frame held no room");
    reader.settle();
    assert_eq!(budget.available_permits(), total);
    assert!(
        entries.is_unique(),
        "the connection's buffer still holds the frame's allocation"
    );
    let _client = send.await.unwrap();
}

fn frame(events: usize, pad: usize) -> Bytes {
    let mut f = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    let pad = vec![b'x'; pad];
    for _ in 0..events {
        f.push_fields(EventTime::new(1_700_000_000, 0), &[("p", &pad)]);
    }
    f.finish(None, None)
}

#[tokio::test]
async fn small_frames_are_read_while_the_budget_is_spent() {
    // Every permit is held elsewhere (large frames of other
    // connections): a small frame still comes through, read within
    // what a connection may hold on its own; a larger one waits.
    let total = 1 << 20;
    let budget = Arc::new(Semaphore::new(total));
    let all = budget.clone().acquire_many_owned(1 << 20).await.unwrap();
    let (client, server) = tokio::io::duplex(1 << 20);
    let (read, _write) = tokio::io::split(Box::new(server) as Conn);
    let mut reader = reader(read, &budget, total);
    let small = frame(40, 100);
    assert!(small.len() < FREE);
    let large = frame(400, 100);
    assert!(large.len() > FREE);
    let mut client = client;
    client.write_all(&small).await.unwrap();
    client.write_all(&large).await.unwrap();
    let wait = std::time::Duration::from_secs(5);
    let got = tokio::time::timeout(wait, reader.next(wait)).await;
    assert!(
        matches!(got, Ok(Next::Request(Request::Events(ref b))) if b.len() == 40),
        "the small frame was not read"
    );
    reader.settle();
    let short = std::time::Duration::from_millis(300);
    assert!(
        tokio::time::timeout(short, reader.next(wait))
            .await
            .is_err(),
        "the large frame was read without room"
    );
    drop(all);
    let got = tokio::time::timeout(wait, reader.next(wait)).await;
    assert!(
        matches!(got, Ok(Next::Request(Request::Events(ref b))) if b.len() == 400),
        "the large frame was not read once room came"
    );
}
