//! Index names from a template such as `logs-{service}-{route}-%Y.%m.%d`: event fields in
//! braces, the chain's route target as `{route}`, and strftime date parts from the event's
//! `@timestamp`. Field values are made index-safe, missing ones fall back to a default, and
//! the result is checked against Elasticsearch's naming rules before any request is sent.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;
use weir_wire::doc::{Doc, Node};

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field(Vec<String>),
    Route,
    /// One of the date parts `parse` allows, by its strftime letter.
    Date(char),
}

/// Why a template or a rendered name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The template does not parse.
    #[error("index template {template:?}: {reason}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// The rendered name breaks Elasticsearch's rules.
    #[error("index name {name:?} is not valid: {reason}")]
    Name {
        /// The name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl IndexTemplate {
    /// Parses `logs-{service}-{route}-%Y.%m.%d`.
    pub fn parse(template: &str) -> Result<Self, IndexError> {
        let fail = |reason: &str| IndexError::Template {
            template: template.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(fail("unclosed `{`")),
                        }
                    }
                    if name.is_empty() {
                        return Err(fail("empty `{}`"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(if name == "route" {
                        Part::Route
                    } else {
                        Part::Field(name.split('.').map(str::to_owned).collect())
                    });
                }
                '%' => {
                    let spec = chars.next().ok_or_else(|| fail("`%` at the end"))?;
                    if !"YmdHjGVy".contains(spec) {
                        return Err(fail("only %Y %m %d %H %j %G %V %y date parts are allowed"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Date(spec));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(IndexTemplate { parts })
    }

    /// The index for an event. `default` replaces missing fields and routes.
    pub fn render(
        &self,
        event: &Doc,
        route: Option<&str>,
        at: DateTime<Utc>,
        default: &str,
    ) -> Result<String, IndexError> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => name.push_str(s),
                Part::Route => push_safe(&mut name, route.unwrap_or(default)),
                Part::Field(path) => {
                    let value = path.split_first().and_then(|(first, rest)| {
                        rest.iter()
                            .try_fold(event.get(first)?, |v, k| v.child(k, None))
                    });
                    match value.map(|v| (v.as_str(), v)) {
                        Some((Some(s), _)) if !s.is_empty() => push_safe(&mut name, &s),
                        Some((None, v)) => match v.to_value() {
                            Value::Number(n) => push_safe(&mut name, &n.to_string()),
                            Value::Bool(b) => push_safe(&mut name, &b.to_string()),
                            _ => push_safe(&mut name, default),
                        },
                        _ => push_safe(&mut name, default),
                    }
                }
                Part::Date(spec) => push_date(&mut name, *spec, at),
            }
        }
        validate(&name)?;
        Ok(name)
    }
}

/// Appends one strftime date part. Written out directly: chrono's `format` re-parses the
/// format string and allocates for every event.
fn push_date(name: &mut String, spec: char, at: DateTime<Utc>) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = match spec {
        'Y' => write!(name, "{:04}", at.year()),
        'm' => write!(name, "{:02}", at.month()),
        'd' => write!(name, "{:02}", at.day()),
        'H' => write!(name, "{:02}", at.hour()),
        'j' => write!(name, "{:03}", at.ordinal()),
        'G' => write!(name, "{:04}", at.iso_week().year()),
        'V' => write!(name, "{:02}", at.iso_week().week()),
        'y' => write!(name, "{:02}", at.year().rem_euclid(100)),
        _ => Ok(()),
    };
}

/// Characters Elasticsearch refuses in an index name.
fn forbidden(c: char) -> bool {
    matches!(
        c,
        '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
    )
}

/// Appends a field value lower-cased, with characters an index name cannot hold as `_`.
fn push_safe(name: &mut String, value: &str) {
    for c in value.chars() {
        if forbidden(c) || c.is_control() {
            name.push('_');
        } else {
            name.extend(c.to_lowercase());
        }
    }
}

/// Elasticsearch's rules for index names.
pub fn validate(name: &str) -> Result<(), IndexError> {
    let fail = |reason| {
        Err(IndexError::Name {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name == "." || name == ".." {
        return fail("empty, `.` or `..`");
    }
    if name.len() > 255 {
        return fail("longer than 255 bytes");
    }
    if name.starts_with(['-', '_', '+']) {
        return fail("starts with `-`, `_` or `+`");
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return fail("contains upper case");
    }
    if name.chars().any(forbidden) {
        return fail("contains one of \\ / * ? \" < > | space , # :");
    }
    Ok(())
}

/// The instant an event is filed under: its `@timestamp` when it is RFC 3339, else `now`.
pub fn event_time(event: &Doc, now: DateTime<Utc>) -> DateTime<Utc> {
    event
        .get("@timestamp")
        .and_then(Node::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map_or(now, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        Doc::parse(v.to_string()).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-15T10:30:45Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn date_parts_match_strftime() {
        let spec = "x-%Y.%m.%d.%H.%j.%G.%V.%y";
        let t = IndexTemplate::parse(spec).unwrap();
        // ISO week-years differ from calendar years around New Year.
        for at in [
            "2025-01-15T10:30:45Z",
            "2024-12-30T03:00:00Z",
            "2021-01-03T23:59:59Z",
        ] {
            let at = DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(
                t.render(&doc(json!({})), None, at, "x").unwrap(),
                at.format(spec).to_string()
            );
        }
    }

    #[test]
    fn renders_fields_route_and_date() {
        let t = IndexTemplate::parse("logs-{service}-{route}-%Y.%m.%d").unwrap();
        let event = doc(json!({"service": "Payment Gateway"}));
        assert_eq!(
            t.render(&event, Some("payments"), at(), "unknown").unwrap(),
            "logs-payment_gateway-payments-2025.01.15"
        );
        assert_eq!(
            t.render(&doc(json!({})), None, at(), "unknown").unwrap(),
            "logs-unknown-unknown-2025.01.15"
        );
        let nested = IndexTemplate::parse("{context.tenant}-%Y").unwrap();
        assert_eq!(
            nested
                .render(
                    &doc(json!({"context": {"tenant": "ACME/eu"}})),
                    None,
                    at(),
                    "x"
                )
                .unwrap(),
            "acme_eu-2025"
        );
    }

    #[test]
    fn the_event_timestamp_decides_the_date() {
        let now = at();
        let e = doc(json!({"@timestamp": "2024-12-31T23:59:59.999Z"}));
        assert_eq!(
            event_time(&e, now).format("%Y.%m.%d").to_string(),
            "2024.12.31"
        );
        assert_eq!(event_time(&doc(json!({"@timestamp": "garbage"})), now), now);
    }

    #[test]
    fn bad_templates_and_names_are_refused_before_sending() {
        assert!(IndexTemplate::parse("logs-{service").is_err());
        assert!(IndexTemplate::parse("logs-%Q").is_err());
        let t = IndexTemplate::parse("{service}").unwrap();
        let err = t
            .render(&doc(json!({"service": "_internal"})), None, at(), "x")
            .unwrap_err();
        assert!(err.to_string().contains("starts with"), "{err}");
        assert!(validate(&"a".repeat(256)).is_err());
        assert!(validate("Logs").is_err());
        assert!(validate("logs-ok-2025.01.15").is_ok());
    }
}
