//! The data each plugin store holds, and the host functions plugins may call.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_wire::limits::{truncate_reason, MAX_REASON_BYTES};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::weir::filter::host::{Host, Level};
use super::bindings::weir::filter::mmdb;
use super::clocks::RealClock;
use super::limits::MemoryCap;
use super::mmdb::{resolve_granted, MmdbCache, OpenDatabases};
use super::stats::PluginStats;

/// Everything one plugin instance's store owns.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory limiter (also records whether the cap was hit).
    pub cap: MemoryCap,
    /// The last error-level line the plugin logged during the current call (cut to
    /// [`MAX_REASON_BYTES`]).
    pub last_error: Option<String>,
    /// When the current call must be over: sleeps the guest asks for end by then.
    pub deadline: Instant,
    /// Set when the guest asked to sleep past `deadline` during the current call.
    pub overslept: bool,
    /// The monotonic clock of a plugin granted clocks; without one its sleeps end at once.
    clock: Option<RealClock>,
    /// Custom counter additions of the current call, added to the plugin's counters
    /// (and `/metrics`) once the call returns.
    pub counts: Vec<(Box<str>, u64)>,
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
    /// Its monotonic clock, when granted clocks.
    pub clock: Option<RealClock>,
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
            deadline: Instant::now(),
            overslept: false,
            clock: parts.clock,
            counts: Vec::new(),
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

    /// Clears per-call diagnostics before a call that may take `allowed`.
    pub fn begin_call(&mut self, allowed: Duration) {
        self.cap.hit = false;
        self.last_error = None;
        self.deadline = Instant::now() + allowed;
        self.overslept = false;
    }

    /// The plugin's monotonic clock, when it was granted clocks.
    pub(super) fn monotonic(&self) -> Option<RealClock> {
        self.clock
    }

    /// The store's resource table, for host functions defined outside this file.
    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Adds the call's custom counter additions to the plugin's counters.
    pub fn end_call(&mut self) {
        if !self.counts.is_empty() {
            self.stats.count_all(&self.name, &self.counts);
            self.counts.clear();
        }
    }
}

/// Distinct counter names one call may collect before further new ones are refused;
/// the plugin's own cap (`MAX_COUNTERS`) applies when they are added up.
const MAX_PENDING_COUNTERS: usize = 2 * super::stats::MAX_COUNTERS;

/// A plugin's log line as one host log line: control characters (a newline would start
/// a forged host line) are escaped, and the whole is cut to [`MAX_REASON_BYTES`].
fn sanitize(message: &str) -> Cow<'_, str> {
    let message = truncate_reason(message, MAX_REASON_BYTES);
    if !message.chars().any(char::is_control) {
        return message;
    }
    Cow::Owned(
        message
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<String>()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
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
            crate::metrics::plugin_log_suppressed(&self.name);
        } else {
            let message = sanitize(&message);
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
            self.last_error = Some(truncate_reason(&message, MAX_REASON_BYTES).into_owned());
        }
    }

    fn count(&mut self, name: String, delta: u64) {
        let pending = self.counts.len();
        match self.counts.iter_mut().find(|(n, _)| **n == *name) {
            Some((_, total)) => *total = total.saturating_add(delta),
            None if pending < MAX_PENDING_COUNTERS => {
                self.counts.push((name.into_boxed_str(), delta));
            }
            None => {
                PluginStats::add(&self.stats.counter_overflow, 1);
                crate::metrics::plugin_counter_overflow(&self.name, 1);
            }
        }
    }
}

impl mmdb::Host for PluginState {
    fn open(&mut self, path: String) -> Result<u32, String> {
        let host_path = resolve_granted(&path, &self.grants.dirs)?;
        let reader = self
            .mmdb_cache
            .open(&host_path)
            .map_err(|e| e.replace(&*host_path.to_string_lossy(), &path))?;
        self.databases.add(reader)
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
