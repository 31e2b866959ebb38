//! Crash points: the buffer is driven through random appends, syncs,
//! seals and deliveries on a simulated disk that stops at a random call
//! (a write, a sync, a file's creation, a rename, a removal) and tears
//! what was not synced in every way a crash can. Recovery, itself crashed
//! at a random point and then run again, must yield every record whose
//! append was made durable, no record twice, and no record of an append
//! that failed; it never panics, loops or refuses.
//!
//! 4,000 cases in the test command; `HYDRA_SOAK=1` runs 100,000.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hydra_disk::sim::SimFs;
use hydra_disk::{Config, Core, Error};
use proptest::prelude::*;

const TAGS: [&str; 3] = ["app", "web", "db.slow"];

#[derive(Debug, Clone)]
enum Op {
    /// An append of `events` events to `TAGS[tag]`, each `size` bytes.
    Append {
        tag: usize,
        events: u8,
        size: u16,
    },
    Sync,
    Seal(usize),
    /// Takes the next chunk and delivers it (or returns it).
    Take {
        deliver: bool,
    },
    /// The next call fails once (no room, over quota, an I/O error).
    Fail(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TAGS.len(), 1u8..6, 1u16..300).prop_map(|(tag, events, size)| Op::Append { tag, events, size }),
        3 => Just(Op::Sync),
        1 => (0..TAGS.len()).prop_map(Op::Seal),
        2 => any::<bool>().prop_map(|deliver| Op::Take { deliver }),
        1 => any::<u8>().prop_map(Op::Fail),
    ]
}

fn config() -> Config {
    Config {
        dir: PathBuf::from("/buffer"),
        max_bytes: 1 << 20,
        // Small: appends fill chunks and seal them.
        chunk_bytes: 2_000,
        flush_interval: Duration::from_secs(3600),
    }
}

/// An event that says which append it is: a msgpack bin8 of `size` bytes
/// starting with the append's and the event's numbers.
fn event(append: u32, i: u8, size: u16) -> Vec<u8> {
    let len = usize::from(size).clamp(6, 250);
    let mut body = vec![b'.'; len];
    body[..4].copy_from_slice(&append.to_be_bytes());
    body[4] = i;
    let mut out = vec![0xc4, u8::try_from(len).unwrap()];
    out.extend_from_slice(&body);
    out
}

/// The appends whose events are in `entries`, in order.
fn appends_in(entries: &[u8]) -> Vec<(u32, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= entries.len() {
        let len = entries[at + 1] as usize;
        let body = &entries[at + 2..at + 2 + len];
        out.push((u32::from_be_bytes(body[..4].try_into().unwrap()), body[4]));
        at += 2 + len;
    }
    out
}

/// What the run promised: appends made durable, appends that failed.
#[derive(Default, Debug)]
struct Promises {
    durable: BTreeSet<u32>,
    failed: BTreeSet<u32>,
    delivered: BTreeSet<u32>,
    written: HashMap<u64, Vec<u32>>,
}

/// Drives a core through `ops` until the disk stops; what it promised.
fn drive(fs: &SimFs, ops: &[Op]) -> Promises {
    let mut p = Promises::default();
    let Ok((mut core, _)) = Core::<u32>::open(Arc::new(fs.clone()), config()) else {
        return p;
    };
    // Appends by their number, waiting to be durable.
    let mut pending: Vec<(u64, u32)> = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let n = u32::try_from(n).unwrap();
        match op {
            Op::Append { tag, events, size } => {
                let entries: Vec<u8> = (0..*events).flat_map(|i| event(n, i, *size)).collect();
                let mut attach = Some(n);
                match core.append(TAGS[*tag], &[(&entries, u32::from(*events))], &mut attach) {
                    Ok(w) => {
                        pending.push((w.id, n));
                        p.written.entry(w.seq).or_default().push(n);
                    }
                    Err(Error::Full { .. }) => {}
                    Err(_) => {
                        p.failed.insert(n);
                    }
                }
            }
            Op::Sync => {
                let job = core.sync_begin();
                let ok = job.run(core.fs().as_ref()).is_ok();
                core.sync_end(job, ok);
                let synced = core.synced();
                pending.retain(|(id, n)| {
                    if *id <= synced {
                        p.durable.insert(*n);
                        false
                    } else {
                        true
                    }
                });
            }
            Op::Seal(tag) => core.seal(TAGS[*tag]),
            Op::Take { deliver } => {
                if let Some(s) = core.take() {
                    if *deliver {
                        // Read back first, as an output does: what it holds is
                        // what was delivered.
                        if let Ok(events) = core.read(s.seq, &s.id, &s.tag) {
                            p.delivered
                                .extend(appends_in(&events.entries).iter().map(|(a, _)| *a));
                        }
                        core.delivered(s.seq);
                    } else {
                        core.returned(s.seq, s.tag, s.events);
                    }
                }
            }
            Op::Fail(k) => {
                let kinds = [
                    ErrorKind::StorageFull,
                    ErrorKind::QuotaExceeded,
                    ErrorKind::Other,
                ];
                fs.fail_at(fs.ops(), kinds[usize::from(*k) % 3]);
            }
        }
    }
    p
}

