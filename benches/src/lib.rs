//! hydra's benchmark harness: a load library, a counting Forward receiver,
//! process measurements, and report writers. `src/bin/hydra-bench.rs` runs
//! the scenarios; criterion micro-benchmarks live in `benches/`.

// Rates and percentiles become counts and indexes: small, non-negative
// values by construction.
#![allow(clippy::cast_possible_truncation)]

pub mod load;
pub mod measure;
pub mod receiver;
pub mod report;
