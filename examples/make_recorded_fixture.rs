//! Makes `fixtures/recorded-20240808.jsonl.gz`: a backtest on the shipped Binance data with the
//! Azure predictor pointed at the local fake (`flashmm_testkit::azure`), exported as JSONL.
//!
//!     cargo run --release --example make_recorded_fixture
//!
//! The fake answers as a documented function of the prompt, and the backtest waits the latency
//! the fake reports (`backtest.model_latency = "server"`, drawn from a seeded distribution), so
//! every prompt, answer and decision comes out the same on every run. Only the wall-clock
//! milliseconds of each HTTP attempt, kept in the answers' `http.attempts`, vary.
//!
//! The Binance data is imported from the repository root by its relative path, as
//! fixtures/README.md tells people to, so the export's `prev_hash` is the head of that import
//! (made by this release) and the recording imports onto it without `--rebase`.

use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm::mode::replay::RECORDED_FIXTURE;
use flashmm_core::config::AzureApi;
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::{jsonl, Journal};
use flashmm_testkit::azure::{Expect, FakeAzure};
use std::io::Write;
use std::path::Path;

pub const SEED: u64 = 20_240_808;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures").join(RECORDED_FIXTURE));
    let out = std::path::absolute(out)?;
    std::env::set_current_dir(root)?;
    let rt = tokio::runtime::Runtime::new()?;
    let expect = Expect {
        api: AzureApi::Deployments,
        deployment: "o4-mini".into(),
        api_version: "2025-04-01-preview".into(),
        api_key: Some("fixture-key".into()),
        bearer: None,
    };
    let fake = rt.block_on(FakeAzure::start(expect, vec![], SEED, 0.0))?;
    std::env::set_var("AZURE_OPENAI_ENDPOINT", fake.endpoint());
    std::env::set_var("AZURE_OPENAI_DEPLOYMENT", "o4-mini");
    std::env::set_var("AZURE_OPENAI_API_KEY", "fixture-key");
    std::env::remove_var("AZURE_OPENAI_AD_TOKEN");

    let dir = tempfile::tempdir()?;
    let journal = Journal::open(dir.path())?;
    let mut w = journal.writer()?;
    binance::import(
        &mut w,
        Path::new(backtest::DEFAULT_FIXTURE),
        &ImportOptions::default(),
    )?;
    let cfg = flashmm::config::load(
        None,
        &[
            "backtest.model_latency=\"server\"".into(),
            "predict.budget_usd_total=5".into(),
        ],
    )?;
    let o = backtest::run(
        &mut w,
        BacktestArgs {
            data: Data::Journal(Some(1)),
            from: None,
            from_until: None,
            to: None,
            predictor: PredictorChoice::Azure,
            cfg,
            // The config sets no market key: the market is the data's.
            market_keys: Some(Vec::new()),
            progress: false,
            what_if: None,
        },
    )?;
    w.close()?;
    let mut bytes = Vec::new();
    let n = jsonl::export(&journal, Some(o.session), &mut bytes)?;
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(&out)?, flate2::Compression::best());
    gz.write_all(&bytes)?;
    gz.finish()?;
    println!(
        "wrote {} entries of session {} ({} model calls) to {}",
        n,
        o.session,
        fake.received().len(),
        out.display()
    );
    Ok(())
}
