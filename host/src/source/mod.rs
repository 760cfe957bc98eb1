//! Where events come from. Sources hand raw lines to the workers, which decode them, so
//! JSON parsing is spread over every core rather than funnelled through the reader.

mod file;
pub mod offsets;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Origin;

pub use file::LineSource;

/// The `[source]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Newline-delimited JSON from a file, read to its end.
    File {
        /// The file (relative to the config file).
        path: PathBuf,
    },
    /// Newline-delimited JSON from standard input, until it closes.
    Stdin,
}

impl SourceConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let SourceConfig::File { path } = self {
            *path = crate::config::resolve(base, path);
        }
    }
}

/// One raw input line and where it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// The line, without its terminator (invalid UTF-8 replaced, see `bad_utf8`).
    pub text: String,
    /// The line was not valid UTF-8.
    pub bad_utf8: bool,
    /// Where it came from.
    pub origin: Origin,
}

/// A source of raw lines.
pub trait Source: Send {
    /// Appends up to `max` records to `out`; `Ok(false)` once the input is exhausted.
    fn read_chunk(&mut self, max: usize, out: &mut Vec<Record>) -> std::io::Result<bool>;
}

/// Opens the configured source.
pub fn open(config: &SourceConfig) -> anyhow::Result<Box<dyn Source>> {
    Ok(match config {
        SourceConfig::File { path } => {
            let file = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("source: cannot open {}: {e}", path.display()))?;
            Box::new(LineSource::new(
                std::io::BufReader::with_capacity(1 << 20, file),
                &path.display().to_string(),
            ))
        }
        SourceConfig::Stdin => Box::new(LineSource::new(
            std::io::BufReader::new(std::io::stdin()),
            "stdin",
        )),
    })
}
