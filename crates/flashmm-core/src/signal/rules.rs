//! The seed's fallback rules, exactly:
//! - spread > 100 bps: neutral, confidence 0.6 (the book is too thin to read);
//! - best bid size / best ask size > 1.5: bullish, 0.7;
//! - that ratio < 0.5: bearish, 0.7;
//! - otherwise neutral, 0.5.
//!
//! The seed gives no magnitude, so a directional call predicts `predict.rules_signal_bps`.
//! An empty side (no sizes to compare) is neutral 0.5.

use super::{raw_json, Predictor};
use crate::event::{
    Direction, Features, Prediction, PredictionRequest, PredictionResponse, PredictorKind,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub fn predict(f: &Features, signal_bps: Decimal) -> Prediction {
    let (direction, confidence, bps, reasoning) = if f.bid_qty.is_zero() || f.ask_qty.is_zero() {
        (
            Direction::Neutral,
            dec!(0.5),
            Decimal::ZERO,
            "one side of the book is empty".to_string(),
        )
    } else if f.spread_bps > 100.0 {
        (
            Direction::Neutral,
            dec!(0.6),
            Decimal::ZERO,
            format!("spread {:.2} bps > 100", f.spread_bps),
        )
    } else if f.top_size_ratio > 1.5 {
        (
            Direction::Bullish,
            dec!(0.7),
            signal_bps,
            format!("bid/ask size ratio {:.3} > 1.5", f.top_size_ratio),
        )
    } else if f.top_size_ratio < 0.5 {
        (
            Direction::Bearish,
            dec!(0.7),
            -signal_bps,
            format!("bid/ask size ratio {:.3} < 0.5", f.top_size_ratio),
        )
    } else {
        (
            Direction::Neutral,
            dec!(0.5),
            Decimal::ZERO,
            format!(
                "bid/ask size ratio {:.3} within [0.5, 1.5]",
                f.top_size_ratio
            ),
        )
    };
    Prediction {
        direction,
        confidence,
        price_change_bps: bps,
        reasoning,
    }
}

pub struct Rules {
    pub signal_bps: Decimal,
}

impl Predictor for Rules {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Rules
    }

    fn answer(&mut self, req: &PredictionRequest, _now_ns: i64) -> PredictionResponse {
        let p = predict(&req.features, self.signal_bps);
        PredictionResponse {
            request_id: req.request_id,
            source: PredictorKind::Rules,
            raw: raw_json(&p),
            result: Ok(p),
            latency_ms: 0,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(spread: f64, bid_qty: Decimal, ask_qty: Decimal) -> Features {
        Features {
            spread_bps: spread,
            bid_qty,
            ask_qty,
            top_size_ratio: (bid_qty / ask_qty).try_into().unwrap_or(0.0),
            ..Features::default()
        }
    }

    #[test]
    fn seed_rules() {
        let s = dec!(2);
        let p = predict(&f(150.0, dec!(3), dec!(1)), s);
        assert_eq!((p.direction, p.confidence), (Direction::Neutral, dec!(0.6)));
        let p = predict(&f(1.0, dec!(3), dec!(1)), s);
        assert_eq!(
            (p.direction, p.confidence, p.price_change_bps),
            (Direction::Bullish, dec!(0.7), dec!(2))
        );
        let p = predict(&f(1.0, dec!(1), dec!(3)), s);
        assert_eq!(
            (p.direction, p.confidence, p.price_change_bps),
            (Direction::Bearish, dec!(0.7), dec!(-2))
        );
        let p = predict(&f(1.0, dec!(1), dec!(1)), s);
        assert_eq!((p.direction, p.confidence), (Direction::Neutral, dec!(0.5)));
        // Exactly 1.5 is not "> 1.5".
        let p = predict(&f(1.0, dec!(1.5), dec!(1)), s);
        assert_eq!(p.direction, Direction::Neutral);
    }
}
