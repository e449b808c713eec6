//! FlashMM: an event-sourced market maker. See ARCHITECTURE.md for the map.

pub mod backoff;
pub mod config;
pub mod core;
pub mod event;
pub mod fake_http;
pub mod feed;
pub mod journal;
pub mod mode;
pub mod predict;
pub mod report;
pub mod venue;

/// The version written into every session.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
