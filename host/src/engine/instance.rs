//! One live instance of a plugin: its own store, memory cap and deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use weir_wire::json::ReadPlan;
use weir_wire::BatchWriter;

use super::bindings::Plugin as Bindings;
use super::clocks::RealClock;
use super::failure::{classify, cut, PluginFailure};
use super::limits::{deadline_ticks, MemoryCap};
use super::state::{PluginState, StateParts};
use super::{sandbox, LoadedPlugin, EPOCH_TICK};
use crate::event::Event;

/// A started plugin instance. Owned by one worker; replaced after a trap.
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    store: Store<PluginState>,
    bindings: Bindings,
    plan: ReadPlan,
    batch: BatchWriter,
    deadline_ticks: u64,
}

impl PluginInstance {
    /// Instantiates the plugin and runs its `init` under the init deadline.
    pub fn start(plugin: &Arc<LoadedPlugin>) -> Result<Self, PluginFailure> {
        let limits = &plugin.spec.config.limits;
        let clock = plugin.grants.clock.then(RealClock::new);
        let wasi = sandbox::wasi_ctx(&plugin.spec.config.grants, clock)
            .map_err(|e| PluginFailure::Start(e.to_string()))?;
        let parts = StateParts {
            name: plugin.name.clone(),
            stats: plugin.stats.clone(),
            lines_per_second: limits.log_lines_per_second,
            grants: plugin.grants.clone(),
            mmdb_cache: plugin.mmdb_cache.clone(),
            clock,
        };
        let state = PluginState::new(wasi, MemoryCap::new(limits.memory_bytes()), parts);
        let mut store = Store::new(&plugin.engine, state);
        store.limiter(|s| &mut s.cap);
        if limits.cpu_deadline {
            store.set_epoch_deadline(deadline_ticks(limits.init_deadline_ms, EPOCH_TICK));
        }
        store
            .data_mut()
            .begin_call(Duration::from_millis(limits.init_deadline_ms));
        let started = Instant::now();
        let fail = |store: &Store<PluginState>, e: wasmtime::Error| {
            let s = store.data();
            let (deadline, elapsed) = (limits.init_deadline_ms, started.elapsed());
            let failure = classify(
                &e,
                deadline,
                elapsed,
                limits.memory_mib,
                s.cap.hit,
                s.last_error.clone(),
            );
            PluginFailure::Start(format!("init {failure}"))
        };
        let bindings = match plugin.pre.instantiate(&mut store) {
            Ok(b) => b,
            Err(e) => return Err(fail(&store, e)),
        };
        let init = bindings
            .weir_filter_filter()
            .call_init(&mut store, &plugin.init_json);
        store.data_mut().end_call();
        if let Some(failure) = overslept(&store, limits.init_deadline_ms, started) {
            return Err(PluginFailure::Start(format!("init {failure}")));
        }
        let manifest = match init {
            Ok(Ok(m)) => m,
            Ok(Err(message)) => return Err(PluginFailure::Config(cut(&message))),
            Err(e) => return Err(fail(&store, e)),
        };
        let plan = ReadPlan::new(&manifest.reads, &manifest.finds_keys)
            .map_err(|e| PluginFailure::Start(e.to_string()))?;
        Ok(PluginInstance {
            batch: BatchWriter::new(plan.slot_count()),
            plan,
            deadline_ticks: deadline_ticks(limits.deadline_ms, EPOCH_TICK),
            plugin: plugin.clone(),
            store,
            bindings,
        })
    }

    /// Sends the events' declared fields to the plugin and returns its reply buffer.
    pub fn process(&mut self, events: &[Event]) -> Result<Vec<u8>, PluginFailure> {
        self.batch.clear();
        for e in events {
            self.plan.write_event(&mut self.batch, &e.doc);
        }
        let limits = &self.plugin.spec.config.limits;
        self.store
            .data_mut()
            .begin_call(Duration::from_millis(limits.deadline_ms));
        if limits.cpu_deadline {
            self.store.set_epoch_deadline(self.deadline_ticks);
        }
        let started = Instant::now();
        let result = self
            .bindings
            .weir_filter_filter()
            .call_process(&mut self.store, self.batch.as_bytes());
        self.store.data_mut().end_call();
        if let Some(failure) = overslept(&self.store, limits.deadline_ms, started) {
            return Err(failure);
        }
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(message)) => Err(PluginFailure::Error(cut(&message))),
            Err(e) => {
                let s = self.store.data();
                let elapsed = started.elapsed();
                Err(classify(
                    &e,
                    limits.deadline_ms,
                    elapsed,
                    limits.memory_mib,
                    s.cap.hit,
                    s.last_error.clone(),
                ))
            }
        }
    }
}

/// The deadline failure of a call whose guest asked to sleep past `limit_ms` (see
/// `clocks.rs`), even if it returned before an epoch check stopped it.
fn overslept(store: &Store<PluginState>, limit_ms: u64, started: Instant) -> Option<PluginFailure> {
    store.data().overslept.then(|| PluginFailure::Deadline {
        limit_ms,
        after_ms: started.elapsed().as_millis() as u64,
    })
}
