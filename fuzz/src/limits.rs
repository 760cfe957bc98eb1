//! Input the harness skips on purpose, for now.
//!
//! `Doc::parse` accepts JSON nested to any depth (serde_json skips raw values without
//! recursing), the finds-keys walk then recurses once per level, and an edit path of N
//! segments builds a tree N deep that serde_json serialises and drops recursively: deep
//! enough input overflows the stack today. The depth limits for those are being added
//! (issue #13); until they land, a fuzzer would keep rediscovering that one known crash,
//! so inputs deeper than [`MAX_DEPTH`] are skipped and the fuzzer looks elsewhere.
//! Setting `WEIR_FUZZ_NO_DEPTH_CAP=1` turns the cap off (to check the limits once they
//! exist, then delete this module).

use std::sync::OnceLock;

/// Deepest nesting of `[`/`{`, and most segments in an edit path, that the targets accept.
pub const MAX_DEPTH: usize = 128;

/// Whether the cap is on (unless `WEIR_FUZZ_NO_DEPTH_CAP` is set to anything but `0`).
pub fn depth_capped() -> bool {
    static CAPPED: OnceLock<bool> = OnceLock::new();
    *CAPPED.get_or_init(|| std::env::var("WEIR_FUZZ_NO_DEPTH_CAP").map_or(true, |v| v == "0"))
}

/// Whether `text` nests brackets deeper than [`MAX_DEPTH`], counting brackets inside
/// strings too (an overestimate, which only skips a few more inputs); `false` when the
/// cap is off.
pub fn too_deep(text: &[u8]) -> bool {
    if !depth_capped() {
        return false;
    }
    let mut depth = 0usize;
    for b in text {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether an edit path has more than [`MAX_DEPTH`] segments; `false` when the cap is off.
pub fn path_too_deep(path: &str) -> bool {
    depth_capped() && path.bytes().filter(|b| *b == b'.').count() >= MAX_DEPTH
}
