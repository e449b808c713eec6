//! What-if hints: what the decision's skews and bounds did to the filled order, in bps and in
//! quote currency, and which configuration key would have changed it. They read the journaled
//! decision only; they are estimates (one order, tick rounding, no re-simulation), which a
//! `flashmm replay --set KEY=VALUE` what-if then measures.

use super::chain::Chain;
use super::context::Context;
use crate::horizon::Horizon;
use crate::markout::Mark;
use flashmm_core::config::Config;
use flashmm_core::event::{Bound, Fill, Side};
use flashmm_core::quote::round_price;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const BPS: Decimal = dec!(10000);

fn bps(x: Decimal) -> String {
    x.round_dp(2).normalize().to_string()
}

fn px(x: Decimal) -> String {
    x.normalize().to_string()
}

fn word(side: Side) -> &'static str {
    match side {
        Side::Buy => "bid",
        Side::Sell => "ask",
    }
}

/// How a price shift of `shift` (quote currency, + is up) moved an order on `side`.
fn moved(side: Side, shift: Decimal, mid: Decimal) -> String {
    let dir = if shift > Decimal::ZERO { "up" } else { "down" };
    let toward = (side == Side::Buy) == (shift > Decimal::ZERO);
    format!(
        "moved the {} {dir} by {} bps ({} quote), {} the market",
        word(side),
        bps((shift / mid * BPS).abs()),
        px(shift.abs().round_dp(8)),
        if toward { "toward" } else { "away from" }
    )
}

pub struct Inputs<'a> {
    pub fill: &'a Fill,
    pub fill_ts: i64,
    pub chain: &'a Chain,
    pub context: &'a Context,
    pub marks: &'a [Mark],
    pub horizons: &'a [Horizon],
    pub cfg: &'a Config,
}

