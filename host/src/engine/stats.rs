//! Per-plugin counters, shared by every worker's instance of the plugin.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// What one plugin did, summed over workers. Read by `weir run`'s summary.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Events handed to the plugin.
    pub events_in: AtomicU64,
    /// Events it kept without a route.
    pub kept: AtomicU64,
    /// Events it routed.
    pub routed: AtomicU64,
    /// Events it dropped.
    pub dropped: AtomicU64,
    /// Events it failed, or that failed with a batch under `fail-closed`.
    pub failed: AtomicU64,
    /// Batches lost to a trap, deadline, memory cap or bad reply.
    pub batch_failures: AtomicU64,
    /// Instances replaced after a failure.
    pub restarts: AtomicU64,
    /// Time spent in the plugin, including projection and applying its reply.
    pub nanos: AtomicU64,
    /// Log lines dropped by the rate limiter.
    pub logs_suppressed: AtomicU64,
    /// Additions to custom counters that were refused: past [`MAX_COUNTERS`] distinct
    /// names, or a name longer than [`MAX_COUNTER_NAME_BYTES`].
    pub counter_overflow: AtomicU64,
    /// The plugin's own counters (`count` host call), at most [`MAX_COUNTERS`], each
    /// with its `/metrics` series (looked up once, not per call).
    pub custom: Mutex<BTreeMap<String, (u64, metrics::Counter)>>,
}

/// Distinct custom counter names one plugin may keep: each is a line in the summary and
/// a series in `/metrics`, so a plugin counting a new name per event must not grow either
/// without bound (kept across reloads, as counters are).
pub const MAX_COUNTERS: usize = 64;

/// Longest custom counter name, in bytes.
pub const MAX_COUNTER_NAME_BYTES: usize = 128;

impl PluginStats {
    /// Adds `n` to one of the counters.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Adds the custom counter additions of one call, within the caps; exported to
    /// `/metrics` as `weir_plugin_counter_total{plugin, counter}`.
    pub fn count_all(&self, plugin: &str, deltas: &[(Box<str>, u64)]) {
        let Ok(mut map) = self.custom.lock() else {
            return;
        };
        let mut refused = 0;
        for (name, delta) in deltas {
            let known = map.len();
            match map.get_mut(&**name) {
                Some((total, metric)) => {
                    *total = total.saturating_add(*delta);
                    metric.increment(*delta);
                }
                None if known < MAX_COUNTERS && name.len() <= MAX_COUNTER_NAME_BYTES => {
                    let metric = crate::metrics::plugin_counter(plugin, name);
                    metric.increment(*delta);
                    map.insert(name.to_string(), (*delta, metric));
                }
                None => refused += 1,
            }
        }
        if refused > 0 {
            Self::add(&self.counter_overflow, refused);
            crate::metrics::plugin_counter_overflow(plugin, refused);
        }
    }

    /// A copy of the custom counters.
    pub fn custom(&self) -> BTreeMap<String, u64> {
        self.custom
            .lock()
            .map(|m| m.iter().map(|(k, (v, _))| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}
