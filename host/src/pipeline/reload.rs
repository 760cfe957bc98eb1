//! Hot reload: the supervisor owns the running chain's generation. A reload parses the
//! config, compiles and initialises a complete new chain for every worker off the hot
//! path, and only then hands each worker its new chain, which the worker swaps in at its
//! next batch boundary: batches already in flight finish on the old chain, no batch ever
//! mixes two. A reload that fails anywhere leaves the old chain running.
//!
//! One reload runs at a time (a second one asked for meanwhile is told so, not queued),
//! and it holds the lock that `/status` needs only to read the running generation and to
//! publish its outcome, so a slow plugin `init` never holds up the admin endpoint.
//!
//! Plugin state is not carried over: new instances start from `init` with the new config.
//! Counters are kept per plugin name, so they continue across reloads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{LoadedConfig, PipelineConfig};
use crate::engine::{Chain, LoadedPlugin, PluginStats, WasmEngine};

use super::start_chain;

/// One loaded version of the config and its plugins.
pub struct Generation {
    /// 1 for the chain loaded at start, then one more per successful reload.
    pub id: u64,
    /// The config it came from.
    pub config: LoadedConfig,
    /// The chain, in order.
    pub plugins: Vec<Arc<LoadedPlugin>>,
}

/// A new chain on its way to one worker.
pub struct Handoff {
    /// The worker's instances of the new generation.
    pub chain: Chain,
    /// Its generation.
    pub generation: u64,
    /// When the reload was triggered (for the swap-time measurement).
    pub triggered: Instant,
}

/// The last reload attempt.
#[derive(Debug, Clone)]
pub struct LastReload {
    /// When it was attempted.
    pub at: SystemTime,
    /// What triggered it: `file change`, `SIGHUP`, `http`.
    pub trigger: String,
    /// The new generation, or why the reload was refused.
    pub outcome: Result<u64, String>,
    /// Settings that changed but only take effect on restart.
    pub needs_restart: Vec<String>,
    /// Trigger to the first batch processed on the new chain.
    pub swap: Option<Duration>,
}

/// Reload counters and the last attempt, for `/status`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads.
    pub failures: u64,
    /// The last attempt.
    pub last: Option<LastReload>,
}

struct Inner {
    generation: Arc<Generation>,
    stats: HashMap<String, Arc<PluginStats>>,
    status: ReloadStatus,
    handoffs: Vec<Sender<Handoff>>,
}

/// Owns the running generation and performs reloads.
pub struct Supervisor {
    engine: WasmEngine,
    config_path: PathBuf,
    workers: usize,
    /// The settings the process started with: what restart-only sections are compared
    /// against, so a change stays reported until a restart applies it.
    started: PipelineConfig,
    inner: Mutex<Inner>,
    /// Set while a `ReloadPermit` exists.
    reloading: AtomicBool,
}

/// The right to run one reload (see `Supervisor::try_begin_reload`); released when
/// dropped, whether or not it was used.
pub struct ReloadPermit {
    supervisor: Arc<Supervisor>,
}

impl ReloadPermit {
    /// Reloads from the config file: the new generation's id, or why the reload was
    /// refused (the old chain keeps running). `trigger` is shown in `/status`.
    pub fn reload(self, trigger: &str) -> Result<u64, String> {
        self.supervisor.reload(trigger)
    }
}

impl Drop for ReloadPermit {
    fn drop(&mut self) {
        self.supervisor.reloading.store(false, Ordering::Release);
    }
}

impl Supervisor {
    /// Loads generation 1 and starts one chain per worker.
    pub fn start(
        engine: WasmEngine,
        config: LoadedConfig,
        workers: usize,
    ) -> anyhow::Result<(Arc<Self>, Vec<Chain>)> {
        let mut stats = HashMap::new();
        let plugins = load(&engine, &config, &mut stats).map_err(anyhow::Error::msg)?;
        let chains = (0..workers)
            .map(|_| start_chain(&plugins))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let supervisor = Supervisor {
            engine,
            config_path: config.file.clone(),
            workers,
            started: config.pipeline.clone(),
            inner: Mutex::new(Inner {
                generation: Arc::new(Generation {
                    id: 1,
                    config,
                    plugins,
                }),
                stats,
                status: ReloadStatus::default(),
                handoffs: Vec::new(),
            }),
            reloading: AtomicBool::new(false),
        };
        crate::metrics::generation(1);
        Ok((Arc::new(supervisor), chains))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives the supervisor the channels on which each worker receives new chains.
    pub fn connect_workers(&self, handoffs: Vec<Sender<Handoff>>) {
        self.lock().handoffs = handoffs;
    }

    /// The running generation.
    pub fn generation(&self) -> Arc<Generation> {
        self.lock().generation.clone()
    }

    /// Reload counters and the last attempt.
    pub fn status(&self) -> ReloadStatus {
        self.lock().status.clone()
    }

    /// The files whose change should trigger a reload: the config and every plugin.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let generation = self.generation();
        std::iter::once(self.config_path.clone())
            .chain(
                generation
                    .plugins
                    .iter()
                    .map(|p| p.spec.wasm_path().to_path_buf()),
            )
            .collect()
    }

