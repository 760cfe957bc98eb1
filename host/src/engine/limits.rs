//! Per-plugin resource limits: a memory cap enforced by a store limiter, and deadlines
//! enforced by epoch interruption.

use serde::Deserialize;

/// The `[plugins.limits]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most linear memory one instance may use, in MiB.
    ///
    /// Default: 64.
    pub memory_mib: u32,
    /// Deadline for one batch (one `process` call), in milliseconds of wall-clock time,
    /// counted in the engine's 10 ms epoch ticks: time the call spends descheduled counts
    /// too, not only the CPU time it uses.
    ///
    /// Default: 100.
    pub deadline_ms: u64,
    /// Deadline for `init` (opening databases, compiling patterns), in milliseconds.
    ///
    /// Default: 5000.
    pub init_deadline_ms: u64,
    /// Log lines per second one instance may write before lines are suppressed (and counted).
    ///
    /// Default: 20.
    pub log_lines_per_second: u32,
    /// Whether `deadline_ms` and `init_deadline_ms` are enforced. Enforcing them compiles
    /// a check into every loop and call of the plugin, which costs ~10% of a pipeline
    /// running the bundled plugins (more for loop-heavy code such as regexes). `false`
    /// compiles the plugin without the checks: faster, but a plugin stuck in a loop then
    /// holds its worker until the process is stopped. Only for plugins you trust.
    ///
    /// Default: true.
    pub cpu_deadline: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            deadline_ms: 100,
            init_deadline_ms: 5000,
            log_lines_per_second: 20,
            cpu_deadline: true,
        }
    }
}

impl Limits {
    /// Rejects values that would make a plugin unusable; the message starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_mib == 0 {
            return Err("memory_mib: must be at least 1".into());
        }
        if self.deadline_ms == 0 || self.init_deadline_ms == 0 {
            return Err("deadline_ms / init_deadline_ms: must be at least 1".into());
        }
        Ok(())
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib as usize * 1024 * 1024
    }
}

/// Number of epoch ticks to allow for `ms` milliseconds (rounded up, at least one more
/// than asked, since the current tick may be about to end).
pub fn deadline_ticks(ms: u64, tick: std::time::Duration) -> u64 {
    let tick_ms = tick.as_millis().max(1) as u64;
    ms.div_ceil(tick_ms) + 1
}

/// The store's resource limiter: caps linear memory and remembers that it refused growth,
/// so a trap caused by the cap is reported as such rather than as a generic trap.
#[derive(Debug)]
pub struct MemoryCap {
    max_bytes: usize,
    /// Set when a growth past the cap was refused during the current call.
    pub hit: bool,
}

impl MemoryCap {
    /// A limiter allowing `max_bytes` of linear memory.
    pub fn new(max_bytes: usize) -> Self {
        MemoryCap {
            max_bytes,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // Trap rather than return -1: a Rust guest would abort anyway, and a trap
            // carries a clear reason.
            wasmtime::bail!(
                "memory cap of {} MiB exceeded",
                self.max_bytes / (1024 * 1024)
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadline_rounds_up_and_adds_a_tick() {
        assert_eq!(deadline_ticks(100, Duration::from_millis(1)), 101);
        assert_eq!(deadline_ticks(5, Duration::from_millis(2)), 4);
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(Limits {
            memory_mib: 0,
            ..Limits::default()
        }
        .validate()
        .is_err());
        assert!(Limits {
            deadline_ms: 0,
            ..Limits::default()
        }
        .validate()
        .is_err());
        assert!(Limits::default().validate().is_ok());
    }
}
