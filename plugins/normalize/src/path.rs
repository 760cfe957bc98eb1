//! Request paths to low-cardinality patterns: `/users/12345/orders` to `/users/:id/orders`.

use regex::Regex;
use serde::Deserialize;

/// An extra rule from config: a built-in name, or a regex matched against whole segments.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum RuleConfig {
    /// `"hex"` (hex ids of 16+ characters) or `"email"`.
    Builtin(String),
    /// A segment regex (anchored to the whole segment) and its replacement.
    Custom {
        /// The regex.
        pattern: String,
        /// What a matching segment becomes.
        replacement: String,
    },
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Hex ids: 16+ hex characters, at least one digit.
    Hex,
    /// Anything with an `@`.
    Email,
    /// A whole-segment regex.
    Custom(Regex, String),
}

impl Rule {
    /// Compiles a rule; the error names rule `index` of `path_patterns`.
    pub fn compile(index: usize, config: &RuleConfig) -> Result<Rule, String> {
        match config {
            RuleConfig::Builtin(name) => match name.as_str() {
                "hex" => Ok(Rule::Hex),
                "email" => Ok(Rule::Email),
                other => Err(format!("config.path_patterns[{index}]: unknown built-in {other:?} (expected \"hex\" or \"email\")")),
            },
            RuleConfig::Custom { pattern, replacement } => Regex::new(&format!("^(?:{pattern})$"))
                .map(|re| Rule::Custom(re, replacement.clone()))
                .map_err(|e| format!("config.path_patterns[{index}].pattern: invalid regex: {e}")),
        }
    }

    fn apply(&self, segment: &str) -> Option<&str> {
        match self {
            Rule::Hex => (segment.len() >= 16
                && segment.bytes().all(|b| b.is_ascii_hexdigit())
                && segment.bytes().any(|b| b.is_ascii_digit()))
            .then_some(":hex"),
            Rule::Email => segment.contains('@').then_some(":email"),
            Rule::Custom(re, replacement) => re.is_match(segment).then_some(replacement.as_str()),
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The pattern of `path` (query string dropped): numeric segments `:id`, UUIDs `:uuid`,
/// then the extra rules in order.
pub fn pattern(path: &str, rules: &[Rule]) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(":id");
        } else if is_uuid(seg) {
            out.push_str(":uuid");
        } else if let Some(r) = rules.iter().find_map(|r| r.apply(seg)) {
            out.push_str(r);
        } else {
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_uuids_become_placeholders() {
        assert_eq!(pattern("/users/12345/orders", &[]), "/users/:id/orders");
        assert_eq!(
            pattern(
                "/payments/550e8400-e29b-41d4-a716-446655440000/refund?x=1",
                &[]
            ),
            "/payments/:uuid/refund"
        );
        assert_eq!(pattern("/", &[]), "/");
        assert_eq!(pattern("/v2/items", &[]), "/v2/items");
    }

    #[test]
    fn extra_rules_apply_in_order() {
        let rules = [
            Rule::compile(0, &RuleConfig::Builtin("hex".into())).unwrap(),
            Rule::compile(1, &RuleConfig::Builtin("email".into())).unwrap(),
            Rule::compile(
                2,
                &RuleConfig::Custom {
                    pattern: "tok_[a-z0-9]+".into(),
                    replacement: ":token".into(),
                },
            )
            .unwrap(),
        ];
        assert_eq!(
            pattern("/blobs/deadbeefdeadbeef01/by/a@b.it/tok_x9", &rules),
            "/blobs/:hex/by/:email/:token"
        );
        assert_eq!(
            pattern("/blobs/deadbeefdeadbeef", &rules),
            "/blobs/deadbeefdeadbeef",
            "no digit, not an id"
        );
    }

    #[test]
    fn bad_rules_name_themselves() {
        let err = Rule::compile(
            3,
            &RuleConfig::Custom {
                pattern: "(".into(),
                replacement: "x".into(),
            },
        )
        .unwrap_err();
        assert!(
            err.starts_with("config.path_patterns[3].pattern: invalid regex"),
            "{err}"
        );
        assert!(Rule::compile(0, &RuleConfig::Builtin("ipv4".into()))
            .unwrap_err()
            .contains("unknown built-in"));
    }
}
