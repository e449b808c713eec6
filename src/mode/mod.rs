//! Drivers: the only code that wires I/O (journal, venue, predictor, clock) to the core.

pub mod backtest;
pub mod control;
pub mod live;
pub mod metrics;
pub mod probe;
pub mod progress;
pub mod replay;
pub mod stream;
