//! `normalize`: the first half of the seeds' Logstash filter block. Canonical `level`,
//! `@timestamp` from whatever the service wrote, `path_pattern` from `path`, and numeric
//! fields coerced so Elasticsearch never sees `"45.2"` where its mapping says `float`.
//! See README.md for the configuration reference.

pub mod level;
pub mod path;
pub mod timestamp;

use std::collections::BTreeMap;

use weir_sdk::{plugin, Event, Fields, Outcome, Plugin, Value};

/// Tag added when `level` is not a known level (the value is kept, not guessed).
pub const TAG_UNKNOWN_LEVEL: &str = "_unknown_level";
/// Tag added when the timestamp cannot be parsed (the original is kept).
pub const TAG_TIMESTAMP: &str = "_timestamp_parse_failure";
/// Tag added when a numeric field held something else (moved to a side field).
pub const TAG_NUMERIC: &str = "_numeric_coercion_failure";

/// The `config` table; every key is optional.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Field holding the level.
    pub level_field: String,
    /// Extra aliases, lower-case alias to canonical level, added over the built-ins.
    pub level_aliases: BTreeMap<String, String>,
    /// Field holding the service's timestamp.
    pub timestamp_field: String,
    /// Field that receives the RFC 3339 UTC timestamp.
    pub timestamp_target: String,
    /// Field holding the request path.
    pub path_field: String,
    /// Field that receives the path pattern.
    pub path_pattern_field: String,
    /// Extra segment rules: `"hex"`, `"email"`, or `{ pattern, replacement }`.
    pub path_patterns: Vec<path::RuleConfig>,
    /// Fields that must be numbers.
    pub numeric_fields: Vec<String>,
    /// Suffix of the side field a non-numeric value is moved to.
    pub invalid_suffix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            level_field: "level".into(),
            level_aliases: BTreeMap::new(),
            timestamp_field: "timestamp".into(),
            timestamp_target: "@timestamp".into(),
            path_field: "path".into(),
            path_pattern_field: "path_pattern".into(),
            path_patterns: Vec::new(),
            numeric_fields: vec![
                "duration_ms".into(),
                "status_code".into(),
                "performance.duration_ms".into(),
            ],
            invalid_suffix: "_invalid".into(),
        }
    }
}

/// The plugin.
pub struct Normalize {
    config: Config,
    /// `(field, side field)` for every numeric field.
    numeric: Vec<(String, String)>,
    aliases: BTreeMap<String, String>,
    rules: Vec<path::Rule>,
}

#[plugin]
impl Plugin for Normalize {
    type Config = Config;

    fn init(config: Config) -> Result<Self, String> {
        let mut aliases = level::default_aliases();
        for (alias, target) in &config.level_aliases {
            let Some(canon) = level::CANONICAL
                .iter()
                .find(|c| c.eq_ignore_ascii_case(target))
            else {
                return Err(format!(
                    "config.level_aliases.{alias}: {target:?} is not a level (expected one of {:?})",
                    level::CANONICAL
                ));
            };
            aliases.insert(alias.to_ascii_lowercase(), (*canon).to_owned());
        }
        let rules = config
            .path_patterns
            .iter()
            .enumerate()
            .map(|(i, r)| path::Rule::compile(i, r))
            .collect::<Result<_, _>>()?;
        let numeric = config
            .numeric_fields
            .iter()
            .map(|f| (f.clone(), format!("{f}{}", config.invalid_suffix)))
            .collect();
        Ok(Normalize {
            config,
            numeric,
            aliases,
            rules,
        })
    }

    fn fields(&self) -> Fields {
        let c = &self.config;
        Fields::new()
            .read(&c.level_field)
            .read(&c.timestamp_field)
            .read(&c.path_field)
            .read_all(c.numeric_fields.iter().cloned())
    }

    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
        self.level(event);
        self.timestamp(event);
        if let Some(p) = event.get_str(&self.config.path_field) {
            let pattern = path::pattern(p, &self.rules);
            event.set(&self.config.path_pattern_field, pattern.as_str());
        }
        for (field, side) in &self.numeric {
            coerce_numeric(event, field, side);
        }
        Outcome::Keep
    }
}

impl Normalize {
    fn level(&self, event: &mut Event<'_>) {
        let field = &self.config.level_field;
        let canonical = match event.get(field) {
            None | Some(Value::Null) => return,
            Some(Value::Str(s)) if level::CANONICAL.contains(&s) => return,
            Some(Value::Str(s)) => level::canonical(s, &self.aliases),
            Some(v) => v.as_f64().and_then(level::from_number).map(str::to_owned),
        };
        match canonical {
            Some(c) => event.set(field, c.as_str()),
            None => event.tag(TAG_UNKNOWN_LEVEL),
        }
    }

    fn timestamp(&self, event: &mut Event<'_>) {
        let parsed = match event.get(&self.config.timestamp_field) {
            None | Some(Value::Null) => return,
            Some(Value::Str(s)) => timestamp::parse_text(s),
            Some(v) => v.as_f64().and_then(timestamp::parse_epoch),
        };
        match parsed {
            Some(dt) => event.set(
                &self.config.timestamp_target,
                timestamp::format(dt).as_str(),
            ),
            None => event.tag(TAG_TIMESTAMP),
        }
    }
}

