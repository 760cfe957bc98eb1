//! The data each plugin store holds, and the host functions plugins may call.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::weir::filter::host::{Host, Level};
use super::limits::MemoryCap;
use super::stats::PluginStats;

/// Everything one plugin instance's store owns.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory limiter (also records whether the cap was hit).
    pub cap: MemoryCap,
    /// The last error-level line the plugin logged during the current call.
    pub last_error: Option<String>,
    name: Arc<str>,
    stats: Arc<PluginStats>,
    log_limit: LogLimit,
}

impl PluginState {
    /// State for a new instance of the plugin `name`.
    pub fn new(
        wasi: WasiCtx,
        cap: MemoryCap,
        name: Arc<str>,
        stats: Arc<PluginStats>,
        lines_per_second: u32,
    ) -> Self {
        PluginState {
            wasi,
            table: ResourceTable::new(),
            cap,
            last_error: None,
            name,
            stats,
            log_limit: LogLimit {
                per_second: lines_per_second,
                window: Instant::now(),
                used: 0,
                suppressed: 0,
            },
        }
    }

    /// Clears per-call diagnostics before a call.
    pub fn begin_call(&mut self) {
        self.cap.hit = false;
        self.last_error = None;
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A per-second budget of log lines.
struct LogLimit {
    per_second: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl LogLimit {
    /// Whether a line may be written now; also returns how many were suppressed before it.
    fn admit(&mut self) -> (bool, u64) {
        if self.window.elapsed().as_secs() >= 1 {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used >= self.per_second {
            self.suppressed += 1;
            return (false, 0);
        }
        self.used += 1;
        (true, std::mem::take(&mut self.suppressed))
    }
}

impl Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        let (admitted, suppressed_before) = self.log_limit.admit();
        if !admitted {
            PluginStats::add(&self.stats.logs_suppressed, 1);
        } else {
            let plugin = &*self.name;
            if suppressed_before > 0 {
                tracing::warn!(
                    plugin,
                    suppressed = suppressed_before,
                    "plugin log lines suppressed by the rate limit"
                );
            }
            match level {
                Level::Trace => tracing::trace!(plugin, "{message}"),
                Level::Debug => tracing::debug!(plugin, "{message}"),
                Level::Info => tracing::info!(plugin, "{message}"),
                Level::Warn => tracing::warn!(plugin, "{message}"),
                Level::Error => tracing::error!(plugin, "{message}"),
            }
        }
        if level == Level::Error {
            self.last_error = Some(message);
        }
    }

    fn count(&mut self, name: String, delta: u64) {
        self.stats.count(&name, delta);
    }
}
