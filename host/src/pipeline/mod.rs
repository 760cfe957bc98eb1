//! Runs a pipeline: a reader thread feeds raw lines to N chain workers round-robin; each
//! worker decodes, runs its own chain and encodes; the writer collects worker outputs in
//! the same round-robin order, so output order equals input order however workers interleave.

mod reload;
mod stats;
mod watch;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::Arc;
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
    let workers = run
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // First, so that everything from the first load on is recorded.
    let metrics = crate::metrics::install();
    let stop = stop_on_signals()?;
    let (supervisor, chains) = Supervisor::start(engine.clone(), config.clone(), workers)?;
    let encoding = config.pipeline.sink.encoding()?;
    let sink = config.pipeline.sink.open(
        &config.pipeline.dead_letter,
        &config.pipeline.source,
        stats.clone(),
    )?;
    let source = source::open(&config.pipeline.source, stop.clone())?;
    let ready = Arc::new(AtomicBool::new(false));
    let _admin = match (&config.pipeline.admin, metrics) {
        (Some(admin), Some(metrics)) => Some(crate::admin::AdminServer::start(
            admin,
            supervisor.clone(),
            stats.clone(),
            metrics,
            ready.clone(),
        )?),
        (Some(_), None) => anyhow::bail!("admin: the metrics recorder could not be installed"),
        (None, _) => None,
    };
    let _triggers = Triggers::start(supervisor.clone())?;

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut inputs = Vec::with_capacity(workers);
        let mut outputs: Vec<Receiver<(WorkerOutput, Receipt)>> = Vec::with_capacity(workers);
        let mut handoffs = Vec::with_capacity(workers);
        for mut chain in chains {
            let (in_tx, in_rx) = sync_channel::<Chunk>(2);
            let (out_tx, out_rx) = sync_channel::<(WorkerOutput, Receipt)>(2);
            let (handoff_tx, handoff_rx) = channel::<Handoff>();
            inputs.push(in_tx);
            outputs.push(out_rx);
            handoffs.push(handoff_tx);
            let encoding = encoding.clone();
            let supervisor = supervisor.clone();
            scope.spawn(move || {
                for chunk in in_rx {
                    // A batch boundary: the newest generation handed over, if any, takes over.
                    let mut swapped = None;
                    while let Ok(handoff) = handoff_rx.try_recv() {
                        chain = handoff.chain;
                        swapped = Some((handoff.generation, handoff.triggered));
                    }
                    let out = process_records(
                        &mut chain,
                        chunk.records,
                        run.max_event_bytes,
                        &encoding,
                        None,
                    );
                    if let Some((generation, triggered)) = swapped {
                        supervisor.record_swap(generation, triggered.elapsed());
                    }
                    if out_tx.send((out, chunk.receipt)).is_err() {
                        break;
                    }
                }
            });
        }
        supervisor.connect_workers(handoffs);
        let batch_size = run.batch_size;
        let reader = scope.spawn(move || -> anyhow::Result<Box<dyn Source>> {
            let mut source = source;
            for turn in 0.. {
                // A file run stops reading at the next chunk too, and still flushes.
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(chunk) = source.next_chunk(batch_size)? else {
                    break;
                };
                if inputs[turn % inputs.len()].send(chunk).is_err() {
                    break;
                }
            }
            Ok(source)
        });
        ready.store(true, Ordering::Relaxed);
        let mut sink = sink;
        for turn in 0.. {
            let Ok((out, receipt)) = outputs[turn % outputs.len()].recv() else {
                break;
            };
            stats.record(&out);
            crate::metrics::pipeline(out.received, out.sent, out.dead_lettered, &out.routes);
            sink.write(out, receipt)?;
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
