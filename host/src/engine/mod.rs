//! The WebAssembly engine room: one engine and linker for the process, plugins compiled
//! once (and cached on disk), instantiated from a cached `InstancePre` per worker, each
//! in its own store with its own limits.

mod chain;
mod clocks;
mod compile;
mod failure;
mod instance;
mod limits;
mod mmdb;
mod plugin;
mod policy;
mod sandbox;
mod state;
mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};
use weir_wire::ReplyLimits;

pub use chain::{Chain, TraceEntry};
pub use compile::{default_cache_dir, CompileError};
pub use failure::PluginFailure;
pub use instance::PluginInstance;
pub use limits::Limits;
pub use plugin::{LoadError, LoadedPlugin};
pub use policy::Policy;
pub use sandbox::Grants;
pub use state::PluginState;
pub use stats::{PluginStats, MAX_COUNTERS};

/// Host bindings generated from `wit/filter.wit`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "weir:filter/plugin",
    });
}

/// How often the epoch advances; deadlines (wall-clock time) are counted in these ticks, so a deadline
/// fires up to one tick late. 10 ms keeps the ticker's own cost negligible (at 1 ms it was
/// ~0.8% of a core, measured with perf during `weir bench --suite kafka`).
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process-wide engine: compiler settings, the linker with WASI and Weir's host
/// functions, the compile cache location, and the epoch ticker.
#[derive(Clone)]
pub struct WasmEngine {
    /// For plugins under deadlines (the default): epoch checks compiled in.
    metered: Flavor,
    /// For plugins whose operator turned the deadline off (`cpu_deadline = false`).
    unmetered: Flavor,
    cache_dir: Option<PathBuf>,
    mmdb_cache: Arc<mmdb::MmdbCache>,
    reply_limits: ReplyLimits,
    _ticker: Arc<EpochTicker>,
}

/// An engine and its linker: a plugin is compiled and linked by the one matching its
/// limits (epoch checks are decided when code is compiled, not per call).
#[derive(Clone)]
struct Flavor {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
}

impl Flavor {
    fn new(epoch_checks: bool) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            // No async components here; leaving this on costs ~230 ns per call.
            .concurrency_support(false)
            // Deadlines: cheap checks at loop heads and calls, counted in EPOCH_TICKs.
            .epoch_interruption(epoch_checks)
            .cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(wasm_error)?;
        let mut linker = Linker::new(&engine);
        // wasm32-wasip2 guests import wasi:cli and wasi:io even when they do no I/O;
        // the sandbox (see `sandbox.rs`) decides what those imports can reach.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasm_error)?;
        // Sleeps end by the call's deadline (see `clocks.rs`).
        clocks::add_to_linker(&mut linker).map_err(wasm_error)?;
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(wasm_error)?;
        Ok(Flavor {
            engine,
            linker: Arc::new(linker),
        })
    }
}

impl WasmEngine {
    /// Sets up the engine. `cache_dir` of `None` disables the compile cache;
    /// `reply_limits` bound what every plugin's replies may do to an event.
    pub fn new(cache_dir: Option<PathBuf>, reply_limits: ReplyLimits) -> anyhow::Result<Self> {
        let metered = Flavor::new(true)?;
        let ticker = Arc::new(EpochTicker::start(metered.engine.clone()));
        Ok(WasmEngine {
            metered,
            unmetered: Flavor::new(false)?,
            cache_dir,
            mmdb_cache: Arc::default(),
            reply_limits,
            _ticker: ticker,
        })
    }

    /// The engine and linker for a plugin with these limits.
    fn flavor(&self, limits: &Limits) -> &Flavor {
        if limits.cpu_deadline {
            &self.metered
        } else {
            &self.unmetered
        }
    }
}

/// wasmtime 48 has its own error type; this carries its full message into `anyhow`.
pub(crate) fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
