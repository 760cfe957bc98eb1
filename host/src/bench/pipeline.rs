//! `weir bench --suite pipeline`: file → the four bundled plugins → file through the real
//! `weir run` (this binary), at 1 and 2 workers. Reports events/s, the process's CPU
//! seconds (user + sys) per million events, and peak RSS, each a median over rounds, and
//! the scaling ratio of 2 workers to 1.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::median;
use super::spawn::FilePipeline;

/// What to run.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Events in the corpus file.
    pub events: usize,
    /// Runs per worker count.
    pub rounds: usize,
    /// Directory of the bundled plugins.
    pub wasm_dir: PathBuf,
    /// GeoIP database.
    pub geoip_db: PathBuf,
}

/// One worker count's runs.
#[derive(Debug, Clone)]
pub struct WorkerRuns {
    /// Chain workers.
    pub workers: usize,
    /// Events/s per run.
    pub rate: Vec<f64>,
    /// CPU seconds per million events, per run.
    pub cpu_per_million: Vec<f64>,
    /// Peak RSS in MiB, per run.
    pub rss_mib: Vec<f64>,
}

/// Children's CPU time so far (user + sys of waited-for children), from `/proc/self/stat`.
pub(crate) fn children_cpu() -> anyhow::Result<Duration> {
    // Fields 16 and 17 of stat: cutime, cstime.
    stat_cpu("/proc/self/stat", 16).context("reading /proc/self/stat (Linux only)")
}

/// A running process's own CPU time so far (user + sys, every thread), from
/// `/proc/<pid>/stat`; `None` once it is gone.
pub(crate) fn process_cpu(pid: u32) -> Option<Duration> {
    // Fields 14 and 15 of stat: utime, stime.
    stat_cpu(&format!("/proc/{pid}/stat"), 14).ok()
}

/// A running process's CPU time so far per thread name, with a trailing `-N` or a
/// number dropped so that `weir-worker-0` and `weir-worker-1` count together (from
/// `/proc/<pid>/task/*/stat`); empty once it is gone. Threads that already exited are
/// not in it.
pub(crate) fn thread_cpu(pid: u32) -> Vec<(String, Duration)> {
    let mut by_name: std::collections::BTreeMap<String, Duration> = Default::default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let cpu = stat_ticks(&text, 14);
        let name = text
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name)
            .unwrap_or("?");
        let group = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let group = group.strip_suffix('-').unwrap_or(group);
        *by_name.entry(group.to_owned()).or_default() += cpu;
    }
    by_name.into_iter().collect()
}

/// Two adjacent tick counts of a stat file, from field `first` (1-based, as in proc(5)),
/// as time.
fn stat_cpu(path: &str, first: usize) -> std::io::Result<Duration> {
    Ok(stat_ticks(&std::fs::read_to_string(path)?, first))
}

/// [`stat_cpu`] on a stat file's text. Linux's clock tick is 100 Hz (`USER_HZ`).
fn stat_ticks(stat: &str, first: usize) -> Duration {
    // The name (field 2) may hold spaces and parentheses; fields after it start at 3.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |field: usize| {
        fields
            .get(field - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((tick(first) + tick(first + 1)) * 10)
}

/// A running child's peak RSS so far, from `/proc/<pid>/status`.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the benchmark.
pub fn run(opts: &PipelineOptions) -> anyhow::Result<Vec<WorkerRuns>> {
    let setup = FilePipeline::new(opts.events, &opts.wasm_dir, &opts.geoip_db)?;
    let mut results: Vec<WorkerRuns> = [1, 2]
        .map(|workers| WorkerRuns {
            workers,
            rate: Vec::new(),
            cpu_per_million: Vec::new(),
            rss_mib: Vec::new(),
        })
        .to_vec();
    for _ in 0..opts.rounds {
        // Alternate worker counts within a round, so machine noise hits both alike.
        for runs in &mut results {
            let cpu_before = children_cpu()?;
            let started = Instant::now();
            let name = format!("pipeline-{}.toml", runs.workers);
            let mut child =
                setup.spawn(&name, &format!("[pipeline]\nworkers = {}\n", runs.workers))?;
            let mut peak = 0;
            let status = loop {
                if let Some(kib) = peak_rss_kib(child.id()) {
                    peak = peak.max(kib);
                }
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if !status.success() {
                bail!("weir run failed ({status}); build the plugins first: ./scripts/build-plugins.sh");
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = (children_cpu()? - cpu_before).as_secs_f64();
            runs.rate.push(opts.events as f64 / elapsed);
            runs.cpu_per_million.push(cpu / opts.events as f64 * 1e6);
            runs.rss_mib.push(peak as f64 / 1024.0);
        }
    }
    Ok(results)
}

/// Prints the figures.
pub fn print(
    events: usize,
    results: &[WorkerRuns],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    writeln!(out, "{events} events per run, file -> normalize, geoip, redact, route -> file (medians, min-max)")?;
    for r in results {
        let (rl, rh) = range(&r.rate);
        let (cl, ch) = range(&r.cpu_per_million);
        writeln!(
            out,
            "{} worker(s): {:.0} events/s ({rl:.0}-{rh:.0}); {:.2} CPU s per 1M events ({cl:.2}-{ch:.2}); peak RSS {:.0} MiB",
            r.workers,
            median(&r.rate),
            median(&r.cpu_per_million),
            median(&r.rss_mib)
        )?;
    }
    if let [one, two] = results {
        // Also per round: the two runs of a round ran back to back, so a slow stretch of
        // the machine hits both.
        let per_round: Vec<f64> = two.rate.iter().zip(&one.rate).map(|(t, o)| t / o).collect();
        let (lo, hi) = range(&per_round);
        writeln!(
            out,
            "scaling, 2 workers / 1 worker: {:.2}x (per round: median {:.2}x, {lo:.2}-{hi:.2})",
            median(&two.rate) / median(&one.rate),
            median(&per_round)
        )?;
    }
    Ok(())
}

/// Lowest and highest of a set of measurements.
pub(crate) fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}
