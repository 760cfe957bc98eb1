//! The pipeline file: TOML with an ordered `[[plugins]]` list, a `[source]`, a `[sink]`
//! and an optional `[dead_letter]`. Unknown keys and wrong types are errors naming the
//! file and line; relative paths are resolved against the file's directory.

mod env;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Grants, Limits, Policy};
use crate::sink::{DeadLetterConfig, SinkConfig};
use crate::source::SourceConfig;

pub use env::{substitute, MissingVar};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where events come from.
    pub source: SourceConfig,
    /// Where processed events go.
    pub sink: SinkConfig,
    /// Where events that cannot be processed go, with their reason.
    ///
    /// Default: standard error, one JSON object per line.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Batching and parallelism.
    #[serde(default)]
    pub pipeline: RunConfig,
    /// Where compiled plugins are cached.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The admin HTTP endpoint: health, readiness, status, metrics, reload.
    ///
    /// Default: off.
    #[serde(default)]
    pub admin: Option<crate::admin::AdminConfig>,
    /// The filter chain, in the order events pass through it.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
}

/// Batching and parallelism.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Events per batch handed to the chain (one plugin call per batch).
    ///
    /// Default: 256.
    pub batch_size: usize,
    /// Chain workers, each with its own plugin instances.
    ///
    /// Default: the number of available cores.
    pub workers: Option<usize>,
    /// Largest event accepted, in bytes; larger ones are dead-lettered.
    ///
    /// Default: 1048576 (1 MiB).
    pub max_event_bytes: usize,
    /// Deepest nesting of objects and arrays accepted in an event (the event itself is
    /// level 1); deeper events are dead-lettered at decode, and no plugin edit may nest
    /// deeper. At most 1024.
    ///
    /// Default: 128 (serde_json's own limit).
    pub max_depth: usize,
    /// Largest event written out, in bytes, after the chain's edits; larger ones are
    /// dead-lettered (a plugin could otherwise emit events of any size).
    ///
    /// Default: twice `max_event_bytes`.
    pub max_output_bytes: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            batch_size: 256,
            workers: None,
            max_event_bytes: 1 << 20,
            max_depth: weir_wire::limits::DEFAULT_MAX_DEPTH,
            max_output_bytes: None,
        }
    }
}

impl RunConfig {
    /// The bounds every event is held to, as the workers apply them.
    pub fn event_limits(&self) -> crate::event::EventLimits {
        crate::event::EventLimits {
            max_bytes: self.max_event_bytes,
            max_depth: self.max_depth,
            max_output_bytes: self
                .max_output_bytes
                .unwrap_or(self.max_event_bytes.saturating_mul(2)),
        }
    }

    /// Rejects values no pipeline can run with; the message starts with the key.
    fn validate(&self) -> Result<(), String> {
        let ceiling = weir_wire::limits::MAX_DEPTH_CEILING;
        if self.batch_size == 0 {
            return Err("pipeline.batch_size: must be at least 1".into());
        }
        if self.workers == Some(0) {
            return Err("pipeline.workers: must be at least 1".into());
        }
        if !(1..=ceiling).contains(&self.max_depth) {
            return Err(format!("pipeline.max_depth: must be from 1 to {ceiling}"));
        }
        if self.max_event_bytes == 0 || self.max_output_bytes == Some(0) {
            return Err("pipeline.max_event_bytes / max_output_bytes: must be at least 1".into());
        }
        Ok(())
    }
}

/// Compiled-plugin cache.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Directory for compiled plugins, keyed by content hash, so a restart does not recompile.
    ///
    /// Default: `$XDG_CACHE_HOME/weir` or `~/.cache/weir`; set to `""` to disable.
    pub cache_dir: Option<PathBuf>,
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Name used in logs, metrics and dead-letter entries; unique in the chain.
    pub name: String,
    /// The plugin's `.wasm` component.
    pub path: toml::Spanned<PathBuf>,
    /// What happens to a batch when the plugin traps, times out or runs out of memory:
    /// `fail-open` (events continue unchanged) or `fail-closed` (events are dead-lettered).
    ///
    /// Default: `fail-closed`.
    #[serde(default)]
    pub on_error: Policy,
    /// Memory cap and deadlines.
    #[serde(default)]
    pub limits: Limits,
    /// Capabilities beyond the default sandbox (none).
    #[serde(default)]
    pub grants: Grants,
    /// Passed to the plugin's `init`, which may reject it.
    #[serde(default)]
    pub config: toml::Table,
}

/// A plugin entry with its place in the file, for error messages.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The entry as written (paths resolved).
    pub config: PluginConfig,
    /// 0-based position in the chain.
    pub index: usize,
    /// `file:line` of the entry's `path` key.
    pub location: String,
}

