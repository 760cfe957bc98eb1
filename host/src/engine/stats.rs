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
    /// The plugin's own counters (`count` host call).
    pub custom: Mutex<BTreeMap<String, u64>>,
}

impl PluginStats {
    /// Adds `n` to one of the counters.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Adds to a custom counter.
    pub fn count(&self, name: &str, delta: u64) {
        if let Ok(mut map) = self.custom.lock() {
            *map.entry(name.to_owned()).or_default() += delta;
        }
    }

    /// A copy of the custom counters.
    pub fn custom(&self) -> BTreeMap<String, u64> {
        self.custom.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
