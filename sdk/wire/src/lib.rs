//! The byte layout of a batch crossing the Weir host/plugin boundary.
//!
//! Handing each event to a plugin as JSON text costs a serialise and a parse per event
//! per plugin, which is what made earlier WASM filters 5-7x slower than native code.
//! Weir instead parses each event once in the host and, per batch, sends each plugin one
//! buffer holding only the fields it declared; the plugin answers with one buffer of
//! decisions and edits. Both layouts live here, so the host and the SDK cannot disagree.
//!
//! # Batch (host to plugin)
//! ```text
//! u8  layout version (= LAYOUT_VERSION)
//! u32 event count, u32 slot count (= manifest `reads` length)
//! per event: `slot count` x value-or-absent, u32 found count, found x (string path, value)
//! ```
//! # Reply (plugin to host)
//! ```text
//! per event, in batch order: edit* outcome
//! edit:    SET string-path value | REMOVE string-path | TAG string
//! outcome: KEEP | DROP | ROUTE string | FAIL string
//! ```
//! Integers are little-endian; a string is a u32 byte length and UTF-8 bytes; a value is
//! one tag byte followed by its payload (see [`Value`]).

mod batch;
mod cursor;
mod error;
pub mod hash;
pub mod limits;
mod location;
mod path;
mod reply;
mod scan;
mod value;

#[cfg(feature = "json")]
pub mod doc;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "mmdb")]
pub mod mmdb;
#[cfg(feature = "json")]
mod walk;

pub use batch::{BatchReader, BatchWriter, EventFields};
pub use error::WireError;
pub use limits::ReplyLimits;
pub use location::Location;
pub use path::{join_path, Path, Segment};
pub use reply::{Decisions, Edit, Outcome, ReplyWriter};
pub use scan::nesting_depth;
pub use value::Value;

/// The `weir:filter` WIT package version this crate's layout belongs to. The host refuses
/// plugins built for an incompatible version; the SDK builds plugins for this one.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Version of the byte layout; bumped with the WIT package version when it changes.
pub const LAYOUT_VERSION: u8 = 1;
