// The binary talks to people: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]
//! `hydra-cat`: sends events over the Forward protocol and exits 0 only
//! when every one of them was acknowledged.
//!
//! Exit codes: 0 all sent (and acked); 1 something was not (refused,
//! timed out, bad input line); 2 bad usage.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use hydra_forward::{
    BatchMode, ChunkId, Compression, EventTime, FrameBuilder, Reply, ReplyDecoder, TimeFormat,
    encode_message,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line.
    Json,
    /// A stream of msgpack maps.
    Msgpack,
    /// Plain lines, sent as {"message": line}.
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// [tag, time, record] per event.
    Message,
    /// [tag, [[time, record], ...]].
    Forward,
    /// [tag, entries] (PackedForward).
    Packed,
}

/// Send events to Fluentd, Fluent Bit or hydra over the Forward protocol.
///
/// Reads events from stdin (one JSON object per line by default), or sends
/// the one given with --event. Exits 0 only when every event was
/// acknowledged by the server (unless --no-ack).
///
/// The flags of Fluentd's fluent-cat work too (-p/--port, -u/--unix,
/// --json, --msgpack, --none, --message-key, --time-as-integer), except
/// -h, which is help here: the host is --host.
#[derive(Debug, Parser)]
#[command(version = env!("HYDRA_VERSION"), about)]
struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short, long, default_value_t = 24224)]
    port: u16,
    /// Connect to this unix socket instead of --host and --port.
    #[arg(short, long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    unix: Option<std::path::PathBuf>,
    /// Send one event: TAG and a JSON object.
    #[arg(long, num_args = 2, value_names = ["TAG", "JSON"])]
    event: Option<Vec<String>>,
    /// The tag of the events read from stdin.
    #[arg(required_unless_present_any = ["event", "generate"])]
    tag: Option<String>,
    /// How stdin is read.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Same as --format json (fluent-cat's name).
    #[arg(long, conflicts_with_all = ["format", "msgpack", "none"])]
    json: bool,
    /// Same as --format msgpack (fluent-cat's name).
    #[arg(long, conflicts_with_all = ["format", "none"])]
    msgpack: bool,
    /// Same as --format none (fluent-cat's name).
    #[arg(long, conflicts_with = "format")]
    none: bool,
    /// With --format none: the record key of each line.
    #[arg(long, value_name = "KEY", default_value = "message")]
    message_key: String,
    /// How events are framed.
    #[arg(long, value_enum, default_value_t = Mode::Packed)]
    mode: Mode,
    /// Events per frame (forward and packed modes).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Compress packed frames.
    #[arg(long, value_parser = ["gzip"])]
    compress: Option<String>,
    /// Send whole seconds instead of EventTime (for old receivers).
    #[arg(long)]
    time_as_integer: bool,
    /// Do not ask for acks: exit once written.
    #[arg(long)]
    no_ack: bool,
    /// Seconds to wait for connecting, and for each ack.
    #[arg(short, long, default_value_t = 10.0)]
    timeout: f64,
    /// Send nothing if any input line is bad.
    #[arg(long)]
    strict: bool,
    /// Shared key for the handshake.
    #[arg(long)]
    shared_key: Option<String>,
    /// Host name sent in the handshake.
    #[arg(long, default_value = "hydra-cat")]
    self_hostname: String,
    /// Print a man page or a shell completion script, and exit.
    #[arg(long, value_enum, hide = true)]
    generate: Option<hydra_cli::Generate>,
}

