//! Checks shared by the fuzz targets in `fuzz_targets/`: the limits the harness puts on
//! its input today, what every written event must satisfy, and how a plugin reply is
//! decoded and applied the way the host applies it.

pub mod limits;
pub mod reply;

use std::sync::Once;

use weir_wire::doc::Doc;

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
/// that parses back into a [`Doc`] writing exactly the same bytes (writing is idempotent).
/// Returns the output.
pub fn check_written(doc: &Doc) -> Vec<u8> {
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
    let again = match Doc::parse(text.clone()) {
        Ok(d) => d,
        Err(e) => panic!(
            "write_json's output does not parse as a Doc ({}): {text}",
            e.error
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

/// Whether JSON text holds a `\u` escape of half a surrogate pair without its other half
/// (`"\udc00"`): valid JSON grammar, which `Doc::parse` accepts, but no Unicode string,
/// so serde_json cannot decode it.
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
