//! `flashmm postmortem --json`: one object; decimals are strings.

use super::context::{BookView, TradeNear};
use super::{FillStudy, Postmortem, Select};
use crate::markout::Mark;
use flashmm_core::event::when;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Map, Value};

pub const SIGN: &str = "markouts are positive when the mid moved in our favour after the fill: bps of the fill price, quote = the same move x the fill's quantity";

fn d(x: Decimal) -> Value {
    Value::String(x.normalize().to_string())
}

fn book(b: &Option<BookView>) -> Value {
    let Some(b) = b else { return Value::Null };
    let levels = |ls: &[flashmm_core::event::Level]| -> Vec<Value> {
        ls.iter()
            .map(|l| {
                json!([
                    l.price.normalize().to_string(),
                    l.qty.normalize().to_string()
                ])
            })
            .collect()
    };
    json!({
        "seq": b.seq,
        "ts": b.seq.map(|_| when::format(b.ts_ns)),
        "after_kind": b.kind,
        "mid": b.mid.map(d),
        "bids": levels(&b.bids),
        "asks": levels(&b.asks),
    })
}

pub(super) fn trade(t: &TradeNear) -> Value {
    json!({
        "seq": t.seq,
        "ts": when::format(t.ts_ns),
        "dt_ms": (t.dt_ns as f64 / 1e6 * 1000.0).round() / 1000.0,
        "price": d(t.price),
        "qty": d(t.qty),
        "aggressor": t.aggressor.as_str(),
    })
}

pub fn liquidity(l: flashmm_core::event::Liquidity) -> &'static str {
    match l {
        flashmm_core::event::Liquidity::Maker => "maker",
        flashmm_core::event::Liquidity::Taker => "taker",
    }
}

impl Postmortem {
    pub fn to_json(&self) -> Value {
        let p = &self.picked;
        json!({
            "session": p.info.id,
            "mode": p.info.mode.as_str(),
            "label": p.info.label,
            "symbol": p.symbol(),
            "status": p.info.status_word(),
            "state": p.info.state(),
            "finished": p.info.finished(),
            "last_seq": p.info.last_seq,
            "caveat": p.caveat(),
            "horizons": self.horizons.iter().map(|h| h.label()).collect::<Vec<_>>(),
            "rank_by": self.rank_by.label(),
            "select": match self.select {
                Select::All => json!({"all": true}),
                Select::Worst(n) => json!({"worst": n}),
                Select::Fill(s) => json!({"fill": s}),
            },
            "markout_sign": SIGN,
            "fills_in_session": self.fills_in_session,
            "no_data_at_rank_by": self.unscored_at_rank,
            "fills": self.fills.iter().map(|f| self.fill_json(f)).collect::<Vec<_>>(),
            "funding": {
                "total": d(self.funding.iter().map(|c| c.funding.amount).sum::<Decimal>()),
                "charges": self.funding.iter().map(|c| json!({
                    "seq": c.seq,
                    "ts": when::format(c.ts_ns),
                    "due": when::format(c.funding.due_ns),
                    "symbol": c.symbol.to_string(),
                    "rate": d(c.funding.rate),
                    "position": d(c.funding.position),
                    "mark": d(c.funding.mark),
                    "amount": d(c.funding.amount),
                })).collect::<Vec<_>>(),
            },
        })
    }

