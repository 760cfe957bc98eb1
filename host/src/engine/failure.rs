//! Why a plugin call failed, in words fit for a dead-letter entry.

use wasmtime::Trap;
use weir_wire::limits::{truncate_reason, MAX_REASON_BYTES};

/// A failed plugin call. Every variant leaves the host running; the instance is replaced
/// before the next batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The call ran past its deadline (wall-clock time, in epoch ticks) and was interrupted.
    #[error("exceeded its deadline of {limit_ms} ms (wall clock; stopped after {after_ms} ms)")]
    Deadline {
        /// The configured deadline.
        limit_ms: u64,
        /// How long the call had run when it was stopped.
        after_ms: u64,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {0} MiB")]
    Memory(u32),
    /// The plugin trapped (a Rust panic shows up as `unreachable`); `last_error` is the
    /// last error line it logged during the call, which for SDK plugins is the panic message.
    #[error("trapped: {trap}{}", last_error.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Trap {
        /// The trap's description.
        trap: String,
        /// The plugin's last error log line in this call, if any.
        last_error: Option<String>,
    },
    /// `process` returned an error.
    #[error("returned an error: {0}")]
    Error(String),
    /// The reply buffer did not decode or did not answer every event.
    #[error("sent a malformed reply: {0}")]
    BadReply(String),
    /// `init` refused the plugin's configuration.
    #[error("rejected its config: {0}")]
    Config(String),
    /// `init` failed when (re)starting the instance.
    #[error("could not start: {0}")]
    Start(String),
}

/// A message from a plugin, cut to [`MAX_REASON_BYTES`]: it is copied into dead-letter
/// entries and logs, and a plugin must not make the host hold megabytes per event.
pub fn cut(message: &str) -> String {
    truncate_reason(message, MAX_REASON_BYTES).into_owned()
}

/// Classifies a wasmtime call error.
pub fn classify(
    err: &wasmtime::Error,
    deadline_ms: u64,
    elapsed: std::time::Duration,
    memory_mib: u32,
    memory_hit: bool,
    last_error: Option<String>,
) -> PluginFailure {
    if memory_hit {
        return PluginFailure::Memory(memory_mib);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginFailure::Deadline {
            limit_ms: deadline_ms,
            after_ms: elapsed.as_millis() as u64,
        },
        // A Rust guest keeps its stack in linear memory below its data; running out of
        // it moves the stack pointer below address 0, so the next access is out of bounds.
        // The trap cannot tell that apart from other stray accesses: say both.
        Some(Trap::MemoryOutOfBounds) => PluginFailure::Trap {
            trap: format!(
                "{} (in a Rust plugin most often a stack overflow: recursion deeper than its stack)",
                Trap::MemoryOutOfBounds
            ),
            last_error,
        },
        Some(Trap::StackOverflow) => PluginFailure::Trap {
            trap: "stack overflow (call stack exhausted)".into(),
            last_error,
        },
        Some(trap) => PluginFailure::Trap {
            trap: trap.to_string(),
            last_error,
        },
        None => PluginFailure::Trap {
            trap: root_message(err),
            last_error,
        },
    }
}

/// The innermost message of an error chain, on one line.
fn root_message(err: &wasmtime::Error) -> String {
    err.chain()
        .last()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
