//! `flashmm backtest`: the strategy over recorded market data with a simulated venue, and the
//! printed report.

use super::{open, ConfigArgs};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm_core::event::when;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum PredictorArg {
    /// The seed's order-book rules.
    Rules,
    /// Always neutral, or scripted by backtest.stub_script.
    Stub,
    /// Azure OpenAI (AZURE_OPENAI_*); real money, so --max-cost-usd is required.
    Azure,
    /// The model answers recorded in another session (--recorded-session).
    Recorded,
}

#[derive(Args)]
pub(super) struct BacktestCmd {
    /// Which predictor answers the core's prediction requests.
    #[arg(long, value_enum, default_value = "rules")]
    predictor: PredictorArg,
    /// A Binance or Hyperliquid recording (gzip or plain; the format is told from its first
    /// line); imported into the journal on first use.
    /// Default: the shipped fixture, unless --session or --from/--to select journal data.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    data: Option<PathBuf>,
    /// Take market data from this journal session instead of a file.
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Start of the market data: 2024-08-08 or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the market data (a bare date means the end of that day).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Script for the stub predictor (same as --set backtest.stub_script=FILE).
    #[arg(long, value_name = "FILE")]
    stub_script: Option<PathBuf>,
    /// Spending cap for --predictor azure (same as --set predict.budget_usd_total=USD); the run stops there.
    #[arg(long, value_name = "USD")]
    max_cost_usd: Option<String>,
    /// For --predictor recorded: the session whose answers to serve (default: the latest with model answers).
    #[arg(long, value_name = "ID")]
    recorded_session: Option<u64>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

pub(super) fn run_backtest(dir: &std::path::Path, b: BacktestCmd) -> Result<i32> {
    let mut sets = b.config.sets.clone();
    if let Some(s) = &b.stub_script {
        sets.push(format!(
            "backtest.stub_script={:?}",
            s.display().to_string()
        ));
    }
    if let Some(c) = &b.max_cost_usd {
        sets.push(format!("predict.budget_usd_total={c:?}"));
    }
    let cfg = flashmm::config::load(b.config.config.as_deref(), &sets)?;
    let market_keys = flashmm::config::explicit_keys(b.config.config.as_deref(), &sets);
    let from = b
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::Start))
        .transpose()?;
    // A bare date names its whole day: the data has to cover some of it.
    let from_until = b
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::End))
        .transpose()?;
    let to =
        b.to.as_deref()
            .map(|v| when::parse("--to", v, when::Edge::End))
            .transpose()?;
    let data = match (b.data, b.session) {
        (Some(f), _) => Data::File(f),
        (None, Some(id)) => Data::Journal(Some(id)),
        (None, None) if from.is_some() || to.is_some() => Data::Journal(None),
        (None, None) => {
            let f = backtest::default_fixture();
            if !f.exists() {
                bail!("no --data given and the default recording {} is missing; pass --data FILE or --session ID", backtest::DEFAULT_FIXTURE);
            }
            Data::File(f)
        }
    };
    let journal = open(dir)?;
    let mut writer = journal.writer()?;
    let predictor = match b.predictor {
        PredictorArg::Rules => PredictorChoice::Rules,
        PredictorArg::Stub => PredictorChoice::Stub,
        PredictorArg::Azure => PredictorChoice::Azure,
        PredictorArg::Recorded => PredictorChoice::Recorded(b.recorded_session),
    };
    let o = backtest::run(
        &mut writer,
        BacktestArgs {
            data,
            from,
            from_until,
            to,
            predictor,
            cfg,
            market_keys: Some(market_keys),
            progress: true,
            what_if: None,
        },
    )?;
    writer.close()?;
    let events_per_s = o.summary.events as f64 / o.wall_s.max(1e-9);
    eprintln!(
        "backtest session {} written to {} (market data: session {}, seq {}..{}{})",
        o.session,
        dir.display(),
        o.source_session,
        o.from_seq,
        o.to_seq,
        if o.imported { ", imported now" } else { "" }
    );
    if b.json {
        let mut v = o.summary.to_json();
        if let Some(m) = v.as_object_mut() {
            m.insert("symbol".into(), o.market.symbol.to_string().into());
            m.insert("venue".into(), o.market.venue.clone().into());
            m.insert("kind".into(), o.market.kind.as_str().into());
            m.insert(
                "settle_currency".into(),
                o.market.settle_currency.clone().into(),
            );
            m.insert("predictor".into(), predictor_name(predictor).into());
            m.insert("source_session".into(), o.source_session.into());
            m.insert("from_seq".into(), o.from_seq.into());
            m.insert("to_seq".into(), o.to_seq.into());
            m.insert(
                "predictor_cost_usd".into(),
                o.cost_usd.round_dp(6).normalize().to_string().into(),
            );
            m.insert("stopped_early".into(), serde_json::json!(o.stopped));
            m.insert(
                "wall_s".into(),
                serde_json::json!((o.wall_s * 1e6).round() / 1e6),
            );
            m.insert(
                "events_per_s".into(),
                serde_json::json!(events_per_s.round()),
            );
        }
        println!("{v}");
    } else {
        print_report(&o, predictor, events_per_s);
    }
    Ok(0)
}

