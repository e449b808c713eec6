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
    /// A Binance, Hyperliquid or Tardis recording (gzip or plain; the format is told from its
    /// first line); imported into the journal on first use. Give it once per market for a
    /// config with [[markets]].
    /// Default: the shipped fixture, unless --session or --from/--to select journal data.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    data: Vec<PathBuf>,
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
    if !cfg.markets.is_empty() {
        if let Some(k) = market_keys.iter().find(|k| k.starts_with("market.")) {
            bail!("config key `{k}` is set, and the config lists [[markets]]: set each market's keys in its [[markets]] entry instead of [market]");
        }
    }
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
    let mut files = b.data;
    let data = match (files.pop(), b.session) {
        (Some(f), _) if files.is_empty() => Data::File(f),
        (Some(f), _) => {
            files.push(f);
            Data::Files(files)
        }
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
    if b.json && o.markets.len() > 1 {
        println!("{}", markets_json(&o, predictor, events_per_s));
    } else if b.json {
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
    } else if o.markets.len() > 1 {
        print_markets(&o, predictor, events_per_s);
    } else {
        print_report(&o, predictor, events_per_s);
    }
    Ok(0)
}

/// A session of several markets: each market's summary, and the PnL of all in one currency.
fn markets_json(o: &backtest::Outcome, p: PredictorChoice, events_per_s: f64) -> serde_json::Value {
    let markets: Vec<serde_json::Value> = o
        .markets
        .iter()
        .map(|(m, s)| {
            let mut v = s.to_json();
            if let Some(x) = v.as_object_mut() {
                x.insert("symbol".into(), m.symbol.to_string().into());
                x.insert("venue".into(), m.venue.clone().into());
                x.insert("kind".into(), m.kind.as_str().into());
                x.insert("settle_currency".into(), m.settle_currency.clone().into());
            }
            v
        })
        .collect();
    let total = total_pnl(o);
    serde_json::json!({
        "markets": markets,
        "symbols": o.markets.iter().map(|(m, _)| m.symbol.to_string()).collect::<Vec<_>>(),
        "total_pnl": total.as_ref().map(|(v, c)| serde_json::json!({"amount": v.round_dp(8).normalize().to_string(), "currency": c})),
        "predictor": predictor_name(p),
        "source_session": o.source_session,
        "merged_from": o.merged_from,
        "from_seq": o.from_seq,
        "to_seq": o.to_seq,
        "predictor_cost_usd": o.cost_usd.round_dp(6).normalize().to_string(),
        "stopped_early": o.stopped,
        "wall_s": (o.wall_s * 1e6).round() / 1e6,
        "events_per_s": events_per_s.round(),
    })
}

/// Every market's total PnL in its quote currency at its final mid, added up when the
/// currencies can be (`markets::common_currency`).
fn total_pnl(o: &backtest::Outcome) -> Option<(rust_decimal::Decimal, String)> {
    let ms: Vec<_> = o.markets.iter().map(|(m, _)| m.clone()).collect();
    let currency = flashmm_core::markets::common_currency(&ms)?;
    let mut sum = rust_decimal::Decimal::ZERO;
    for (m, s) in &o.markets {
        let contract = flashmm_core::contract::Contract::of(m);
        let total = s.pnl().total;
        sum += match s.mid() {
            Some(mid) => contract.in_quote(total, mid),
            None if total.is_zero() => total,
            None => return None,
        };
    }
    Some((sum, currency))
}

fn print_markets(o: &backtest::Outcome, p: PredictorChoice, events_per_s: f64) {
    let symbols: Vec<String> = o
        .markets
        .iter()
        .map(|(m, _)| m.symbol.to_string())
        .collect();
    let from: Vec<String> = o.merged_from.iter().map(|s| s.to_string()).collect();
    println!(
        "FlashMM backtest: {} markets ({}), {} predictor, market data from session {} (merged from sessions {})",
        o.markets.len(),
        symbols.join(", "),
        predictor_name(p),
        o.source_session,
        from.join(", ")
    );
    for (m, s) in &o.markets {
        println!(
            "{} ({} {}, tick {}, lot {})",
            m.symbol,
            m.venue,
            m.kind.as_str(),
            m.tick_size,
            m.lot_size
        );
        print_market(m, &s.to_json());
    }
    match total_pnl(o) {
        Some((v, c)) => println!(
            "total PnL         {} {c} over every market, each at its final mid",
            v.round_dp(6).normalize()
        ),
        None => println!("total PnL         n/a: the markets' currencies cannot be added up"),
    }
    println!(
        "  model cost      {} USD",
        o.cost_usd.round_dp(6).normalize()
    );
    if let Some(why) = &o.stopped {
        println!("  stopped early   {why}");
    }
    println!(
        "  timing          {:.3} s wall, {:.0} events/s",
        o.wall_s, events_per_s
    );
    println!("  session         {} (flashmm journal ls)", o.session);
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
    print_market(m, &v);
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

/// One market's lines of the report, from its summary's JSON.
fn print_market(m: &flashmm_core::config::MarketConfig, v: &serde_json::Value) {
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
}
