//! The disk buffer's recovery on any bytes as a buffer directory: the
//! input is cut into files (the first byte says how many, each next pair
//! how long), named as chunks or not. Recovery never panics or loops,
//! keeps only whole records, and a second opening finds what the first
//! left, without new damage.
#![no_main]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hydra_disk::sim::SimFs;
use hydra_disk::{Config, Core, format};
use libfuzzer_sys::fuzz_target;

fn config() -> Config {
    Config {
        dir: "/b".into(),
        max_bytes: 1 << 30,
        chunk_bytes: 1 << 20,
        flush_interval: Duration::from_secs(60),
    }
}

/// Every record's entries, in order.
fn read_all(fs: &SimFs) -> (Vec<Vec<u8>>, u64) {
    let (mut core, recovery) = Core::<()>::open(Arc::new(fs.clone()), config()).expect("never refuses");
    let mut out = Vec::new();
    while let Some(s) = core.take() {
        if let Ok(e) = core.read(s.seq, &s.id, &s.tag) {
            out.push(e.entries);
        }
    }
    (out, recovery.corrupt_records)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, mut rest)) = data.split_first() else { return };
    let fs = SimFs::new();
    for i in 0..(n % 8) {
        if rest.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let body = &rest[2..2 + len];
        rest = &rest[2 + len..];
        // Mostly chunk names, some strays; one real header now and then so
        // the records inside get read.
        let name = if i % 4 == 3 {
            format!("stray{i}")
        } else {
            format::file_name(u64::from(i), &format!("{:032x}", i))
        };
        let mut file = Vec::new();
        if i % 2 == 0 {
            file.extend_from_slice(&format::header(0));
        }
        file.extend_from_slice(body);
        fs.set_contents(&Path::new("/b").join(name), file);
    }
    let _ = hydra_disk::sim::SimFs::names(&fs, Path::new("/b"));
    let (first, _) = read_all(&fs);
    let (second, corrupt) = read_all(&fs);
    assert_eq!(first, second);
    assert_eq!(corrupt, 0, "damage set aside once is not found again");
});
