//! Walks JSON text that [`Doc::parse`](crate::doc::Doc::parse) already validated: an
//! object's members and an array's elements, as slices of the text, without parsing
//! values or allocating; and the same text written out without its whitespace. Looking
//! up `context.client_ip` or searching nested objects for secret keys used to run
//! serde_json over the nested text and collect it into a vector, once per plugin that
//! looked.
//!
//! The text must be valid JSON: on anything else the walk stops early or yields nonsense
//! (never panics or reads outside the text).

use std::borrow::Cow;

use crate::doc::text_str;
use crate::scan::string_end;

/// Whether `b` is whitespace between JSON tokens (the grammar allows these four only).
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of the first non-whitespace byte at or after `at`.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_whitespace) {
        at += 1;
    }
    at
}

/// The index just past the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        Some(b'"') => string_end(bytes, at),
        Some(b'{' | b'[') => {
            let (mut depth, mut i) = (0usize, at);
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            bytes.len()
        }
        // A number, `true`, `false` or `null`: up to the next delimiter.
        _ => {
            let rest = &bytes[at.min(bytes.len())..];
            at + rest
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || is_whitespace(b))
                .unwrap_or(rest.len())
        }
    }
}

/// Where a walk of `text` starts: just past its opening `open` bracket, or at the end
/// (nothing to walk) when `text` is something else.
fn start_inside(bytes: &[u8], open: u8) -> usize {
    let start = skip_whitespace(bytes, 0);
    if bytes.get(start) == Some(&open) {
        start + 1
    } else {
        bytes.len()
    }
}

/// Where the next member or element starts after a value ending at `end`: past the
/// comma, or at the end when the container closes.
fn next_item(bytes: &[u8], end: usize) -> usize {
    let after = skip_whitespace(bytes, end);
    if bytes.get(after) == Some(&b',') {
        after + 1
    } else {
        bytes.len()
    }
}

/// Appends valid JSON text without the whitespace between its tokens.
pub(crate) fn write_compact(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if !matches!(bytes.first(), Some(b'{' | b'[')) {
        // A scalar's text is a single token.
        out.extend_from_slice(bytes);
        return;
    }
    let (mut i, mut run) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i);
                continue;
            }
            b if is_whitespace(b) => {
                out.extend_from_slice(&bytes[run..i]);
                run = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// The members of a valid object's text, in order: the key (unescaped, borrowed when it
/// had no escapes) and the value's text.
pub(crate) struct Members<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Members<'t> {
    /// The members of `text`; none when it is not an object.
    pub(crate) fn new(text: &'t str) -> Self {
        let at = start_inside(text.as_bytes(), b'{');
        Members { text, at }
    }
}

impl<'t> Iterator for Members<'t> {
    type Item = (Cow<'t, str>, &'t str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let key_start = skip_whitespace(bytes, self.at);
        if bytes.get(key_start) != Some(&b'"') {
            self.at = bytes.len();
            return None;
        }
        let key_end = string_end(bytes, key_start);
        let colon = skip_whitespace(bytes, key_end);
        let value_start = skip_whitespace(bytes, colon + 1);
        let end = value_end(bytes, value_start).min(bytes.len());
        self.at = next_item(bytes, end);
        let key = text_str(self.text.get(key_start..key_end)?)?;
        Some((key, self.text.get(value_start..end)?))
    }
}

/// The elements of a valid array's text, in order.
pub(crate) struct Elements<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Elements<'t> {
    /// The elements of `text`; none when it is not an array.
    pub(crate) fn new(text: &'t str) -> Self {
        let bytes = text.as_bytes();
        let mut at = start_inside(bytes, b'[');
        if bytes.get(skip_whitespace(bytes, at)) == Some(&b']') {
            at = bytes.len();
        }
        Elements { text, at }
    }
}

impl<'t> Iterator for Elements<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let bytes = self.text.as_bytes();
        if self.at >= bytes.len() {
            return None;
        }
        let start = skip_whitespace(bytes, self.at);
        let end = value_end(bytes, start).min(bytes.len());
        self.at = next_item(bytes, end);
        self.text.get(start..end)
    }
}
