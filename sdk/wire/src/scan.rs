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
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > limit {
                        return limit + 1;
                    }
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
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
}
