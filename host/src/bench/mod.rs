//! `weir bench`: chain throughput against the same work done natively, in one run.
//!
//! Every variant processes the same generated corpus on one thread, including the JSON
//! parse and the final serialise, batch by batch as the pipeline does. Variants alternate
//! within each round so that machine noise hits them alike; ratios are taken per round
//! and reported as medians with their range.

mod bundled;
mod corpus;
pub mod kafka;
pub mod kafka_client;
mod native;
mod null_es;
pub mod pipeline;
pub mod reload;
mod spawn;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::config::LoadedConfig;
use crate::engine::{Chain, PluginStats, WasmEngine};
use crate::event::Origin;
use crate::pipeline::{load_plugins, process_records, start_chain};
use crate::sink::Encoding;
use crate::source::Record;

pub use corpus::generate;

/// Which work to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Four simple ops (the cost-floor note's), as 1 and 4 plugins.
    Ops,
    /// The four bundled plugins (normalize, geoip, redact, route).
    Bundled,
    /// Hot reload under load: swap time and throughput dip (runs `weir run` itself).
    Reload,
    /// File → the bundled plugins → file at 1 and 2 workers: events/s, CPU, RSS, scaling.
    Pipeline,
    /// Kafka → the bundled plugins → Elasticsearch: events/s, Weir's CPU and RSS (needs
    /// `--brokers` and `--es-url`; `scripts/bench-kafka.sh` starts Tansu and noida-db).
    Kafka,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Which comparison.
    pub suite: Suite,
    /// Directory holding the bundled plugins' `.wasm` (suite `bundled`).
    pub wasm_dir: PathBuf,
    /// The GeoIP database (suite `bundled`).
    pub geoip_db: PathBuf,
    /// Events in the corpus.
    pub events: usize,
    /// Rounds; medians are over these.
    pub rounds: usize,
    /// Events per chain call.
    pub batch_size: usize,
    /// The `weir-bench-ops` component.
    pub plugin: PathBuf,
}

/// One variant's timings: nanoseconds per event, one per round.
#[derive(Debug, Clone)]
pub struct Series {
    /// The variant's name.
    pub name: String,
    /// ns/event per round.
    pub ns: Vec<f64>,
}

/// The bench's result.
#[derive(Debug, Clone)]
pub struct Report {
    /// Events per round and their average size.
    pub events: usize,
    /// Average event size in bytes.
    pub avg_bytes: usize,
    /// Pairs of series: native, then wasm doing the same work.
    pub series: Vec<Series>,
    /// Per chain (by label), each plugin's ns/event (projection, call, applying its reply).
    pub per_plugin: Vec<(String, Vec<(String, f64)>)>,
}

const OPS: [&str; 4] = ["uppercase-level", "redact", "path-pattern", "route"];

/// Builds a chain of the first `n` bench ops.
fn chain(engine: &WasmEngine, plugin: &Path, n: usize) -> anyhow::Result<Chain> {
    let mut toml = String::from(
        "[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\nroute_field = \"route\"\n",
    );
    for op in &OPS[..n] {
        toml += &format!(
            "[[plugins]]\nname = \"{op}\"\npath = {plugin:?}\n[plugins.config]\nop = \"{op}\"\n"
        );
    }
    let config = LoadedConfig::from_text(Path::new("bench.toml"), &toml, |_| None)?;
    start_chain(&load_plugins(engine, &config)?)
}

fn records(lines: &[String]) -> Vec<Record> {
    let source: std::sync::Arc<str> = "bench".into();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| Record {
            text: l.clone(),
            bad_utf8: false,
            origin: Origin::line(source.clone(), i as u64 + 1),
        })
        .collect()
}

