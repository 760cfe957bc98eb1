//! What a plugin may touch. By default: nothing. No files, no network, no environment,
//! and clocks frozen at the epoch, so a plugin cannot tell time unless granted.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::clocks::{FrozenClock, RealClock};

/// The `[plugins.grants]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Read-only directories: guest path (absolute, e.g. `"/geoip"`) to host directory
    /// (relative to the config file). A GeoIP plugin needs one for its database.
    pub dirs: BTreeMap<String, PathBuf>,
    /// Environment variables passed through, by name.
    pub env: Vec<String>,
    /// Real wall and monotonic clocks (otherwise both read zero).
    pub clock: bool,
}

/// Why a sandbox could not be built.
#[derive(Debug, thiserror::Error)]
#[error("grants.dirs: cannot open {host} for {guest}: {reason}")]
pub struct GrantError {
    /// The host directory.
    pub host: String,
    /// The guest path it was to appear at.
    pub guest: String,
    /// The underlying error.
    pub reason: String,
}

/// Builds a WASI context holding exactly the granted capabilities; `clock` is the
/// monotonic clock of a plugin granted clocks (`None`: frozen clocks).
pub fn wasi_ctx(grants: &Grants, clock: Option<RealClock>) -> Result<WasiCtx, GrantError> {
    let mut b = WasiCtxBuilder::new();
    for (guest, host) in &grants.dirs {
        b.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| GrantError {
                host: host.display().to_string(),
                guest: guest.clone(),
                reason: format!("{e:#}"),
            })?;
    }
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            b.env(name, value);
        }
    }
    match clock {
        Some(clock) => b.monotonic_clock(clock),
        None => b.wall_clock(FrozenClock).monotonic_clock(FrozenClock),
    };
    // No network: no socket may be created and no name looked up. These are the
    // builder's defaults in wasmtime-wasi 48 (whose own docs say TCP and UDP are allowed,
    // with every address denied), set here so an upgrade cannot quietly change them;
    // every address stays denied too (no `inherit_network`).
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    Ok(b.build())
}
