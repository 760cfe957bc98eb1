/// Why a buffer could not be decoded. A plugin whose reply fails to decode has its batch
/// handled by its failure policy, exactly as if it had trapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ended inside an item.
    #[error("buffer truncated at byte {at} while reading {what}")]
    Truncated {
        /// Byte offset where more input was needed.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A tag or opcode byte that the layout does not define.
    #[error("unknown {what} tag {tag} at byte {at}")]
    UnknownTag {
        /// Byte offset of the tag.
        at: usize,
        /// The tag value found.
        tag: u8,
        /// Which kind of tag was expected.
        what: &'static str,
    },
    /// A string that is not UTF-8.
    #[error("string at byte {at} is not valid UTF-8")]
    BadUtf8 {
        /// Byte offset of the string's bytes.
        at: usize,
    },
    /// The batch was written with another layout version.
    #[error("batch layout version {found}, expected {expected}")]
    LayoutVersion {
        /// Version in the buffer.
        found: u8,
        /// Version this code understands.
        expected: u8,
    },
    /// A reply item past one of the host's bounds (see [`crate::limits`]).
    #[error("event {event}: {what} over the limit of {limit}")]
    OverLimit {
        /// The event (0-based, in batch order) the item belongs to.
        event: usize,
        /// What is over its limit.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A reply sets an object with an empty key, which no path could name afterwards.
    #[error("event {event}: sets a JSON value with an empty key")]
    EmptyKey {
        /// The event (0-based, in batch order).
        event: usize,
    },
    /// The reply's decisions do not match the batch's events one to one.
    #[error("reply holds {found} decisions for a batch of {expected} events")]
    DecisionCount {
        /// Decisions decoded.
        found: usize,
        /// Events sent.
        expected: usize,
    },
}