/// Both variants produce one encoded buffer per batch, as the pipeline's workers do;
/// `keep` collects them only when the outputs are being compared.
fn run_wasm(chain: &mut Chain, batches: Vec<Vec<Record>>, keep: Option<&mut Vec<u8>>) -> Duration {
    let started = Instant::now();
    let mut kept = Vec::new();
    let encoding = Encoding::Lines {
        route_field: Some("route".into()),
    };
    let unlimited = crate::event::EventLimits {
        max_bytes: usize::MAX,
        max_output_bytes: usize::MAX,
        ..Default::default()
    };
    for batch in batches {
        let result = process_records(chain, batch, &unlimited, &encoding, None);
        if keep.is_some() {
            kept.extend_from_slice(&result.events);
        }
    }
    let elapsed = started.elapsed();
    if let Some(keep) = keep {
        *keep = kept;
    }
    elapsed
}

fn run_native(
    lines: &[String],
    batch_size: usize,
    native: &dyn Fn(&[String], &mut Vec<u8>),
    keep: Option<&mut Vec<u8>>,
) -> Duration {
    let started = Instant::now();
    let mut kept = Vec::new();
    for batch in lines.chunks(batch_size) {
        let mut out = Vec::with_capacity(batch.len() * 512);
        native(batch, &mut out);
        if keep.is_some() {
            kept.extend_from_slice(&out);
        }
    }
    let elapsed = started.elapsed();
    if let Some(keep) = keep {
        *keep = kept;
    }
    elapsed
}

/// The native side of a comparison: processes a batch of lines into NDJSON.
type NativeFn = Box<dyn Fn(&[String], &mut Vec<u8>)>;

/// One comparison: the same work natively and as a chain.
struct Pair {
    label: String,
    native: NativeFn,
    chain: Chain,
}

fn pairs(engine: &WasmEngine, opts: &BenchOptions) -> anyhow::Result<Vec<Pair>> {
    Ok(match opts.suite {
        Suite::Ops => {
            if !opts.plugin.exists() {
                bail!(
                    "{} not found: build it with `cargo build --release --target wasm32-wasip2 --target-dir target/wasm -p weir-bench-ops`",
                    opts.plugin.display()
                );
            }
            vec![
                Pair {
                    label: "1 op".into(),
                    native: Box::new(|l, o| native::process(l, 1, o)),
                    chain: chain(engine, &opts.plugin, 1)?,
                },
                Pair {
                    label: "4 ops".into(),
                    native: Box::new(|l, o| native::process(l, 4, o)),
                    chain: chain(engine, &opts.plugin, 4)?,
                },
            ]
        }
        Suite::Reload | Suite::Pipeline | Suite::Kafka => {
            bail!("this suite runs `weir run` itself, not a chain in-process")
        }
        Suite::Bundled => {
            // As configured by default, and with the CPU deadline's checks compiled out,
            // so the deadline's cost is measured in the same run.
            let mut pairs = Vec::new();
            for (label, cpu_deadline) in [("bundled 4", true), ("bundled 4, no deadline", false)] {
                let toml = format!(
                    "[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\nroute_field = \"route\"\n{}",
                    bundled::plugins_toml(&opts.wasm_dir, &opts.geoip_db, cpu_deadline)
                );
                let config = LoadedConfig::from_text(Path::new("bench.toml"), &toml, |_| None)?;
                let chain = start_chain(&load_plugins(engine, &config).map_err(|e| {
                    e.context("build the bundled plugins first: ./scripts/build-plugins.sh")
                })?)?;
                let reference = bundled::Native::new(&opts.geoip_db)?;
                pairs.push(Pair {
                    label: label.into(),
                    native: Box::new(move |l, o| reference.process(l, o)),
                    chain,
                });
            }
            pairs
        }
    })
}

