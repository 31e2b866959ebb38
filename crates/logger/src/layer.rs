//! A `tracing` layer that ships events as Forward records.

use std::fmt::Write as _;

use hydra_forward::{EventTime, encode_record};
use rmpv::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::Logger;

/// Sends each `tracing` event as a record
/// `{"level": .., "target": .., "message": .., <fields>...}` with `tag`.
///
/// It never blocks the code that logs: when the buffer is full the event
/// is dropped and counted ([`Logger::dropped`]).
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// # async fn run() -> Result<(), hydra_logger::Error> {
/// let logger = hydra_logger::Logger::builder().address("127.0.0.1", 24224).build()?;
/// tracing_subscriber::registry().with(hydra_logger::FluentLayer::new(logger, "app.trace")).init();
/// tracing::info!(user = "alice", "Logged in.");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FluentLayer {
    logger: Logger,
    tag: String,
}

impl FluentLayer {
    /// A layer posting to `logger` with `tag`.
    pub fn new(logger: Logger, tag: &str) -> Self {
        FluentLayer {
            logger,
            tag: tag.to_owned(),
        }
    }
}

struct Fields(Vec<(Value, Value)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.push((Value::from(field.name()), Value::from(s)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((Value::from(field.name()), Value::from(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((Value::from(field.name()), Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((Value::from(field.name()), Value::from(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((Value::from(field.name()), Value::F64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((Value::from(field.name()), Value::from(value)));
    }
}

impl<S: Subscriber> Layer<S> for FluentLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // The logger's own connection code logs too: shipping those events
        // through the same logger could feed on itself.
        if meta.target().starts_with("hydra_sender") || meta.target().starts_with("hydra_buffer") {
            return;
        }
        let mut fields = Fields(vec![
            (Value::from("level"), Value::from(meta.level().as_str())),
            (Value::from("target"), Value::from(meta.target())),
        ]);
        event.record(&mut fields);
        let raw = encode_record(&Value::Map(fields.0));
        let _ = self.logger.try_post_raw(&self.tag, EventTime::now(), &raw);
    }
}
