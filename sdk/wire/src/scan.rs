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

/// What a decoder must know of a container value: whether it nests deeper than
/// `limit` or has an empty key. Text too short to nest that deep, with no `""` in it,
/// needs no walk at all (one `memchr` pass instead), which is most fields of most events.
pub(crate) fn check_container(text: &str, limit: usize) -> Scan {
    let bytes = text.as_bytes();
    // Every level costs an opening and a closing bracket.
    let shallow = bytes.len() / 2 <= limit;
    if shallow && !has_empty_string(bytes) {
        return Scan {
            depth: 0,
            empty_key: false,
        };
    }
    scan_container(text, limit)
}

/// Whether `""` occurs anywhere (an empty string or key, or an escaped quote before a
/// closing one): a cheap test that rules empty keys out.
fn has_empty_string(bytes: &[u8]) -> bool {
    // Built once: building a searcher per call cost more than the search.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"\""));
    FINDER.find(bytes).is_some()
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

/// Where the text holds a `\uD800`–`\uDFFF` escape outside a high-then-low pair: half
/// of a UTF-16 surrogate pair, which no string can hold (serde_json only validates
/// escapes when it decodes a string). Exact for valid JSON text, where backslashes occur
/// only inside strings; most events hold none, and cost one `memchr` pass.
#[cfg(feature = "json")]
pub(crate) fn lone_surrogate(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', &bytes[at.min(bytes.len())..]) {
        let i = at + found;
        if bytes.get(i + 1) != Some(&b'u') {
            at = i + 2;
            continue;
        }
        let unit = hex4(bytes, i + 2);
        match unit {
            Some(0xD800..=0xDBFF) => {
                let low = (bytes.get(i + 6..i + 8) == Some(b"\\u"))
                    .then(|| hex4(bytes, i + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Some(i);
                }
                at = i + 12;
            }
            Some(0xDC00..=0xDFFF) => return Some(i),
            _ => at = i + 6,
        }
    }
    None
}

/// The four hex digits at `at`, as a number.
#[cfg(feature = "json")]
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
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
    #[cfg(feature = "json")]
    fn empty_keys_and_surrogate_escapes_are_noticed() {
        assert!(scan_container(r#"{"a":{"" : 1}}"#, 10).empty_key);
        assert!(!scan_container(r#"{"a":[""],"b":""}"#, 10).empty_key);
        assert_eq!(lone_surrogate(r#"{"a":"\ud83d\ude00"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a":"x\uDC00"}"#), Some(7));
        assert_eq!(lone_surrogate(r#"{"a":"\ud83d\u0041"}"#), Some(6));
        assert_eq!(lone_surrogate(r#"{"a":"\ud83d"}"#), Some(6));
        assert_eq!(
            lone_surrogate(r#"{"a":"\\ud800 caf\u00e9"}"#),
            None,
            "an escaped backslash"
        );
        let nested = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert_eq!(check_container(&nested[5..nested.len() - 1], 10).depth, 11);
        assert_eq!(
            check_container(r#"{"a":[1,{"b":2}]}"#, 10).depth,
            0,
            "too short to be deep"
        );
        assert!(check_container(r#"{"a":{"":1}}"#, 10).empty_key);
    }
}