/// Runs the benchmark.
pub fn run(engine: &WasmEngine, opts: &BenchOptions) -> anyhow::Result<Report> {
    let lines = generate(opts.events, 0x5eed);
    let avg_bytes = lines.iter().map(String::len).sum::<usize>() / lines.len().max(1);
    let mut pairs = pairs(engine, opts)?;
    let batches = || {
        records(&lines)
            .chunks(opts.batch_size)
            .map(<[Record]>::to_vec)
            .collect::<Vec<_>>()
    };

    // The chain must do exactly the native work, or the comparison means nothing.
    for pair in &mut pairs {
        let (mut wasm, mut native) = (Vec::new(), Vec::new());
        run_wasm(&mut pair.chain, batches(), Some(&mut wasm));
        run_native(&lines, opts.batch_size, &*pair.native, Some(&mut native));
        if wasm != native {
            let diff = wasm
                .split(|b| *b == b'\n')
                .zip(native.split(|b| *b == b'\n'))
                .find(|(a, b)| a != b);
            let (a, b) = diff
                .map(|(a, b)| {
                    (
                        String::from_utf8_lossy(a).into_owned(),
                        String::from_utf8_lossy(b).into_owned(),
                    )
                })
                .unwrap_or_default();
            bail!(
                "{}: the chain's output differs from native:\n wasm:   {a}\n native: {b}",
                pair.label
            );
        }
    }

    let mut series = Vec::new();
    for pair in &pairs {
        series.push(Series {
            name: format!("native, {}", pair.label),
            ns: Vec::new(),
        });
        series.push(Series {
            name: format!("wasm, {}", pair.label),
            ns: Vec::new(),
        });
    }
    let per_event = |d: Duration| d.as_nanos() as f64 / lines.len() as f64;
    for _ in 0..opts.rounds {
        for (i, pair) in pairs.iter_mut().enumerate() {
            let native = run_native(&lines, opts.batch_size, &*pair.native, None);
            series[2 * i].ns.push(per_event(native));
            let wasm = run_wasm(&mut pair.chain, batches(), None);
            series[2 * i + 1].ns.push(per_event(wasm));
        }
    }
    let per_plugin = pairs
        .iter()
        .map(|pair| {
            let plugins = pair
                .chain
                .plugins()
                .map(|p| {
                    let s = &p.stats;
                    let events = PluginStats::get(&s.events_in).max(1) as f64;
                    (
                        p.name.to_string(),
                        PluginStats::get(&s.nanos) as f64 / events,
                    )
                })
                .collect();
            (pair.label.clone(), plugins)
        })
        .collect();
    Ok(Report {
        events: lines.len(),
        avg_bytes,
        series,
        per_plugin,
    })
}

/// Median of a non-empty slice.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Report {
    /// Per-round ratios of series `a` to series `b`.
    pub fn ratios(&self, a: usize, b: usize) -> Vec<f64> {
        self.series[a]
            .ns
            .iter()
            .zip(&self.series[b].ns)
            .map(|(x, y)| x / y)
            .collect()
    }

    /// Prints the table.
    pub fn print(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "corpus: {} events, {} bytes on average; {} rounds, one thread",
            self.events,
            self.avg_bytes,
            self.series[0].ns.len()
        )?;
        writeln!(
            out,
            "{:<30} {:>12} {:>12} {:>21}",
            "variant", "ns/event", "events/s", "min-max ns/event"
        )?;
        for s in &self.series {
            let m = median(&s.ns);
            let (lo, hi) =
                s.ns.iter()
                    .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            writeln!(
                out,
                "{:<30} {:>12.0} {:>12.0} {:>10.0}-{:<10.0}",
                s.name,
                m,
                1e9 / m,
                lo,
                hi
            )?;
        }
        for pair in 0..self.series.len() / 2 {
            let r = self.ratios(2 * pair + 1, 2 * pair);
            let (lo, hi) = r
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            let label = self.series[2 * pair + 1].name.trim_start_matches("wasm, ");
            writeln!(
                out,
                "ratio to native, {label}: {:.2}x (per-round min-max {lo:.2}-{hi:.2})",
                median(&r)
            )?;
        }
        for (label, plugins) in &self.per_plugin {
            let shares: Vec<String> = plugins
                .iter()
                .map(|(n, ns)| format!("{n} {ns:.0}"))
                .collect();
            writeln!(
                out,
                "{label}: ns/event per plugin (all rounds): {}",
                shares.join(", ")
            )?;
        }
        Ok(())
    }
}
