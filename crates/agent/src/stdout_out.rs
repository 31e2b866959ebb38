//! The stdout output: each event as a JSON line
//! `{"tag": .., "time": "<RFC 3339>", "record": {..}}`.

use std::io::Write;

use hydra_buffer::Buffer;
use hydra_forward::ForwardDecoder;

pub(crate) async fn run(buffer: Buffer) {
    let mut decoder = ForwardDecoder::new();
    while let Some(chunk) = buffer.next_chunk().await {
        let mut out = Vec::with_capacity(chunk.frame().len() * 2);
        hydra_stats::json_lines(&mut decoder, chunk.frame(), &mut out);
        let written = tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out).and_then(|()| stdout.flush())
        })
        .await;
        match written {
            Ok(Ok(())) => buffer.delivered(chunk),
            // stdout is gone (closed pipe): nothing can be delivered; keep
            // the chunk undelivered so its commits never run.
            _ => {
                buffer.retry(chunk);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
