//! Dotted field paths such as `context.client_ip` or `users.0.email`.

use std::fmt;

/// One step of a [`Path`]: an object key (a segment that is all digits also indexes an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The key text, unescaped.
    pub key: String,
    /// The array index this segment denotes, when it is all digits.
    pub index: Option<usize>,
}

/// A parsed field path. Segments are separated by `.`; a key that contains a dot or a
/// backslash writes it as `\.` or `\\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    segments: Vec<Segment>,
}

impl Path {
    /// Parses `text`; `None` when it is empty or has an empty segment (`a..b`, `.a`).
    pub fn parse(text: &str) -> Option<Path> {
        let mut segments = Vec::new();
        let mut key = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => key.push(chars.next()?),
                '.' => segments.push(Segment::new(std::mem::take(&mut key))?),
                c => key.push(c),
            }
        }
        segments.push(Segment::new(key)?);
        Some(Path {
            text: text.to_owned(),
            segments,
        })
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Segment {
    fn new(key: String) -> Option<Segment> {
        if key.is_empty() {
            return None;
        }
        let index = if key.bytes().all(|b| b.is_ascii_digit()) {
            key.parse().ok()
        } else {
            None
        };
        Some(Segment { key, index })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Appends `key` to the path text `prefix`, escaping it so that [`Path::parse`] gives it back.
pub fn join_path(prefix: &str, key: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + key.len() + 1);
    out.push_str(prefix);
    push_segment(&mut out, key);
    out
}

/// Appends `key` as one more segment of the path text in `path`, escaped.
pub(crate) fn push_segment(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    for c in key.chars() {
        if c == '.' || c == '\\' {
            path.push('\\');
        }
        path.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &str) -> Vec<String> {
        Path::parse(p)
            .unwrap()
            .segments()
            .iter()
            .map(|s| s.key.clone())
            .collect()
    }

    #[test]
    fn splits_on_unescaped_dots() {
        assert_eq!(keys("context.client_ip"), ["context", "client_ip"]);
        assert_eq!(keys(r"a\.b.c"), ["a.b", "c"]);
        assert_eq!(Path::parse("users.0").unwrap().segments()[1].index, Some(0));
        assert_eq!(Path::parse("users.x0").unwrap().segments()[1].index, None);
    }

    #[test]
    fn rejects_empty_segments() {
        for bad in ["", ".a", "a.", "a..b", "a\\"] {
            assert!(Path::parse(bad).is_none(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn join_escapes_what_parse_unescapes() {
        let text = join_path(&join_path("", "odd.key"), r"back\slash");
        assert_eq!(keys(&text), ["odd.key", r"back\slash"]);
    }
}
