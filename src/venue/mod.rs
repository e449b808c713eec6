//! Venues: where orders go. `sim` is the simulated venue used by backtests and paper trading.

pub mod citrex;
pub mod sim;