/// Makes `field` a number: numeric text is converted; anything else moves to the side
/// field `side` and the event is tagged.
fn coerce_numeric(event: &mut Event<'_>, field: &str, side: &str) {
    match event.get(field) {
        None | Some(Value::Null | Value::Int(_) | Value::Uint(_) | Value::Float(_)) => {}
        Some(Value::Str(s)) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                event.set(field, i);
            } else if let Some(f) = t.parse::<f64>().ok().filter(|f| f.is_finite()) {
                event.set(field, f);
            } else {
                let original = s.to_owned();
                event.set(side, original.as_str());
                event.remove(field);
                event.tag(TAG_NUMERIC);
            }
        }
        Some(Value::Bool(b)) => {
            event.set(side, b);
            event.remove(field);
            event.tag(TAG_NUMERIC);
        }
        Some(Value::Json(text)) => {
            let original = text.to_owned();
            event.set_json(side, &original);
            event.remove(field);
            event.tag(TAG_NUMERIC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_sdk::testing::Harness;

    fn run(event: serde_json::Value) -> serde_json::Value {
        let mut h = Harness::<Normalize>::new(json!({})).unwrap();
        let out = h.run(event);
        assert!(out.kept());
        out.event
    }

    #[test]
    fn the_seed_event_is_normalised() {
        let out = run(json!({
            "timestamp": "2025-01-15T10:30:45.123Z", "level": "warn", "path": "/users/12345/orders",
            "status_code": "200", "duration_ms": "45.2", "performance": {"duration_ms": "1247"}
        }));
        assert_eq!(out["level"], "WARNING");
        assert_eq!(out["@timestamp"], "2025-01-15T10:30:45.123Z");
        assert_eq!(out["path_pattern"], "/users/:id/orders");
        assert_eq!(out["status_code"], 200);
        assert_eq!(out["duration_ms"], 45.2);
        assert_eq!(out["performance"]["duration_ms"], 1247);
        assert!(out.get("tags").is_none(), "{out}");
    }

    #[test]
    fn unknown_levels_and_bad_timestamps_are_kept_and_tagged() {
        let out = run(json!({"level": "verbose", "timestamp": "yesterday"}));
        assert_eq!(out["level"], "verbose");
        assert_eq!(out["timestamp"], "yesterday");
        assert!(out.get("@timestamp").is_none());
        assert_eq!(out["tags"], json!([TAG_UNKNOWN_LEVEL, TAG_TIMESTAMP]));
    }

    #[test]
    fn numeric_levels_and_epoch_timestamps() {
        let out = run(json!({"level": 40, "timestamp": 1736937045123u64}));
        assert_eq!(out["level"], "ERROR");
        assert_eq!(out["@timestamp"], "2025-01-15T10:30:45.123Z");
    }

    #[test]
    fn non_numeric_values_move_to_a_tagged_side_field() {
        let out = run(json!({"duration_ms": "slow", "performance": {"duration_ms": {"p50": 3}}}));
        assert!(out.get("duration_ms").is_none());
        assert_eq!(out["duration_ms_invalid"], "slow");
        assert_eq!(
            out["performance"],
            json!({"duration_ms_invalid": {"p50": 3}})
        );
        assert_eq!(out["tags"], json!([TAG_NUMERIC]));
    }

    #[test]
    fn multi_line_tracebacks_stay_one_intact_string() {
        let tb = "Traceback (most recent call last):\n  File \"/app/x.py\", line 4, in f\nValueError: bad";
        let out = run(json!({"level": "ERROR", "exception": {"traceback": tb}, "stack_trace": tb}));
        assert_eq!(out["exception"]["traceback"], tb);
        assert_eq!(out["stack_trace"], tb);
    }

    #[test]
    fn field_names_and_tables_are_configurable() {
        let config = json!({
            "level_field": "severity", "level_aliases": {"notice": "info"},
            "timestamp_field": "ts", "timestamp_target": "ts_utc",
            "path_field": "request.path", "path_pattern_field": "request.route",
            "path_patterns": ["email"], "numeric_fields": ["latency"]
        });
        let mut h = Harness::<Normalize>::new(config).unwrap();
        let out = h.run(json!({"severity": "Notice", "ts": "2025-01-15 10:30:45", "request": {"path": "/u/a@b.c"}, "latency": "7"})).event;
        assert_eq!(out["severity"], "INFO");
        assert_eq!(out["ts_utc"], "2025-01-15T10:30:45.000Z");
        assert_eq!(out["request"]["route"], "/u/:email");
        assert_eq!(out["latency"], 7);
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = Harness::<Normalize>::new(json!({"level_aliases": {"x": "LOUD"}}))
            .err()
            .unwrap();
        assert!(
            err.starts_with("config.level_aliases.x: \"LOUD\" is not a level"),
            "{err}"
        );
        let err = Harness::<Normalize>::new(
            json!({"path_patterns": [{"pattern": "[", "replacement": "x"}]}),
        )
        .err()
        .unwrap();
        assert!(
            err.starts_with("config.path_patterns[0].pattern: invalid regex"),
            "{err}"
        );
        let err = Harness::<Normalize>::new(json!({"numeric": []}))
            .err()
            .unwrap();
        assert!(err.contains("unknown field `numeric`"), "{err}");
    }
}
