//! The stdout output: each event as a JSON line
//! `{"tag": .., "time": "<RFC 3339>", "record": {..}}`.

use std::io::Write;

use hydra_buffer::Buffer;
use hydra_forward::{EventTime, ForwardDecoder, Request};
use rmpv::Value;
use serde_json::{Map, Value as Json};

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(Json::from)
            .or_else(|| i.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        // Log bytes that are not UTF-8 are shown with replacement characters.
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Ext(t, d) => Json::Object(Map::from_iter([
            ("ext".to_owned(), Json::from(*t)),
            ("data".to_owned(), Json::from(d.clone())),
        ])),
    }
}

fn rfc3339(t: EventTime) -> String {
    humantime::format_rfc3339_nanos(t.into()).to_string()
}

pub(crate) async fn run(buffer: Buffer) {
    let mut decoder = ForwardDecoder::new();
    while let Some(chunk) = buffer.next_chunk().await {
        let mut out = Vec::with_capacity(chunk.frame().len() * 2);
        if let Ok(Some(Request::Events(batch))) = decoder.decode_frame(chunk.frame()) {
            for e in batch.events() {
                let line = Json::Object(Map::from_iter([
                    ("tag".to_owned(), Json::from(batch.tag())),
                    ("time".to_owned(), Json::from(rfc3339(e.time))),
                    ("record".to_owned(), to_json(&e.record())),
                ]));
                let _ = serde_json::to_writer(&mut out, &line);
                out.push(b'\n');
            }
        }
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
