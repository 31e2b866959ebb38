//! The running pipeline ([`Agent`]): started from a configuration,
//! stopped with what it left behind, and replaced by a reload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hydra_buffer::Buffer;
use hydra_config::Config;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::disk::{Disk, DiskSink};
use crate::error::Error;
use crate::forward_in::{self, ReceiverCounters};
use crate::input::Input;
use crate::mapping::{buffer_config, hostname};
use crate::output::{ForwardOutput, Output, StdoutOutput};
use crate::prepare::Prepared;
use crate::tail_in;

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
    /// The disk buffer, still open: [`Disk::close`] it at the end of the
    /// process (what it holds stays for the next start either way).
    pub disk: Option<Disk>,
}

pub(crate) type TailStatsFn =
    Arc<dyn Fn() -> (Vec<hydra_tail::FileStats>, Option<String>) + Send + Sync>;

/// What a service that embeds the agent brings of its own: an output in
/// place of the configuration's, and inputs beside the configuration's.
/// A reload keeps them.
#[derive(Clone, Default)]
pub struct Plugins {
    /// Delivers the chunks instead of the configured output.
    pub output: Option<Arc<dyn Output>>,
    /// Run beside the configured inputs.
    pub inputs: Vec<Arc<dyn Input>>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("output", &self.output.is_some())
            .field("inputs", &self.inputs.len())
            .finish()
    }
}

/// A running pipeline.
pub struct Agent {
    pub(crate) config: Config,
    pub(crate) buffer: Buffer,
    pub(crate) stop_inputs: watch::Sender<bool>,
    pub(crate) input_tasks: Vec<JoinHandle<()>>,
    pub(crate) tailer: Option<hydra_tail::Tailer>,
    pub(crate) output: Arc<dyn Output>,
    pub(crate) output_task: JoinHandle<()>,
    pub(crate) plugins: Plugins,
    pub(crate) monitor: Option<JoinHandle<()>>,
    pub(crate) monitor_stop: watch::Sender<bool>,
    pub(crate) zabbix: Option<JoinHandle<()>>,
    pub(crate) parse_counters: Option<Arc<tail_in::ParseCounters>>,
    pub(crate) filters: Arc<hydra_filter::Chain>,
    pub(crate) tap: Option<hydra_stats::TapHub>,
    pub(crate) rates: Option<JoinHandle<()>>,
    /// TCP addresses actually bound, in config order (forward inputs,
    /// monitor); unix sockets are not listed.
    pub bound: Vec<SocketAddr>,
    /// Reloads refused since hydra started, carried from pipeline to
    /// pipeline.
    pub(crate) reload_failures: Arc<AtomicU64>,
    /// The disk buffer, handed from pipeline to pipeline.
    pub(crate) disk: Option<Disk>,
    /// Takes the disk buffer's chunks into memory.
    pub(crate) pump: Option<JoinHandle<()>>,
    /// Reloads that brought a new configuration in, carried from pipeline
    /// to pipeline.
    pub(crate) reloads: Arc<AtomicU64>,
    /// What the pulse task last found ([`Agent::health`]).
    pub(crate) verdicts: crate::pulse::Verdicts,
    /// Looks at every part's pulse once a second.
    pub(crate) pulse: Option<JoinHandle<()>>,
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

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Starts every input, the output and the monitor.
    pub async fn start(config: Config) -> Result<Agent, Error> {
        Self::start_with(config, Plugins::default()).await
    }

    /// Like [`Agent::start`], with a service's own output or inputs.
    pub async fn start_with(config: Config, plugins: Plugins) -> Result<Agent, Error> {
        let prepared = Prepared::new(&config, None).await?;
        Self::start_prepared(config, prepared, &mut None, plugins, None).await
    }

