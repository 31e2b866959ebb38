//! The reading thread's pulse: it moves while the thread is well, even when
//! nothing happens and when the consumer takes nothing, and stops when the
//! thread is stuck.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::time::{Duration, Instant};

use hydra_tail::{Pulse, Source, TailConfig, Tailer};

/// Beats counted over `span`.
fn beats_over(pulse: &dyn Fn() -> Pulse, span: Duration) -> u64 {
    let before = pulse().beats;
    std::thread::sleep(span);
    pulse().beats - before
}

#[test]
fn the_pulse_moves_when_idle_and_when_the_consumer_is_stalled_and_stops_when_wedged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // More than the channel and a handout hold: reading then waits on a
    // consumer that takes nothing.
    let line = format!("{}\n", "x".repeat(1000));
    std::fs::write(&log, line.repeat(8 << 10)).unwrap();
    let wedge = dir.path().join("wedge");
    let config = TailConfig {
        sources: vec![Source::new(log.to_str().unwrap()).read_from_head(true)],
        // Intervals far longer than the pulse's: the loop still turns.
        poll_interval: Duration::from_secs(60),
        refresh_interval: Duration::from_secs(60),
        checkpoint_interval: Duration::from_secs(60),
        use_inotify: false,
        // A directory that does not exist: every save fails.
        positions: Some(dir.path().join("missing/positions.json")),
        test_wedge: Some(wedge.clone()),
        ..TailConfig::default()
    };
    let (mut tailer, batches) = Tailer::start(config).unwrap();
    let pulse = tailer.pulse_fn();
    let stalled = beats_over(&*pulse, Duration::from_millis(2500));
    assert!(
        stalled >= 2,
        "{stalled} beats in 2.5 s while the consumer takes nothing"
    );
    assert!(!pulse().died);
    assert!(
        pulse().positions_failing,
        "the first save, at start, failed"
    );

    std::fs::write(&wedge, "").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        beats_over(&*pulse, Duration::from_millis(1500)),
        0,
        "wedged: no beat"
    );
    std::fs::remove_file(&wedge).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while beats_over(&*pulse, Duration::from_millis(100)) == 0 {
        assert!(Instant::now() < deadline, "the pulse did not come back");
    }

    drop(batches);
    tailer.stop();
    assert!(!pulse().died, "asked to stop: not died");
}