impl PluginSpec {
    /// The resolved `.wasm` path.
    pub fn wasm_path(&self) -> &Path {
        self.config.path.get_ref()
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The `config` table as the JSON text `init` receives.
    pub fn init_json(&self) -> String {
        serde_json::to_string(&self.config.config).unwrap_or_else(|_| "{}".into())
    }
}

/// A loaded pipeline file.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Its contents.
    pub pipeline: PipelineConfig,
    /// The chain, in order, with locations.
    pub plugins: Vec<PluginSpec>,
}

/// Why a pipeline file was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `${VAR}` had no value.
    #[error("{file}: {source}")]
    Env {
        /// The file.
        file: PathBuf,
        /// Which variable, where.
        source: MissingVar,
    },
    /// Bad TOML, an unknown key or a wrong type (the message names line and key).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// toml's message, with line, column and the offending snippet.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{location}: {message}")]
    Invalid {
        /// `file:line` or `file` where the problem is.
        location: String,
        /// What is wrong.
        message: String,
    },
}

impl LoadedConfig {
    /// Reads, substitutes, parses and validates a pipeline file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.into(),
            source,
        })?;
        Self::from_text(file, &text, |name| std::env::var(name).ok())
    }

    /// As [`load`](Self::load), from text already read, with an explicit environment.
    pub fn from_text(
        file: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = substitute(text, env).map_err(|source| ConfigError::Env {
            file: file.into(),
            source,
        })?;
        let mut pipeline: PipelineConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                file: file.into(),
                message: with_key_line(&text, e.to_string().trim_end()),
            })?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        pipeline.source.resolve(&base);
        pipeline.sink.resolve(&base);
        pipeline.dead_letter.resolve(&base);
        if let Some(dir) = pipeline.engine.cache_dir.as_mut() {
            *dir = resolve(&base, dir);
        }
        let invalid = |line: Option<usize>, message: String| ConfigError::Invalid {
            location: match line {
                Some(l) => format!("{}:{l}", file.display()),
                None => file.display().to_string(),
            },
            message,
        };
        pipeline
            .pipeline
            .validate()
            .map_err(|m| invalid(line_of_key(&text, &m), m))?;
        if let Some(admin) = &pipeline.admin {
            admin
                .validate()
                .map_err(|m| invalid(None, format!("admin.{m}")))?;
        }
        // Section checks name their key (`sink.auth: ...`); the line is where it is set.
        let keyed = |m: String| invalid(line_of_key(&text, &m), m);
        if let SourceConfig::Kafka(kafka) = &pipeline.source {
            kafka.validate().map_err(keyed)?;
        }
        pipeline.sink.validate().map_err(keyed)?;
        pipeline
            .dead_letter
            .validate(&pipeline.source)
            .map_err(keyed)?;
        let mut plugins: Vec<PluginSpec> = Vec::new();
        for (index, mut config) in pipeline.plugins.clone().into_iter().enumerate() {
            let line = line_of(&text, config.path.span().start);
            let name = config.name.trim();
            if name.is_empty() {
                return Err(invalid(
                    Some(line),
                    format!("plugins[{index}].name: must not be empty"),
                ));
            }
            if let Some(other) = plugins.iter().find(|p| p.name() == name) {
                return Err(invalid(
                    Some(line),
                    format!(
                        "plugins[{index}].name: `{name}` is already the name of plugins[{}]",
                        other.index
                    ),
                ));
            }
            let span = config.path.span();
            config.path = toml::Spanned::new(span, resolve(&base, config.path.get_ref()));
            config
                .limits
                .validate()
                .map_err(|m| invalid(Some(line), format!("plugins[{index}].limits.{m}")))?;
            for (guest, host) in config.grants.dirs.iter_mut() {
                if !guest.starts_with('/') {
                    return Err(invalid(
                        Some(line),
                        format!(
                            "plugins[{index}].grants.dirs: guest path {guest:?} must be absolute"
                        ),
                    ));
                }
                *host = resolve(&base, host);
            }
            plugins.push(PluginSpec {
                config,
                index,
                location: format!("{}:{line}", file.display()),
            });
        }
        Ok(LoadedConfig {
            file: file.into(),
            pipeline,
            plugins,
        })
    }
}

/// Resolves `path` against the config file's directory unless it is absolute.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || path.as_os_str().is_empty() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Tagged sections (`[source]`, `[sink]`, `[dead_letter]`) are parsed as a whole, so toml
/// reports an unknown key there at the table's header: add the key's own line.
fn with_key_line(text: &str, message: &str) -> String {
    let key = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    let reported = message
        .split("at line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok());
    let (Some(key), Some(reported)) = (key, reported) else {
        return message.to_owned();
    };
    let found = text
        .lines()
        .enumerate()
        .skip(reported - 1)
        .find(|(_, line)| assigned_key(line) == Some(key));
    match found {
        Some((n, _)) if n + 1 != reported => format!("{message}\n`{key}` is set at line {}", n + 1),
        _ => message.to_owned(),
    }
}

/// The line setting the key an error message starts with (`source.options.x.y: ...`):
/// the first line whose key is the path's last segment, bare or quoted, or whose table
/// header is the path.
fn line_of_key(text: &str, message: &str) -> Option<usize> {
    let path = message.split(':').next()?.trim();
    let (table, _) = path.split_once('.')?;
    // Option names contain dots (`enable.auto.commit`): any tail of the path may be the
    // key as written.
    let segments: Vec<&str> = path.split('.').collect();
    let mut in_table = false;
    let candidates: Vec<String> = (1..segments.len())
        .map(|i| segments[i..].join("."))
        .collect();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_matches(['[', ']']).trim();
            in_table = header == table || header.starts_with(&format!("{table}."));
            if format!("[{path}]") == trimmed {
                return Some(n + 1);
            }
            continue;
        }
        if !in_table {
            continue;
        }
        if assigned_key(trimmed).is_some_and(|key| candidates.iter().any(|c| c == key)) {
            return Some(n + 1);
        }
    }
    None
}

