//! hydra's pipeline, wired from a [`hydra_config::Config`].
//!
//! Inputs (files through `hydra-tail`, Forward clients) append to one
//! bounded [`hydra_buffer::Buffer`]; the output (Forward servers through
//! `hydra-sender`, or JSON lines on stdout) delivers its chunks; delivery
//! runs the inputs' commits (tail positions, acks to clients). The monitor
//! serves the stats.
//!
//! [`Agent::start`] starts everything; [`Agent::stop`] stops the inputs,
//! delivers what was accepted within `shutdown_timeout`, saves positions,
//! and reports what was left.

pub mod cases;
mod filtered;
mod forward_in;
mod listen;
mod log_limit;
mod stdout_out;
mod tail_in;
mod zabbix_in;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hydra_buffer::{Buffer, BufferConfig};
use hydra_config::{Config, Input, Output};
use hydra_forward::{Compression, TimeFormat};
use hydra_sender::{Sender, SenderConfig, ServerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use forward_in::ReceiverCounters;

/// Why hydra could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address could not be bound. The OS error is the source, not
    /// part of the message, so a chain of causes names it once.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: hydra_config::Listen,
        /// Why.
        source: std::io::Error,
    },
    /// A unix socket path that cannot be listened on.
    #[error("cannot listen on unix:{}: {reason}", path.display())]
    UnixPath {
        /// The path.
        path: std::path::PathBuf,
        /// Why: it is not a socket, or a live one.
        reason: &'static str,
    },
    /// The tail input could not start.
    #[error(transparent)]
    Tail(#[from] hydra_tail::Error),
    /// The forward output's settings are unusable.
    #[error(transparent)]
    Sender(#[from] hydra_sender::Error),
    /// A secret or file the configuration names cannot be used.
    #[error(transparent)]
    Config(#[from] hydra_config::Error),
    /// A `hydra test` case names no tail input of the configuration.
    #[error("case {case:?}: no tail input has the tag {input:?}")]
    NoSuchInput {
        /// The case's name.
        case: String,
        /// The tag it named.
        input: String,
    },
    /// A filter that cannot be built.
    #[error(transparent)]
    Filter(#[from] hydra_filter::Error),
    /// A tail input's `format` settings do not make a parser.
    #[error("tail input {tag}")]
    Parser {
        /// The input's tag.
        tag: String,
        /// What is wrong.
        source: hydra_parse::Error,
    },
    /// An input's TLS settings do not work.
    #[error("forward input {addr}: TLS")]
    Tls {
        /// The input's address.
        addr: hydra_config::Listen,
        /// What is wrong.
        source: hydra_tls::Error,
    },
}

/// What a stop left behind.
#[derive(Debug, Default)]
pub struct StopReport {
    /// Events accepted but not delivered within the deadline: their tail
    /// positions did not advance, and clients with `ack: delivered` got no
    /// ack (they send them again); `ack: buffered` events are lost.
    pub undelivered_events: usize,
    /// The tail positions and open files, for the pipeline that replaces
    /// this one ([`Agent::start_after`]).
    pub tail: Option<hydra_tail::Handoff>,
}

type TailStatsFn = Arc<dyn Fn() -> (Vec<hydra_tail::FileStats>, Option<String>) + Send + Sync>;

enum OutputTask {
    Forward(Sender),
    Stdout(JoinHandle<()>),
}

/// A running pipeline.
pub struct Agent {
    config: Config,
    buffer: Buffer,
    stop_inputs: watch::Sender<bool>,
    input_tasks: Vec<JoinHandle<()>>,
    tailer: Option<hydra_tail::Tailer>,
    output: OutputTask,
    monitor: Option<JoinHandle<()>>,
    monitor_stop: watch::Sender<bool>,
    zabbix: Option<JoinHandle<()>>,
    parse_counters: Option<Arc<tail_in::ParseCounters>>,
    filters: Arc<hydra_filter::Chain>,
    tap: Option<hydra_stats::TapHub>,
    rates: Option<JoinHandle<()>>,
    /// TCP addresses actually bound, in config order (forward inputs,
    /// monitor); unix sockets are not listed.
    pub bound: Vec<SocketAddr>,
    /// Reloads refused since hydra started, carried from pipeline to
    /// pipeline.
    reload_failures: Arc<AtomicU64>,
}

/// What [`Agent::reload`] did.
#[derive(Debug)]
pub struct Reload {
    /// The pipeline running now: the new configuration's, or the old one's.
    pub agent: Agent,
    /// Events the old pipeline stopped without delivering (see
    /// [`StopReport::undelivered_events`]); 0 when it went on untouched.
    pub undelivered_events: usize,
    /// Why the new configuration is not running, when it is not.
    pub refused: Option<Error>,
}

/// A TCP address to listen on: bound already, or to bind at start because
/// the pipeline being replaced still holds it.
enum Socket {
    Bound(tokio::net::TcpListener, SocketAddr),
    Later(SocketAddr),
}

impl Socket {
    /// Binds `addr` now unless `running` listens there (or on the same port
    /// of every address) too.
    async fn new(addr: SocketAddr, running: &[SocketAddr]) -> Result<Socket, Error> {
        if shares(addr, running) {
            return Ok(Socket::Later(addr));
        }
        tokio::net::TcpListener::bind(addr)
            .await
            .map(|l| Socket::Bound(l, addr))
            .map_err(|source| bind_error(addr, source))
    }

    /// The listener, bound now if it was not yet, and its address.
    async fn listen(self) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
        let (listener, addr) = match self {
            Socket::Bound(l, addr) => (l, addr),
            Socket::Later(addr) => (
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| bind_error(addr, source))?,
                addr,
            ),
        };
        let local = listener
            .local_addr()
            .map_err(|source| bind_error(addr, source))?;
        Ok((listener, local))
    }
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> Error {
    Error::Bind {
        addr: hydra_config::Listen::Tcp(addr),
        source,
    }
}

/// Whether a forward input's `listen` is held by the running pipeline: a
/// TCP address that [`shares`] a port of `held` (the running pipeline's
/// TCP addresses), or the same unix socket path.
fn listen_held(
    listen: &hydra_config::Listen,
    held: &[SocketAddr],
    running: Option<&Config>,
) -> bool {
    match listen {
        hydra_config::Listen::Tcp(a) => shares(*a, held),
        hydra_config::Listen::Unix(_) => running.is_some_and(|r| {
            r.inputs
                .iter()
                .any(|i| matches!(i, Input::Forward(f) if f.listen == *listen))
        }),
    }
}

/// Whether `addr` collides with an address the running pipeline listens
/// on: the same port on the same or an unspecified address. Port 0 never
/// does.
fn shares(addr: SocketAddr, running: &[SocketAddr]) -> bool {
    addr.port() != 0
        && running.iter().any(|r| {
            r.port() == addr.port()
                && (r.ip() == addr.ip() || r.ip().is_unspecified() || addr.ip().is_unspecified())
        })
}

/// Everything a configuration needs that can fail, loaded (and bound,
/// where no running pipeline holds the address) before its pipeline
/// starts.
struct Prepared {
    /// The forward output's settings; `None` for stdout.
    sender: Option<SenderConfig>,
    forward: Vec<forward_in::Prepared>,
    monitor: Option<Socket>,
    zabbix: Option<Socket>,
    token: Option<String>,
}

impl Prepared {
    /// Prepares `config`; `running` is the configuration of the pipeline
    /// it will replace, whose addresses are bound only once it stopped.
    async fn new(config: &Config, running: Option<&Config>) -> Result<Prepared, Error> {
        let held: Vec<SocketAddr> = running.map(listen_addrs).unwrap_or_default();
        let sender = match &config.output {
            Output::Forward(f) => {
                let sender = sender_config(f)?;
                sender.check()?;
                Some(sender)
            }
            Output::Stdout(_) => None,
        };
        let mut forward = Vec::new();
        for input in &config.inputs {
            if let Input::Forward(f) = input {
                let prefix = match (&config.tag_prefix, &f.tag_prefix) {
                    (Some(a), Some(b)) => Some(format!("{a}.{b}")),
                    (a, b) => a.clone().or_else(|| b.clone()),
                };
                forward.push(
                    forward_in::prepare(f, prefix, !listen_held(&f.listen, &held, running)).await?,
                );
            }
        }
        let (monitor, zabbix, token) = match &config.monitor {
            Some(m) => (
                Some(Socket::new(m.listen, &held).await?),
                match m.zabbix_listen {
                    Some(z) => Some(Socket::new(z, &held).await?),
                    None => None,
                },
                m.resolve_token()?,
            ),
            None => (None, None, None),
        };
        Ok(Prepared {
            sender,
            forward,
            monitor,
            zabbix,
            token,
        })
    }
}

/// Whether the monitor on `addr` serves `GET /tap`: the stream of log
/// contents is for this host only, or for whoever holds the token.
fn tap_allowed(addr: SocketAddr, token: Option<&str>) -> bool {
    addr.ip().is_loopback() || token.is_some()
}

/// Every address `config` listens on.
fn listen_addrs(config: &Config) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = config
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Forward(f) => f.listen.tcp(),
            Input::Tail(_) => None,
        })
        .collect();
    if let Some(m) = &config.monitor {
        addrs.push(m.listen);
        addrs.extend(m.zabbix_listen);
    }
    addrs
}

