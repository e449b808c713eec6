//! FlashMM's binary package as a library: the mode drivers and the config file loader, so the
//! integration tests and benches drive the same code the `flashmm` command runs. The libraries
//! are the `flashmm-*` crates under `crates/`; ARCHITECTURE.md has the map.

pub mod config;
pub mod mode;
