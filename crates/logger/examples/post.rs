//! Sends one record to a Forward server and waits for its ack.
//!
//! `cargo run -p hydra-logger --example post -- 127.0.0.1 24224` with hydra
//! (or Fluentd) listening there.

use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = args.next().map_or(Ok(24224), |p| p.parse())?;
    let logger = hydra_logger::Logger::builder()
        .address(&host, port)
        .build()?;
    logger
        .post(
            "example.post",
            &BTreeMap::from([("message", "hello from hydra-logger")]),
        )
        .await?;
    let left = logger.close(Duration::from_secs(5)).await;
    if left > 0 {
        return Err(format!("{left} record(s) not acknowledged within 5 s").into());
    }
    Ok(())
}
