//! `flashmm report --json`: one object; decimals are strings. Deterministic: the same journal
//! gives the same bytes.

use super::{quantile, SessionView};
use crate::chart::Bins;
use flashmm_core::event::when;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Bins of the markout histograms the page draws and the JSON lists.
pub const MARKOUT_BINS: usize = 12;

fn d(x: Decimal) -> Value {
    Value::String(x.normalize().to_string())
}

impl SessionView {
    pub fn markout_bins(&self, h: usize) -> Bins {
        let vals: Vec<f64> = self
            .scored(h)
            .iter()
            .map(|b| b.to_f64().unwrap_or(f64::NAN))
            .collect();
        Bins::of(&vals, MARKOUT_BINS)
    }

    pub fn to_json(&self) -> Value {
        let p = &self.picked;
        let mut markouts = Map::new();
        for (i, h) in self.horizons.iter().enumerate() {
            let mut v = self.scored(i);
            let scored = v.len();
            let mean = (scored > 0)
                .then(|| (v.iter().copied().sum::<Decimal>() / Decimal::from(scored)).round_dp(4));
            v.sort();
            let q = |x: f64| quantile(&v, x).map(|b| d(b.round_dp(4)));
            let bins = self.markout_bins(i);
            markouts.insert(
                h.label(),
                json!({
                    "scored": scored,
                    "no_data": self.marks.len() - scored,
                    "mean_bps": mean.map(d),
                    "p10_bps": q(0.1),
                    "median_bps": q(0.5),
                    "p90_bps": q(0.9),
                    "min_bps": v.first().map(|b| d(b.round_dp(4))),
                    "max_bps": v.last().map(|b| d(b.round_dp(4))),
                    "histogram": {"edges": bins.edges, "counts": bins.counts},
                }),
            );
        }
        let mut lat: Vec<u64> = self.answers.iter().map(|a| a.latency_ms).collect();
        lat.sort_unstable();
        let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
        let mut sources: BTreeMap<&str, u64> = BTreeMap::new();
        for a in &self.answers {
            *sources.entry(a.source.as_str()).or_default() += 1;
            if let Some(k) = a.failure {
                *failures.entry(k).or_default() += 1;
            }
        }
        let cost: Decimal = self.answers.iter().map(|a| a.cost_usd).sum();
        let mut ages = self.answer_ages_ms.clone();
        ages.sort_unstable();
        json!({
            "session": p.info.id,
            "mode": p.info.mode.as_str(),
            "label": p.info.label,
            "parent": p.info.parent,
            "source": p.info.source,
            "status": p.info.status_word(),
            "state": p.info.state(),
            "finished": p.info.finished(),
            "last_seq": p.info.last_seq,
            "market_read": p.reach.as_ref().map(|r| json!({
                "session": r.session,
                "from_seq": r.from_seq,
                "to_seq": r.read_to,
                "last_in_source": r.last,
                "complete": r.complete(),
            })),
            "caveat": p.caveat(),
            "version": p.start.as_ref().map(|s| s.version.clone()),
            "symbol": p.symbol(),
            "first_ts": when::format(self.first_ts),
            "last_ts": when::format(self.last_ts),
            "duration_s": ((self.last_ts - self.first_ts) as f64 / 1e6).round() / 1e3,
            "summary": self.summary.to_json(),
            "markouts": markouts,
            "model": {
                "requests": self.requests,
                "answers": self.answers.len(),
                "failures": failures.values().sum::<u64>(),
                "failure_kinds": failures,
                "sources": sources,
                "latency_ms": (!lat.is_empty()).then(|| json!({
                    "p50": quantile(&lat, 0.5),
                    "p90": quantile(&lat, 0.9),
                    "p99": quantile(&lat, 0.99),
                    "max": lat.last(),
                })),
                "cost_usd": d(cost),
                "tokens": self.usage,
                "outcomes": self.outcomes,
                "quote_decisions": self.decisions,
                "decisions_with_answer": ages.len(),
                "share_with_answer": (self.decisions > 0)
                    .then(|| (ages.len() as f64 / self.decisions as f64 * 1e4).round() / 1e4),
                "answer_age_ms": (!ages.is_empty()).then(|| json!({
                    "p50": quantile(&ages, 0.5),
                    "p90": quantile(&ages, 0.9),
                    "max": ages.last(),
                })),
            },
            "predictor_status": self.gates.iter().map(|g| json!({
                "seq": g.seq, "ts": when::format(g.ts_ns), "gate": g.gate, "detail": g.detail,
            })).collect::<Vec<_>>(),
            "risk_actions": self.risk.iter().map(|r| json!({
                "seq": r.seq, "ts": when::format(r.ts_ns), "kind": r.kind, "engaged": r.engaged, "detail": r.detail,
                "symbol": r.symbol.map(|y| y.to_string()),
            })).collect::<Vec<_>>(),
            "markets": self.markets.iter().map(|(m, s)| json!({
                "symbol": m.symbol.to_string(),
                "venue": m.venue,
                "kind": m.kind.as_str(),
                "settle_currency": m.settle_currency,
                "summary": s.to_json(),
            })).collect::<Vec<_>>(),
        })
    }
}
