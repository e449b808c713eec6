//! The `flashmm` command-line schema (clap derive) and the dispatch to one module per command.

mod backtest;
#[cfg(test)]
mod hints_tests;
mod journal;
mod live;
mod predict;
mod replay;
mod report;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use flashmm_journal::Journal;
use std::path::PathBuf;

use backtest::BacktestCmd;
use journal::JournalCmd;
use live::{ControlCmd, LiveCmd};
use predict::PredictCmd;
use replay::ReplayCmd;
use report::{PostmortemCmd, ReportCmd};

#[derive(Parser)]
#[command(
    name = "flashmm",
    version,
    about = "Event-sourced market maker for Sei's order book, with an LLM as a slow signal",
    long_about = "FlashMM journals every market event, prediction, quote, order and fill to one sled journal, \
and one deterministic core consumes that journal in every mode.\n\n\
Start with:\n  flashmm backtest --predictor rules      # the shipped Binance BTCUSDT recording\n  flashmm journal ls                       # what the journal holds"
)]
pub(super) struct Cli {
    /// Journal directory (created if missing).
    #[arg(long, global = true, default_value = "journal", value_name = "DIR")]
    journal: PathBuf,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Free space, in MB, the journal keeps in reserve on its disk: below it flashmm refuses to
    /// open the journal and stops writing, since sled running out of space mid-write can destroy
    /// the whole journal.
    #[arg(long, global = true, value_name = "MB", default_value_t = flashmm_journal::space::DEFAULT_MIN_FREE_MB)]
    min_free_mb: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the strategy over recorded market data with a simulated venue.
    Backtest(BacktestCmd),
    /// Import, export, list and verify journal entries.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Feed a session's recorded inputs back to the core and check every decision; with --set,
    /// rerun it with changed parameters (a what-if) over the same market and model answers.
    Replay(ReplayCmd),
    /// Quote on Citrex (Sei): live orders, --paper (simulated venue) or --dry-run (signed, never sent).
    Live(LiveCmd),
    /// Tell a running engine to cancel everything and stop quoting (its control endpoint).
    Kill(ControlCmd),
    /// Tell a running engine to quote again after a kill.
    Resume(ControlCmd),
    /// Ask the model once about a recorded moment (checks credentials; journaled as a probe session).
    Predict(PredictCmd),
    /// Print the effective configuration (defaults, then --config, then --set) as TOML.
    Config(ConfigArgs),
    /// Study fills: markouts, the cause chain back to the prompt, the book and trades around
    /// each fill, and what-if hints.
    Postmortem(PostmortemCmd),
    /// A session's summary with charts: PnL, inventory, spreads, fills, markouts, model latency
    /// and cost, risk actions.
    Report(ReportCmd),
}

#[derive(Args)]
struct ConfigArgs {
    /// TOML configuration file; see backtests/default.toml for every key.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one key, e.g. --set strategy.levels=5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// Runs the command; the result is the process exit code.
pub(super) fn run(cli: Cli) -> Result<i32> {
    MIN_FREE_MB.store(cli.min_free_mb, std::sync::atomic::Ordering::Relaxed);
    match cli.command {
        Command::Config(c) => print_config(&c),
        Command::Backtest(b) => backtest::run_backtest(&cli.journal, b),
        Command::Predict(p) => predict::run_predict(&cli.journal, p),
        Command::Replay(r) => replay::run_replay(&cli.journal, r),
        Command::Live(l) => live::run_live(&cli.journal, l),
        Command::Kill(c) => live::run_control(&c.control, "/kill"),
        Command::Resume(c) => live::run_control(&c.control, "/resume"),
        Command::Journal(j) => journal::run_journal(&cli.journal, j),
        Command::Postmortem(p) => report::run_postmortem(&cli.journal, p),
        Command::Report(r) => report::run_report(&cli.journal, r),
    }
}

fn print_config(c: &ConfigArgs) -> Result<i32> {
    let cfg = flashmm::config::load(c.config.as_deref(), &c.sets)?;
    print!("{}", cfg.to_toml());
    Ok(0)
}

/// `--min-free-mb`, for every command that opens the journal.
static MIN_FREE_MB: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(flashmm_journal::space::DEFAULT_MIN_FREE_MB);

fn open(dir: &std::path::Path) -> Result<Journal> {
    let opts = flashmm_journal::OpenOptions {
        min_free_mb: MIN_FREE_MB.load(std::sync::atomic::Ordering::Relaxed),
    };
    let j =
        Journal::open_with(dir, opts).with_context(|| format!("--journal {}", dir.display()))?;
    for r in j.repairs() {
        eprintln!("warning: {r}");
    }
    Ok(j)
}

fn write_html(path: &std::path::Path, html: &str) -> Result<()> {
    std::fs::write(path, html).with_context(|| format!("--html {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
