//! The setup the benches that drive the real `weir run` share: a temp dir with a generated
//! corpus file, the bundled plugins' `[[plugins]]` entries, and spawning this binary on a
//! file → chain → file config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::{bundled, generate};

/// A corpus and a chain, ready to run as `weir run` with varying extra settings.
pub struct FilePipeline {
    dir: tempfile::TempDir,
    input: PathBuf,
    plugins: String,
    exe: PathBuf,
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// The bundled chain's `[[plugins]]` entries with absolute paths, so a config written
/// into a temp dir still finds the plugins and the GeoIP database.
pub(crate) fn bundled_plugins(wasm_dir: &Path, geoip_db: &Path) -> String {
    bundled::plugins_toml(&absolute(wasm_dir), &absolute(geoip_db), true)
}

impl FilePipeline {
    /// Writes `events` generated events and prepares the bundled chain's config entries.
    pub fn new(events: usize, wasm_dir: &Path, geoip_db: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let input = dir.path().join("in.ndjson");
        std::fs::write(&input, generate(events, 0x5eed).join("\n"))?;
        let plugins = bundled_plugins(wasm_dir, geoip_db);
        Ok(FilePipeline {
            dir,
            input,
            plugins,
            exe: std::env::current_exe()?,
        })
    }

    /// Writes config `name` (file source, file sink and dead letters, then `extra`
    /// sections, then the chain) and starts `weir run` on it, output discarded.
    pub fn spawn(&self, name: &str, extra: &str) -> anyhow::Result<Child> {
        let config = self.dir.path().join(name);
        std::fs::write(
            &config,
            format!(
                "[source]\ntype = \"file\"\npath = {:?}\n[sink]\ntype = \"file\"\npath = \"out.ndjson\"\n\
                 [dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n{extra}{}",
                self.input, self.plugins
            ),
        )?;
        Command::new(&self.exe)
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start weir run")
    }
}
