//! Scans over JSON text that something has already validated (the host's decoder, or
//! serde_json): where a string ends, and how deep the text nests. Neither recurses, so
//! no input can exhaust the stack through them.

/// The index just past the string literal whose opening quote is at `at`.
pub(crate) fn string_end(bytes: &[u8], mut at: usize) -> usize {
    at += 1;
    while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[at.min(bytes.len())..]) {
        let i = at + found;
        if bytes[i] == b'"' {
            return i + 1;
        }
        // A backslash escapes the next byte (`\u` is followed by plain hex digits).
        at = i + 2;
    }
    bytes.len()
}

/// How deep JSON text nests objects and arrays (a scalar is 0, `[]` is 1, `[[1]]` is 2),
/// counting without recursion; stops early and returns `limit + 1` once past `limit`.
/// The text must be valid JSON (string contents are skipped, escapes included).
pub fn nesting_depth(text: &str, limit: usize) -> usize {
    scan_container(text, limit).depth
}

/// What one pass over a container's text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// As [`nesting_depth`] returns it.
    pub depth: usize,
    /// Whether an object in it has an empty key (`"": …`), which no field path can name.
    pub empty_key: bool,
}

/// [`nesting_depth`], noting empty keys on the way.
pub(crate) fn scan_container(text: &str, limit: usize) -> Scan {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let mut empty_key = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i);
                if end == i + 2 && next_is_colon(bytes, end) {
                    empty_key = true;
                }
                i = end;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > limit {
                        return Scan {
                            depth: limit + 1,
                            empty_key,
                        };
                    }
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Scan {
        depth: deepest,
        empty_key,
    }
}

fn next_is_colon(bytes: &[u8], mut at: usize) -> bool {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    bytes.get(at) == Some(&b':')
}

/// Whether the text may hold a `\uD800`–`\uDFFF` escape: half of a surrogate pair, which
/// is only valid in its pair. Cheap enough for every event; only those it flags are
/// checked in full.
pub(crate) fn may_have_surrogate_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memmem::find_iter(bytes, b"\\u").any(|at| {
        matches!(bytes.get(at + 2), Some(b'd' | b'D'))
            && matches!(
                bytes.get(at + 3),
                Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers_and_skips_strings() {
        assert_eq!(nesting_depth("1", 10), 0);
        assert_eq!(nesting_depth("\"[[[\"", 10), 0);
        assert_eq!(nesting_depth("[]", 10), 1);
        assert_eq!(nesting_depth(r#"{"a":[{"b":"]\"["}],"c":[[]]}"#, 10), 3);
        let deep = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert_eq!(nesting_depth(&deep, 10), 11, "stops one past the limit");
        assert_eq!(nesting_depth(&deep, 50), 50);
    }

    #[test]
    fn empty_keys_and_surrogate_escapes_are_noticed() {
        assert!(scan_container(r#"{"a":{"" : 1}}"#, 10).empty_key);
        assert!(!scan_container(r#"{"a":[""],"b":""}"#, 10).empty_key);
        assert!(may_have_surrogate_escape(r#"{"a":"\ud83d\ude00"}"#));
        assert!(may_have_surrogate_escape(r#"{"a":"x\uDC00"}"#));
        assert!(!may_have_surrogate_escape(r#"{"a":"caf\u00e9 \u0064"}"#));
    }
}
