//! Runs a pipeline: a reader thread feeds raw lines to N chain workers round-robin; each
//! worker decodes, runs its own chain and encodes; the writer collects worker outputs in
//! the same round-robin order, so output order equals input order however workers interleave.

mod stats;
mod worker;

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::config::LoadedConfig;
use crate::engine::{Chain, LoadedPlugin, WasmEngine};
use crate::source::{self, Record};

pub use stats::{Progress, RunStats, Summary};
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

/// Runs the pipeline to the end of its input and returns what happened.
pub fn run(
    config: &LoadedConfig,
    engine: &WasmEngine,
    stats: &Arc<RunStats>,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let plugins = load_plugins(engine, config)?;
    let run = &config.pipeline.pipeline;
    let workers = run
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let chains = (0..workers)
        .map(|_| start_chain(&plugins))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut source = source::open(&config.pipeline.source)?;
    let mut sink = config.pipeline.sink.open()?;
    let mut dead_out = config.pipeline.dead_letter.open()?;
    let route_field = config.pipeline.sink.route_field().map(str::to_owned);
    let batch_size = run.batch_size;
    let max_bytes = run.max_event_bytes;

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut inputs = Vec::with_capacity(workers);
        let mut outputs: Vec<Receiver<WorkerOutput>> = Vec::with_capacity(workers);
        for mut chain in chains {
            let (in_tx, in_rx) = sync_channel::<Vec<Record>>(2);
            let (out_tx, out_rx) = sync_channel::<WorkerOutput>(2);
            inputs.push(in_tx);
            outputs.push(out_rx);
            let route_field = route_field.clone();
            scope.spawn(move || {
                for records in in_rx {
                    let out = process_records(
                        &mut chain,
                        records,
                        max_bytes,
                        route_field.as_deref(),
                        None,
                    );
                    if out_tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        let reader = scope.spawn(move || -> std::io::Result<()> {
            for turn in 0.. {
                let mut chunk = Vec::with_capacity(batch_size);
                let more = source.read_chunk(batch_size, &mut chunk)?;
                if !chunk.is_empty() && inputs[turn % inputs.len()].send(chunk).is_err() {
                    break;
                }
                if !more {
                    break;
                }
            }
            Ok(())
        });
        for turn in 0.. {
            let Ok(out) = outputs[turn % outputs.len()].recv() else {
                break;
            };
            sink.write_all(&out.events).context("sink: write failed")?;
            dead_out
                .write_all(&out.dead)
                .context("dead_letter: write failed")?;
            stats.record(&out);
        }
        sink.flush().context("sink: flush failed")?;
        dead_out.flush().context("dead_letter: flush failed")?;
        match reader.join() {
            Ok(result) => result.context("source: read failed"),
            Err(_) => anyhow::bail!("source: reader thread panicked"),
        }
    })?;
    Ok(Summary::new(stats, started.elapsed(), &plugins))
}
