//! The host's services: logging and counters.
//!
//! Inside the Weir host these call the `weir:filter/host` imports. In native tests they
//! are recorded so tests can assert on them (see [`testing`](crate::testing)).

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very verbose diagnostics.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd the operator may want to know.
    Warn,
    /// Something failed.
    Error,
}

/// Writes a log line attributed to this plugin. The host rate-limits plugin logs, so log
/// per batch or per problem, not per event.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::__private::bindings::weir::filter::host::{self, Level as L};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message);
}

/// Adds `delta` to this plugin's counter `name` (a metric labelled with the plugin's name).
pub fn count(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    crate::__private::bindings::weir::filter::host::count(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_count(name, delta);
}