    /// Claims the right to reload, which one caller holds at a time; `None` while a reload
    /// is already running. Callers answer "busy" or retry rather than queue behind it.
    pub fn try_begin_reload(self: &Arc<Self>) -> Option<ReloadPermit> {
        self.reloading
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ReloadPermit {
                supervisor: self.clone(),
            })
    }

    /// Reloads from the config file. On success the new generation's id; on failure the
    /// reason, with the old chain still running. The slow part (parsing, compiling,
    /// every `init`) runs without the lock `generation()` and `status()` take, so they
    /// answer at once throughout; the lock is taken only to read the counters
    /// and to publish the outcome. Reloads are serialised by `ReloadPermit`.
    fn reload(&self, trigger: &str) -> Result<u64, String> {
        if self.lock().handoffs.is_empty() {
            // Before the workers run, a new chain would reach none of them.
            return Err("starting: the workers are not running yet".to_owned());
        }
        let triggered = Instant::now();
        let mut stats = self.lock().stats.clone();
        let attempt = self.prepare(&mut stats);
        let mut inner = self.lock();
        // Only reloads add counters, and they run one at a time: nothing was added meanwhile.
        inner.stats = stats;
        let (outcome, needs_restart) = match attempt {
            Ok((config, plugins, chains, needs_restart)) => {
                let id = inner.generation.id + 1;
                for (handoff, chain) in inner.handoffs.iter().zip(chains) {
                    // A worker that has finished no longer listens; nothing to hand over.
                    let _ = handoff.send(Handoff {
                        chain,
                        generation: id,
                        triggered,
                    });
                }
                inner.generation = Arc::new(Generation {
                    id,
                    config,
                    plugins,
                });
                inner.status.reloads += 1;
                crate::metrics::reload(true);
                crate::metrics::generation(id);
                tracing::info!(generation = id, trigger, ?needs_restart, "chain reloaded");
                (Ok(id), needs_restart)
            }
            Err(reason) => {
                inner.status.failures += 1;
                crate::metrics::reload(false);
                tracing::warn!(trigger, reason = %reason, "reload refused; the running chain stays");
                (Err(reason), Vec::new())
            }
        };
        for setting in &needs_restart {
            tracing::warn!(setting = %setting, "changed in the config, takes effect only after a restart");
        }
        inner.status.last = Some(LastReload {
            at: SystemTime::now(),
            trigger: trigger.to_owned(),
            outcome: outcome.clone(),
            needs_restart,
            swap: None,
        });
        outcome
    }

    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        stats: &mut HashMap<String, Arc<PluginStats>>,
    ) -> Result<
        (
            LoadedConfig,
            Vec<Arc<LoadedPlugin>>,
            Vec<Chain>,
            Vec<String>,
        ),
        String,
    > {
        let config = LoadedConfig::load(&self.config_path).map_err(|e| e.to_string())?;
        let needs_restart = restart_only_changes(&self.started, &config.pipeline);
        let plugins = load(&self.engine, &config, stats)?;
        let chains = (0..self.workers)
            .map(|_| start_chain(&plugins))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| format!("{e:#}"))?;
        Ok((config, plugins, chains, needs_restart))
    }

    /// Records when the first batch ran on `generation` (called by the worker that swaps first).
    pub fn record_swap(&self, generation: u64, elapsed: Duration) {
        let mut inner = self.lock();
        if let Some(last) = inner.status.last.as_mut() {
            if last.outcome == Ok(generation) && last.swap.is_none() {
                last.swap = Some(elapsed);
                crate::metrics::swap(elapsed);
            }
        }
    }

    /// The config file being watched.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }
}

fn load(
    engine: &WasmEngine,
    config: &LoadedConfig,
    stats: &mut HashMap<String, Arc<PluginStats>>,
) -> Result<Vec<Arc<LoadedPlugin>>, String> {
    config
        .plugins
        .iter()
        .map(|spec| {
            let counters = stats.entry(spec.name().to_owned()).or_default().clone();
            engine
                .load_with_stats(spec, counters)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Sections whose changes a running pipeline cannot apply.
fn restart_only_changes(old: &PipelineConfig, new: &PipelineConfig) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            changed.push(name.to_owned());
        }
    };
    check("source", old.source == new.source);
    check("sink", old.sink == new.sink);
    check("dead_letter", old.dead_letter == new.dead_letter);
    check("pipeline", old.pipeline == new.pipeline);
    check("engine", old.engine == new.engine);
    check("admin", old.admin == new.admin);
    changed
}
