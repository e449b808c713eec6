//! The magnitudes market input may have. Importers refuse a line outside them, naming it, and the
//! engine refuses such an entry whatever its source (an unsigned JSONL import, a live frame), so
//! no product, sum or ratio of input values can overflow `Decimal` (about 7.9e28) in the core,
//! the simulated venue or a report.
//!
//! The bounds are wide enough for any listed instrument (a price up to a billion, sizes up to a
//! trillion, twelve decimal places) and narrow enough that a notional summed over ten thousand
//! levels still fits. Timestamps are nanoseconds between 2000 and 2200, so adding any latency or
//! window the config allows cannot overflow `i64`.

use super::{Bbo, BookDelta, BookSnapshot, Input, Level, Trade};
use rust_decimal::Decimal;

/// Largest price accepted: 1e9.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// Largest size accepted: 1e12.
pub const MAX_QTY: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);
/// Most decimal places a price or size may carry.
pub const MAX_SCALE: u32 = 12;
/// 2000-01-01T00:00:00Z in ns.
pub const MIN_TS_NS: i64 = 946_684_800_000_000_000;
/// 2200-01-01T00:00:00Z in ns.
pub const MAX_TS_NS: i64 = 7_258_118_400_000_000_000;
/// Update ids stay below 2^63 so that "the next id" is always representable.
pub const MAX_UPDATE_ID: u64 = i64::MAX as u64;

fn scale(what: &str, v: Decimal) -> Result<(), String> {
    if v.scale() > MAX_SCALE {
        return Err(format!(
            "{what} {v} has {} decimal places; at most {MAX_SCALE} are accepted",
            v.scale()
        ));
    }
    Ok(())
}

/// A price: > 0 and at most `MAX_PRICE`.
pub fn price(what: &str, v: Decimal) -> Result<(), String> {
    if v <= Decimal::ZERO || v > MAX_PRICE {
        return Err(format!(
            "{what} {v} is outside (0, {MAX_PRICE}]: prices must be positive and at most {MAX_PRICE}"
        ));
    }
    scale(what, v)
}

/// A size: >= 0 (zero removes a level) and at most `MAX_QTY`.
pub fn qty(what: &str, v: Decimal) -> Result<(), String> {
    if v < Decimal::ZERO || v > MAX_QTY {
        return Err(format!(
            "{what} {v} is outside [0, {MAX_QTY}]: sizes must be non-negative and at most {MAX_QTY}"
        ));
    }
    scale(what, v)
}

pub fn level(l: &Level) -> Result<(), String> {
    price("level price", l.price)?;
    qty("level size", l.qty)
}

pub fn ts(what: &str, t: i64) -> Result<(), String> {
    if !(MIN_TS_NS..=MAX_TS_NS).contains(&t) {
        return Err(format!(
            "{what} {t} ns is not between 2000-01-01 and 2200-01-01"
        ));
    }
    Ok(())
}

/// A time the core can compute with: within `MAX_TS_NS` of 1970 either way. Looser than `ts`,
/// which is for recordings, so tests may keep their small synthetic times.
pub fn clock(t: i64) -> Result<(), String> {
    if t.unsigned_abs() > MAX_TS_NS as u64 {
        return Err(format!("time {t} ns is beyond the year 2200"));
    }
    Ok(())
}

pub fn update_id(what: &str, id: u64) -> Result<(), String> {
    if id > MAX_UPDATE_ID {
        return Err(format!(
            "{what} {id} is above {MAX_UPDATE_ID}; no later update could follow it"
        ));
    }
    Ok(())
}

/// A snapshot's update id and sides, before it has a symbol (an importer may not know it yet).
pub fn snapshot_parts(update_id: u64, bids: &[Level], asks: &[Level]) -> Result<(), String> {
    self::update_id("snapshot lastUpdateId", update_id)?;
    if bids.is_empty() || asks.is_empty() {
        return Err(format!(
            "snapshot has {} bids and {} asks; a book needs both sides",
            bids.len(),
            asks.len()
        ));
    }
    bids.iter().chain(asks).try_for_each(level)
}

pub fn snapshot(s: &BookSnapshot) -> Result<(), String> {
    snapshot_parts(s.update_id, &s.bids, &s.asks)
}

pub fn delta(d: &BookDelta) -> Result<(), String> {
    update_id("depth update u", d.last_update_id)?;
    if d.first_update_id > d.last_update_id {
        return Err(format!(
            "depth update has U {} > u {}",
            d.first_update_id, d.last_update_id
        ));
    }
    d.bids.iter().chain(&d.asks).try_for_each(level)
}

