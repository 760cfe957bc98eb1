//! Drops the access-log lines of health checks, which are most of the volume of a quiet
//! service and none of its interest.
//!
//! This is the file to copy when you start a plugin: a config struct, one trait impl with
//! `#[weir_sdk::plugin]`, and native tests at the bottom.
//!
//! Pipeline config:
//! ```toml
//! [[plugins]]
//! name = "drop-healthz"
//! path = "target/wasm32-wasip2/release/drop_healthz.wasm"
//! [plugins.config]
//! paths = ["/healthz", "/readyz"]   # default: ["/healthz"]
//! field = "path"                    # default: "path"
//! keep_failures = true              # default: true; a failing probe (status >= 400) is news
//! ```

use weir_sdk::{count, plugin, Event, Fields, Outcome, Plugin};

/// The `config` table of this plugin in the pipeline file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Request paths to drop (exact match, ignoring a query string).
    pub paths: Vec<String>,
    /// The field holding the request path.
    pub field: String,
    /// Keep probes that failed (`status_code` >= 400).
    pub keep_failures: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: vec!["/healthz".into()],
            field: "path".into(),
            keep_failures: true,
        }
    }
}

/// The plugin: its configuration, checked once.
pub struct DropHealthz {
    config: Config,
}

#[plugin]
impl Plugin for DropHealthz {
    type Config = Config;

    fn init(config: Config) -> Result<Self, String> {
        if let Some(bad) = config.paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!(
                "config.paths: {bad:?} is not a path (it must start with '/')"
            ));
        }
        Ok(DropHealthz { config })
    }

    fn fields(&self) -> Fields {
        Fields::new().read(&self.config.field).read("status_code")
    }

    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
        let Some(path) = event.get_str(&self.config.field) else {
            return Outcome::Keep;
        };
        let path = path.split('?').next().unwrap_or(path);
        if !self.config.paths.iter().any(|p| p == path) {
            return Outcome::Keep;
        }
        let failed = event.get_f64("status_code").is_some_and(|s| s >= 400.0);
        if failed && self.config.keep_failures {
            event.tag("failed_health_check");
            return Outcome::Keep;
        }
        count("health_checks_dropped", 1);
        Outcome::Drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_sdk::testing::{take_counts, Harness};

    fn harness(config: serde_json::Value) -> Harness<DropHealthz> {
        Harness::new(config).expect("valid config")
    }

    #[test]
    fn drops_successful_health_checks_and_counts_them() {
        let mut h = harness(json!({}));
        take_counts();
        assert!(h
            .run(json!({"path": "/healthz", "status_code": 200}))
            .dropped());
        assert!(h.run(json!({"path": "/healthz?verbose=1"})).dropped());
        assert_eq!(take_counts().get("health_checks_dropped"), Some(&2));
    }

    #[test]
    fn keeps_everything_else_untouched() {
        let mut h = harness(json!({}));
        for event in [
            json!({"path": "/users/1"}),
            json!({"message": "no path"}),
            json!({"path": "/healthzz"}),
        ] {
            let out = h.run(event.clone());
            assert!(out.kept());
            assert_eq!(out.event, event);
        }
    }

    #[test]
    fn a_failing_probe_is_kept_and_tagged() {
        let mut h = harness(json!({}));
        let out = h.run(json!({"path": "/healthz", "status_code": 503}));
        assert!(out.kept());
        assert_eq!(out.event["tags"], json!(["failed_health_check"]));
        let mut drop_all = harness(json!({"keep_failures": false}));
        assert!(drop_all
            .run(json!({"path": "/healthz", "status_code": 503}))
            .dropped());
    }

    #[test]
    fn field_and_paths_are_configurable() {
        let mut h = harness(json!({"field": "request.path", "paths": ["/ping"]}));
        assert!(h.run(json!({"request": {"path": "/ping"}})).dropped());
        assert!(h.run(json!({"request": {"path": "/healthz"}})).kept());
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = Harness::<DropHealthz>::new(json!({"pathz": []}))
            .err()
            .unwrap();
        assert!(err.contains("unknown field `pathz`"), "{err}");
        let err = Harness::<DropHealthz>::new(json!({"paths": ["healthz"]}))
            .err()
            .unwrap();
        assert!(err.starts_with("config.paths"), "{err}");
        let err = Harness::<DropHealthz>::new(json!({"paths": "/healthz"}))
            .err()
            .unwrap();
        assert!(err.starts_with("config.paths: invalid type"), "{err}");
    }
}
