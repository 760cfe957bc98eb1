//! A plugin loaded once per (re)load: compiled, type-checked against the contract,
//! linked into an `InstancePre` that every worker instantiates cheaply.

use std::sync::Arc;

use weir_wire::CONTRACT_VERSION;

use super::bindings::PluginPre;
use super::compile::{compile, CompileError};
use super::{PluginStats, WasmEngine};
use crate::config::PluginSpec;

/// A compiled, linked plugin with its settings. Shared by all workers.
pub struct LoadedPlugin {
    /// The config entry it came from.
    pub spec: PluginSpec,
    /// The name, shared into dead-letter entries and logs.
    pub name: Arc<str>,
    /// SHA-256 of the `.wasm`.
    pub sha256: String,
    /// The `weir:filter` version the plugin was built for.
    pub contract: String,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    /// Counters, summed over workers.
    pub stats: Arc<PluginStats>,
    pub(super) pre: PluginPre<super::PluginState>,
    pub(super) grants: Arc<super::Grants>,
    pub(super) mmdb_cache: Arc<super::mmdb::MmdbCache>,
    pub(super) engine: wasmtime::Engine,
    pub(super) init_json: String,
    pub(super) reply_limits: weir_wire::ReplyLimits,
}

/// Why a plugin could not be loaded. Displays as `file:line: plugin `name`: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{location}: plugin `{name}`: {reason}")]
pub struct LoadError {
    /// `file:line` of the plugin's entry.
    pub location: String,
    /// The plugin's name.
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

impl WasmEngine {
    /// Compiles (or fetches from cache), checks the contract version, and links a plugin.
    pub fn load(&self, spec: &PluginSpec) -> Result<Arc<LoadedPlugin>, LoadError> {
        self.load_with_stats(spec, Arc::default())
    }

    /// As [`load`](Self::load), counting into existing `stats` (a reloaded plugin keeps its
    /// counters).
    pub fn load_with_stats(
        &self,
        spec: &PluginSpec,
        stats: Arc<PluginStats>,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let fail = |reason: String| LoadError {
            location: spec.location.clone(),
            name: spec.name().to_owned(),
            reason,
        };
        let flavor = self.flavor(&spec.config.limits);
        if !spec.config.limits.cpu_deadline {
            tracing::warn!(
                "{}: plugin `{}` runs without a deadline (cpu_deadline = false)",
                spec.location,
                spec.name()
            );
        }
        let compiled = compile(&flavor.engine, spec.wasm_path(), self.cache_dir.as_deref())
            .map_err(|e| match e {
                CompileError::Read { path, source } => {
                    fail(format!("path: cannot read {}: {source}", path.display()))
                }
                other => fail(other.to_string()),
            })?;
        let contract = contract_version(&flavor.engine, &compiled.component).map_err(fail)?;
        let pre = flavor
            .linker
            .instantiate_pre(&compiled.component)
            .and_then(PluginPre::new)
            .map_err(|e| fail(format!("cannot be linked: {e:#}")))?;
        Ok(Arc::new(LoadedPlugin {
            name: spec.name().into(),
            spec: spec.clone(),
            sha256: compiled.sha256,
            contract,
            cached: compiled.cached,
            stats,
            pre,
            grants: Arc::new(spec.config.grants.clone()),
            mmdb_cache: self.mmdb_cache.clone(),
            engine: flavor.engine.clone(),
            init_json: spec.init_json(),
            reply_limits: self.reply_limits,
        }))
    }
}

/// Finds the `weir:filter/filter@X` export and checks X is compatible with the host's.
fn contract_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<String, String> {
    let ty = component.component_type();
    let mut exports = Vec::new();
    for (name, _) in ty.exports(engine) {
        if let Some(version) = name.strip_prefix("weir:filter/filter@") {
            if compatible(version, CONTRACT_VERSION) {
                return Ok(version.to_owned());
            }
            return Err(format!(
                "was built for contract weir:filter@{version}, but this weir supports weir:filter@{CONTRACT_VERSION}; \
                 rebuild it with a matching weir-sdk"
            ));
        }
        exports.push(name.to_owned());
    }
    Err(format!(
        "is not a Weir filter plugin: it does not export weir:filter/filter (its exports: {}); build it with weir-sdk",
        if exports.is_empty() { "none".to_owned() } else { exports.join(", ") }
    ))
}

/// Same major version, and while 0.x the same minor version.
fn compatible(plugin: &str, host: &str) -> bool {
    let parts = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Vec<_>>()
    };
    let (p, h) = (parts(plugin), parts(host));
    match (p.as_slice(), h.as_slice()) {
        ([Some(pm), Some(pn), ..], [Some(hm), Some(hn), ..]) => pm == hm && (*hm > 0 || pn == hn),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_compatibility_follows_cargo_rules() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn the_wit_file_declares_the_version_the_host_checks() {
        let wit = include_str!("../../../wit/filter.wit");
        assert!(wit.contains(&format!("package weir:filter@{CONTRACT_VERSION};")));
    }
}
