//! `weir bench`.

use std::path::PathBuf;

use crate::bench::{self, BenchOptions, Suite};
use crate::engine::{default_cache_dir, WasmEngine};

/// Options of `weir bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Which comparison: the four simple ops, or the four bundled plugins.
    #[arg(long, value_enum, default_value_t = Suite::Ops)]
    suite: Suite,
    /// Directory of the bundled plugins' `.wasm` files (suite `bundled`).
    #[arg(long, default_value = "target/wasm/wasm32-wasip2/release")]
    wasm_dir: PathBuf,
    /// GeoIP database for the `geoip` plugin (suite `bundled`).
    #[arg(long, default_value = "plugins/geoip/testdata/test-city.mmdb")]
    geoip_db: PathBuf,
    /// Events in the generated corpus.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Rounds; figures are medians over rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Events per plugin call.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Kafka bootstrap brokers (suite `kafka`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Elasticsearch URL (suite `kafka`); `null` for an in-process endpoint that accepts
    /// everything, so the cluster is not the bottleneck.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9200",
        overrides_with = "es_url"
    )]
    es_url: String,
    /// Chain workers of the `weir run` under test (suite `kafka`).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// The weir-bench-ops component.
    #[arg(
        long,
        default_value = "target/wasm/wasm32-wasip2/release/weir_bench_ops.wasm"
    )]
    plugin: PathBuf,
}

pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.suite == Suite::Pipeline {
        let opts = bench::pipeline::PipelineOptions {
            events: args.events,
            rounds: args.rounds.max(1),
            wasm_dir: args.wasm_dir.clone(),
            geoip_db: args.geoip_db.clone(),
        };
        let results = bench::pipeline::run(&opts)?;
        return Ok(bench::pipeline::print(
            opts.events,
            &results,
            &mut std::io::stdout(),
        )?);
    }
    if args.suite == Suite::Kafka {
        let opts = bench::kafka::KafkaOptions {
            events: args.events,
            rounds: args.rounds.max(1),
            brokers: args.brokers.clone(),
            es_url: args.es_url.clone(),
            workers: args.workers.max(1),
            wasm_dir: args.wasm_dir.clone(),
            geoip_db: args.geoip_db.clone(),
        };
        let rounds = bench::kafka::run(&opts)?;
        return Ok(bench::kafka::print(&opts, &rounds, &mut std::io::stdout())?);
    }
    if args.suite == Suite::Reload {
        let opts = bench::reload::ReloadOptions {
            events: args.events,
            reloads: 10,
            interval: std::time::Duration::from_millis(100),
            rounds: args.rounds.max(1),
            wasm_dir: args.wasm_dir.clone(),
            geoip_db: args.geoip_db.clone(),
        };
        return Ok(bench::reload::run(&opts)?.print(&mut std::io::stdout())?);
    }
    let engine = WasmEngine::new(default_cache_dir(), weir_wire::ReplyLimits::default())?;
    let opts = BenchOptions {
        suite: args.suite,
        wasm_dir: args.wasm_dir.clone(),
        geoip_db: args.geoip_db.clone(),
        events: args.events,
        rounds: args.rounds.max(1),
        batch_size: args.batch_size.max(1),
        plugin: args.plugin.clone(),
    };
    bench::run(&engine, &opts)?.print(&mut std::io::stdout())?;
    Ok(())
}
