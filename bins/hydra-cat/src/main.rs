// The binary talks to people: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]
//! `hydra-cat`: sends events over the Forward protocol and exits 0 only
//! when every one of them was acknowledged.
//!
//! Exit codes: 0 all sent (and acked); 1 something was not (refused,
//! timed out, bad input line); 2 bad usage.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Parser, ValueEnum};
use hydra_cmdline::records::{self, Format, InputError, Record};
use hydra_forward::{
    BatchMode, ChunkId, Compression, EventTime, FrameBuilder, TimeFormat, encode_message,
};
use hydra_io::{Client, Target};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Compress {
    /// gzip.
    Gzip,
    /// zstd (fluentd 1.19 and later).
    Zstd,
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
    #[arg(long, value_enum)]
    compress: Option<Compress>,
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
    generate: Option<hydra_cmdline::Generate>,
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
    items: impl Iterator<Item = Result<Record, InputError>>,
) -> anyhow::Result<Sent> {
    let timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    let target = match &args.unix {
        Some(path) => Target::Unix(path.clone()),
        None => Target::Tcp {
            host: args.host.clone(),
            port: args.port,
        },
    };
    let mut conn = hydra_io::connect(&target, None, timeout)
        .await
        .with_context(|| format!("{target}"))?;
    if let Some(key) = &args.shared_key {
        hydra_io::client_handshake(&mut conn, &args.self_hostname, key, None, timeout).await?;
    }
    let mut client = Client::new(conn);
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
    let mut group: Vec<Record> = Vec::with_capacity(per_frame);
    while items.peek().is_some() {
        group.clear();
        while group.len() < per_frame {
            match items.next() {
                None => break,
                Some(Err(e)) if e.is_fatal() => {
                    return Err(
                        anyhow!(e).context(format!("after {} acknowledged events", sent.events))
                    );
                }
                Some(Err(why)) => {
                    eprintln!("hydra-cat: {why}");
                    sent.bad += 1;
                }
                Some(Ok(record)) => group.push(record),
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
                    args.compress.map(|c| match c {
                        Compress::Gzip => Compression::Gzip,
                        Compress::Zstd => Compression::Zstd,
                    }),
                )
            }
        };
        client
            .send(&frame, chunk.as_ref(), timeout)
            .await
            .with_context(|| format!("after {} acknowledged events", sent.events))?;
        sent.events += group.len();
        if let Some(b) = &bar {
            b.set_position(sent.events as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    client.close().await;
    Ok(sent)
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

/// The events to send: the one `--event` gives, or stdin's (read whole
/// first with `--strict`, so that nothing is sent if any of it is bad).
fn inputs(args: &Args) -> anyhow::Result<Box<dyn Iterator<Item = Result<Record, InputError>>>> {
    if let Some(ev) = &args.event {
        let record = records::from_json_text(&ev[1]).context("--event")?;
        return Ok(Box::new(std::iter::once(Ok((EventTime::now(), record)))));
    }
    let stdin = records::read(
        std::io::stdin().lock(),
        input_format(args),
        &args.message_key,
    );
    if !args.strict {
        return Ok(stdin);
    }
    let all: Vec<Result<Record, InputError>> = stdin.collect();
    let bad: Vec<&InputError> = all.iter().filter_map(|i| i.as_ref().err()).collect();
    if bad.is_empty() {
        return Ok(Box::new(all.into_iter()));
    }
    for b in &bad {
        eprintln!("hydra-cat: {b}");
    }
    Err(anyhow!(
        "--strict: {} bad input(s), nothing sent",
        bad.len()
    ))
}

fn try_main(args: &Args, tag: &str) -> anyhow::Result<Sent> {
    let items = inputs(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(send(args, tag, items))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return hydra_cmdline::print(kind, <Args as clap::CommandFactory>::command());
    }
    let Some(tag) = args.event.as_ref().map(|ev| &ev[0]).or(args.tag.as_ref()) else {
        eprintln!("hydra-cat: a TAG is needed (or --event TAG JSON)");
        return ExitCode::from(2);
    };
    match try_main(&args, tag) {
        Ok(sent) if sent.bad == 0 => ExitCode::SUCCESS,
        Ok(sent) => {
            let (events, bad) = (sent.events, sent.bad);
            eprintln!("hydra-cat: sent {events} events; {bad} input(s) could not be read");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hydra-cat: {e:#}");
            ExitCode::from(1)
        }
    }
}
