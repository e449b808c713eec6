//! The integration tests of the `flashmm` package, one binary with a module per area, so the
//! workspace links one test executable here instead of one per file.

#![allow(dead_code)]

mod azure;
mod backtest;
mod cli;
mod common;
mod config;
mod core_inputs;
mod crash;
mod damage;
mod eip712;
mod export;
mod fake_venues;
mod full_disk;
mod funding;
mod hints;
mod hostile;
mod hyperliquid;
mod import;
mod instruments;
mod journal;
mod jsonl;
mod live;
mod live_process;
mod live_venue;
mod markets;
mod model_backtest;
mod model_calls;
mod mutate;
mod postmortem;
mod predictor;
mod replay;
mod report;
mod risk;
mod secrets;
mod sessions;
mod sim;
mod tardis;
