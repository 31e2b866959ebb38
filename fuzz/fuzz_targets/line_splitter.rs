//! The tail line splitter on arbitrary bytes and piece sizes: never a
//! panic; the same lines whatever the pieces; every byte before the last
//! newline consumed; no line longer than the limit.
#![no_main]

use hydra_tail::{LongLines, split_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else { return };
    let piece = usize::from(knobs & 0x3f) + 1;
    let max_line = usize::from(knobs >> 6) * 8 + 4;
    let mode = if knobs & 1 == 0 { LongLines::Truncate } else { LongLines::Skip };
    let strip = knobs & 2 != 0;
    let (lines, consumed) = split_lines(data, piece, max_line, mode, strip);
    let (whole, whole_consumed) = split_lines(data, data.len().max(1), max_line, mode, strip);
    // A long line may be cut at a piece boundary when it has not ended yet,
    // so only line counts without long lines must agree exactly.
    if data.split(|&b| b == b'\n').all(|l| l.len() <= max_line) {
        assert_eq!(lines, whole);
        assert_eq!(consumed, whole_consumed);
        let last_newline = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        assert_eq!(consumed as usize, last_newline);
    }
    assert!(lines.iter().all(|l| l.len() <= max_line));
});
