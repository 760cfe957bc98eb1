//! Checks shared by the fuzz targets in `fuzz_targets/`: what every written event must
//! satisfy, oracles for JSON text written apart from `weir_wire`'s own scans (depth,
//! empty keys, lone surrogate escapes), and how a plugin reply is decoded and applied the
//! way the host applies it.

pub mod reply;

use std::sync::Once;

use serde::Deserialize;
use serde_json::Value as Json;
use weir_wire::doc::{Doc, Node};

/// Makes libFuzzer's SIGSEGV handler run on a stack of its own, so that a stack overflow
/// is reported as a crash with its input saved in `fuzz/artifacts/`, as under ASan.
/// Without a sanitizer nothing sets up such a stack: the handler would fault on the
/// exhausted stack and the process die of SIGSEGV, leaving no input. Every target calls
/// this first; it acts once, after libFuzzer has installed its handlers.
pub fn handle_stack_overflow() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const SIZE: usize = 1 << 20;
        let stack = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        let alt = libc::stack_t {
            ss_sp: stack.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: SIZE,
        };
        // SAFETY: `alt` describes a leaked buffer that lives as long as the process; the
        // handler is libFuzzer's own, re-installed with one more flag.
        unsafe {
            if libc::sigaltstack(&alt, std::ptr::null_mut()) != 0 {
                return;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut action) == 0 {
                action.sa_flags |= libc::SA_ONSTACK;
                libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Writes `doc` and checks the output is what a sink may send on: valid JSON, one object,
/// nesting at most `max_depth` levels, that parses back (under the same limit) into a
/// [`Doc`] writing exactly the same bytes (writing is idempotent). Returns the output.
pub fn check_written(doc: &Doc, max_depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    doc.write_json(&mut out);
    // Validity by grammar alone: `IgnoredAny` has no nesting limit, unlike `Value`.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&out) {
        panic!(
            "write_json wrote invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        );
    }
    let text = String::from_utf8(out).expect("write_json wrote invalid UTF-8");
    let depth = shape(&text).depth;
    assert!(
        depth <= max_depth,
        "write_json wrote an event nesting {depth} levels, over the limit of {max_depth}"
    );
    assert_eq!(
        weir_wire::nesting_depth(&text, max_depth),
        depth,
        "weir_wire::nesting_depth disagrees"
    );
    let again = match Doc::parse_limited(text.clone(), max_depth) {
        Ok(d) => d,
        Err(e) => panic!(
            "write_json's output does not parse as a Doc ({}): {text}",
            e.reason
        ),
    };
    let mut second = Vec::new();
    again.write_json(&mut second);
    assert_eq!(
        text.as_bytes(),
        &second[..],
        "writing a parsed Doc's output again changed it"
    );
    text.into_bytes()
}

/// What [`shape`] finds in JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// How deep objects and arrays nest (a scalar is 0, `{}` is 1).
    pub depth: usize,
    /// Whether some object has an empty key (`"": …`).
    pub empty_key: bool,
}

/// The nesting depth and whether an empty key occurs, counted over the text without
/// recursion and without `weir_wire`'s scanner (this is the oracle it is checked
/// against). Meant for valid JSON; on a valid prefix of invalid text, what it finds in
/// the prefix is still right (the depth only grows past it).
pub fn shape(text: &str) -> Shape {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut empty_key) = (0usize, 0usize, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                if i == start + 2 {
                    let mut j = i;
                    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r') {
                        j += 1;
                    }
                    empty_key |= bytes.get(j) == Some(&b':');
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Shape {
        depth: deepest,
        empty_key,
    }
}

/// Parses JSON text into a tree without serde_json's limit of 128 levels. Only for text
/// whose depth is known to be small enough for the stack (the host's ceiling is 1024).
pub fn parse_unbounded(text: &str) -> serde_json::Result<Json> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = Json::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A node's value, without [`Node::to_value`]'s limit of 128 levels; `None` when it
/// holds a number serde_json cannot represent (`1e999`: valid JSON, which `Doc` keeps).
pub fn node_value(node: Node<'_>) -> Option<Json> {
    match node {
        Node::Tree(value) => Some(value.clone()),
        Node::Text(text) => match parse_unbounded(text) {
            Ok(value) => Some(value),
            Err(e) if e.to_string().starts_with("number out of range") => None,
            Err(e) => panic!("a Doc's node holds invalid JSON ({e}): {text}"),
        },
    }
}

/// Whether JSON text holds a `\u` escape of half a surrogate pair without its other half
/// (`"\udc00"`): valid JSON grammar, but no Unicode string, which `Doc::parse` refuses.
pub fn has_lone_surrogate(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (mut i, mut pending_high) = (0, false);
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            if pending_high {
                return true;
            }
            i += 1;
            continue;
        }
        let unit = (bytes.get(i + 1) == Some(&b'u'))
            .then(|| text.get(i + 2..i + 6))
            .flatten()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok());
        match unit {
            Some(0xD800..=0xDBFF) => {
                if pending_high {
                    return true;
                }
                pending_high = true;
            }
            Some(0xDC00..=0xDFFF) if pending_high => pending_high = false,
            Some(0xDC00..=0xDFFF) => return true,
            _ if pending_high => return true,
            _ => {}
        }
        i += if unit.is_some() { 6 } else { 2 };
    }
    pending_high
}

/// Whether any object in the JSON text repeats a key (at any depth). The one open wire
/// bug (`fuzz/artifacts/README.md`): finds-keys reports a path through every member of
/// a repeated key, while lookups and edits see only the last, so the checks that found
/// paths look up are skipped for such text until it is fixed.
pub fn has_duplicate_key(text: &str) -> bool {
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    struct Dup(bool);
    impl<'de> serde::Deserialize<'de> for Dup {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dup, D::Error> {
            d.deserialize_any(DupVisitor)
        }
    }
    struct DupVisitor;
    impl<'de> Visitor<'de> for DupVisitor {
        type Value = Dup;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dup, A::Error> {
            let (mut keys, mut dup) = (std::collections::HashSet::new(), false);
            while let Some(key) = map.next_key::<String>()? {
                dup |= !keys.insert(key);
                dup |= map.next_value::<Dup>()?.0;
            }
            Ok(Dup(dup))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dup, A::Error> {
            let mut dup = false;
            while let Some(d) = seq.next_element::<Dup>()? {
                dup |= d.0;
            }
            Ok(Dup(dup))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Dup, E> {
            Ok(Dup(false))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Dup, E> {
            Ok(Dup(false))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Dup, E> {
            Ok(Dup(false))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Dup, E> {
            Ok(Dup(false))
        }
        fn visit_str<E>(self, _: &str) -> Result<Dup, E> {
            Ok(Dup(false))
        }
        fn visit_unit<E>(self) -> Result<Dup, E> {
            Ok(Dup(false))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    <Dup as serde::Deserialize>::deserialize(&mut de).is_ok_and(|d| d.0)
}