pub fn bbo(b: &Bbo) -> Result<(), String> {
    price("best bid", b.bid)?;
    price("best ask", b.ask)?;
    qty("best bid size", b.bid_qty)?;
    qty("best ask size", b.ask_qty)?;
    if b.bid >= b.ask {
        return Err(format!(
            "best bid {} is not below best ask {}",
            b.bid, b.ask
        ));
    }
    Ok(())
}

pub fn trade(t: &Trade) -> Result<(), String> {
    price("trade price", t.price)?;
    qty("trade size", t.qty)?;
    if t.qty.is_zero() {
        return Err("trade size is 0".into());
    }
    Ok(())
}

/// Checks the market data inputs; other inputs pass (their values come from our own orders).
pub fn market_input(i: &Input) -> Result<(), String> {
    match i {
        Input::BookSnapshot(s) | Input::BookPolled(s) => snapshot(s),
        Input::BookDelta(d) => delta(d),
        Input::Bbo(b) => bbo(b),
        Input::Trade(t) => trade(t),
        Input::FundingRate(f) => {
            price("mark", f.mark)?;
            // Venues cap funding far below 100% an interval; more is a broken line.
            if f.rate.abs() > Decimal::ONE {
                return Err(format!("funding rate {} is beyond ±1 an interval", f.rate));
            }
            ts("due", f.due_ns)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn constants_are_what_they_say() {
        assert_eq!(MAX_PRICE, dec!(1_000_000_000));
        assert_eq!(MAX_QTY, dec!(1_000_000_000_000));
        assert_eq!(MIN_TS_NS, 946_684_800 * 1_000_000_000);
        assert_eq!(MAX_TS_NS, 7_258_118_400 * 1_000_000_000);
    }

    #[test]
    fn prices_and_sizes_at_and_past_the_edges() {
        assert!(price("p", MAX_PRICE).is_ok());
        assert!(price("p", dec!(0.000000000001)).is_ok());
        assert!(price("p", MAX_PRICE + dec!(0.01)).is_err());
        assert!(price("p", Decimal::ZERO).is_err());
        assert!(price("p", dec!(-61000)).is_err());
        assert!(price("p", dec!(0.0000000000001)).is_err(), "13 places");
        assert!(qty("q", Decimal::ZERO).is_ok());
        assert!(qty("q", MAX_QTY).is_ok());
        assert!(qty("q", MAX_QTY + dec!(1)).is_err());
        assert!(qty("q", dec!(-5)).is_err());
        assert!(qty("q", Decimal::MAX).is_err());
    }

    #[test]
    fn the_worst_accepted_values_do_not_overflow() {
        // A notional over ten thousand levels at the bounds, at full scale.
        let p = MAX_PRICE - dec!(0.000000000001);
        let q = MAX_QTY - dec!(0.000000000001);
        let mut sum = Decimal::ZERO;
        for _ in 0..10_000 {
            sum = sum
                .checked_add(p.checked_mul(q).expect("product"))
                .expect("sum");
        }
        assert!(sum > Decimal::ZERO);
        assert!(ts("t", MAX_TS_NS).is_ok() && ts("t", MAX_TS_NS + 1).is_err());
        assert!(ts("t", MIN_TS_NS).is_ok() && ts("t", MIN_TS_NS - 1).is_err());
        assert!(clock(0).is_ok() && clock(-MAX_TS_NS).is_ok() && clock(MAX_TS_NS).is_ok());
        assert!(clock(MAX_TS_NS + 1).is_err() && clock(i64::MIN).is_err());
        assert!(
            MAX_TS_NS
                .checked_add(1_000_000_000 * 86_400 * 365 * 50)
                .is_some(),
            "50 years of latency"
        );
    }

    #[test]
    fn bbo_must_not_cross() {
        let sym = crate::event::Symbol::new("BTCUSDT").expect("symbol");
        let b = |bid, ask| Bbo {
            symbol: sym,
            update_id: None,
            bid,
            bid_qty: dec!(1),
            ask,
            ask_qty: dec!(1),
        };
        assert!(bbo(&b(dec!(100), dec!(100.01))).is_ok());
        assert!(bbo(&b(dec!(100), dec!(100))).is_err());
        assert!(bbo(&b(dec!(-61000), dec!(100))).is_err());
    }
}