/// Every record recovery yields: (append, event) pairs.
fn recovered(fs: &SimFs) -> Vec<(u32, u8)> {
    let (mut core, _) =
        Core::<u32>::open(Arc::new(fs.clone()), config()).expect("recovery never refuses");
    let mut out = Vec::new();
    while let Some(s) = core.take() {
        let events = core.read(s.seq, &s.id, &s.tag).unwrap();
        out.extend(appends_in(&events.entries));
    }
    out
}

/// A crash-time chooser from a seed.
fn chooser(seed: u64) -> impl FnMut(usize) -> usize {
    let mut x = seed | 1;
    move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x % n as u64).unwrap()
    }
}

fn check(
    ops: &[Op],
    crash: u16,
    seed: u64,
    recovery_crash: Option<u16>,
) -> Result<(), TestCaseError> {
    let fs = SimFs::new();
    // How many calls the run makes, uncrashed; then the same run, crashed.
    let calls = {
        let probe = SimFs::new();
        drive(&probe, ops);
        probe.ops()
    };
    let at = u64::from(crash) % (calls + 1);
    fs.crash_before(at);
    let promised = drive(&fs, ops);
    let mut disk = fs.reboot(&mut chooser(seed));
    if let Some(rc) = recovery_crash {
        // Recovery crashes too, part way; the next one starts over.
        disk.crash_before(disk.ops() + u64::from(rc % 16));
        let _ = Core::<u32>::open(Arc::new(disk.clone()), config());
        disk = disk.reboot(&mut chooser(seed.rotate_left(17)));
    }
    let got = recovered(&disk);
    let mut seen = BTreeSet::new();
    for rec in &got {
        prop_assert!(seen.insert(*rec), "record {rec:?} recovered twice");
    }
    let appends: BTreeSet<u32> = got.iter().map(|(a, _)| *a).collect();
    for d in &promised.durable {
        prop_assert!(
            appends.contains(d) || promised.delivered.contains(d),
            "durable append {d} lost (crash at call {at} of {calls})"
        );
    }
    for f in &promised.failed {
        prop_assert!(!appends.contains(f), "append {f} failed, yet recovered");
    }
    // Whole appends only: an append's events are all there or none.
    for a in &appends {
        let n = got.iter().filter(|(x, _)| x == a).count();
        let op = &ops[*a as usize];
        if let Op::Append { events, .. } = op {
            prop_assert_eq!(n, usize::from(*events), "append {} partly recovered", a);
        }
    }
    // Opening again changes nothing.
    prop_assert_eq!(recovered(&disk), got);
    Ok(())
}

fn cases() -> u32 {
    if std::env::var_os("HYDRA_SOAK").is_some() {
        100_000
    } else {
        4_000
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn recovery_keeps_every_durable_record_once(
        ops in prop::collection::vec(op(), 1..40),
        crash in any::<u16>(),
        seed in any::<u64>(),
        recovery_crash in prop::option::of(any::<u16>()),
    ) {
        check(&ops, crash, seed, recovery_crash)?;
    }
}

/// Every call of one run, crashed before it in turn, with each unsynced
/// write dropped, kept and torn.
#[test]
fn a_crash_before_each_call_of_a_run() {
    let ops = vec![
        Op::Append {
            tag: 0,
            events: 3,
            size: 100,
        },
        Op::Append {
            tag: 1,
            events: 1,
            size: 200,
        },
        Op::Sync,
        Op::Append {
            tag: 0,
            events: 2,
            size: 250,
        },
        Op::Seal(0),
        Op::Take { deliver: true },
        Op::Append {
            tag: 0,
            events: 4,
            size: 100,
        },
        Op::Sync,
        Op::Take { deliver: false },
        Op::Append {
            tag: 2,
            events: 1,
            size: 50,
        },
    ];
    let calls = {
        let probe = SimFs::new();
        drive(&probe, &ops);
        probe.ops()
    };
    for at in 0..=calls {
        for seed in [0, 1, 2, 3, 0xdead_beef, u64::MAX] {
            check(&ops, u16::try_from(at).unwrap(), seed, None).unwrap();
            check(&ops, u16::try_from(at).unwrap(), seed, Some(3)).unwrap();
        }
    }
}
