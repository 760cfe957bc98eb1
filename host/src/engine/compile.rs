//! Compiling plugins once: the compiled artefact is cached on disk, keyed by the hash of
//! the `.wasm` bytes and of the engine's compilation settings, so a restart (or a reload
//! of an unchanged plugin) deserialises in ~0.1 ms instead of compiling for ~50 ms.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A compiled component and the content hash of its `.wasm`.
pub struct Compiled {
    /// The component, ready to link.
    pub component: Component,
    /// SHA-256 of the `.wasm` file, hex.
    pub sha256: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Why a plugin could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The `.wasm` path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// The `.wasm` path.
        path: PathBuf,
        /// wasmtime's message.
        reason: String,
    },
}

/// Compiles `path`, or loads it from `cache_dir` when compiled before.
pub fn compile(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> Result<Compiled, CompileError> {
    let bytes = std::fs::read(path).map_err(|source| CompileError::Read {
        path: path.into(),
        source,
    })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let cache_file =
        cache_dir.map(|dir| dir.join(format!("{}-{:016x}.cwasm", sha256, engine_hash(engine))));
    if let Some(file) = cache_file.as_deref().filter(|f| f.exists()) {
        // SAFETY: the cache directory holds only artefacts this function serialised with an
        // engine of the same compatibility hash; a corrupt file fails to deserialise and is
        // recompiled below. Operators must not let untrusted users write to it.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => {
                return Ok(Compiled {
                    component,
                    sha256,
                    cached: true,
                })
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "ignoring unusable compile cache entry")
            }
        }
    }
    let component = Component::new(engine, &bytes).map_err(|e| CompileError::Invalid {
        path: path.into(),
        reason: format!("{e:#}"),
    })?;
    if let Some(file) = cache_file {
        if let Err(e) = store(&component, &file) {
            tracing::warn!(file = %file.display(), error = %e, "could not write compile cache");
        }
    }
    Ok(Compiled {
        component,
        sha256,
        cached: false,
    })
}

fn store(component: &Component, file: &Path) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize().map_err(super::wasm_error)?)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default cache directory: `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("weir"))
}
