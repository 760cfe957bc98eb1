//! Weir streams log events through a user-ordered chain of sandboxed WebAssembly filter
//! plugins. This crate is the host: config, engine, sources, sinks and the CLI.

pub mod admin;
pub mod bench;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod metrics;
pub mod pipeline;
pub mod sink;
pub mod source;
