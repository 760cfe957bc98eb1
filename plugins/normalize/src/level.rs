//! Canonical level names from any case, common aliases and Python's numeric levels.

use std::collections::BTreeMap;

/// The levels Weir writes, as Python's `logging` names them.
pub const CANONICAL: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// The built-in aliases (lower case); config entries are added over them.
pub fn default_aliases() -> BTreeMap<String, String> {
    [
        ("warn", "WARNING"),
        ("err", "ERROR"),
        ("fatal", "CRITICAL"),
        ("crit", "CRITICAL"),
        ("trace", "DEBUG"),
    ]
    .into_iter()
    .map(|(a, c)| (a.to_owned(), c.to_owned()))
    .collect()
}

/// The canonical name for a textual level, or `None` when it is unknown.
pub fn canonical(level: &str, aliases: &BTreeMap<String, String>) -> Option<String> {
    let trimmed = level.trim();
    if let Some(c) = CANONICAL.iter().find(|c| c.eq_ignore_ascii_case(trimmed)) {
        return Some((*c).to_owned());
    }
    aliases.get(&trimmed.to_ascii_lowercase()).cloned()
}

/// Python's numeric levels (`logging.ERROR == 40`).
pub fn from_number(n: f64) -> Option<&'static str> {
    match n as i64 {
        10 => Some("DEBUG"),
        20 => Some("INFO"),
        30 => Some("WARNING"),
        40 => Some("ERROR"),
        50 => Some("CRITICAL"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_and_aliases_become_canonical() {
        let a = default_aliases();
        for (input, want) in [
            ("info", "INFO"),
            (" Warning ", "WARNING"),
            ("warn", "WARNING"),
            ("ERR", "ERROR"),
            ("fatal", "CRITICAL"),
            ("crit", "CRITICAL"),
            ("trace", "DEBUG"),
        ] {
            assert_eq!(canonical(input, &a).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonical("verbose", &a), None);
        assert_eq!(from_number(40.0), Some("ERROR"));
        assert_eq!(from_number(41.0), None);
    }
}
