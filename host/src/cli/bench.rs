//! `weir bench`.

use std::path::PathBuf;

use crate::bench::{self, BenchOptions};
use crate::engine::{default_cache_dir, WasmEngine};

/// Options of `weir bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Events in the generated corpus.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Rounds; figures are medians over rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Events per plugin call.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// The weir-bench-ops component.
    #[arg(
        long,
        default_value = "target/wasm/wasm32-wasip2/release/weir_bench_ops.wasm"
    )]
    plugin: PathBuf,
}

pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let engine = WasmEngine::new(default_cache_dir())?;
    let opts = BenchOptions {
        events: args.events,
        rounds: args.rounds.max(1),
        batch_size: args.batch_size.max(1),
        plugin: args.plugin.clone(),
    };
    bench::run(&engine, &opts)?.print(&mut std::io::stdout())?;
    Ok(())
}
