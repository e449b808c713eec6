//! Quote generation: reservation price, half-spread and a ladder of levels per side.
//!
//! reservation = mid + prediction skew - inventory skew, where
//!   prediction skew = mid x signal_bps/1e4 x strategy.prediction_weight, where signal_bps
//!     blends the prediction's and the rules' confidence x price_change_bps (see core::blend)
//!   inventory skew  = q x gamma x (sigma x mid)^2 x T   (the Avellaneda-Stoikov term)
//! and the half-spread is base + vol_spread_mult x sigma (bps), never below min_spread / 2.

use crate::config::Config;
use crate::event::{Bound, Features, QuoteLevel, Side};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;

const BPS: Decimal = dec!(10000);

#[derive(Clone, Debug, PartialEq)]
pub struct Ladder {
    pub reservation: Decimal,
    pub prediction_skew: Decimal,
    pub inventory_skew: Decimal,
    pub half_spread_bps: Decimal,
    pub bids: Vec<QuoteLevel>,
    pub asks: Vec<QuoteLevel>,
    pub bounds: Vec<Bound>,
}

/// Rounds toward the side that is safe for us: bids down, asks up; sizes always down.
/// A tick of zero or below is no grid, and leaves the price as it is.
pub fn round_price(price: Decimal, tick: Decimal, side: Side) -> Decimal {
    if tick <= Decimal::ZERO {
        return price;
    }
    // A power-of-ten tick (0.01) is a rounding to decimal places: much cheaper than dividing.
    if tick.mantissa() == 1 {
        let strategy = match side {
            Side::Buy => RoundingStrategy::ToNegativeInfinity,
            Side::Sell => RoundingStrategy::ToPositiveInfinity,
        };
        return price
            .round_dp_with_strategy(tick.scale(), strategy)
            .normalize();
    }
    // The remainder is exact, where price / tick is rounded to 28 digits: a price a hair below
    // a tick would round up to it, and a bid with it.
    let Some(rem) = price.checked_rem(tick) else {
        return price;
    };
    if rem.is_zero() {
        return price.normalize();
    }
    let toward_zero = price - rem;
    let away = if price.is_sign_negative() {
        toward_zero.checked_sub(tick)
    } else {
        toward_zero.checked_add(tick)
    };
    let down_is_toward_zero = !price.is_sign_negative();
    let rounded = match (side, down_is_toward_zero) {
        (Side::Buy, true) | (Side::Sell, false) => Some(toward_zero),
        (Side::Buy, false) | (Side::Sell, true) => away,
    };
    // No multiple on the safe side is representable: off the grid, for the venue to refuse,
    // is safer than rounding the wrong way.
    rounded.unwrap_or(price).normalize()
}

/// Rounds a size toward zero to a multiple of `lot`; a lot of zero or below is no grid.
pub fn round_qty(qty: Decimal, lot: Decimal) -> Decimal {
    if lot <= Decimal::ZERO {
        return qty;
    }
    if lot.mantissa() == 1 {
        return qty
            .round_dp_with_strategy(lot.scale(), RoundingStrategy::ToZero)
            .normalize();
    }
    // Exact, as in round_price; and toward zero for a negative size, as the path above.
    match qty.checked_rem(lot) {
        Some(rem) => (qty - rem).normalize(),
        None => qty,
    }
}

fn from_f64(x: f64, dp: u32) -> Decimal {
    Decimal::from_f64(x)
        .map(|d| d.round_dp(dp))
        .unwrap_or(Decimal::ZERO)
}

/// `None` when there is no two-sided market to quote around.
/// `signal_bps` is the blended expected move (confidence x bps) of the prediction and the rules.
pub fn ladder(
    cfg: &Config,
    f: &Features,
    signal_bps: Decimal,
    position: Decimal,
) -> Option<Ladder> {
    let s = &cfg.strategy;
    let m = &cfg.market;
    let mid = f.mid;
    if mid <= Decimal::ZERO || f.best_bid <= Decimal::ZERO || f.best_ask <= f.best_bid {
        return None;
    }
    let mut bounds = Vec::new();
    let prediction_skew = (mid * signal_bps / BPS * s.prediction_weight).round_dp(8);
    // Before the estimate has warmed up, volatility neither widens nor skews the quote.
    let sigma_bps = if f.vol_samples >= cfg.features.vol_min_samples {
        f.volatility_bps
    } else {
        0.0
    };
    let sigma_price = sigma_bps / 1e4 * mid.to_f64().unwrap_or(0.0);
    // Inventory risk is in the base asset: an inverse contract's quantity is in contracts.
    let contract = crate::contract::Contract::of(m);
    let inventory = contract.base_qty(position, mid);
    let inventory_skew = from_f64(
        inventory.to_f64().unwrap_or(0.0)
            * s.gamma
            * sigma_price
            * sigma_price
            * s.inventory_horizon_s,
        8,
    );
    let reservation = mid + prediction_skew - inventory_skew;
    let mut half = s.base_half_spread_bps + s.vol_spread_mult * from_f64(sigma_bps, 4);
    if half * Decimal::TWO < s.min_spread_bps {
        half = s.min_spread_bps / Decimal::TWO;
        bounds.push(Bound::MinSpread);
    }
    let mut bids = Vec::with_capacity(s.levels as usize);
    let mut asks = Vec::with_capacity(s.levels as usize);
    let mut size = if s.base_notional > Decimal::ZERO {
        contract.qty_for(s.base_notional, mid)
    } else {
        s.base_size
    };
    let mid_bp = mid / BPS;
    for i in 0..s.levels as u8 {
        let offset = mid_bp * (half + s.level_spacing_bps * Decimal::from(i));
        let qty = round_qty(size, m.lot_size);
        size *= s.size_multiplier;
        if qty < m.min_qty {
            bounds.push(Bound::MinQty {
                side: Side::Buy,
                level: i,
            });
            bounds.push(Bound::MinQty {
                side: Side::Sell,
                level: i,
            });
            continue;
        }
        let mut bid = round_price(reservation - offset, m.tick_size, Side::Buy);
        if bid >= f.best_ask {
            bid = f.best_ask - m.tick_size;
            bounds.push(Bound::PostOnlyClamp {
                side: Side::Buy,
                level: i,
            });
        }
        if let Some(prev) = bids.last().map(|l: &QuoteLevel| l.price) {
            if bid >= prev {
                bid = prev - m.tick_size;
            }
        }
        let mut ask = round_price(reservation + offset, m.tick_size, Side::Sell);
        if ask <= f.best_bid {
            ask = f.best_bid + m.tick_size;
            bounds.push(Bound::PostOnlyClamp {
                side: Side::Sell,
                level: i,
            });
        }
        if let Some(prev) = asks.last().map(|l: &QuoteLevel| l.price) {
            if ask <= prev {
                ask = prev + m.tick_size;
            }
        }
        if bid > Decimal::ZERO {
            bids.push(QuoteLevel {
                level: i,
                price: bid,
                qty,
            });
        }
        asks.push(QuoteLevel {
            level: i,
            price: ask,
            qty,
        });
    }
    Some(Ladder {
        reservation,
        prediction_skew,
        inventory_skew,
        half_spread_bps: half,
        bids,
        asks,
        bounds,
    })
}

