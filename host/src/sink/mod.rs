//! Where events go: a file or standard output as NDJSON, and the dead-letter output.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Event;

pub mod elasticsearch;

/// The `[sink]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Newline-delimited JSON to a file (created or truncated).
    File {
        /// The file (relative to the config file).
        path: PathBuf,
        /// When set, an event's route target is written into this field.
        ///
        /// Default: not written.
        #[serde(default)]
        route_field: Option<String>,
    },
    /// Newline-delimited JSON to standard output.
    Stdout {
        /// When set, an event's route target is written into this field.
        #[serde(default)]
        route_field: Option<String>,
    },
}

/// The `[dead_letter]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// One JSON object per line on standard error.
    #[default]
    Stderr,
    /// One JSON object per line in a file (created or truncated).
    File {
        /// The file (relative to the config file).
        path: PathBuf,
    },
}

impl SinkConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let SinkConfig::File { path, .. } = self {
            *path = crate::config::resolve(base, path);
        }
    }

    /// The route field, if configured.
    pub fn route_field(&self) -> Option<&str> {
        match self {
            SinkConfig::File { route_field, .. } | SinkConfig::Stdout { route_field } => {
                route_field.as_deref()
            }
        }
    }

    /// Opens the output.
    pub fn open(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        match self {
            SinkConfig::File { path, .. } => create(path, "sink"),
            SinkConfig::Stdout { .. } => Ok(Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            ))),
        }
    }
}

impl DeadLetterConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let DeadLetterConfig::File { path } = self {
            *path = crate::config::resolve(base, path);
        }
    }

    /// Opens the output.
    pub fn open(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        match self {
            DeadLetterConfig::File { path } => create(path, "dead_letter"),
            DeadLetterConfig::Stderr => Ok(Box::new(std::io::stderr())),
        }
    }
}

fn create(path: &Path, section: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{section}: cannot create {}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("{section}: cannot create {}: {e}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, file)))
}

/// Serialises a processed event as one NDJSON line, with its route if configured.
pub fn encode(event: &mut Event, route_field: Option<&str>, out: &mut Vec<u8>) {
    if let (Some(field), Some(route), serde_json::Value::Object(map)) =
        (route_field, event.route.take(), &mut event.body)
    {
        map.insert(field.to_owned(), serde_json::Value::String(route));
    }
    // A `Value` always serialises into a Vec.
    let _ = serde_json::to_writer(&mut *out, &event.body);
    out.push(b'\n');
}
