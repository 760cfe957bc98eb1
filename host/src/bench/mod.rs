//! `weir bench`: chain throughput against the same work done natively, in one run.
//!
//! Every variant processes the same generated corpus on one thread, including the JSON
//! parse and the final serialise, batch by batch as the pipeline does. Variants alternate
//! within each round so that machine noise hits them alike; ratios are taken per round
//! and reported as medians with their range.

mod corpus;
mod native;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::config::LoadedConfig;
use crate::engine::{Chain, PluginStats, WasmEngine};
use crate::event::Origin;
use crate::pipeline::{load_plugins, process_records, start_chain};
use crate::source::Record;

pub use corpus::generate;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
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
    /// native 1 op, wasm 1 plugin, native 4 ops, wasm 4 plugins.
    pub series: Vec<Series>,
    /// In the 4-plugin chain, each plugin's ns/event (projection, call, applying its reply).
    pub per_plugin: Vec<(String, f64)>,
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
            origin: Origin {
                source: source.clone(),
                position: i as u64 + 1,
            },
        })
        .collect()
}

/// Both variants produce one encoded buffer per batch, as the pipeline's workers do;
/// `keep` collects them only when the outputs are being compared.
fn run_wasm(chain: &mut Chain, batches: Vec<Vec<Record>>, keep: Option<&mut Vec<u8>>) -> Duration {
    let started = Instant::now();
    let mut kept = Vec::new();
    for batch in batches {
        let result = process_records(chain, batch, usize::MAX, Some("route"), None);
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
    ops: usize,
    keep: Option<&mut Vec<u8>>,
) -> Duration {
    let started = Instant::now();
    let mut kept = Vec::new();
    for batch in lines.chunks(batch_size) {
        let mut out = Vec::with_capacity(batch.len() * 512);
        native::process(batch, ops, &mut out);
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

/// Runs the benchmark.
pub fn run(engine: &WasmEngine, opts: &BenchOptions) -> anyhow::Result<Report> {
    if !opts.plugin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release --target wasm32-wasip2 --target-dir target/wasm -p weir-bench-ops`",
            opts.plugin.display()
        );
    }
    let lines = generate(opts.events, 0x5eed);
    let avg_bytes = lines.iter().map(String::len).sum::<usize>() / lines.len().max(1);
    let mut chains = [
        chain(engine, &opts.plugin, 1)?,
        chain(engine, &opts.plugin, 4)?,
    ];
    let batches = || {
        records(&lines)
            .chunks(opts.batch_size)
            .map(<[Record]>::to_vec)
            .collect::<Vec<_>>()
    };

    // The chain must do exactly the native work, or the comparison means nothing.
    for (chain, ops) in chains.iter_mut().zip([1, 4]) {
        let (mut wasm, mut native) = (Vec::new(), Vec::new());
        run_wasm(chain, batches(), Some(&mut wasm));
        run_native(&lines, opts.batch_size, ops, Some(&mut native));
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
                "the {ops}-plugin chain's output differs from native:\n wasm:   {a}\n native: {b}"
            );
        }
    }

    let names = [
        "native, 1 op",
        "wasm, 1 plugin",
        "native, 4 ops",
        "wasm, 4 plugins",
    ];
    let mut series: Vec<Series> = names
        .iter()
        .map(|n| Series {
            name: (*n).into(),
            ns: Vec::new(),
        })
        .collect();
    let per_event = |d: Duration| d.as_nanos() as f64 / lines.len() as f64;
    for _ in 0..opts.rounds {
        for (i, s) in series.iter_mut().enumerate() {
            let elapsed = match i {
                0 => run_native(&lines, opts.batch_size, 1, None),
                1 => run_wasm(&mut chains[0], batches(), None),
                2 => run_native(&lines, opts.batch_size, 4, None),
                _ => run_wasm(&mut chains[1], batches(), None),
            };
            s.ns.push(per_event(elapsed));
        }
    }
    let per_plugin = chains[1]
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
            "{:<18} {:>12} {:>12} {:>21}",
            "variant", "ns/event", "events/s", "min-max ns/event"
        )?;
        for s in &self.series {
            let m = median(&s.ns);
            let (lo, hi) =
                s.ns.iter()
                    .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            writeln!(
                out,
                "{:<18} {:>12.0} {:>12.0} {:>10.0}-{:<10.0}",
                s.name,
                m,
                1e9 / m,
                lo,
                hi
            )?;
        }
        for (label, a, b) in [("1 plugin", 1, 0), ("4 plugins", 3, 2)] {
            let r = self.ratios(a, b);
            let (lo, hi) = r
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            writeln!(
                out,
                "ratio to native, {label}: {:.2}x (per-round min-max {lo:.2}-{hi:.2})",
                median(&r)
            )?;
        }
        let shares: Vec<String> = self
            .per_plugin
            .iter()
            .map(|(n, ns)| format!("{n} {ns:.0}"))
            .collect();
        writeln!(
            out,
            "4-plugin chain, ns/event per plugin (all rounds): {}",
            shares.join(", ")
        )?;
        Ok(())
    }
}
