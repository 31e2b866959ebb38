//! `hydra buffer check DIR` and `hydra buffer dump DIR`: a disk buffer read
//! without changing it, safe while a hydra writes it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hydra_disk::{check, events_of, fs::RealFs};
use hydra_forward::{BatchMode, ForwardDecoder, FrameBuilder, Limits, TimeFormat};

/// Prints what the buffer holds and any damage: exit 0 if clean, 1 if
/// damaged, 2 if it cannot be read.
pub(crate) fn check(dir: &Path) -> ExitCode {
    let report = match check::inspect(&RealFs, dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hydra: {:#}", anyhow::Error::from(e));
            return ExitCode::from(2);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let oldest = report.oldest().map_or_else(
        || "-".to_owned(),
        |o| format!("{} s", now.saturating_sub(o)),
    );
    println!(
        "{}: {} chunks, {} events, {} bytes, oldest chunk {oldest}",
        dir.display(),
        report.chunks.len(),
        report.events(),
        report.bytes()
    );
    for c in &report.chunks {
        let name = c
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (offset, len) in &c.damaged {
            println!("damaged: {name}: {len} bytes at offset {offset}");
        }
        if let Some((offset, len)) = c.garbage_tail {
            println!(
                "damaged: {name}: {len} bytes at offset {offset} that are no record (a torn write)"
            );
        }
    }
    for s in &report.strays {
        println!("not the buffer's: {s}");
    }
    if report.is_damaged() {
        println!("damaged");
        ExitCode::from(1)
    } else {
        println!("clean");
        ExitCode::SUCCESS
    }
}

/// Prints every stored event as a JSON line (as `hydra tap` does): exit 0,
/// or 2 if the buffer cannot be read.
pub(crate) fn dump(dir: &Path) -> ExitCode {
    let (files, _) = match check::chunk_files(&RealFs, dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("hydra: {:#}", anyhow::Error::from(e));
            return ExitCode::from(2);
        }
    };
    let mut decoder = ForwardDecoder::with_limits(Limits {
        max_frame_bytes: usize::MAX,
        max_decompressed_bytes: usize::MAX,
        ..Limits::default()
    });
    let mut stdout = std::io::stdout().lock();
    for (_, _, name) in files {
        // A chunk delivered meanwhile is gone: nothing to print.
        let Ok(data) = std::fs::read(dir.join(&name)) else {
            continue;
        };
        let Some(tag) = hydra_disk::format::scan(&data)
            .records
            .first()
            .map(|r| r.tag.clone())
        else {
            continue;
        };
        let events = events_of(data, &tag);
        let mut f = FrameBuilder::with_capacity(
            &tag,
            BatchMode::PackedForward,
            TimeFormat::EventTime,
            events.entries.len(),
        );
        f.extend_entries(&events.entries, usize::try_from(events.events).unwrap_or(0));
        let frame = f.finish(None, None);
        let mut out = Vec::with_capacity(frame.len() * 2);
        hydra_forward::json_lines(&mut decoder, &frame, &mut out);
        if stdout.write_all(&out).is_err() {
            // A closed pipe (`| head`): done.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
