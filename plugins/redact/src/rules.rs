//! Pattern rules: the built-ins (card numbers, bearer tokens, AWS keys) and the operator's own.

use regex::{Captures, Regex};
use serde::Deserialize;

/// A rule from config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in errors.
    pub name: String,
    /// The regex.
    pub pattern: String,
    /// The replacement (`$1` and `${name}` refer to groups).
    pub replacement: String,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    regex: Regex,
    replacement: String,
    luhn: bool,
}

/// Names of the built-in rules.
pub const BUILTINS: [&str; 3] = ["card_numbers", "bearer_tokens", "aws_keys"];

impl Rule {
    /// A built-in rule by name.
    pub fn builtin(index: usize, name: &str) -> Result<Rule, String> {
        let (pattern, replacement, luhn) = match name {
            "card_numbers" => (r"\b\d(?:[ -]?\d){12,18}\b", "[REDACTED:card]", true),
            "bearer_tokens" => (r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", "$1 [REDACTED]", false),
            "aws_keys" => (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[REDACTED:aws_key]", false),
            other => return Err(format!("config.builtin_rules[{index}]: unknown rule {other:?} (expected one of {BUILTINS:?})")),
        };
        let regex = Regex::new(pattern).map_err(|e| format!("built-in rule {name}: {e}"))?;
        Ok(Rule {
            regex,
            replacement: replacement.into(),
            luhn,
        })
    }

    /// An operator's rule; errors name it.
    pub fn custom(index: usize, config: &RuleConfig) -> Result<Rule, String> {
        let regex = Regex::new(&config.pattern).map_err(|e| {
            format!(
                "config.rules[{index}] ({:?}).pattern: invalid regex: {e}",
                config.name
            )
        })?;
        Ok(Rule {
            regex,
            replacement: config.replacement.clone(),
            luhn: false,
        })
    }

    /// The text with every match replaced, or `None` when nothing matched.
    pub fn apply(&self, text: &str) -> Option<String> {
        if !self.regex.is_match(text) {
            return None;
        }
        let mut changed = false;
        let out = self.regex.replace_all(text, |caps: &Captures<'_>| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            if self.luhn && !luhn_valid(whole) {
                return whole.to_owned();
            }
            changed = true;
            let mut dst = String::new();
            caps.expand(&self.replacement, &mut dst);
            dst
        });
        changed.then(|| out.into_owned())
    }
}

/// The Luhn checksum over the digits of `text` (separators ignored).
pub fn luhn_valid(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_redacted_only_when_luhn_valid() {
        let r = Rule::builtin(0, "card_numbers").unwrap();
        assert_eq!(
            r.apply("paid with 4111 1111 1111 1111 ok").as_deref(),
            Some("paid with [REDACTED:card] ok")
        );
        assert_eq!(
            r.apply("order 4111111111111112 shipped"),
            None,
            "fails Luhn: an order number"
        );
        assert_eq!(r.apply("no digits"), None);
    }

    #[test]
    fn bearer_tokens_and_aws_keys() {
        let b = Rule::builtin(0, "bearer_tokens").unwrap();
        assert_eq!(
            b.apply("Authorization: Bearer abc.def-ghi").as_deref(),
            Some("Authorization: Bearer [REDACTED]")
        );
        let a = Rule::builtin(0, "aws_keys").unwrap();
        assert_eq!(
            a.apply("key AKIAIOSFODNN7EXAMPLE used").as_deref(),
            Some("key [REDACTED:aws_key] used")
        );
    }

    #[test]
    fn custom_rules_use_groups_and_bad_ones_are_named() {
        let cfg = RuleConfig {
            name: "iban".into(),
            pattern: r"IT\d{2}(\w+)".into(),
            replacement: "IT**${1}".into(),
        };
        assert_eq!(
            Rule::custom(0, &cfg)
                .unwrap()
                .apply("to IT60X054")
                .as_deref(),
            Some("to IT**X054")
        );
        let bad = RuleConfig {
            name: "broken".into(),
            pattern: "(".into(),
            replacement: String::new(),
        };
        let err = Rule::custom(2, &bad).unwrap_err();
        assert!(
            err.starts_with("config.rules[2] (\"broken\").pattern: invalid regex"),
            "{err}"
        );
    }
}