/// The sender's settings for the forward output `f`, secrets resolved.
fn sender_config(f: &hydra_config::ForwardOutput) -> Result<SenderConfig, Error> {
    Ok(SenderConfig {
        servers: f
            .servers
            .iter()
            .map(|s| {
                Ok(ServerConfig {
                    host: s.host.clone(),
                    port: s.port,
                    weight: s.weight,
                    standby: s.standby,
                    shared_key: s.key.resolve()?,
                    username: s.username.clone(),
                    password: s.password.clone(),
                    tls: s.tls.as_ref().map(|t| hydra_tls::ClientTls {
                        ca: t.ca.clone(),
                        server_name: t.server_name.clone(),
                        cert: t.cert.clone(),
                        key: t.key.clone(),
                        insecure: t.insecure,
                    }),
                })
            })
            .collect::<Result<_, Error>>()?,
        balance: match f.balance {
            hydra_config::Balance::Failover => hydra_sender::Balance::Failover,
            hydra_config::Balance::RoundRobin => hydra_sender::Balance::RoundRobin,
        },
        require_ack: f.require_ack,
        connect_timeout: f.connect_timeout,
        send_timeout: f.send_timeout,
        ack_timeout: f.ack_timeout,
        recover_wait: f.recover_wait,
        max_in_flight: f.max_in_flight,
        self_hostname: f.self_hostname.clone().unwrap_or_else(hostname),
        dead_letter: f.dead_letter.as_ref().map(|d| hydra_sender::DeadLetter {
            path: d.path.clone(),
            after: d.after,
        }),
        ..SenderConfig::default()
    })
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

fn join_tag(prefix: Option<&str>, tag: &str) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}.{tag}"),
        None => tag.to_owned(),
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl Agent {
    /// Starts every input, the output and the monitor.
    pub async fn start(config: Config) -> Result<Agent, Error> {
        Self::start_after(config, &mut None).await
    }

    /// Like [`Agent::start`], taking over the tail positions and open files
    /// of a stopped pipeline ([`StopReport::tail`]): a reload. The handoff
    /// is taken only once the tailer runs; if starting fails it is left in
    /// `tail`, for the caller to start the old configuration again with.
    pub async fn start_after(
        config: Config,
        tail: &mut Option<hydra_tail::Handoff>,
    ) -> Result<Agent, Error> {
        let prepared = Prepared::new(&config, None).await?;
        Self::start_prepared(config, prepared, tail).await
    }

    /// Replaces this pipeline with one running `new`, handing over the
    /// tail positions and open files. Everything `new` needs that can fail
    /// without disturbing this pipeline (TLS files, secrets, addresses it
    /// does not share with this one) is loaded and bound first: if that
    /// fails, this pipeline goes on untouched. If `new` still cannot start
    /// once this one stopped, this configuration starts again. Either
    /// refusal counts in `reload_failures`. An error means not even this
    /// configuration could start again.
    pub async fn reload(self, new: Config) -> Result<Reload, Error> {
        let failures = self.reload_failures.load(Ordering::Relaxed);
        let prepared = match Prepared::new(&new, Some(&self.config)).await {
            Ok(p) => p,
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                return Ok(Reload {
                    agent: self,
                    undelivered_events: 0,
                    refused: Some(e),
                });
            }
        };
        let running = self.config.clone();
        let report = self.stop().await;
        let mut tail = report.tail;
        let (agent, refused) = match Self::start_prepared(new, prepared, &mut tail).await {
            Ok(agent) => (agent, None),
            Err(e) => (Self::start_after(running, &mut tail).await?, Some(e)),
        };
        agent
            .reload_failures
            .store(failures + u64::from(refused.is_some()), Ordering::Relaxed);
        Ok(Reload {
            agent,
            undelivered_events: report.undelivered_events,
            refused,
        })
    }

    /// Counts a reload refused before it reached [`Agent::reload`] (the new
    /// configuration file did not parse or validate).
    pub fn count_refused_reload(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    async fn start_prepared(
        config: Config,
        prepared: Prepared,
        tail: &mut Option<hydra_tail::Handoff>,
    ) -> Result<Agent, Error> {
        let (flush_interval, chunk_bytes, require_ack, compress, time_format) = match &config.output
        {
            Output::Forward(f) => (
                f.flush_interval,
                f.chunk_bytes.as_usize(),
                f.require_ack,
                f.compress.map(|_| Compression::Gzip),
                if f.time_as_integer {
                    TimeFormat::Integer
                } else {
                    TimeFormat::EventTime
                },
            ),
            Output::Stdout(_) => (
                Duration::from_millis(100),
                256 << 10,
                false,
                None,
                TimeFormat::EventTime,
            ),
        };
        let buffer = Buffer::new(BufferConfig {
            max_bytes: config.buffer.max_bytes.as_usize(),
            max_events: config.buffer.max_events,
            chunk_bytes,
            flush_interval,
            time_format,
            require_ack,
            compress,
        });

        let output = match prepared.sender {
            Some(sender) => OutputTask::Forward(Sender::spawn(sender, buffer.clone())?),
            None => OutputTask::Stdout(tokio::spawn(stdout_out::run(buffer.clone()))),
        };

        let filters = Arc::new(hydra_filter::Chain::new(&config.filters, &hostname())?);
        let (stop_inputs, stop_rx) = watch::channel(false);
        let mut input_tasks = Vec::new();
        let mut bound = Vec::new();
        let mut listeners: Vec<(String, Arc<ReceiverCounters>)> = Vec::new();
        for input in prepared.forward {
            let counters = Arc::new(ReceiverCounters::default());
            let (addr, tasks) = forward_in::start(
                input,
                buffer.clone(),
                counters.clone(),
                stop_rx.clone(),
                filters.clone(),
            )
            .await?;
            info!(%addr, "Accepting Forward clients.");
            bound.extend(addr.tcp());
            listeners.push((addr.to_string(), counters));
            input_tasks.extend(tasks);
        }
        let tails: Vec<&hydra_config::TailInput> = config
            .inputs
            .iter()
            .filter_map(|i| match i {
                Input::Tail(t) => Some(t),
                Input::Forward(_) => None,
            })
            .collect();

        let (monitor_stop, monitor_rx) = watch::channel(false);
        let monitor = match prepared.monitor {
            Some(socket) => {
                let (listener, addr) = socket.listen().await?;
                if !addr.ip().is_loopback() {
                    warn!(%addr, "The monitor is reachable from other hosts.");
                }
                bound.push(addr);
                Some((listener, addr))
            }
            None => None,
        };
        let zabbix = match prepared.zabbix {
            Some(socket) => {
                let (listener, addr) = socket.listen().await?;
                bound.push(addr);
                Some(listener)
            }
            None => None,
        };
        // The tailer last: it takes over the handoff, which a failure
        // before this point leaves to the caller.
        let mut parse_counters = None;
        let tailer = if tails.is_empty() {
            None
        } else {
            let (tailer, task, counters) =
                tail_in::start(&config, &tails, buffer.clone(), tail, filters.clone())?;
            input_tasks.push(task);
            parse_counters = Some(counters);
            Some(tailer)
        };

        let mut agent = Agent {
            config,
            buffer,
            stop_inputs,
            input_tasks,
            tailer,
            output,
            monitor: None,
            monitor_stop,
            zabbix: None,
            parse_counters,
            filters,
            tap: None,
            rates: None,
            bound,
            reload_failures: Arc::default(),
        };
        if let Some((listener, addr)) = monitor {
            // /tap streams the logs themselves: off on an address other
            // hosts can reach unless a token guards it.
            let tap_allowed = tap_allowed(addr, prepared.token.as_deref());
            if !tap_allowed {
                warn!(%addr, "The monitor has no token and other hosts can reach it: GET /tap is refused.");
            }
            let sampler = hydra_stats::RateSampler::new(agent.snapshot_fn(listeners));
            let snapshot = sampler.snapshot_fn();
            let mut stop = agent.monitor_stop.subscribe();
            agent.rates = Some(tokio::spawn(sampler.run(async move {
                let _ = stop.changed().await;
            })));
            let tap = tap_allowed.then(hydra_stats::TapHub::new);
            if let Some(tap) = &tap {
                let observer = tap.clone();
                agent
                    .buffer
                    .set_observer(Arc::new(move |tag: &str, frame: &bytes::Bytes, n| {
                        observer.observe(tag, frame, n);
                    }));
            }
            agent.tap.clone_from(&tap);
            if let Some(z) = zabbix {
                let (snapshot, stop) = (snapshot.clone(), agent.monitor_stop.subscribe());
                info!(addr = ?z.local_addr().ok(), "Answering Zabbix passive checks.");
                agent.zabbix = Some(tokio::spawn(zabbix_in::serve(z, snapshot, stop)));
            }
            let app = hydra_stats::monitor_router(snapshot, tap, prepared.token);
            let mut stop = monitor_rx;
            agent.monitor = Some(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.changed().await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    warn!(%addr, error = %e, "Monitor stopped.");
                }
            }));
            info!(%addr, "Monitor listening.");
        }
        Ok(agent)
    }

    fn snapshot_fn(
        &self,
        listeners: Vec<(String, Arc<ReceiverCounters>)>,
    ) -> hydra_stats::SnapshotFn {
        let buffer = self.buffer.clone();
        let tail_stats: Option<TailStatsFn> = self.tailer.as_ref().map(|t| t.stats_fn());
        let sender_stats: Option<Arc<dyn Fn() -> hydra_sender::SenderStats + Send + Sync>> =
            match &self.output {
                OutputTask::Forward(s) => Some(s.stats_fn()),
                OutputTask::Stdout(_) => None,
            };
        let tags: Vec<String> = tail_in::tags(&self.config);
        let parse_counters = self.parse_counters.clone();
        let filters = self.filters.clone();
        let reload_failures = self.reload_failures.clone();
        Arc::new(move || {
            let b = buffer.stats();
            let per_listener: Vec<hydra_stats::Receiver> = listeners
                .iter()
                .map(|(addr, c)| c.snapshot(vec![addr.clone()]))
                .collect();
            let mut snap = hydra_stats::Snapshot {
                receiver: hydra_stats::Receiver::total(&per_listener, b.events as u64),
                listeners: per_listener,
                buffer: hydra_stats::Buffer {
                    bytes: b.bytes as u64,
                    events: b.events as u64,
                    max_bytes: b.max_bytes as u64,
                    queued_chunks: b.queued_chunks as u64,
                    retried_chunks: b.chunks_retried,
                    producer_waits: b.producer_waits,
                    delivered: b.events_delivered,
                    dead_lettered: 0,
                },
                reload_failures: reload_failures.load(Ordering::Relaxed),
                ..hydra_stats::Snapshot::default()
            };
            if let Some(f) = &tail_stats {
                let (files, positions_error) = f();
                for fs in files {
                    snap.files.insert(
                        fs.path.display().to_string(),
                        hydra_stats::File {
                            tag: tags.get(fs.source).cloned().unwrap_or_default(),
                            position: fs.position,
                            committed: fs.committed,
                            behind: fs.size.saturating_sub(fs.position),
                            lines: fs.lines,
                            multiline_cuts: fs.multiline_cuts,
                            error: fs.error.unwrap_or_default(),
                            ..hydra_stats::File::default()
                        },
                    );
                }
                snap.errors
                    .extend(positions_error.map(|e| format!("positions: {e}")));
            }
            snap.filters = filters
                .stats()
                .into_iter()
                .map(|f| hydra_stats::Filter {
                    pattern: f.pattern,
                    kind: f.kind.to_owned(),
                    passed: f.passed,
                    dropped: f.dropped,
                    errors: f.errors,
                    held_ms: f.held_ms,
                })
                .collect();
            if let Some(c) = &parse_counters {
                snap.parsing = c.snapshot().into_iter().collect();
            }
            if let Some(f) = &sender_stats {
                let s = f();
                snap.buffer.dead_lettered = s.dead_lettered_events;
                snap.servers = s
                    .servers
                    .into_iter()
                    .map(|sv| hydra_stats::Server {
                        active: sv.active,
                        address: sv.address,
                        alive: sv.alive,
                        error: sv.error.unwrap_or_default(),
                        standby: sv.standby,
                        messages: sv.events,
                        chunks: sv.chunks,
                        retries: sv.retries,
                        acks_pending: sv.in_flight as u64,
                        last_delivery: sv.last_delivery,
                        ..hydra_stats::Server::default()
                    })
                    .collect();
                snap.sent = s
                    .sent
                    .into_iter()
                    .map(|(t, v)| {
                        (
                            t,
                            hydra_stats::Sent {
                                messages: v.messages,
                                bytes: v.bytes,
                            },
                        )
                    })
                    .collect();
            }
            snap
        })
    }

    /// Stops the inputs, delivers what was accepted within the configured
    /// `shutdown_timeout`, saves tail positions, and stops the monitor.
    pub async fn stop(mut self) -> StopReport {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        // Inputs first: nothing new is accepted from here on.
        let _ = self.stop_inputs.send(true);
        if let Some(mut t) = self.tailer.take() {
            // Joining the reading thread blocks: not on a runtime worker.
            self.tailer = tokio::task::spawn_blocking(move || {
                t.stop();
                t
            })
            .await
            .ok();
        }
        let mut waiting = Vec::new();
        for mut task in self.input_tasks.drain(..) {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, &mut task).await.is_err() {
                waiting.push(task);
            }
        }
        self.buffer.close();
        let (left, _) = self.buffer.drain(deadline).await;
        // Inputs still running past the deadline hold connections whose
        // chunks were not delivered (`ack: delivered`): closed unacked,
        // their clients send them again. Left running, they would keep the
        // listening socket and the buffer alive, and a reload could not
        // bind the address again.
        for task in waiting {
            task.abort();
            let _ = task.await;
        }
        match self.output {
            OutputTask::Forward(sender) => {
                if left == 0 {
                    // Nothing is left to send, so this returns at once; the
                    // bound keeps a stop bounded whatever the sender does.
                    let grace =
                        deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
                    let _ = tokio::time::timeout(grace, sender.finished()).await;
                } else {
                    sender.abort();
                }
            }
            OutputTask::Stdout(task) => {
                if left == 0 {
                    let _ = task.await;
                } else {
                    task.abort();
                }
            }
        }
        if left > 0 {
            warn!(
                events = left,
                "Shutdown deadline passed: undelivered events were not committed (no tail position advanced, no delivered-ack sent)."
            );
        }
        // Saves the positions, and keeps them (and the open files) for a
        // pipeline that takes over.
        let tail = self.tailer.take().map(hydra_tail::Tailer::handoff);
        if let Some(t) = &self.tap {
            t.close();
        }
        let _ = self.monitor_stop.send(true);
        if let Some(r) = self.rates.take() {
            let _ = r.await;
        }
        if let Some(m) = self.monitor.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), m).await;
        }
        if let Some(z) = self.zabbix.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), z).await;
        }
        StopReport {
            undelivered_events: left,
            tail,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn tap_is_served_off_this_host_only_with_a_token() {
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(tap_allowed(at("127.0.0.1:24220"), None));
        assert!(tap_allowed(at("[::1]:24220"), None));
        assert!(!tap_allowed(at("0.0.0.0:24220"), None));
        assert!(!tap_allowed(at("10.1.2.3:24220"), None));
        assert!(tap_allowed(at("0.0.0.0:24220"), Some("t0ken")));
    }

    #[test]
    fn an_address_is_shared_by_port_on_the_same_or_any_address() {
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        let running = [at("127.0.0.1:24224"), at("0.0.0.0:24220")];
        assert!(shares(at("127.0.0.1:24224"), &running));
        assert!(shares(at("0.0.0.0:24224"), &running));
        assert!(shares(at("127.0.0.2:24220"), &running));
        assert!(!shares(at("127.0.0.2:24224"), &running));
        assert!(!shares(at("127.0.0.1:24225"), &running));
        assert!(!shares(at("127.0.0.1:0"), &[at("127.0.0.1:0")]));
    }
}
