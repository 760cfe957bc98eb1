//! The Elasticsearch sink: `_bulk` requests with `create` actions and replay-stable ids,
//! batched by count, bytes and time, several in flight, gzip-compressed, retried with
//! backoff, per-item errors dead-lettered. Workers build the documents (see
//! [`BulkEncoding`]); this side only batches, sends and settles them.

pub mod bulk;
mod client;
mod dispatch;
pub mod index;
pub mod retry;
mod setup;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::pipeline::{RunStats, WorkerOutput};
use crate::sink::dead_letter::DeadLetterOut;
use crate::sink::Sink;
use crate::source::Receipt;

pub use bulk::{BulkDoc, BulkEncoding};
pub use client::EsClient;
pub use index::IndexTemplate;
pub use retry::Backoff;

/// The `[sink]` table with `type = "elasticsearch"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Node URLs, used round-robin, e.g. `["http://127.0.0.1:9200"]`.
    pub urls: Vec<String>,
    /// Index name template: `{field}` (dotted paths allowed), `{route}` (the chain's route
    /// target), and `%Y %m %d %H %j %G %V %y` from the event's `@timestamp`.
    ///
    /// Default: `logs-{service}-{route}-%Y.%m.%d`.
    #[serde(default = "default_index")]
    pub index: String,
    /// Replaces a missing field or route in the index name.
    ///
    /// Default: `unknown`.
    #[serde(default = "default_fallback")]
    pub index_fallback: String,
    /// Documents per bulk request.
    ///
    /// Default: 1000.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// Uncompressed bytes per bulk request.
    ///
    /// Default: 5242880 (5 MiB).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// A partly filled request is sent this long after its first document, in ms.
    ///
    /// Default: 1000.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// Bulk requests in flight at once (including ones waiting to be retried).
    ///
    /// Default: 2.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// gzip level for request bodies, 1 (fastest) to 9; 0 sends them uncompressed.
    ///
    /// Default: 1.
    #[serde(default = "default_gzip")]
    pub gzip_level: u32,
    /// Timeout of one request, in ms.
    ///
    /// Default: 60000.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// On stop, how long to keep retrying requests still in flight, in ms. Events not
    /// written by then are not committed and are read again on the next start.
    ///
    /// Default: 30000.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout_ms: u64,
    /// How connection errors, 429 and 5xx are retried.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Credentials: `username` and `password`, or `api_key` (the base64 `id:key` that
    /// Elasticsearch's create-API-key call returns as `encoded`).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// A PEM file of CA certificates to trust for `https` URLs (relative to the config).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Index template and ILM policy to install at start-up when absent or different.
    #[serde(default)]
    pub setup: SetupConfig,
}

fn default_index() -> String {
    "logs-{service}-{route}-%Y.%m.%d".into()
}
fn default_fallback() -> String {
    "unknown".into()
}
fn default_batch_events() -> usize {
    1000
}
fn default_batch_bytes() -> usize {
    5 << 20
}
fn default_flush_ms() -> u64 {
    1000
}
fn default_concurrency() -> usize {
    2
}
fn default_gzip() -> u32 {
    1
}
fn default_timeout() -> u64 {
    60_000
}
fn default_shutdown() -> u64 {
    30_000
}

/// `[sink.retry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First delay, in ms. Default: 100.
    pub initial_ms: u64,
    /// Longest delay, in ms. Default: 30000.
    pub max_ms: u64,
    /// Give up after this many retries and dead-letter the documents. Default: never
    /// (Kafka holds the events while Elasticsearch recovers).
    pub max_retries: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_ms: 100,
            max_ms: 30_000,
            max_retries: None,
        }
    }
}

impl RetryConfig {
    /// The backoff schedule.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.initial_ms),
            max: Duration::from_millis(self.max_ms),
            multiplier: 2.0,
            max_retries: self.max_retries,
        }
    }
}

/// `[sink.auth]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// An encoded API key.
    pub api_key: Option<String>,
}

