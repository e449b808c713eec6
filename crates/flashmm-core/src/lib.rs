//! The deterministic core of FlashMM: the journal schema, the engine and everything it decides
//! with. It reads no clock, does no I/O and iterates nothing unordered, so the same entries
//! always give the same outputs (ARCHITECTURE.md, "Determinism"). It depends on no async
//! runtime, HTTP client, storage engine or signing library; `cargo tree -p flashmm-core` shows it.

pub mod book;
pub mod config;
pub mod contract;
mod desk;
mod engine;
pub mod event;
pub mod features;
pub mod funding;
pub mod instrument;
pub mod markets;
pub mod orders;
pub mod position;
pub mod prediction;
pub mod quote;
pub mod risk;
pub mod signal;
pub mod sim;

pub use desk::{Desk, DeskError};
pub use engine::{blend, Cause, Emitted, Engine, EngineStats, MINT_PER_ENTRY};

/// The version written into every session.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
