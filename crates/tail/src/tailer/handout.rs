//! Handing a batch to the consumer from the reading thread, which has no
//! async runtime: the channel's own `reserve` future, polled here and
//! woken by unparking this thread, with a deadline so that paths can be
//! looked after while the consumer is slow.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};

/// Wakes the parked reading thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Sends `item`, waiting at most `wait` for room in the channel.
pub(super) fn send_within<T>(
    tx: &Sender<T>,
    item: T,
    wait: Duration,
) -> Result<(), SendTimeoutError<T>> {
    let item = match tx.try_send(item) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Closed(item)) => return Err(SendTimeoutError::Closed(item)),
        Err(TrySendError::Full(item)) => item,
    };
    let deadline = Instant::now() + wait;
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut reserve = pin!(tx.reserve());
    loop {
        match reserve.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(permit)) => {
                permit.send(item);
                return Ok(());
            }
            Poll::Ready(Err(_)) => return Err(SendTimeoutError::Closed(item)),
            Poll::Pending => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(SendTimeoutError::Timeout(item));
                }
                // Woken early by the channel (or spuriously): poll again.
                std::thread::park_timeout(left);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_times_out_then_takes_the_item_once_there_is_room() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        send_within(&tx, 1, Duration::from_millis(10)).unwrap();
        let started = Instant::now();
        let Err(SendTimeoutError::Timeout(2)) = send_within(&tx, 2, Duration::from_millis(50))
        else {
            panic!("expected a timeout with the item back");
        };
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Room made from another thread while this one waits.
        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let first = rx.blocking_recv();
            (first, rx)
        });
        send_within(&tx, 3, Duration::from_secs(5)).unwrap();
        let (first, mut rx) = taker.join().unwrap();
        assert_eq!(first, Some(1));
        assert_eq!(rx.try_recv().ok(), Some(3));
        drop(rx);
        let Err(SendTimeoutError::Closed(4)) = send_within(&tx, 4, Duration::from_secs(5)) else {
            panic!("expected closed");
        };
    }
}
