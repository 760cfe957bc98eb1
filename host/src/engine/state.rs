//! The data each plugin store holds, and the host functions plugins may call.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::weir::filter::host::{Host, Level};
use super::bindings::weir::filter::mmdb;
use super::limits::MemoryCap;
use super::mmdb::{resolve_granted, MmdbCache, OpenDatabases};
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
    grants: Arc<super::Grants>,
    mmdb_cache: Arc<MmdbCache>,
    databases: OpenDatabases,
}

/// Where an instance's state comes from, beside its WASI context and memory cap.
pub struct StateParts {
    /// The plugin's name.
    pub name: Arc<str>,
    /// Its counters.
    pub stats: Arc<PluginStats>,
    /// Its log budget.
    pub lines_per_second: u32,
    /// Its grants (for resolving `mmdb` paths).
    pub grants: Arc<super::Grants>,
    /// The process-wide database cache.
    pub mmdb_cache: Arc<MmdbCache>,
}

impl PluginState {
    /// State for a new instance of the plugin `name`.
    pub fn new(wasi: WasiCtx, cap: MemoryCap, parts: StateParts) -> Self {
        PluginState {
            wasi,
            table: ResourceTable::new(),
            cap,
            last_error: None,
            name: parts.name,
            stats: parts.stats,
            log_limit: LogLimit {
                per_second: parts.lines_per_second,
                window: Instant::now(),
                used: 0,
                suppressed: 0,
            },
            grants: parts.grants,
            mmdb_cache: parts.mmdb_cache,
            databases: OpenDatabases::default(),
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

impl mmdb::Host for PluginState {
    fn open(&mut self, path: String) -> Result<u32, String> {
        let host_path = resolve_granted(&path, &self.grants.dirs)?;
        let reader = self
            .mmdb_cache
            .open(&host_path)
            .map_err(|e| e.replace(&*host_path.to_string_lossy(), &path))?;
        Ok(self.databases.add(reader))
    }

    fn lookup(
        &mut self,
        database: u32,
        ip: String,
        language: String,
    ) -> Result<Option<mmdb::Location>, String> {
        Ok(self
            .databases
            .lookup(database, &ip, &language)?
            .map(|l| mmdb::Location {
                country_iso_code: l.country_iso_code,
                country_name: l.country_name,
                region: l.region,
                city_name: l.city_name,
                latitude: l.latitude,
                longitude: l.longitude,
                asn: l.asn,
                org: l.org,
            }))
    }
}
