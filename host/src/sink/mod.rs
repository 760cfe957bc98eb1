//! Where events go: a file or standard output as NDJSON, or Elasticsearch; and the
//! dead-letter output. A sink completes a chunk's receipt only once the chunk's events and
//! dead letters are durably written, which is what lets a Kafka source commit past them.

pub mod dead_letter;
pub mod elasticsearch;
mod lines;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::event::Event;
use crate::pipeline::{RunStats, WorkerOutput};
use crate::source::{Receipt, SourceConfig};

pub use dead_letter::{DeadLetterConfig, DeadLetterOut};
pub use elasticsearch::{ElasticsearchConfig, ElasticsearchSink};
pub use lines::LineSink;

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
    /// Elasticsearch `_bulk` (boxed: the config is large next to the others).
    Elasticsearch(Box<ElasticsearchConfig>),
}

/// How workers serialise the events that survive the chain, for the configured sink.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// NDJSON lines, with the route written into `route_field` when set.
    Lines {
        /// Where the route target goes.
        route_field: Option<String>,
    },
    /// `_bulk` create actions.
    Bulk(Arc<elasticsearch::BulkEncoding>),
}

/// A running sink.
pub trait Sink: Send {
    /// Takes one chunk's output; completes `receipt` once all of it is durably handled.
    fn write(&mut self, out: WorkerOutput, receipt: Receipt) -> anyhow::Result<()>;

    /// Flushes and waits for everything in flight.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

impl SinkConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        match self {
            SinkConfig::File { path, .. } => *path = crate::config::resolve(base, path),
            SinkConfig::Elasticsearch(es) => es.resolve(base),
            SinkConfig::Stdout { .. } => {}
        }
    }

    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SinkConfig::Elasticsearch(es) => es.validate(),
            _ => Ok(()),
        }
    }

    /// How workers encode events for this sink.
    pub fn encoding(&self) -> anyhow::Result<Encoding> {
        Ok(match self {
            SinkConfig::File { route_field, .. } | SinkConfig::Stdout { route_field } => {
                Encoding::Lines {
                    route_field: route_field.clone(),
                }
            }
            SinkConfig::Elasticsearch(es) => {
                Encoding::Bulk(Arc::new(es.encoding().map_err(|e| anyhow::anyhow!(e))?))
            }
        })
    }

    /// Starts the sink, with the dead-letter output it writes to.
    pub fn open(
        &self,
        dead_letter: &DeadLetterConfig,
        source: &SourceConfig,
        stats: Arc<RunStats>,
    ) -> anyhow::Result<Box<dyn Sink>> {
        let dead = Arc::new(DeadLetterOut::open(dead_letter, source)?);
        Ok(match self {
            SinkConfig::File { path, .. } => Box::new(LineSink::new(
                dead_letter::create(path, "sink", false)?,
                dead,
            )?),
            SinkConfig::Stdout { .. } => Box::new(LineSink::new(
                Box::new(std::io::BufWriter::with_capacity(
                    1 << 16,
                    std::io::stdout(),
                )),
                dead,
            )?),
            SinkConfig::Elasticsearch(es) => Box::new(ElasticsearchSink::start(es, dead, stats)?),
        })
    }
}

/// Serialises a processed event as one NDJSON line, with its route if configured.
pub fn encode(event: &mut Event, route_field: Option<&str>, out: &mut Vec<u8>) {
    if let (Some(field), Some(route)) = (route_field, event.route.take()) {
        event.doc.set(field, serde_json::Value::String(route));
    }
    event.doc.write_json(out);
    out.push(b'\n');
}