#[cfg(test)]
#[path = "quote_rounding_tests.rs"]
mod rounding_tests;

#[cfg(test)]
#[path = "quote_ladder_tests.rs"]
mod ladder_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn features(bid: Decimal, ask: Decimal) -> Features {
        Features {
            best_bid: bid,
            best_ask: ask,
            bid_qty: dec!(1),
            ask_qty: dec!(1),
            mid: (bid + ask) / Decimal::TWO,
            ..Features::default()
        }
    }

    #[test]
    fn rounding_is_safe_for_each_side() {
        assert_eq!(
            round_price(dec!(100.017), dec!(0.01), Side::Buy),
            dec!(100.01)
        );
        assert_eq!(
            round_price(dec!(100.011), dec!(0.01), Side::Sell),
            dec!(100.02)
        );
        assert_eq!(
            round_price(dec!(100.01), dec!(0.01), Side::Sell),
            dec!(100.01)
        );
        assert_eq!(round_qty(dec!(0.0019999), dec!(0.001)), dec!(0.001));
    }

    #[test]
    fn symmetric_ladder_without_skew() {
        let cfg = Config::default();
        let f = features(dec!(9999.99), dec!(10000.01));
        let l = ladder(&cfg, &f, Decimal::ZERO, Decimal::ZERO).unwrap();
        assert_eq!(l.reservation, dec!(10000));
        // 1 bp half spread on 10000 = 1.00; level spacing 1 bp.
        let bids: Vec<_> = l.bids.iter().map(|q| q.price).collect();
        let asks: Vec<_> = l.asks.iter().map(|q| q.price).collect();
        assert_eq!(bids, vec![dec!(9999), dec!(9998), dec!(9997)]);
        assert_eq!(asks, vec![dec!(10001), dec!(10002), dec!(10003)]);
        let sizes: Vec<_> = l.bids.iter().map(|q| q.qty).collect();
        assert_eq!(sizes, vec![dec!(0.001), dec!(0.0015), dec!(0.00225)]);
    }

    #[test]
    fn bullish_prediction_and_long_inventory_move_the_reservation() {
        let cfg = Config::default();
        let f = features(dec!(9999.99), dec!(10000.01));
        // confidence 0.5 x 4 bps = 2 bps of signal.
        let l = ladder(&cfg, &f, dec!(2), Decimal::ZERO).unwrap();
        // 10000 x 2/1e4 x 0.5 = 1.
        assert_eq!(l.prediction_skew, dec!(1));
        assert_eq!(l.reservation, dec!(10001));
        let mut f2 = f.clone();
        f2.volatility_bps = 1.0;
        f2.vol_samples = 1000;
        let long = ladder(&cfg, &f2, Decimal::ZERO, dec!(0.05)).unwrap();
        // 0.05 x 0.5 x (1e-4 x 10000)^2 x 60 = 1.5
        assert_eq!(long.inventory_skew, dec!(1.5));
        assert_eq!(long.reservation, dec!(9998.5));
    }

    #[test]
    fn post_only_clamp_keeps_bids_below_the_ask() {
        let mut cfg = Config::default();
        cfg.strategy.base_half_spread_bps = dec!(0);
        cfg.strategy.min_spread_bps = dec!(0);
        cfg.strategy.vol_spread_mult = dec!(0);
        let f = features(dec!(100.00), dec!(100.01));
        let l = ladder(&cfg, &f, dec!(100), Decimal::ZERO).unwrap();
        assert!(l.bids.iter().all(|q| q.price < f.best_ask));
        assert!(l.asks.iter().all(|q| q.price > f.best_bid));
        assert!(l.bounds.contains(&Bound::PostOnlyClamp {
            side: Side::Buy,
            level: 0
        }));
    }
}
