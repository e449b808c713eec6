//! The terminal view of `flashmm report`.

use super::SessionView;
use flashmm_core::event::when;
use serde_json::Value;
use std::fmt::Write;

fn val(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "n/a".into(),
        other => other.to_string(),
    }
}

impl SessionView {
    pub fn to_text(&self) -> String {
        let v = self.to_json();
        let s_ = &v["summary"];
        let g = |k: &str| val(&s_[k]);
        let mut s = String::new();
        let p = &self.picked;
        let _ = writeln!(
            s,
            "FlashMM session {}{} ({}): {} .. {} ({} s)",
            p.info.id,
            if p.unfinished() { " UNFINISHED" } else { "" },
            p.describe(),
            when::format(self.first_ts),
            when::format(self.last_ts),
            val(&v["duration_s"])
        );
        if let Some(c) = p.caveat() {
            let _ = writeln!(s, "  {c}");
        } else if let Some(m) = p.market_read() {
            let _ = writeln!(s, "  data            {m}");
        }
        if let [(first, _), rest @ ..] = self.markets.as_slice() {
            let _ = writeln!(
                s,
                "  markets         {} quoted together; the lines below are {}'s, then each market's",
                self.markets.len(),
                first.symbol
            );
            let _ = rest;
        }
        let _ = writeln!(s, "  market events   {}", g("events"));
        let _ = writeln!(
            s,
            "  quotes          {} decisions, {} orders, {} cancels, {} rejects",
            g("quotes"),
            g("orders"),
            g("cancels"),
            g("rejects")
        );
        let _ = writeln!(
            s,
            "  fills           {} ({} maker, {} taker), volume {} ({} quote)",
            g("fills"),
            g("maker_fills"),
            g("taker_fills"),
            g("volume"),
            g("notional")
        );
        let pnl = |k: &str| val(&s_["pnl"][k]);
        let _ = writeln!(
            s,
            "  PnL             total {} = realized {} + unrealized {} - fees {}{}",
            pnl("total"),
            pnl("realized"),
            pnl("unrealized"),
            pnl("fees"),
            funding_term(s_)
        );
        let _ = writeln!(
            s,
            "  position        final {}, max |position| {}, final mid {}",
            g("final_position"),
            g("max_abs_position"),
            g("final_mid")
        );
        let _ = writeln!(
            s,
            "  spread (bps)    quoted {} avg, market {} time-weighted",
            g("avg_quoted_spread_bps"),
            g("avg_market_spread_bps")
        );
        for h in &self.horizons {
            let m = &v["markouts"][h.label()];
            let _ = writeln!(
                s,
                "  markout {:<7} mean {} bps, median {}, p10 {}, p90 {} ({} fills, {} with no data)",
                h.label(),
                val(&m["mean_bps"]),
                val(&m["median_bps"]),
                val(&m["p10_bps"]),
                val(&m["p90_bps"]),
                val(&m["scored"]),
                val(&m["no_data"])
            );
        }
        let m = &v["model"];
        let lat = &m["latency_ms"];
        let _ = writeln!(
            s,
            "  model           {} requests, {} answers ({} failed), latency p50 {} ms, p90 {} ms, max {} ms; cost {} USD; tokens {} in, {} out",
            val(&m["requests"]),
            val(&m["answers"]),
            val(&m["failures"]),
            val(&lat["p50"]),
            val(&lat["p90"]),
            val(&lat["max"]),
            val(&m["cost_usd"]),
            self.usage.prompt,
            self.usage.completion
        );
        let outcomes = &m["outcomes"];
        let count = |k: &str| outcomes[k].as_u64().unwrap_or(0);
        let cancelled = m["failure_kinds"]["cancelled"].as_u64().unwrap_or(0);
        let age = &m["answer_age_ms"];
        let _ = writeln!(
            s,
            "  model calls     {} gave up ({} cancelled, {} answered after), {} stale, {} superseded, {} unknown; answer age at quote p50 {} ms, p90 {} ms, max {} ms; {} of {} quote decisions used an answer",
            count("gave_up"),
            cancelled,
            count("answered_after_give_up"),
            count("stale"),
            count("superseded"),
            count("unknown"),
            val(&age["p50"]),
            val(&age["p90"]),
            val(&age["max"]),
            val(&m["decisions_with_answer"]),
            val(&m["quote_decisions"]),
        );
        let _ = writeln!(
            s,
            "  predictions     hit rate {} over {} directional calls",
            g("prediction_hit_rate"),
            g("prediction_calls_scored")
        );
        for (m, sum) in &self.markets {
            let j = sum.to_json();
            let q = |k: &str| val(&j[k]);
            let _ = writeln!(
                s,
                "  {:<15} {} events, {} decisions, {} fills, volume {}, PnL {} {}{}, final position {}, quoted spread {} bps, markout 5s {} bps",
                m.symbol.to_string(),
                q("events"),
                q("quotes"),
                q("fills"),
                q("volume"),
                val(&j["pnl"]["total"]),
                m.settle_currency,
                funding_term(&j),
                q("final_position"),
                q("avg_quoted_spread_bps"),
                val(&j["markout_bps"]["5s"])
            );
        }
        let _ = writeln!(s, "  risk actions    {}", self.risk.len());
        for r in &self.risk {
            let market = match (self.markets.is_empty(), r.symbol) {
                (true, _) => String::new(),
                (false, Some(y)) => format!("{y} "),
                (false, None) => "all markets ".into(),
            };
            let _ = writeln!(
                s,
                "    {}  seq {:>7}  {market}{:<15} {:<9} {}",
                when::format(r.ts_ns),
                r.seq,
                serde_json::to_value(r.kind)
                    .ok()
                    .and_then(|k| k.as_str().map(String::from))
                    .unwrap_or_default(),
                if r.engaged { "engaged" } else { "released" },
                r.detail
            );
        }
        if !self.gates.is_empty() {
            let _ = writeln!(s, "  predictor gate  {} changes", self.gates.len());
        }
        let _ = writeln!(
            s,
            "  charts          flashmm report --session {} --html report.html; worst fills: flashmm postmortem --session {} --worst 5",
            p.info.id, p.info.id
        );
        s
    }
}

/// `+ funding X (N charges)` when the session paid or received funding, else nothing.
pub(crate) fn funding_term(summary: &serde_json::Value) -> String {
    match summary["fundings"].as_u64() {
        Some(n) if n > 0 => format!(
            " + funding {} ({n} funding times)",
            summary["pnl"]["funding"].as_str().unwrap_or("n/a")
        ),
        _ => String::new(),
    }
}
