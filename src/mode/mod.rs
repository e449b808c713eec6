//! Drivers: the only code that wires I/O (journal, venue, predictor, clock) to the core.

pub mod backtest;
pub mod cover;
pub mod import_hint;
pub mod live;
pub mod probe;
pub mod progress;
pub mod replay;