    fn fill_json(&self, f: &FillStudy) -> Value {
        let mut bps = Map::new();
        let mut quote = Map::new();
        let mut mid = Map::new();
        let mut no_data = Vec::new();
        for (h, m) in self.horizons.iter().zip(&f.marks) {
            let k = h.label();
            match m {
                Mark::Scored {
                    mid: m,
                    bps: b,
                    quote: q,
                } => {
                    bps.insert(k.clone(), d(b.round_dp(4)));
                    quote.insert(k.clone(), d(q.round_dp(8)));
                    mid.insert(k, d(*m));
                }
                Mark::NoData => {
                    bps.insert(k.clone(), Value::Null);
                    quote.insert(k.clone(), Value::Null);
                    mid.insert(k.clone(), Value::Null);
                    no_data.push(k);
                }
            }
        }
        let c = &f.chain;
        let chain: Vec<Value> = c
            .links
            .iter()
            .map(|l| {
                json!({"seq": l.seq, "kind": l.kind, "ts": when::format(l.ts_ns), "via": l.via, "from": l.from})
            })
            .collect();
        let order = c.order.as_ref().map(|(seq, ts, o)| {
            json!({
                "seq": seq, "ts": when::format(*ts), "cid": o.cid, "side": o.side.as_str(),
                "price": d(o.price), "qty": d(o.qty), "post_only": o.post_only, "level": o.level,
            })
        });
        let decision = c.decision.as_ref().map(|(seq, ts, q)| {
            let mut v = serde_json::to_value(q).unwrap_or(Value::Null);
            if let Some(m) = v.as_object_mut() {
                let mid = q.features.mid;
                let in_bps = |x: Decimal| {
                    if mid.is_zero() {
                        Value::Null
                    } else {
                        d((x / mid * dec!(10000)).round_dp(4))
                    }
                };
                m.insert("seq".into(), json!(seq));
                m.insert("ts".into(), json!(when::format(*ts)));
                m.insert(
                    "trigger".into(),
                    c.trigger
                        .as_ref()
                        .map_or(Value::Null, |t| json!({"seq": t.seq, "kind": t.kind})),
                );
                m.insert("prediction_skew_bps".into(), in_bps(q.prediction_skew));
                m.insert("inventory_skew_bps".into(), in_bps(q.inventory_skew));
                m.insert(
                    "signal_bps".into(),
                    d(flashmm_core::blend(
                        q.prediction.as_ref(),
                        q.rules.as_ref(),
                        q.model_weight,
                    )),
                );
            }
            v
        });
        let prediction = c.response.as_ref().map(|(seq, ts, r)| {
            let used = c.decision.as_ref().and_then(|(_, _, q)| q.prediction.as_ref());
            let (ok, failure) = match &r.result {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e)),
            };
            json!({
                "response_seq": seq,
                "answered_at": when::format(*ts),
                "request_seq": c.request.as_ref().map(|r| r.0),
                "asked_at": c.request.as_ref().map(|r| when::format(r.1)),
                "request_id": r.request_id,
                "source": r.source.as_str(),
                "age_ms": used.map(|u| u.age_ms),
                "direction": ok.map(|p| p.direction.as_str()),
                "confidence": ok.map(|p| d(p.confidence)),
                "price_change_bps": ok.map(|p| d(p.price_change_bps)),
                "reasoning": ok.map(|p| p.reasoning.clone()),
                "failure": failure.map(|f| json!({"kind": f.kind.as_str(), "message": f.message})),
                "latency_ms": r.latency_ms,
                "cost_usd": d(r.cost_usd),
                "usage": r.usage,
                "http_attempts": r.http.as_ref().map(|h| h.attempts.len()),
                "raw": r.raw,
                "prompt": c.request.as_ref().and_then(|(_, _, q)| q.prompt.as_ref()).map(|p| json!({"developer": p.developer, "user": p.user})),
            })
        });
        json!({
            "seq": f.seq,
            "ts": when::format(f.ts_ns),
            "ts_ns": f.ts_ns,
            "rank": f.rank,
            "symbol": f.symbol.to_string(),
            "cid": f.fill.cid,
            "side": f.fill.side.as_str(),
            "price": d(f.fill.price),
            "qty": d(f.fill.qty),
            "liquidity": liquidity(f.fill.liquidity),
            "fee": d(f.fill.fee),
            "leaves_qty": d(f.fill.leaves_qty),
            "position_after": d(f.position_after),
            "markout_bps": bps,
            "markout_quote": quote,
            "markout_mid": mid,
            "no_data_after": no_data,
            "chain": chain,
            "chain_broken": c.broken,
            "order": order,
            "decision": decision,
            "prediction": prediction,
            "book_before": book(&f.context.before),
            "book_after": book(&f.context.after),
            "trades": f.context.trades.iter().map(trade).collect::<Vec<_>>(),
            "hints": f.hints,
        })
    }
}
