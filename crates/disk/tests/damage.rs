//! Damage: bytes overwritten or flipped anywhere in a chunk file, a file cut
//! short, garbage appended, a file deleted, a stray file left. Recovery
//! delivers every record the damage did not touch, counts the damage, sets
//! it aside, and the check tool sees what recovery sees.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hydra_disk::sim::SimFs;
use hydra_disk::{Config, Core, check, format};
use proptest::prelude::*;

fn config() -> Config {
    Config {
        dir: PathBuf::from("/buffer"),
        max_bytes: 1 << 20,
        chunk_bytes: 4_000,
        flush_interval: Duration::from_secs(3600),
    }
}

/// A buffer of `n` synced appends of one event each, numbered.
fn filled(n: u32) -> SimFs {
    let fs = SimFs::new();
    let (mut core, _) = Core::<()>::open(Arc::new(fs.clone()), config()).unwrap();
    for i in 0..n {
        let mut e = vec![0xc4, 8];
        e.extend_from_slice(&u64::from(i).to_be_bytes());
        core.append("app", &[(&e, 1)], &mut None).unwrap();
    }
    core.seal_all();
    let job = core.sync_begin();
    job.run(core.fs().as_ref()).unwrap();
    core.sync_end(job, true);
    fs
}

fn numbers(entries: &[u8]) -> Vec<u64> {
    entries
        .chunks(10)
        .map(|c| u64::from_be_bytes(c[2..10].try_into().unwrap()))
        .collect()
}

/// The chunk files, and the numbers each record of each holds with its
/// byte range.
type Records = Vec<(u64, std::ops::Range<usize>)>;

fn layout(fs: &SimFs) -> Vec<(PathBuf, Records)> {
    let dir = Path::new("/buffer");
    let (files, _) = check::chunk_files(fs, dir).unwrap();
    files
        .into_iter()
        .map(|(_, _, name)| {
            let path = dir.join(name);
            let data = fs.contents(&path).unwrap();
            let records = format::scan(&data)
                .records
                .iter()
                .map(|r| {
                    (
                        numbers(&data[r.entries.clone()])[0],
                        r.offset..r.offset + r.len,
                    )
                })
                .collect();
            (path, records)
        })
        .collect()
}

fn recovered(fs: &SimFs) -> (Vec<u64>, u64) {
    let (mut core, recovery) = Core::<()>::open(Arc::new(fs.clone()), config()).unwrap();
    let mut out = Vec::new();
    while let Some(s) = core.take() {
        out.extend(numbers(&core.read(s.seq, &s.id, &s.tag).unwrap().entries));
    }
    (out, recovery.corrupt_records)
}

#[derive(Debug, Clone)]
enum Harm {
    Overwrite { at: usize, len: usize, byte: u8 },
    Flip { at: usize, bit: u8 },
    Cut(usize),
    Garbage(Vec<u8>),
    Delete,
    Stray,
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        (any::<usize>(), 1usize..100, any::<u8>()).prop_map(|(at, len, byte)| Harm::Overwrite {
            at,
            len,
            byte
        }),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Harm::Flip { at, bit }),
        any::<usize>().prop_map(Harm::Cut),
        prop::collection::vec(any::<u8>(), 1..200).prop_map(Harm::Garbage),
        Just(Harm::Delete),
        Just(Harm::Stray),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn damage_costs_only_the_damaged_records(n in 1u32..400, file in any::<usize>(), harms in prop::collection::vec(harm(), 1..4)) {
        let fs = filled(n);
        let files = layout(&fs);
        let (path, records) = &files[file % files.len()];
        let mut data = fs.contents(path).unwrap();
        let original = data.clone();
        let mut lost: BTreeSet<u64> = BTreeSet::new();
        let touch = |lost: &mut BTreeSet<u64>, from: usize, to: usize| {
            for (num, r) in records {
                if r.start < to && from < r.end {
                    lost.insert(*num);
                }
            }
        };
        let mut deleted = false;
        for h in &harms {
            match h {
                Harm::Overwrite { at, len, byte } => {
                    let at = at % data.len();
                    let end = (at + len).min(data.len());
                    data[at..end].fill(*byte);
                    touch(&mut lost, at, end);
                }
                Harm::Flip { at, bit } => {
                    let at = at % data.len();
                    data[at] ^= 1 << bit;
                    touch(&mut lost, at, at + 1);
                }
                Harm::Cut(at) => {
                    let at = at % (data.len() + 1);
                    data.truncate(at);
                    touch(&mut lost, at, usize::MAX);
                }
                Harm::Garbage(g) => data.extend_from_slice(g),
                Harm::Delete => deleted = true,
                Harm::Stray => fs.set_contents(Path::new("/buffer/notes.txt"), b"not a chunk".to_vec()),
            }
        }
        if deleted {
            fs.set_contents(path, Vec::new());
            lost.extend(records.iter().map(|(n, _)| *n));
        } else {
            fs.set_contents(path, data.clone());
        }
        let report = check::inspect(&fs, Path::new("/buffer")).unwrap();
        let (got, corrupt) = recovered(&fs);
        let got_set: BTreeSet<u64> = got.iter().copied().collect();
        prop_assert_eq!(got_set.len(), got.len(), "a record recovered twice");
        for i in 0..u64::from(n) {
            if !lost.contains(&i) {
                prop_assert!(got_set.contains(&i), "record {} untouched by the damage, yet lost", i);
            }
        }
        // What was changed in the middle of the file is counted; the check
        // saw damage whenever recovery set some aside.
        if corrupt > 0 {
            prop_assert!(report.is_damaged());
        }
        let changed_mid = data != original && !deleted && records.iter().any(|(num, r)| lost.contains(num) && r.end < data.len());
        if changed_mid {
            prop_assert!(corrupt > 0 || report.is_damaged() || got_set.len() < n as usize, "damage went unseen");
        }
        // Opening again: the damage was set aside, not counted twice.
        let (again, corrupt_again) = recovered(&fs);
        prop_assert_eq!(again, got);
        prop_assert_eq!(corrupt_again, 0);
    }
}

#[test]
fn the_acceptance_damage_costs_one_record() {
    // 64 bytes overwritten in the middle of the largest file, 100 random
    // bytes appended to it: the check sees damage, recovery delivers every
    // record but the one overwritten (two if it straddles a boundary).
    let fs = filled(1_000);
    let files = layout(&fs);
    let (path, records) = files.iter().max_by_key(|(_, r)| r.len()).unwrap();
    let mut data = fs.contents(path).unwrap();
    assert!(
        check::inspect(&fs, Path::new("/buffer"))
            .unwrap()
            .chunks
            .iter()
            .all(|c| !c.is_damaged())
    );
    let mid = data.len() / 2;
    data[mid..mid + 64].fill(0x5a);
    data.extend((0..100u8).map(|i| i.wrapping_mul(37)));
    fs.set_contents(path, data);
    let report = check::inspect(&fs, Path::new("/buffer")).unwrap();
    assert!(report.is_damaged());
    let (got, corrupt) = recovered(&fs);
    assert!(corrupt >= 1);
    let hit = records
        .iter()
        .filter(|(_, r)| r.start < mid + 64 && mid < r.end)
        .count();
    assert_eq!(got.len(), 1_000 - hit, "only the damaged records are lost");
    assert!(!fs.names(Path::new("/buffer/corrupt")).is_empty());
}
