//! Bounds on what crosses the boundary, in both directions. A log line comes from anyone
//! who can write to a log file, and a plugin may be written straight against the WIT
//! contract without the SDK's good manners: nothing either sends may make the host spend
//! memory or time out of proportion to it, or recurse deeper than a fixed bound.

/// How deep an event may nest objects and arrays by default (the event itself is level
/// 1), as `serde_json` allows: deeper events are dead-lettered at decode.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// The largest nesting limit an operator may configure: the host's own walks over an
/// event recurse once per level, and this keeps them well inside a worker's stack.
pub const MAX_DEPTH_CEILING: usize = 1024;

/// Edits one plugin may make to one event in one reply.
pub const MAX_EDITS_PER_EVENT: usize = 1024;

/// Edits one reply may hold in all.
pub const MAX_EDITS_PER_REPLY: usize = 262_144;

/// Bytes of an edit's field path, a declared read path or a found key's name.
pub const MAX_PATH_BYTES: usize = 1024;

/// Bytes of JSON text the host parses into a tree for one edit: a field an edit reaches
/// inside, or an object or array a plugin sets. A tree takes up to ~40 times its text
/// (an array of small numbers), and a batch holds every event's trees at once, so this
/// bounds the host memory an edit can cost; past it the edit fails, naming the field.
pub const MAX_TREE_BYTES: usize = 64 * 1024;

/// Bytes of a route target or a tag.
pub const MAX_LABEL_BYTES: usize = 256;

/// Bytes of a reason kept from a plugin (an event's `fail` reason, an error `process`
/// returned, an error line before a trap); longer ones are cut and marked.
pub const MAX_REASON_BYTES: usize = 4096;

/// Fields a plugin may declare in its manifest's `reads`.
pub const MAX_READS: usize = 1024;

/// Key names a plugin may declare in its manifest's `finds-keys`.
pub const MAX_FIND_KEYS: usize = 256;

/// What the host enforces on the replies of one plugin and the events they edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Deepest nesting an edit may leave in an event (path segments plus the nesting
    /// of the value set there).
    pub max_depth: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked as cut with the
/// original length; unchanged when it fits.
pub fn truncate_reason(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}… (truncated: {} bytes in all)",
        &text[..end],
        text.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(truncate_reason("short", 10), "short");
        let cut = truncate_reason("ééééé", 3);
        assert_eq!(cut, "é… (truncated: 10 bytes in all)");
    }
}