/// The key of a `key = value` line, bare or quoted.
fn assigned_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    Some(key.trim().trim_matches('"'))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[source]
type = "file"
path = "logs/in.ndjson"

[sink]
type = "stdout"

[[plugins]]
name = "first"
path = "plugins/a.wasm"
on_error = "fail-open"
[plugins.limits]
memory_mib = 32
[plugins.config]
paths = ["/healthz"]

[[plugins]]
name = "second"
path = "/abs/b.wasm"
"#;

    fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::from_text(Path::new("conf/pipe.toml"), text, |_| None)
    }

    #[test]
    fn parses_the_chain_in_order_and_resolves_paths() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.plugins.len(), 2);
        assert_eq!(c.plugins[0].name(), "first");
        assert_eq!(c.plugins[0].wasm_path(), Path::new("conf/plugins/a.wasm"));
        assert_eq!(c.plugins[1].wasm_path(), Path::new("/abs/b.wasm"));
        assert_eq!(c.plugins[0].location, "conf/pipe.toml:11");
        assert_eq!(c.plugins[0].config.on_error, Policy::FailOpen);
        assert_eq!(c.plugins[1].config.on_error, Policy::FailClosed);
        assert_eq!(c.plugins[0].init_json(), r#"{"paths":["/healthz"]}"#);
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("memory_mib = 32", "memory_mb = 32");
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("conf/pipe.toml: TOML parse error at line 14"),
            "{err}"
        );
        assert!(err.contains("unknown field `memory_mb`"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_line() {
        let err = load(&GOOD.replace("memory_mib = 32", "memory_mib = \"lots\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 14"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn duplicate_plugin_names_are_refused() {
        let err = load(&GOOD.replace("name = \"second\"", "name = \"first\""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "conf/pipe.toml:20: plugins[1].name: `first` is already the name of plugins[0]"
        );
    }

    const KAFKA_TO_ES: &str = r#"
[source]
type = "kafka"
brokers = "k:9092"
topics = ["python-logs"]
[source.options]
"session.timeout.ms" = 6000
"enable.auto.commit" = "true"

[sink]
type = "elasticsearch"
urls = ["http://es:9200"]
[sink.auth]
username = "elastic"
"#;

    #[test]
    fn kafka_and_elasticsearch_errors_name_the_key_and_its_line() {
        let err = load(KAFKA_TO_ES).unwrap_err().to_string();
        assert_eq!(
            err,
            "conf/pipe.toml:8: source.options.enable.auto.commit: Weir commits offsets itself; this must stay false"
        );
        let err = load(&KAFKA_TO_ES.replace("\"enable.auto.commit\" = \"true\"", ""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "conf/pipe.toml:13: sink.auth: give either `username` and `password`, or `api_key`"
        );
        let ok = KAFKA_TO_ES
            .replace("\"enable.auto.commit\" = \"true\"", "")
            .replace("username = \"elastic\"", "api_key = \"aWQ6a2V5\"");
        let err = load(&ok.replace("urls = [\"http://es:9200\"]", "urls = [\"es 9200\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("conf/pipe.toml:12: sink.urls: \"es 9200\" is not a URL"),
            "{err}"
        );
        let c = load(&ok).unwrap();
        let SourceConfig::Kafka(k) = &c.pipeline.source else {
            panic!("kafka source")
        };
        assert_eq!(k.group_id, "weir");
        let crate::sink::SinkConfig::Elasticsearch(es) = &c.pipeline.sink else {
            panic!("es sink")
        };
        assert_eq!(es.batch_events, 1000);
        assert_eq!(es.batch_bytes, 5 << 20);
        assert_eq!(es.flush_ms, 1000);
        assert_eq!(es.index, "logs-{service}-{route}-%Y.%m.%d");
        assert_eq!(es.retry.max_retries, None, "retries forever by default");
    }

    #[test]
    fn missing_env_var_is_reported_with_file_and_line() {
        let err = load(&GOOD.replace("\"/healthz\"", "\"${HEALTH_PATH}\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "conf/pipe.toml: line 16, column 11: environment variable `HEALTH_PATH`"
            ),
            "{err}"
        );
    }
}
