//! hydra as a fleet on one machine: 20 agents (each tailing a file and
//! accepting a Forward client) → 2 hydra aggregators (round robin, acks
//! required) → one receiver. Mid-stream one aggregator is killed (-9) and
//! restarted, and the other is stalled (SIGSTOP) for 10 s. Every agent and
//! aggregator runs on its defaults: positions file, `read_from_head:
//! false`, `ack: delivered`, `require_ack`. Every event must arrive;
//! duplicates can only come from chunks the killed aggregator held unacked.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::{Behaviour, Receiver};

const AGENTS: u64 = 20;
const LINES: u64 = 2_000;
const EVENTS: u64 = 500;

/// An aggregator: a forward input on `port`, everything to `receiver`.
fn aggregator(dir: &Path, port: u16, receiver: u16) -> Hydra {
    std::fs::create_dir_all(dir).unwrap();
    Hydra::start(
        dir,
        &format!(
            "inputs:\n  - type: forward\n    listen: 127.0.0.1:{port}\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {receiver} }}]\n"
        ),
    )
}

/// Agent `i`: its file `app.log` (JSON lines) and a forward input on
/// `port`, round robin over both aggregators.
fn agent(dir: &Path, i: u64, port: u16, aggregators: [u16; 2]) -> Hydra {
    std::fs::create_dir_all(dir).unwrap();
    // There before hydra starts, so that every line written after is read
    // (with `read_from_head: false` a first run starts at the end).
    std::fs::write(dir.join("app.log"), "").unwrap();
    let [a1, a2] = aggregators;
    Hydra::start(
        dir,
        &format!(
            "positions: {dir}/positions.json\ninputs:\n  - type: tail\n    path: {dir}/app.log\n    tag: fleet.file.{i}\n    format: json\n  - type: forward\n    listen: 127.0.0.1:{port}\noutput:\n  type: forward\n  balance: round_robin\n  servers:\n    - {{ host: 127.0.0.1, port: {a1} }}\n    - {{ host: 127.0.0.1, port: {a2} }}\n",
            dir = dir.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_two_aggregators_one_killed_one_stalled_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let agg_ports = [free_port(), free_port()];
    let mut agg1 = aggregator(&dir.path().join("agg1"), agg_ports[0], rx.port());
    let agg2 = aggregator(&dir.path().join("agg2"), agg_ports[1], rx.port());
    let agents: Vec<(Hydra, u16, std::path::PathBuf)> = (0..AGENTS)
        .map(|i| {
            let d = dir.path().join(format!("agent{i}"));
            let port = free_port();
            (agent(&d, i, port, agg_ports), port, d.join("app.log"))
        })
        .collect();

    let started = Instant::now();
    // Each agent's application writes numbered lines over 2 s, and its
    // Forward client sends numbered events in chunks of 50, each acked.
    let mut work = Vec::new();
    for (i, (_, port, log)) in agents.iter().enumerate() {
        let (i, port, log) = (i as u64, *port, log.clone());
        work.push(std::thread::spawn(move || {
            for batch in 0..20 {
                let text: String = (batch * LINES / 20..(batch + 1) * LINES / 20)
                    .map(|k| format!("{{\"n\":{}}}\n", i * 1_000_000 + k))
                    .collect();
                append_text(&log, &text);
                std::thread::sleep(Duration::from_millis(100));
            }
            true
        }));
        work.push(std::thread::spawn(move || {
            let from = i * 1_000_000 + 500_000;
            send_numbered(
                port,
                from,
                from + EVENTS,
                50,
                60,
                &format!("fleet.client.{i}"),
            )
        }));
    }

    // Mid-stream: aggregator 1 crashes and comes back; aggregator 2 stalls.
    std::thread::sleep(Duration::from_millis(700));
    agg1.child.kill().unwrap();
    agg1.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    agg2.signal("STOP");
    std::thread::sleep(Duration::from_millis(500));
    let agg1 = aggregator(&dir.path().join("agg1"), agg_ports[0], rx.port());
    std::thread::sleep(Duration::from_secs(10));
    agg2.signal("CONT");

    for w in work {
        assert!(w.join().unwrap(), "a Forward client's chunk was not acked");
    }
    let written = AGENTS * (LINES + EVENTS);
    let everything = |seen: &[u64]| {
        let mut d = seen.to_vec();
        d.sort_unstable();
        d.dedup();
        d.len() as u64 >= written
    };
    assert!(
        wait(90, || everything(&rx.seen.lock().unwrap())),
        "not everything arrived within 90 s"
    );
    let drained = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let seen = rx.seen.lock().unwrap().clone();
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let expected: Vec<u64> = (0..AGENTS)
        .flat_map(|i| {
            let base = i * 1_000_000;
            (base..base + LINES).chain(base + 500_000..base + 500_000 + EVENTS)
        })
        .collect();
    let lost: Vec<&u64> = expected
        .iter()
        .filter(|n| distinct.binary_search(n).is_err())
        .collect();
    println!(
        "fleet: {AGENTS} agents, 2 aggregators (one killed -9 and restarted, one stalled 10 s): written {written}, delivered {} ({} distinct), lost {}, duplicated {}, drained in {:.1} s",
        seen.len(),
        distinct.len(),
        lost.len(),
        seen.len() - distinct.len(),
        drained.as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "lost {} events: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(
        distinct.len() as u64,
        written,
        "events that were never written"
    );
    for (h, _, _) in agents {
        assert!(h.stop().success());
    }
    assert!(agg1.stop().success());
    assert!(agg2.stop().success());
}
