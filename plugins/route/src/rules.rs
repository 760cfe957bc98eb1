//! The small matching language: a rule is a list of conditions (all must hold) and the
//! actions to take when they do.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;
use weir_sdk::Value;

/// One condition on one field. Exactly one operator is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path of the field tested.
    pub field: String,
    /// The field equals this string, number or boolean.
    pub equals: Option<Json>,
    /// The field is absent or differs from this value.
    pub not_equals: Option<Json>,
    /// The field equals one of these.
    #[serde(rename = "in")]
    pub in_list: Option<Vec<Json>>,
    /// The field is absent or equals none of these.
    pub not_in: Option<Vec<Json>>,
    /// The field is a string starting with this.
    pub prefix: Option<String>,
    /// The field is a number (or numeric text) greater than this.
    pub gt: Option<f64>,
    /// ... greater than or equal to this.
    pub gte: Option<f64>,
    /// ... less than this.
    pub lt: Option<f64>,
    /// ... less than or equal to this.
    pub lte: Option<f64>,
    /// The field is present (`true`) or absent (`false`).
    pub exists: Option<bool>,
}

/// A rule: conditions and actions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Conditions; all must hold (an empty list always holds).
    #[serde(default)]
    pub when: Vec<Condition>,
    /// Route the event to this target (the first matching rule with a route wins).
    pub route: Option<String>,
    /// Drop the event.
    #[serde(default)]
    pub drop: bool,
    /// Fields to set (`{ slow_request = true }`).
    #[serde(default)]
    pub set: BTreeMap<String, Json>,
    /// A tag to add.
    pub tag: Option<String>,
}

impl Condition {
    fn operators(&self) -> usize {
        [
            self.equals.is_some(),
            self.not_equals.is_some(),
            self.in_list.is_some(),
            self.not_in.is_some(),
            self.prefix.is_some(),
            self.gt.is_some(),
            self.gte.is_some(),
            self.lt.is_some(),
            self.lte.is_some(),
            self.exists.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// Whether the condition holds for `value` (`None`: the field is absent).
    pub fn holds(&self, value: Option<Value<'_>>) -> bool {
        let number = || {
            value.and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        if let Some(want) = &self.equals {
            return value.is_some_and(|v| same(v, want));
        }
        if let Some(want) = &self.not_equals {
            return !value.is_some_and(|v| same(v, want));
        }
        if let Some(list) = &self.in_list {
            return value.is_some_and(|v| list.iter().any(|w| same(v, w)));
        }
        if let Some(list) = &self.not_in {
            return !value.is_some_and(|v| list.iter().any(|w| same(v, w)));
        }
        if let Some(prefix) = &self.prefix {
            return value
                .and_then(|v| v.as_str())
                .is_some_and(|s| s.starts_with(prefix.as_str()));
        }
        if let Some(exists) = self.exists {
            return value.is_some_and(|v| v != Value::Null) == exists;
        }
        let Some(n) = number() else { return false };
        self.gt.is_none_or(|t| n > t)
            && self.gte.is_none_or(|t| n >= t)
            && self.lt.is_none_or(|t| n < t)
            && self.lte.is_none_or(|t| n <= t)
    }
}

/// Equality between an event value and a config value: strings, numbers (numerically) and booleans.
fn same(v: Value<'_>, want: &Json) -> bool {
    match want {
        Json::String(s) => v.as_str() == Some(s.as_str()),
        Json::Number(n) => v.as_f64().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
        Json::Bool(b) => v.as_bool() == Some(*b),
        Json::Null => v == Value::Null,
        _ => false,
    }
}

impl Rule {
    /// Checks the rule is well-formed; the error names it as `config.rules[i]`.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        if self.route.is_none() && !self.drop && self.set.is_empty() && self.tag.is_none() {
            return Err(format!(
                "config.rules[{index}]: has no action (route, drop, set or tag)"
            ));
        }
        for (j, c) in self.when.iter().enumerate() {
            if c.operators() != 1 {
                return Err(format!(
                    "config.rules[{index}].when[{j}]: needs exactly one of equals, not_equals, in, not_in, prefix, gt, gte, lt, lte, exists (found {})",
                    c.operators()
                ));
            }
        }
        Ok(())
    }
}

/// The seeds' Logstash behaviour, used when the config gives no rules.
pub fn seed_rules() -> Vec<Rule> {
    let rules = serde_json::json!([
        {"when": [{"field": "level", "equals": "DEBUG"}, {"field": "service", "not_in": ["critical-service"]}], "drop": true},
        {"when": [{"field": "performance.duration_ms", "gt": 1000}], "set": {"slow_request": true}},
        {"when": [{"field": "duration_ms", "gt": 1000}], "set": {"slow_request": true}},
        {"when": [{"field": "level", "in": ["ERROR", "CRITICAL"]}, {"field": "exception", "exists": true}], "set": {"alert_severity": "high"}},
        {"when": [{"field": "level", "in": ["ERROR", "CRITICAL"]}, {"field": "exception", "exists": false}], "set": {"alert_severity": "medium"}}
    ]);
    serde_json::from_value(rules).unwrap_or_default()
}