fn predictor_name(p: PredictorChoice) -> &'static str {
    match p {
        PredictorChoice::Rules => "rules",
        PredictorChoice::Stub => "stub",
        PredictorChoice::Azure => "azure",
        PredictorChoice::Recorded(_) => "recorded",
    }
}

fn print_report(o: &backtest::Outcome, p: PredictorChoice, events_per_s: f64) {
    let m = &o.market;
    let v = o.summary.to_json();
    let s = |k: &str| match &v[k] {
        serde_json::Value::String(x) => x.clone(),
        serde_json::Value::Null => "n/a".into(),
        other => other.to_string(),
    };
    let pnl = |k: &str| v["pnl"][k].as_str().unwrap_or("n/a").to_string();
    let mk = |h: &str| {
        let avg = v["markout_bps"][h].as_str().unwrap_or("n/a").to_string();
        format!("{h} {avg} ({} fills)", v["markout_samples"][h])
    };
    println!(
        "FlashMM backtest: {} ({} {}, tick {}, lot {}), {} predictor, market data from session {}",
        m.symbol,
        m.venue,
        m.kind.as_str(),
        m.tick_size,
        m.lot_size,
        predictor_name(p),
        o.source_session
    );
    println!("  market events   {}", s("events"));
    println!(
        "  quotes          {} decisions, {} orders, {} cancels, {} rejects",
        s("quotes"),
        s("orders"),
        s("cancels"),
        s("rejects")
    );
    println!(
        "  fills           {} ({} maker, {} taker), volume {} ({} {})",
        s("fills"),
        s("maker_fills"),
        s("taker_fills"),
        s("volume"),
        s("notional"),
        m.settle_currency
    );
    println!(
        "  PnL             total {} = realized {} + unrealized {} - fees {}{} (in {})",
        pnl("total"),
        pnl("realized"),
        pnl("unrealized"),
        pnl("fees"),
        match v["fundings"].as_u64() {
            Some(n) if n > 0 => format!(" + funding {} ({n} funding times)", pnl("funding")),
            _ => String::new(),
        },
        m.settle_currency
    );
    println!(
        "  position        final {}, max |position| {}, final mid {}",
        s("final_position"),
        s("max_abs_position"),
        s("final_mid")
    );
    println!(
        "  spread (bps)    quoted {} avg, market {} time-weighted",
        s("avg_quoted_spread_bps"),
        s("avg_market_spread_bps")
    );
    println!(
        "  markouts (bps)  {}, {}, {}",
        mk("1s"),
        mk("5s"),
        mk("30s")
    );
    println!(
        "  predictions     {} ({} failed); hit rate {} over {} directional calls",
        s("predictions"),
        s("prediction_failures"),
        s("prediction_hit_rate"),
        s("prediction_calls_scored")
    );
    println!("  risk actions    {}", s("risk_actions"));
    println!(
        "  model cost      {} USD",
        o.cost_usd.round_dp(6).normalize()
    );
    if let Some(why) = &o.stopped {
        println!("  stopped early   {why}");
    }
    let q = |p: f64| o.latency.value_at_quantile(p);
    println!(
        "  timing          {:.3} s wall, {:.0} events/s; core+venue per event p50 {} ns, p99 {} ns (sampled)",
        o.wall_s, events_per_s, q(0.5), q(0.99)
    );
    println!("  session         {} (flashmm journal ls)", o.session);
}
