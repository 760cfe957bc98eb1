//! Write Weir filter plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`] with the [`plugin`] attribute on the impl.
//! The SDK hides the WIT contract and its batch buffers: you see one event at a time,
//! read the fields you declared, edit them, and say what happens to the event.
//!
//! ```
//! use weir_sdk::{plugin, Event, Fields, Outcome, Plugin};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Paths whose requests are noise.
//!     paths: Vec<String>,
//! }
//!
//! struct DropHealthChecks {
//!     paths: Vec<String>,
//! }
//!
//! #[plugin]
//! impl Plugin for DropHealthChecks {
//!     type Config = Config;
//!
//!     fn init(config: Config) -> Result<Self, String> {
//!         Ok(DropHealthChecks { paths: config.paths })
//!     }
//!
//!     fn fields(&self) -> Fields {
//!         Fields::new().read("path")
//!     }
//!
//!     fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
//!         match event.get_str("path") {
//!             Some(p) if self.paths.iter().any(|h| h == p) => Outcome::Drop,
//!             _ => Outcome::Keep,
//!         }
//!     }
//! }
//! ```
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate must be a
//! `cdylib`), and test it natively with [`testing::Harness`].
#![deny(missing_docs)]

// The generated bindings name their runtime through `::weir_sdk`, here too.
extern crate self as weir_sdk;

mod event;
mod host;
pub mod mmdb;
mod plugin;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use event::Event;
pub use host::{count, log, Level};
pub use plugin::{Fields, NoConfig, Outcome, Plugin};
pub use weir_sdk_macros::plugin;
pub use weir_wire::Value;

/// The version of the `weir:filter` WIT contract this SDK builds plugins for.
pub use weir_wire::CONTRACT_VERSION;

/// Plumbing used by the code that [`plugin`] generates; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::{export_init, export_process};
    pub use wit_bindgen;

    /// The generated bindings for the `weir:filter` world.
    #[allow(missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "weir:filter/plugin",
            pub_export_macro: true,
            export_macro_name: "__export_weir_plugin",
            runtime_path: "::weir_sdk::__private::wit_bindgen::rt",
        });
    }
    pub use bindings::exports::weir::filter::filter::{Guest, Manifest};
}