pub fn hints(i: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    let (Some((_, order_ts, order)), Some((_, _, q))) = (&i.chain.order, &i.chain.decision) else {
        out.push("no quote decision on the chain: nothing to say about skews or bounds".into());
        return out;
    };
    let side = i.fill.side;
    let mid = q.features.mid;
    if mid <= Decimal::ZERO {
        return out;
    }
    let tick = i.cfg.market.tick_size;
    let s = &i.cfg.strategy;
    // The edge the order was quoted with, and what the market then did to it.
    let edge = side.sign() * (mid - order.price) / mid * BPS;
    let spacing = s.level_spacing_bps * Decimal::from(order.level);
    // The skews move the whole ladder; toward the market is up for a bid, down for an ask.
    let lean = side.sign() * (q.prediction_skew - q.inventory_skew) / mid * BPS;
    out.push(format!(
        "quoted {} bps from the decision's mid {}: half-spread {} bps{}, {} {} bps of net skew {} the market, then tick rounding and clamps (level {})",
        bps(edge),
        px(mid),
        bps(q.half_spread_bps),
        if order.level > 0 {
            format!(" + {} bps level spacing", bps(spacing))
        } else {
            String::new()
        },
        if lean >= Decimal::ZERO { "less" } else { "plus" },
        bps(lean.abs()),
        if lean >= Decimal::ZERO { "toward" } else { "away from" },
        order.level
    ));
    let worst = i
        .marks
        .iter()
        .zip(i.horizons)
        .filter_map(|(m, h)| m.bps().map(|b| (b, h)))
        .min_by(|a, b| a.0.cmp(&b.0));
    if let Some((b, h)) = worst {
        if b < Decimal::ZERO {
            out.push(format!(
                "the mid moved {} bps against this fill by {}: quoting about {} bps further out (half-spread near {} bps instead of {}; strategy.base_half_spread_bps = {}, strategy.vol_spread_mult = {}) would have broken even there",
                bps(-b),
                h.label(),
                bps(-b),
                bps(q.half_spread_bps - b),
                bps(q.half_spread_bps),
                px(s.base_half_spread_bps),
                px(s.vol_spread_mult)
            ));
        }
    }
    if !q.inventory_skew.is_zero() {
        let shift = -q.inventory_skew;
        out.push(format!(
            "the inventory skew (position {} at the decision) {}; with strategy.gamma = 0 (now {}) this {} would have been near {}",
            px(q.position),
            moved(side, shift, mid),
            s.gamma,
            word(side),
            px(round_price(order.price - shift, tick, side))
        ));
    }
    if !q.prediction_skew.is_zero() {
        let shift = q.prediction_skew;
        let model = q
            .prediction
            .as_ref()
            .map_or("no model answer".to_string(), |p| {
                format!(
                    "model {} {} x {} bps at weight {}",
                    p.direction.as_str(),
                    px(p.confidence),
                    px(p.price_change_bps),
                    px(q.model_weight.round_dp(4))
                )
            });
        let rules = q.rules.as_ref().map_or("no rules signal".to_string(), |r| {
            format!(
                "rules {} {} x {} bps",
                r.direction.as_str(),
                px(r.confidence),
                px(r.price_change_bps)
            )
        });
        let signal = flashmm_core::blend(q.prediction.as_ref(), q.rules.as_ref(), q.model_weight);
        let mut h = format!(
            "the prediction skew (signal {} bps = {model}, {rules}) {}; with strategy.prediction_weight = 0 (now {}) this {} would have been near {}",
            bps(signal),
            moved(side, shift, mid),
            px(s.prediction_weight),
            word(side),
            px(round_price(order.price - shift, tick, side))
        );
        let toward = (side == Side::Buy) == (shift > Decimal::ZERO);
        if toward && worst.is_some_and(|(b, _)| b < Decimal::ZERO) {
            h.push_str(": the signal leaned into a fill that then lost");
        }
        out.push(h);
    }
    for b in &q.bounds {
        let text = match b {
            Bound::MinSpread => format!(
                "the half-spread was raised to the minimum: strategy.min_spread_bps = {} keeps at least {} bps a side, more than the base and volatility terms asked for",
                px(s.min_spread_bps),
                bps(s.min_spread_bps / Decimal::TWO)
            ),
            Bound::PostOnlyClamp { side: bs, level } if *bs == side && *level == order.level => {
                let touch = match side {
                    Side::Buy => q.features.best_ask,
                    Side::Sell => q.features.best_bid,
                };
                format!(
                    "the target price crossed the book (touch {}), so this order was pulled back one tick inside it to stay post-only: the skews had pushed it through the market",
                    px(touch)
                )
            }
            Bound::PositionLimit { side: bs, level } if *bs == side && *level == order.level => {
                format!(
                    "this level's size was cut by risk.max_position = {} (every open order counts as filled)",
                    px(i.cfg.risk.max_position)
                )
            }
            Bound::NotionalLimit { side: bs, level } if *bs == side && *level == order.level => {
                format!(
                    "this level's size was cut by risk.max_notional = {}",
                    px(i.cfg.risk.max_notional)
                )
            }
            Bound::TotalNotionalLimit { side: bs, level }
                if *bs == side && *level == order.level =>
            {
                format!(
                    "this level's size was cut by risk.max_total_notional = {}: the other markets of the session held the rest",
                    px(i.cfg.risk.max_total_notional)
                )
            }
            Bound::MinQty { side: bs, level } if *bs == side && *level == order.level => format!(
                "this level's size fell below market.min_qty = {}",
                px(i.cfg.market.min_qty)
            ),
            _ => continue,
        };
        out.push(text);
    }
    if let Some(p) = &q.prediction {
        let ttl = i.cfg.predict.ttl_ms;
        if ttl > 0 && p.age_ms * 2 > ttl {
            out.push(format!(
                "the model's answer was {:.1} s old at the decision (predict.ttl_ms = {ttl}), so it weighed only {} of predict.model_weight = {}",
                p.age_ms as f64 / 1000.0,
                px(q.model_weight.round_dp(4)),
                px(i.cfg.predict.model_weight)
            ));
        }
    }
    if let Some(fill_mid) = i.context.before.as_ref().and_then(|b| b.mid) {
        let rest = i.fill_ts - order_ts;
        let drift = side.sign() * (fill_mid - mid) / mid * BPS;
        if rest > 0 && !drift.is_zero() {
            out.push(format!(
                "the order rested {:.3} s before this fill; meanwhile the mid moved {} bps {} (from {} to {}; strategy.refresh_tolerance_bps = {} keeps an order that is close enough to its target)",
                rest as f64 / 1e9,
                bps(drift.abs()),
                if drift < Decimal::ZERO { "against it" } else { "in its favour" },
                px(mid),
                px(fill_mid),
                px(s.refresh_tolerance_bps)
            ));
        }
    }
    out
}