/// `[sink.setup]`: resources installed at start-up.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupConfig {
    /// An index template (`PUT _index_template/<name>` body).
    pub index_template: Option<NamedFile>,
    /// An ILM policy (`PUT _ilm/policy/<name>` body).
    pub ilm_policy: Option<NamedFile>,
}

/// A named resource whose body is a JSON file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedFile {
    /// The resource's name in Elasticsearch.
    pub name: String,
    /// The JSON file (relative to the config file).
    pub file: PathBuf,
}

impl ElasticsearchConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let Some(ca) = self.tls_ca_file.as_mut() {
            *ca = crate::config::resolve(base, ca);
        }
        for named in [&mut self.setup.index_template, &mut self.setup.ilm_policy]
            .into_iter()
            .flatten()
        {
            named.file = crate::config::resolve(base, &named.file);
        }
    }

    /// Checks what can be checked without a cluster; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("sink.urls: name at least one Elasticsearch URL".into());
        }
        for url in &self.urls {
            elasticsearch::http::Url::parse(url)
                .map_err(|e| format!("sink.urls: {url:?} is not a URL: {e}"))?;
        }
        IndexTemplate::parse(&self.index).map_err(|e| format!("sink.index: {e}"))?;
        index::validate(&self.index_fallback.to_lowercase())
            .map_err(|e| format!("sink.index_fallback: {e}"))?;
        for (key, value) in [
            ("batch_events", self.batch_events),
            ("batch_bytes", self.batch_bytes),
            ("concurrency", self.concurrency),
        ] {
            if value == 0 {
                return Err(format!("sink.{key}: must be at least 1"));
            }
        }
        if self.gzip_level > 9 {
            return Err("sink.gzip_level: must be 0 to 9".into());
        }
        if let Some(auth) = &self.auth {
            match (&auth.username, &auth.password, &auth.api_key) {
                (Some(_), Some(_), None) | (None, None, Some(_)) => {}
                _ => {
                    return Err(
                        "sink.auth: give either `username` and `password`, or `api_key`".into(),
                    )
                }
            }
        }
        Ok(())
    }

    /// How workers encode documents for this sink.
    pub fn encoding(&self) -> Result<BulkEncoding, String> {
        Ok(BulkEncoding {
            template: IndexTemplate::parse(&self.index).map_err(|e| format!("sink.index: {e}"))?,
            fallback: self.index_fallback.clone(),
        })
    }
}

/// A job for the dispatcher: one chunk's documents and dead letters, and its receipt.
pub(crate) struct Job {
    docs: Vec<BulkDoc>,
    dead: Vec<u8>,
    receipt: Receipt,
}

/// The running sink: a tokio runtime on its own threads sends the bulk requests while
/// the pipeline's threads keep encoding.
pub struct ElasticsearchSink {
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ElasticsearchSink {
    /// Connects, installs the configured template and policy, and starts dispatching.
    pub fn start(
        config: &ElasticsearchConfig,
        dead: Arc<DeadLetterOut>,
        stats: Arc<RunStats>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-es")
            .enable_all()
            .build()?;
        let client = Arc::new(EsClient::new(config)?);
        runtime.block_on(setup::install(&client, &config.setup))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let dispatcher = dispatch::Dispatcher::new(config, client, dead, stats);
        let shutdown = Duration::from_millis(config.shutdown_timeout_ms);
        let thread = std::thread::Builder::new()
            .name("weir-es-sink".into())
            .spawn(move || {
                runtime.block_on(dispatcher.run(rx, shutdown));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(ElasticsearchSink {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Sink for ElasticsearchSink {
    fn write(&mut self, out: WorkerOutput, receipt: Receipt) -> anyhow::Result<()> {
        let job = Job {
            docs: out.docs,
            dead: out.dead,
            receipt,
        };
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| anyhow::anyhow!("sink: the Elasticsearch dispatcher stopped"))
    }

    fn close(mut self: Box<Self>) -> anyhow::Result<()> {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("sink: the Elasticsearch dispatcher panicked"))?;
        }
        Ok(())
    }
}