fn json_to_msgpack(v: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match v {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => n
            .as_i64()
            .map(rmpv::Value::from)
            .or_else(|| n.as_u64().map(rmpv::Value::from))
            .unwrap_or_else(|| rmpv::Value::F64(n.as_f64().unwrap_or(0.0))),
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(a) => rmpv::Value::Array(a.iter().map(json_to_msgpack).collect()),
        J::Object(o) => rmpv::Value::Map(
            o.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// One item of input: an event, or a line that could not be read.
enum Item {
    Event(EventTime, Vec<u8>),
    Bad(String),
}

/// Reads stdin one event at a time, so input of any size streams through
/// with bounded memory.
fn stdin_items(
    format: Format,
    message_key: &str,
) -> Box<dyn Iterator<Item = anyhow::Result<Item>>> {
    let message_key = message_key.to_owned();
    let stdin = std::io::stdin().lock();
    match format {
        Format::Msgpack => {
            let mut reader = std::io::BufReader::new(stdin);
            let mut n = 0usize;
            Box::new(std::iter::from_fn(move || {
                match reader.fill_buf() {
                    Ok([]) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err(anyhow!("reading stdin: {e}"))),
                }
                n += 1;
                Some(match rmpv::decode::read_value(&mut reader) {
                    // A stream that cannot be decoded cannot be resumed.
                    Err(e) => Err(anyhow!("msgpack value {n}: {e}")),
                    Ok(v) if v.is_map() => Ok(Item::Event(
                        EventTime::now(),
                        hydra_forward::encode_record(&v),
                    )),
                    Ok(_) => Ok(Item::Bad(format!("msgpack value {n}: not a map"))),
                })
            }))
        }
        Format::Json | Format::None => {
            Box::new(stdin.split(b'\n').enumerate().filter_map(move |(i, line)| {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return Some(Err(anyhow!("reading stdin: {e}"))),
                };
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                let record = if matches!(format, Format::None) {
                    rmpv::Value::Map(vec![(
                        rmpv::Value::from(message_key.as_str()),
                        rmpv::Value::from(String::from_utf8_lossy(line).as_ref()),
                    )])
                } else {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    match serde_json::from_slice::<serde_json::Value>(line) {
                        Ok(v) if v.is_object() => json_to_msgpack(&v),
                        Ok(_) => {
                            return Some(Ok(Item::Bad(format!(
                                "line {}: not a JSON object",
                                i + 1
                            ))));
                        }
                        Err(e) => return Some(Ok(Item::Bad(format!("line {}: {e}", i + 1)))),
                    }
                };
                Some(Ok(Item::Event(
                    EventTime::now(),
                    hydra_forward::encode_record(&record),
                )))
            }))
        }
    }
}

/// What a run sent, and what it could not read.
#[derive(Default)]
struct Sent {
    events: usize,
    bad: usize,
}

fn progress() -> Option<indicatif::ProgressBar> {
    // Only for a person watching: never in pipes, logs or scripts.
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos} events acked ({per_sec}) {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    Some(bar)
}

async fn send(
    args: &Args,
    tag: &str,
    items: impl Iterator<Item = anyhow::Result<Item>>,
) -> anyhow::Result<Sent> {
    let timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    let mut stream = connect(args, timeout).await?;
    if let Some(key) = &args.shared_key {
        hydra_sender::handshake(&mut stream, &args.self_hostname, key, None, timeout)
            .await
            .map_err(|e| anyhow!(e))?;
    }
    let (read, mut write) = tokio::io::split(stream);
    let mut replies = FramedRead::new(read, ReplyDecoder::new());
    let tf = if args.time_as_integer {
        TimeFormat::Integer
    } else {
        TimeFormat::EventTime
    };
    let per_frame = match args.mode {
        Mode::Message => 1,
        _ => args.batch.max(1),
    };
    let bar = progress();
    let mut sent = Sent::default();
    let mut items = items.peekable();
    let mut group: Vec<(EventTime, Vec<u8>)> = Vec::with_capacity(per_frame);
    while items.peek().is_some() {
        group.clear();
        while group.len() < per_frame {
            match items.next() {
                None => break,
                Some(Err(e)) => {
                    return Err(e.context(format!("after {} acknowledged events", sent.events)));
                }
                Some(Ok(Item::Bad(why))) => {
                    eprintln!("hydra-cat: {why}");
                    sent.bad += 1;
                }
                Some(Ok(Item::Event(t, r))) => group.push((t, r)),
            }
        }
        if group.is_empty() {
            continue;
        }
        let chunk = (!args.no_ack).then(ChunkId::generate);
        let frame = match args.mode {
            Mode::Message => encode_message(tag, group[0].0, tf, &group[0].1, chunk.as_ref()),
            Mode::Forward | Mode::Packed => {
                let mode = if matches!(args.mode, Mode::Forward) {
                    BatchMode::Forward
                } else {
                    BatchMode::PackedForward
                };
                let mut b = FrameBuilder::new(tag, mode, tf);
                for (t, r) in &group {
                    b.push_raw(*t, r);
                }
                b.finish(
                    chunk.as_ref(),
                    args.compress.as_ref().map(|_| Compression::Gzip),
                )
            }
        };
        write.write_all(&frame).await.context("sending")?;
        if let Some(chunk) = chunk {
            match tokio::time::timeout(timeout, replies.next()).await {
                Err(_) => bail!(
                    "no ack within {timeout:?} after {} acknowledged events",
                    sent.events
                ),
                Ok(None) => bail!(
                    "the server closed the connection after {} acknowledged events",
                    sent.events
                ),
                Ok(Some(Err(e))) => bail!("bad reply from the server: {e}"),
                Ok(Some(Ok(Reply::Ack(id)))) if id == chunk => {}
                Ok(Some(Ok(other))) => bail!("unexpected reply from the server: {other:?}"),
            }
        }
        sent.events += group.len();
        if let Some(b) = &bar {
            b.set_position(sent.events as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    write.shutdown().await.ok();
    Ok(sent)
}

/// A connection: TCP or a unix socket.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(args: &Args, timeout: Duration) -> anyhow::Result<Box<dyn Stream>> {
    if let Some(path) = &args.unix {
        let what = path.display();
        let s = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
            .await
            .map_err(|_| anyhow!("connecting to {what}: timed out"))?
            .with_context(|| format!("connecting to {what}"))?;
        return Ok(Box::new(s));
    }
    let what = format!("{}:{}", args.host, args.port);
    let s = tokio::time::timeout(timeout, TcpStream::connect((args.host.as_str(), args.port)))
        .await
        .map_err(|_| anyhow!("connecting to {what}: timed out"))?
        .with_context(|| format!("connecting to {what}"))?;
    Ok(Box::new(s))
}

/// --format, or the fluent-cat flag that stands for it.
fn input_format(args: &Args) -> Format {
    if args.msgpack {
        Format::Msgpack
    } else if args.none {
        Format::None
    } else if args.json {
        Format::Json
    } else {
        args.format
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return hydra_cli::print(kind, <Args as clap::CommandFactory>::command());
    }
    let tag = match (&args.event, &args.tag) {
        (Some(ev), _) => ev[0].clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            eprintln!("hydra-cat: a TAG is needed (or --event TAG JSON)");
            return ExitCode::from(2);
        }
    };
    let items: Box<dyn Iterator<Item = anyhow::Result<Item>>> = if let Some(ev) = &args.event {
        let item = serde_json::from_str::<serde_json::Value>(&ev[1])
            .map_err(|e| anyhow!("--event: not JSON: {e}"))
            .and_then(|v| {
                if v.is_object() {
                    Ok(Item::Event(
                        EventTime::now(),
                        hydra_forward::encode_record(&json_to_msgpack(&v)),
                    ))
                } else {
                    Err(anyhow!("--event: not a JSON object"))
                }
            });
        if let Err(e) = item {
            eprintln!("hydra-cat: {e}");
            return ExitCode::from(1);
        }
        Box::new(std::iter::once(item))
    } else if args.strict {
        // Nothing may be sent if any input is bad: read it all first.
        let all: Vec<anyhow::Result<Item>> =
            stdin_items(input_format(&args), &args.message_key).collect();
        let bad: Vec<String> = all
            .iter()
            .filter_map(|i| match i {
                Ok(Item::Bad(why)) => Some(why.clone()),
                Err(e) => Some(format!("{e:#}")),
                Ok(Item::Event(..)) => None,
            })
            .collect();
        if !bad.is_empty() {
            for b in &bad {
                eprintln!("hydra-cat: {b}");
            }
            eprintln!(
                "hydra-cat: --strict: {} bad input(s), nothing sent",
                bad.len()
            );
            return ExitCode::from(1);
        }
        Box::new(all.into_iter())
    } else {
        stdin_items(input_format(&args), &args.message_key)
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hydra-cat: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(send(&args, &tag, items)) {
        Ok(sent) if sent.bad == 0 => ExitCode::SUCCESS,
        Ok(sent) => {
            eprintln!(
                "hydra-cat: sent {} events; {} input(s) could not be read",
                sent.events, sent.bad
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hydra-cat: {e:#}");
            ExitCode::from(1)
        }
    }
}
