//! `route`: the seeds' hot/cold service routing as configuration. Maps services to route
//! targets (the sink turns a target into an index name), drops `DEBUG` outside an allow-list,
//! flags slow requests and sets alert severity. All of it is rules in config, in a small,
//! documented matching language (see README.md); the defaults reproduce the seeds.

pub mod rules;

use std::collections::BTreeMap;

use weir_sdk::{plugin, Event, Fields, Outcome, Plugin, Value};

/// The `config` table; every key is optional.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The field whose value selects a target from `routes`.
    pub route_field: String,
    /// Value of `route_field` to route target.
    pub routes: BTreeMap<String, String>,
    /// Target for events no rule or `routes` entry routes; `""` leaves them unrouted.
    pub default_route: String,
    /// Rules, in order; replaces the defaults (the seeds' rules) when given.
    pub rules: Option<Vec<rules::Rule>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            route_field: "service".into(),
            routes: [("payment-gateway", "payments"), ("user-profile", "users")]
                .into_iter()
                .map(|(s, t)| (s.to_owned(), t.to_owned()))
                .collect(),
            default_route: "general".into(),
            rules: None,
        }
    }
}

/// The plugin.
pub struct Route {
    config: Config,
    rules: Vec<rules::Rule>,
    reads: Vec<String>,
}

#[plugin]
impl Plugin for Route {
    type Config = Config;

    fn init(mut config: Config) -> Result<Self, String> {
        let rules = config.rules.take().unwrap_or_else(rules::seed_rules);
        for (i, r) in rules.iter().enumerate() {
            r.validate(i)?;
        }
        let mut reads = vec![config.route_field.clone()];
        for c in rules.iter().flat_map(|r| &r.when) {
            if !reads.contains(&c.field) {
                reads.push(c.field.clone());
            }
        }
        Ok(Route {
            config,
            rules,
            reads,
        })
    }

    fn fields(&self) -> Fields {
        Fields::new().read_all(self.reads.iter().cloned())
    }

    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
        let mut route: Option<&str> = None;
        for rule in &self.rules {
            if !rule.when.iter().all(|c| c.holds(event.get(&c.field))) {
                continue;
            }
            if rule.drop {
                return Outcome::Drop;
            }
            for (field, value) in &rule.set {
                set(event, field, value);
            }
            if let Some(tag) = &rule.tag {
                event.tag(tag);
            }
            if route.is_none() {
                route = rule.route.as_deref();
            }
        }
        let by_table = || {
            event
                .get_str(&self.config.route_field)
                .and_then(|v| self.config.routes.get(v))
                .map(String::as_str)
        };
        match route.or_else(by_table) {
            Some(target) => Outcome::route(target),
            None if self.config.default_route.is_empty() => Outcome::Keep,
            None => Outcome::route(self.config.default_route.as_str()),
        }
    }
}

fn set(event: &mut Event<'_>, field: &str, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => event.set(field, Value::Null),
        serde_json::Value::Bool(b) => event.set(field, *b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => event.set(field, i),
            None => event.set(field, n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => event.set(field, s.as_str()),
        other => event.set_json(field, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_sdk::testing::{Harness, Processed};

    fn run(event: serde_json::Value) -> Processed {
        Harness::<Route>::new(json!({})).unwrap().run(event)
    }

    #[test]
    fn services_map_to_targets_with_a_default() {
        assert_eq!(
            run(json!({"service": "payment-gateway", "level": "INFO"})).route(),
            Some("payments")
        );
        assert_eq!(
            run(json!({"service": "user-profile", "level": "INFO"})).route(),
            Some("users")
        );
        assert_eq!(
            run(json!({"service": "search-api", "level": "INFO"})).route(),
            Some("general")
        );
        assert_eq!(run(json!({"level": "INFO"})).route(), Some("general"));
    }

    #[test]
    fn debug_is_dropped_except_for_allowed_services() {
        assert!(run(json!({"service": "order-api", "level": "DEBUG"})).dropped());
        assert!(run(json!({"service": "critical-service", "level": "DEBUG"})).kept());
    }

    #[test]
    fn slow_requests_are_flagged_from_either_field() {
        assert_eq!(
            run(json!({"performance": {"duration_ms": 1247}})).event["slow_request"],
            true
        );
        assert_eq!(
            run(json!({"duration_ms": "1500.5"})).event["slow_request"],
            true
        );
        assert!(run(json!({"duration_ms": 999}))
            .event
            .get("slow_request")
            .is_none());
    }

    #[test]
    fn alert_severity_depends_on_the_exception() {
        let high = run(json!({"level": "ERROR", "exception": {"type": "ValueError"}}));
        assert_eq!(high.event["alert_severity"], "high");
        assert_eq!(
            run(json!({"level": "CRITICAL"})).event["alert_severity"],
            "medium"
        );
        assert!(run(json!({"level": "WARNING"}))
            .event
            .get("alert_severity")
            .is_none());
    }

    #[test]
    fn operators_rules_replace_the_defaults() {
        let config = json!({
            "default_route": "",
            "rules": [
                {"when": [{"field": "path", "prefix": "/admin"}], "route": "audit", "tag": "admin"},
                {"when": [{"field": "status_code", "gte": 500}], "set": {"http": {"failed": true}}}
            ]
        });
        let mut h = Harness::<Route>::new(config).unwrap();
        let out = h.run(
            json!({"path": "/admin/users", "status_code": 503, "level": "DEBUG", "service": "x"}),
        );
        assert_eq!(
            out.route(),
            Some("audit"),
            "DEBUG is no longer dropped: the defaults were replaced"
        );
        assert_eq!(out.event["tags"], json!(["admin"]));
        assert_eq!(out.event["http"], json!({"failed": true}));
        assert_eq!(
            h.run(json!({"path": "/x"})).fate,
            weir_sdk::testing::Fate::Keep
        );
    }

    #[test]
    fn the_seed_rules_parse_and_are_valid() {
        let seed = rules::seed_rules();
        assert_eq!(seed.len(), 5);
        for (i, r) in seed.iter().enumerate() {
            r.validate(i).unwrap();
        }
    }

    #[test]
    fn malformed_rules_are_named() {
        let err = Harness::<Route>::new(
            json!({"rules": [{"when": [{"field": "x", "equals": 1, "gt": 2}], "drop": true}]}),
        )
        .err()
        .unwrap();
        assert!(
            err.starts_with("config.rules[0].when[0]: needs exactly one of"),
            "{err}"
        );
        let err = Harness::<Route>::new(json!({"rules": [{"when": []}]}))
            .err()
            .unwrap();
        assert!(err.starts_with("config.rules[0]: has no action"), "{err}");
        let err = Harness::<Route>::new(
            json!({"rules": [{"when": [{"field": "x", "matches": "y"}], "drop": true}]}),
        )
        .err()
        .unwrap();
        assert!(err.contains("unknown field `matches`"), "{err}");
    }
}
