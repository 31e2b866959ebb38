//! Forward events as JSON, for people to read: the stdout output, `hydra
//! tap` and tests print them this way; and JSON records as msgpack, for
//! tools that read them (`hydra-cat`).

use bytes::Bytes;
use rmpv::Value;
use serde_json::{Map, Value as Json};

use crate::{EventTime, ForwardDecoder, Request};

/// A msgpack value as JSON, for people to read: strings that are not UTF-8
/// get replacement characters.
pub fn to_json(v: &Value) -> Json {
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

/// A JSON value as msgpack: integers stay integers, other numbers become
/// 64-bit floats, objects keep their keys' order.
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::F64(n.as_f64().unwrap_or(0.0))),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

fn rfc3339(t: EventTime) -> String {
    humantime::format_rfc3339_nanos(t.into()).to_string()
}

/// Appends each event of a Forward frame to `out` as a JSON line
/// `{"tag": .., "time": "<RFC 3339>", "record": {..}}`; returns how many.
pub fn json_lines(decoder: &mut ForwardDecoder, frame: &Bytes, out: &mut Vec<u8>) -> usize {
    let Ok(Some(Request::Events(batch))) = decoder.decode_frame(frame) else {
        return 0;
    };
    let mut n = 0;
    for e in batch.events() {
        let line = Json::Object(Map::from_iter([
            ("tag".to_owned(), Json::from(batch.tag())),
            ("time".to_owned(), Json::from(rfc3339(e.time))),
            ("record".to_owned(), to_json(&e.record())),
        ]));
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
            n += 1;
        }
    }
    n
}
