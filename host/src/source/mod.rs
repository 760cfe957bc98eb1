//! Where events come from. Sources hand raw lines to the workers, which decode them, so
//! JSON parsing is spread over every core rather than funnelled through the reader.

mod file;
pub mod kafka;
pub mod offsets;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Deserialize;

use crate::event::Origin;

pub use file::{LineBlock, LineSource};
pub use kafka::{KafkaConfig, KafkaSource};

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
    /// JSON events from Kafka topics, as a member of a consumer group; runs until stopped
    /// (SIGTERM or SIGINT), committing offsets only past events that are fully handled.
    Kafka(KafkaConfig),
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

impl Record {
    /// A record from raw input bytes: one exact-size copy, with invalid UTF-8 replaced
    /// and flagged (the worker dead-letters it, naming the problem).
    pub fn from_bytes(bytes: &[u8], origin: Origin) -> Record {
        let (text, bad_utf8) = match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_owned(), false),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
        };
        Record {
            text,
            bad_utf8,
            origin,
        }
    }
}

/// Records read together, and the receipt to hand back once all of them are handled.
pub struct Chunk {
    /// The records, in source order.
    pub records: Records,
    /// Completed by the sink when every record is written, dropped or dead-lettered.
    pub receipt: Receipt,
}

/// A chunk's records: split by the source (Kafka hands over messages), or whole lines
/// that the worker taking the chunk splits, so the reader thread stays light.
#[derive(Debug)]
pub enum Records {
    /// One record per message.
    Split(Vec<Record>),
    /// A block of input lines.
    Lines(LineBlock),
}

impl Records {
    /// The records, in source order.
    pub fn into_vec(self) -> Vec<Record> {
        match self {
            Records::Split(records) => records,
            Records::Lines(block) => {
                let mut records = Vec::new();
                block.split_into(&mut records);
                records
            }
        }
    }
}

/// What a source wants to hear once a chunk is fully handled: a Kafka source then lets
/// its commit watermark pass the chunk's offsets. A receipt dropped without being
/// completed leaves its records uncommitted, so they are read again after a restart.
#[must_use = "a receipt not completed leaves its records uncommitted"]
pub struct Receipt(Option<Box<dyn FnOnce() + Send>>);

impl Receipt {
    /// For sources with nothing to commit.
    pub fn none() -> Self {
        Receipt(None)
    }

    /// Runs `on_handled` when completed.
    pub fn new(on_handled: impl FnOnce() + Send + 'static) -> Self {
        Receipt(Some(Box::new(on_handled)))
    }

    /// Whether anything waits on this receipt (so a sink must make writes durable first).
    pub fn is_tracked(&self) -> bool {
        self.0.is_some()
    }

    /// Every record of the chunk is handled.
    pub fn complete(self) {
        if let Some(f) = self.0 {
            f();
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tracked() {
            "Receipt(tracked)"
        } else {
            "Receipt(none)"
        })
    }
}

/// A source of raw lines.
pub trait Source: Send {
    /// The next chunk of up to `max` records; `Ok(None)` once the input is exhausted or
    /// the source was asked to stop.
    fn next_chunk(&mut self, max: usize) -> anyhow::Result<Option<Chunk>>;

    /// Called once the sink has drained everything: a Kafka source commits its final
    /// watermarks here and leaves its group.
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Opens the configured source. `stop` asks a never-ending source (Kafka) to wind down.
pub fn open(config: &SourceConfig, stop: Arc<AtomicBool>) -> anyhow::Result<Box<dyn Source>> {
    Ok(match config {
        SourceConfig::Kafka(kafka) => Box::new(KafkaSource::start(kafka, stop)?),
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
