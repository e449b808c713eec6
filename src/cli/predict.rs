//! `flashmm predict --once`: one model call about a recorded moment, journaled as a probe
//! session.

use super::{open, ConfigArgs};
use anyhow::{bail, Result};
use clap::Args;
use flashmm::mode::backtest::{self, Data};
use flashmm::mode::probe::{self, ProbeArgs};
use flashmm_core::event::when;
use flashmm_venue::azure::{AzureClient, AzurePredictor};
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct PredictCmd {
    /// Required: one call, then exit.
    #[arg(long)]
    once: bool,
    /// A Binance or Hyperliquid recording (gzip or plain, the format told from its content);
    /// imported on first use. Default: the shipped fixture.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    data: Option<PathBuf>,
    /// Take the market from this journal session instead.
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// The moment to describe: 2024-08-08T23:58:00Z (default: the end of the data).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn run_predict(dir: &std::path::Path, p: PredictCmd) -> Result<i32> {
    if !p.once {
        bail!("flashmm predict needs --once: it makes one model call and exits (live mode asks on its own cadence)");
    }
    let cfg = flashmm::config::load(p.config.config.as_deref(), &p.config.sets)?;
    let cfg = match cfg.markets.len() {
        0 => cfg,
        1 => cfg.market_configs()?.remove(0),
        n => anyhow::bail!(
            "the config lists {n} [[markets]] and `flashmm predict` works on one market; keep one entry (several markets are for `flashmm backtest`, docs/markets.md)"
        ),
    };
    let at =
        p.at.as_deref()
            .map(|v| when::parse("--at", v, when::Edge::Start))
            .transpose()?;
    let data = match (p.data, p.session) {
        (Some(f), _) => Data::File(f),
        (None, Some(id)) => Data::Journal(Some(id)),
        (None, None) => Data::File(backtest::default_fixture()),
    };
    let client = AzureClient::from_env(&cfg.azure)?;
    let mut predictor = AzurePredictor::new(client)?;
    let journal = open(dir)?;
    let mut writer = journal.writer()?;
    let o = probe::run(&mut writer, ProbeArgs { data, at, cfg }, &mut predictor)?;
    writer.close()?;
    let r = &o.response;
    let http = r.http.clone().unwrap_or_default();
    let last_status = http.attempts.last().and_then(|a| a.status);
    if p.json {
        let v = serde_json::json!({
            "session": o.session,
            "at": when::format(o.at_ts),
            "at_seq": o.at_seq,
            "ok": r.result.is_ok(),
            "prediction": r.result.as_ref().ok(),
            "failure": r.result.as_ref().err(),
            "usage": r.usage,
            "cost_usd": r.cost_usd.to_string(),
            "latency_ms": r.latency_ms,
            "http_status": last_status,
            "attempts": http.attempts.len(),
            "ratelimit_remaining_requests": http.ratelimit_remaining_requests,
            "ratelimit_remaining_tokens": http.ratelimit_remaining_tokens,
        });
        println!("{v}");
    } else {
        println!(
            "asked {} about {} (seq {} of session {}); journaled as session {}",
            predictor.client().url(),
            when::format(o.at_ts),
            o.at_seq,
            o.source_session,
            o.session
        );
        match &r.result {
            Ok(pr) => println!(
                "  prediction   {} confidence {} price change {} bps: {}",
                pr.direction.as_str(),
                pr.confidence,
                pr.price_change_bps,
                pr.reasoning
            ),
            Err(f) => println!("  failed       {}: {}", f.kind.as_str(), f.message),
        }
        if let Some(u) = &r.usage {
            println!(
                "  tokens       prompt {} (cached {}), completion {} (reasoning {})",
                u.prompt, u.cached, u.completion, u.reasoning
            );
        }
        println!("  cost         {} USD", r.cost_usd.round_dp(6));
        println!(
            "  latency      {} ms over {} attempt(s), last HTTP status {}",
            r.latency_ms,
            http.attempts.len(),
            last_status.map_or("none".to_string(), |s| s.to_string())
        );
    }
    Ok(if r.result.is_ok() { 0 } else { 1 })
}