    /// Like [`Agent::start`], taking over what a stopped pipeline left
    /// ([`StopReport`]: its tail positions and open files, its disk
    /// buffer): a reload. The tail handoff is taken only once the tailer
    /// runs; if starting fails it is left in the report, for the caller to
    /// start the old configuration again with.
    pub async fn start_after(config: Config, report: &mut StopReport) -> Result<Agent, Error> {
        let prepared = match &report.disk {
            // Its lock is held: taken over, not opened again.
            Some(_) => Prepared::new(&config, Some(&config)).await?,
            None => Prepared::new(&config, None).await?,
        };
        let disk = report.disk.clone();
        Self::start_prepared(config, prepared, &mut report.tail, Plugins::default(), disk).await
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
        let reloads = self.reloads.load(Ordering::Relaxed);
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
        let plugins = self.plugins.clone();
        let report = self.stop().await;
        let mut tail = report.tail;
        let disk = report.disk;
        let started =
            Self::start_prepared(new, prepared, &mut tail, plugins.clone(), disk.clone()).await;
        let (agent, refused) = match started {
            Ok(agent) => (agent, None),
            Err(e) => {
                // The disk buffer, if any, is the running one's: kept.
                let prepared = Prepared::new(&running, Some(&running)).await?;
                let agent =
                    Self::start_prepared(running, prepared, &mut tail, plugins, disk).await?;
                (agent, Some(e))
            }
        };
        agent
            .reload_failures
            .store(failures + u64::from(refused.is_some()), Ordering::Relaxed);
        agent
            .reloads
            .store(reloads + u64::from(refused.is_none()), Ordering::Relaxed);
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
        plugins: Plugins,
        handed: Option<Disk>,
    ) -> Result<Agent, Error> {
        let buffer = Buffer::new(buffer_config(&config));
        let disk = prepared.disk.or(handed);
        // What durable inputs append to: the disk buffer, through a view
        // of the memory buffer; a pump brings its chunks back to memory.
        let durable = disk.as_ref().map(|d| {
            buffer.with_sink(Arc::new(DiskSink {
                store: d.store.clone(),
            }))
        });
        let pump = disk
            .as_ref()
            .map(|d| tokio::spawn(crate::disk::pump(d.store.clone(), buffer.clone())));

        let output: Arc<dyn Output> = match (&plugins.output, prepared.sender) {
            (Some(own), _) => own.clone(),
            (None, Some(sender)) => Arc::new(ForwardOutput::new(sender)),
            (None, None) => Arc::new(StdoutOutput),
        };
        let output_task = {
            let (output, buffer) = (output.clone(), buffer.clone());
            tokio::spawn(async move { output.run(buffer).await })
        };

        let filters = Arc::new(hydra_filter::Chain::new(&config.filters, &hostname())?);
        let (stop_inputs, stop_rx) = watch::channel(false);
        let inputs_buffer = durable.as_ref().unwrap_or(&buffer);
        let (mut input_tasks, mut bound, listeners) =
            start_forward(prepared.forward, inputs_buffer, &stop_rx, &filters).await?;
        for input in &plugins.inputs {
            let buffer = if input.durable() {
                inputs_buffer.clone()
            } else {
                buffer.clone()
            };
            let (input, stop) = (input.clone(), stop_rx.clone());
            input_tasks.push(tokio::spawn(async move { input.run(buffer, stop).await }));
        }
        let tails: Vec<&hydra_config::TailInput> = config
            .inputs
            .iter()
            .filter_map(|i| match i {
                hydra_config::Input::Tail(t) => Some(t),
                hydra_config::Input::Forward(_) => None,
            })
            .collect();

        let (monitor_stop, monitor_rx) = watch::channel(false);
        let (monitor, zabbix) = bind_monitor(prepared.monitor, prepared.zabbix, &mut bound).await?;
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
            output_task,
            plugins,
            monitor: None,
            monitor_stop,
            zabbix: None,
            parse_counters,
            filters,
            tap: None,
            rates: None,
            bound,
            reload_failures: Arc::default(),
            disk,
            pump,
            reloads: Arc::default(),
            verdicts: crate::pulse::Verdicts::new(),
            pulse: None,
        };
        agent.start_pulse(&listeners);
        if let Some((listener, addr)) = monitor {
            agent.serve_monitor(
                listener,
                addr,
                listeners,
                prepared.token,
                zabbix,
                monitor_rx,
            );
        }
        Ok(agent)
    }

    /// `shutdown_timeout`, saves tail positions, and stops the monitor.
    pub async fn stop(mut self) -> StopReport {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        if let Some(p) = self.pulse.take() {
            // Parts stop turning from here on: that is no wedge.
            p.abort();
        }
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
        if let Some(p) = self.pump.take() {
            // Waiting for the next chunk on disk: nothing more is taken.
            p.abort();
            let _ = p.await;
        }
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
        // With nothing left to send the output returns at once; the grace
        // keeps a stop bounded whatever the output does.
        let grace = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        let finished = left == 0
            && tokio::time::timeout(grace, &mut self.output_task)
                .await
                .is_ok();
        if !finished {
            // Cancelled: what it had not delivered stays undelivered.
            self.output_task.abort();
            let _ = (&mut self.output_task).await;
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
            disk: self.disk.take(),
        }
    }
}

/// Listeners of the forward inputs and their counters, by address.
pub(crate) type Listeners = Vec<(String, Arc<ReceiverCounters>)>;

/// Starts the forward inputs: their tasks, the TCP addresses they bound,
/// their counters.
async fn start_forward(
    inputs: Vec<forward_in::Prepared>,
    buffer: &Buffer,
    stop: &watch::Receiver<bool>,
    filters: &Arc<hydra_filter::Chain>,
) -> Result<(Vec<JoinHandle<()>>, Vec<SocketAddr>, Listeners), Error> {
    let (mut tasks, mut bound, mut listeners) = (Vec::new(), Vec::new(), Vec::new());
    for input in inputs {
        let counters = Arc::new(ReceiverCounters::default());
        let (addr, more) = forward_in::start(
            input,
            buffer.clone(),
            counters.clone(),
            stop.clone(),
            filters.clone(),
        )
        .await?;
        info!(%addr, "Accepting Forward clients.");
        bound.extend(addr.tcp());
        listeners.push((addr.to_string(), counters));
        tasks.extend(more);
    }
    Ok((tasks, bound, listeners))
}

/// Binds the monitor's and the Zabbix checks' listeners, adding their
/// addresses to `bound`.
async fn bind_monitor(
    monitor: Option<crate::prepare::Socket>,
    zabbix: Option<crate::prepare::Socket>,
    bound: &mut Vec<SocketAddr>,
) -> Result<
    (
        Option<(tokio::net::TcpListener, SocketAddr)>,
        Option<tokio::net::TcpListener>,
    ),
    Error,
> {
    let monitor = match monitor {
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
    let zabbix = match zabbix {
        Some(socket) => {
            let (listener, addr) = socket.listen().await?;
            bound.push(addr);
            Some(listener)
        }
        None => None,
    };
    Ok((monitor, zabbix))
}
