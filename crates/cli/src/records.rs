//! Events read from standard input, one at a time, so input of any size
//! streams through in bounded memory: JSON objects (one per line), a
//! stream of msgpack maps, or plain lines.

use std::io::BufRead;

use hydra_forward::{EventTime, encode_record, from_json};

/// How input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// A stream of msgpack maps.
    Msgpack,
    /// Plain lines, each sent as `{KEY: line}`.
    None,
}

/// One event: its time (when it was read) and its record as msgpack.
pub type Record = (EventTime, Vec<u8>);

/// Input that is not an event. Some of it can be skipped
/// ([`InputError::is_fatal`] false); the rest ends the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Reading failed.
    #[error("reading stdin: {0}")]
    Read(#[from] std::io::Error),
    /// A msgpack stream that cannot be decoded, and so cannot be resumed.
    #[error("msgpack value {n}: {source}")]
    Msgpack {
        /// Which value, from 1.
        n: usize,
        /// Why.
        source: rmpv::decode::Error,
    },
    /// A msgpack value that is not a map.
    #[error("msgpack value {n}: not a map")]
    NotAMap {
        /// Which value, from 1.
        n: usize,
    },
    /// A line that is JSON, but not an object.
    #[error("line {line}: not a JSON object")]
    NotAnObject {
        /// Which line, from 1.
        line: usize,
    },
    /// A line that is not JSON.
    #[error("line {line}: {source}")]
    Json {
        /// Which line, from 1.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
}

impl InputError {
    /// Whether nothing after this can be read.
    pub fn is_fatal(&self) -> bool {
        matches!(self, InputError::Read(_) | InputError::Msgpack { .. })
    }
}

/// The record of a JSON object's text.
pub fn from_json_text(text: &str) -> Result<Vec<u8>, InputError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(encode_record(&from_json(&v))),
        Ok(_) => Err(InputError::NotAnObject { line: 1 }),
        Err(source) => Err(InputError::Json { line: 1, source }),
    }
}

/// The events of `input` in `format`; with [`Format::None`], each line's
/// record is `{message_key: line}`. Blank JSON lines are skipped.
///
/// ```
/// use hydra_cmdline::records::{Format, read};
/// let input = &b"{\"a\":1}\nnot json\n\n{\"b\":[true]}\n"[..];
/// let items: Vec<_> = read(input, Format::Json, "message").collect();
/// assert_eq!(items.len(), 3);
/// assert!(items[0].is_ok() && items[2].is_ok());
/// let bad = items[1].as_ref().err().expect("line 2 is not JSON");
/// assert!(!bad.is_fatal() && bad.to_string().starts_with("line 2: "));
/// ```
pub fn read<'a>(
    input: impl BufRead + 'a,
    format: Format,
    message_key: &str,
) -> Box<dyn Iterator<Item = Result<Record, InputError>> + 'a> {
    let message_key = message_key.to_owned();
    match format {
        Format::Msgpack => {
            let mut reader = input;
            let mut n = 0usize;
            Box::new(std::iter::from_fn(move || {
                match reader.fill_buf() {
                    Ok([]) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err(InputError::Read(e))),
                }
                n += 1;
                Some(match rmpv::decode::read_value(&mut reader) {
                    Err(source) => Err(InputError::Msgpack { n, source }),
                    Ok(v) if v.is_map() => Ok((EventTime::now(), encode_record(&v))),
                    Ok(_) => Err(InputError::NotAMap { n }),
                })
            }))
        }
        Format::Json | Format::None => {
            Box::new(input.split(b'\n').enumerate().filter_map(move |(i, line)| {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return Some(Err(InputError::Read(e))),
                };
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                let record = if format == Format::None {
                    rmpv::Value::Map(vec![(
                        rmpv::Value::from(message_key.as_str()),
                        rmpv::Value::from(String::from_utf8_lossy(line).as_ref()),
                    )])
                } else {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    match serde_json::from_slice::<serde_json::Value>(line) {
                        Ok(v) if v.is_object() => from_json(&v),
                        Ok(_) => return Some(Err(InputError::NotAnObject { line: i + 1 })),
                        Err(source) => {
                            return Some(Err(InputError::Json {
                                line: i + 1,
                                source,
                            }));
                        }
                    }
                };
                Some(Ok((EventTime::now(), encode_record(&record))))
            }))
        }
    }
}
