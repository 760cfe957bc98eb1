//! Pipeline counters, the end-of-run summary, and the live progress line.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::WorkerOutput;
use crate::engine::{LoadedPlugin, PluginStats};

/// Counters the writer updates as outputs arrive.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Events read from the source.
    pub received: AtomicU64,
    /// Events written to the sink.
    pub sent: AtomicU64,
    /// Events written to the dead-letter output.
    pub dead_lettered: AtomicU64,
}

impl RunStats {
    pub(crate) fn record(&self, out: &WorkerOutput) {
        self.received.fetch_add(out.received, Relaxed);
        self.sent.fetch_add(out.sent, Relaxed);
        self.dead_lettered.fetch_add(out.dead_lettered, Relaxed);
    }
}

/// One plugin's line in the summary.
#[derive(Debug, Clone)]
pub struct PluginSummary {
    /// The plugin's name.
    pub name: String,
    /// Events in, kept, routed, dropped, failed.
    pub counts: [u64; 5],
    /// Batches lost to failures, and instance restarts.
    pub batch_failures: u64,
    /// Instance restarts.
    pub restarts: u64,
    /// Log lines suppressed by the rate limit.
    pub logs_suppressed: u64,
    /// Custom counter additions refused by the cap on distinct names.
    pub counter_overflow: u64,
    /// Time spent in the plugin.
    pub time: Duration,
    /// The plugin's own counters.
    pub custom: Vec<(String, u64)>,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Events read.
    pub received: u64,
    /// Events written.
    pub sent: u64,
    /// Events dropped by plugins.
    pub dropped: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Per plugin, in chain order.
    pub plugins: Vec<PluginSummary>,
}

impl Summary {
    pub(crate) fn new(stats: &RunStats, elapsed: Duration, plugins: &[Arc<LoadedPlugin>]) -> Self {
        let received = stats.received.load(Relaxed);
        let sent = stats.sent.load(Relaxed);
        let dead_lettered = stats.dead_lettered.load(Relaxed);
        let plugins = plugins
            .iter()
            .map(|p| {
                let s = &p.stats;
                let g = PluginStats::get;
                PluginSummary {
                    name: p.name.to_string(),
                    counts: [
                        g(&s.events_in),
                        g(&s.kept),
                        g(&s.routed),
                        g(&s.dropped),
                        g(&s.failed),
                    ],
                    batch_failures: g(&s.batch_failures),
                    restarts: g(&s.restarts),
                    logs_suppressed: g(&s.logs_suppressed),
                    counter_overflow: g(&s.counter_overflow),
                    time: Duration::from_nanos(g(&s.nanos)),
                    custom: s.custom().into_iter().collect(),
                }
            })
            .collect();
        Summary {
            received,
            sent,
            dropped: received.saturating_sub(sent + dead_lettered),
            dead_lettered,
            elapsed,
            plugins,
        }
    }

    /// Events per second over the run.
    pub fn rate(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Writes the human summary.
    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "weir: {} events in, {} out, {} dropped, {} dead-lettered in {:.3} s ({:.0} events/s)",
            self.received,
            self.sent,
            self.dropped,
            self.dead_lettered,
            self.elapsed.as_secs_f64(),
            self.rate()
        )?;
        if self.plugins.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "  {:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "plugin", "in", "kept", "routed", "dropped", "failed", "time"
        )?;
        for p in &self.plugins {
            let [i, k, r, d, f] = p.counts;
            writeln!(
                out,
                "  {:<20} {i:>9} {k:>9} {r:>9} {d:>9} {f:>9} {:>8.1}ms",
                p.name,
                p.time.as_secs_f64() * 1e3
            )?;
            if p.batch_failures > 0 {
                writeln!(
                    out,
                    "  {:<20} {} failed batches, {} restarts",
                    "", p.batch_failures, p.restarts
                )?;
            }
            if p.logs_suppressed > 0 {
                let n = p.logs_suppressed;
                writeln!(
                    out,
                    "  {:<20} {n} log lines suppressed by the rate limit",
                    ""
                )?;
            }
            for (name, v) in &p.custom {
                writeln!(out, "  {:<20} {name} = {v}", "")?;
            }
            if p.counter_overflow > 0 {
                let n = p.counter_overflow;
                let cap = crate::engine::MAX_COUNTERS;
                writeln!(
                    out,
                    "  {:<20} {n} counter additions refused (at most {cap} names)",
                    ""
                )?;
            }
        }
        Ok(())
    }
}

/// Redraws a one-line progress report on a terminal until dropped.
pub struct Progress {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts the progress line on standard error.
    pub fn start(stats: Arc<RunStats>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let n = stats.received.load(Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\r\x1b[2K{n} in, {} out, {} dead-lettered ({rate:.0} events/s)",
                    stats.sent.load(Relaxed),
                    stats.dead_lettered.load(Relaxed)
                );
            }
            eprint!("\r\x1b[2K");
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
