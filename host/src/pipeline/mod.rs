//! Runs a pipeline: a reader thread queues chunks of raw lines; whichever of the N chain
//! workers is free takes the next one, decodes it, runs its own chain and encodes it; the
//! writer puts the outputs back in input order by their sequence numbers, so output order
//! equals input order however workers interleave.

mod order;
mod reload;
mod stats;
mod watch;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::Context;

use crate::config::LoadedConfig;
use crate::engine::{Chain, LoadedPlugin, WasmEngine};
use crate::source::{self, Chunk, Receipt, Source};

pub use reload::{Generation, Handoff, LastReload, ReloadStatus, Supervisor};
pub use stats::{Progress, RunStats, Summary};
pub use watch::Triggers;
pub use worker::{process_records, WorkerOutput};

/// Loads every plugin of the config, in order; the first failure names its plugin.
pub fn load_plugins(
    engine: &WasmEngine,
    config: &LoadedConfig,
) -> anyhow::Result<Vec<Arc<LoadedPlugin>>> {
    config
        .plugins
        .iter()
        .map(|spec| engine.load(spec).map_err(anyhow::Error::from))
        .collect()
}

/// Starts one chain (an instance of every plugin); errors name the plugin and its entry.
pub fn start_chain(plugins: &[Arc<LoadedPlugin>]) -> anyhow::Result<Chain> {
    Chain::start(plugins).map_err(|(p, failure)| {
        anyhow::anyhow!("{}: plugin `{}`: {failure}", p.spec.location, p.name)
    })
}

/// Runs the pipeline to the end of its input (or, for Kafka, until SIGTERM or SIGINT) and
/// returns what happened. While it runs, the chain reloads on a change to the config or a
/// plugin, on `SIGHUP`, and on `POST /reload` when the admin endpoint is on.
///
/// A first SIGTERM/SIGINT stops reading, lets everything in flight reach the sink and
/// commits; a second one exits at once (nothing is lost: uncommitted events are re-read).
pub fn run(
    config: &LoadedConfig,
    engine: &WasmEngine,
    stats: &Arc<RunStats>,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let run = config.pipeline.pipeline.clone();
    let limits = run.event_limits();
    let workers = run
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // First, so that everything from the first load on is recorded.
    let metrics = crate::metrics::install();
    let stop = stop_on_signals()?;
    // The endpoint answers from here on (`/ready` 503), while plugins initialise and the
    // source and sink open, which can take seconds.
    let loaded = Arc::new(OnceLock::new());
    let ready = Arc::new(AtomicBool::new(false));
    let _admin = match (&config.pipeline.admin, metrics) {
        (Some(admin), Some(metrics)) => Some(crate::admin::AdminServer::start(
            admin,
            loaded.clone(),
            stats.clone(),
            metrics,
            ready.clone(),
        )?),
        (Some(_), None) => anyhow::bail!("admin: the metrics recorder could not be installed"),
        (None, _) => None,
    };
    let (supervisor, chains) = Supervisor::start(engine.clone(), config.clone(), workers)?;
    let encoding = config.pipeline.sink.encoding()?;
    let sink = config.pipeline.sink.open(
        &config.pipeline.dead_letter,
        &config.pipeline.source,
        stats.clone(),
    )?;
    let source = source::open(&config.pipeline.source, stop.clone())?;
    let _triggers = Triggers::start(supervisor.clone())?;

    std::thread::scope(|scope| -> anyhow::Result<()> {
        // One queue for all workers: a worker slowed down (say, sharing its core with the
        // reader) no longer holds the others back, as strict round-robin did.
        let (chunk_tx, chunk_rx) = sync_channel::<(u64, Chunk)>(workers);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let (out_tx, out_rx) = sync_channel::<Option<Finished>>(workers * 2);
        // Chunks between the reader and the writer, bounded whatever order they finish in.
        let (permit_tx, permit_rx) = sync_channel::<()>(workers * 4);
        let mut handoffs = Vec::with_capacity(workers);
        for (index, mut chain) in chains.into_iter().enumerate() {
            let (handoff_tx, handoff_rx) = channel::<Handoff>();
            handoffs.push(handoff_tx);
            let (chunk_rx, out_tx) = (chunk_rx.clone(), out_tx.clone());
            let encoding = encoding.clone();
            let supervisor = supervisor.clone();
            // Named, so `top -H` and profiles tell the workers, reader and writer apart.
            let worker = std::thread::Builder::new().name(format!("weir-worker-{index}"));
            worker.spawn_scoped(scope, move || {
                let _notice = DeathNotice(out_tx.clone());
                loop {
                    // The lock is held only while this worker waits for the next chunk.
                    let next = match chunk_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((seq, chunk)) = next else { break };
                    // A batch boundary: the newest generation handed over, if any, takes over.
                    let mut swapped = None;
                    while let Ok(handoff) = handoff_rx.try_recv() {
                        chain = handoff.chain;
                        swapped = Some((handoff.generation, handoff.triggered));
                    }
                    let out = process_records(
                        &mut chain,
                        chunk.records.into_vec(),
                        &limits,
                        &encoding,
                        None,
                    );
                    if let Some((generation, triggered)) = swapped {
                        supervisor.record_swap(generation, triggered.elapsed());
                    }
                    if out_tx.send(Some((seq, out, chunk.receipt))).is_err() {
                        break;
                    }
                }
            })?;
        }
        // The workers hold the only senders now, so the writer sees the end when they stop.
        drop(out_tx);
        supervisor.connect_workers(handoffs);
        // Only now can a reload reach the workers: until here `/status` and `POST /reload`
        // answer 503.
        let _ = loaded.set(supervisor.clone());
        let batch_size = run.batch_size;
        let reader = std::thread::Builder::new().name("weir-source".into());
        let reader = reader.spawn_scoped(scope, move || -> anyhow::Result<Box<dyn Source>> {
            let mut source = source;
            for seq in 0.. {
                // A file run stops reading at the next chunk too, and still flushes.
                if stop.load(Ordering::Relaxed) || permit_tx.send(()).is_err() {
                    break;
                }
                let Some(chunk) = source.next_chunk(batch_size)? else {
                    break;
                };
                if chunk_tx.send((seq, chunk)).is_err() {
                    break;
                }
            }
            if stop.load(Ordering::Relaxed) {
                tracing::info!(
                    "stopping: reading stopped; what is in flight goes to the sink, then \
                     offsets are committed (a second signal exits at once)"
                );
            }
            Ok(source)
        })?;
        ready.store(true, Ordering::Relaxed);
        let mut sink = sink;
        let mut order = order::Reorder::default();
        for finished in out_rx.iter() {
            let Some((seq, out, receipt)) = finished else {
                // Returning drops the channels, so the reader and the other workers stop
                // too rather than wait for the chunk the dead worker held (they deadlocked
                // on permits before); the scope then re-raises the worker's panic.
                anyhow::bail!(
                    "a chain worker panicked; chunk {} and later ones were not written (nor committed)",
                    order.next()
                );
            };
            for (out, receipt) in order.push(seq, (out, receipt)) {
                stats.record(&out);
                crate::metrics::pipeline(out.received, out.sent, out.dead_lettered, &out.routes);
                sink.write(out, receipt)?;
                // Every chunk took a permit before it was read.
                let _ = permit_rx.try_recv();
            }
        }
        if order.stranded() > 0 {
            // A worker died (a panic): what follows its chunk was never written or committed.
            anyhow::bail!(
                "a chain worker stopped without finishing chunk {}; {} later chunks were not written",
                order.next(),
                order.stranded()
            );
        }
        sink.close()?;
        let mut source = match reader.join() {
            Ok(result) => result.context("source")?,
            Err(_) => anyhow::bail!("source: reader thread panicked"),
        };
        source.finish()
    })?;
    Ok(Summary::new(
        stats,
        started.elapsed(),
        &supervisor.generation().plugins,
    ))
}

/// A chunk through the chain: its sequence number, output and receipt.
type Finished = (u64, WorkerOutput, Receipt);

/// Tells the writer (with `None`) when a worker thread unwinds, so the run fails instead
/// of waiting for the chunk that worker held while the reader and the other workers wait
/// for permits the writer can no longer return.
struct DeathNotice(std::sync::mpsc::SyncSender<Option<Finished>>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(None);
        }
    }
}

/// The first SIGTERM or SIGINT sets the returned flag (a graceful stop); a second one
/// exits the process at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}
