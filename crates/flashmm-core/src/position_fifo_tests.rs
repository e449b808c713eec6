//! FIFO by hand over several open lots, and against a small independent FIFO model.

use super::*;
use proptest::prelude::*;
use rust_decimal_macros::dec;

#[test]
fn a_sell_closes_the_oldest_of_three_long_lots_first() {
    let mut p = Position::default();
    p.apply_fill(Side::Buy, dec!(100), dec!(1), dec!(0.01));
    p.apply_fill(Side::Buy, dec!(102), dec!(2), dec!(0.02));
    p.apply_fill(Side::Buy, dec!(105), dec!(1), dec!(0.01));
    // (100 + 2 x 102 + 105) / 4.
    assert_eq!(p.avg_entry(), Some(dec!(102.25)));
    assert_eq!(p.unrealized(dec!(103)), dec!(3) + dec!(2) - dec!(2));
    // 2.5 at 106 closes 1 @ 100 (+6) and 1.5 @ 102 (+6); LIFO would make 1 @ 105 + 1.5 @ 102 = 7.
    p.apply_fill(Side::Sell, dec!(106), dec!(2.5), dec!(0.03));
    assert_eq!(p.pnl(dec!(106)).realized, dec!(12));
    assert_eq!(p.qty(), dec!(1.5));
    // Left: 0.5 @ 102 and 1 @ 105.
    assert_eq!(p.avg_entry(), Some(dec!(104)));
    let pnl = p.pnl(dec!(103));
    assert_eq!(pnl.unrealized, dec!(0.5) - dec!(2));
    assert_eq!(pnl.fees, dec!(0.07));
    assert_eq!(pnl.total, dec!(12) - dec!(1.5) - dec!(0.07));
    assert_eq!(pnl.total, p.equity(dec!(103)));
    // 3 at 101 closes 0.5 @ 102 (-0.5) and 1 @ 105 (-4), then opens a short of 1.5 @ 101.
    p.apply_fill(Side::Sell, dec!(101), dec!(3), dec!(0));
    assert_eq!(p.pnl(dec!(101)).realized, dec!(7.5));
    assert_eq!(p.qty(), dec!(-1.5));
    assert_eq!(p.avg_entry(), Some(dec!(101)));
    // Buying 0.5 back at 99 realises 0.5 x 2 of the short.
    p.apply_fill(Side::Buy, dec!(99), dec!(0.5), dec!(0));
    let pnl = p.pnl(dec!(100));
    assert_eq!(pnl.realized, dec!(8.5));
    assert_eq!(pnl.unrealized, dec!(1));
    assert_eq!(pnl.total, p.equity(dec!(100)));
}

#[test]
fn a_buy_closes_the_oldest_of_three_short_lots_first() {
    let mut p = Position::default();
    p.apply_fill(Side::Sell, dec!(110), dec!(1), dec!(0));
    p.apply_fill(Side::Sell, dec!(108), dec!(1), dec!(0));
    p.apply_fill(Side::Sell, dec!(111), dec!(1), dec!(0));
    assert_eq!(p.avg_entry(), Some(dec!(329) / dec!(3)));
    // 2 at 107 closes 1 @ 110 (+3) and 1 @ 108 (+1); LIFO would make 111 and 108: 5.
    p.apply_fill(Side::Buy, dec!(107), dec!(2), dec!(0));
    assert_eq!(p.pnl(dec!(109)).realized, dec!(4));
    assert_eq!(p.qty(), dec!(-1));
    assert_eq!(p.avg_entry(), Some(dec!(111)));
    assert_eq!(p.unrealized(dec!(109)), dec!(2));
}

#[test]
fn a_partial_close_leaves_the_oldest_lot_at_its_own_price_ahead_of_the_newer() {
    let mut p = Position::default();
    p.apply_fill(Side::Buy, dec!(100), dec!(2), dec!(0));
    p.apply_fill(Side::Buy, dec!(110), dec!(1), dec!(0));
    p.apply_fill(Side::Sell, dec!(105), dec!(0.5), dec!(0));
    assert_eq!(p.pnl(dec!(105)).realized, dec!(2.5));
    // The next close still takes from the 100 lot (1.5 left), not the 110 one.
    p.apply_fill(Side::Sell, dec!(105), dec!(1.5), dec!(0));
    assert_eq!(p.pnl(dec!(105)).realized, dec!(10));
    assert_eq!(p.avg_entry(), Some(dec!(110)));
}

/// An independent FIFO: open lots as (entry price, unsigned size) with one direction for all,
/// closed from the front.
#[derive(Default)]
struct Fifo {
    long: bool,
    lots: Vec<(Decimal, Decimal)>,
    realized: Decimal,
}

impl Fifo {
    fn fill(&mut self, buy: bool, price: Decimal, mut qty: Decimal) {
        if self.lots.is_empty() {
            self.long = buy;
        }
        if buy == self.long {
            self.lots.push((price, qty));
            return;
        }
        while qty > Decimal::ZERO && !self.lots.is_empty() {
            let (entry, size) = self.lots[0];
            let take = size.min(qty);
            let per_unit = if self.long {
                price - entry
            } else {
                entry - price
            };
            self.realized += take * per_unit;
            qty -= take;
            if take == size {
                self.lots.remove(0);
            } else {
                self.lots[0].1 = size - take;
            }
        }
        if qty > Decimal::ZERO {
            self.long = buy;
            self.lots.push((price, qty));
        }
    }

    fn open(&self) -> Decimal {
        let q: Decimal = self.lots.iter().map(|l| l.1).sum();
        if self.long {
            q
        } else {
            -q
        }
    }

    fn avg_entry(&self) -> Option<Decimal> {
        let q: Decimal = self.lots.iter().map(|l| l.1).sum();
        if q.is_zero() {
            return None;
        }
        Some(self.lots.iter().map(|l| l.0 * l.1).sum::<Decimal>() / q)
    }

    fn unrealized(&self, mark: Decimal) -> Decimal {
        let u: Decimal = self.lots.iter().map(|l| l.1 * (mark - l.0)).sum();
        if self.long {
            u
        } else {
            -u
        }
    }
}

proptest! {
    #[test]
    fn position_matches_an_independent_fifo_over_any_fills(
        fills in prop::collection::vec((any::<bool>(), 9000u32..11000, 1u32..400), 1..80),
        mark in 9000u32..11000,
    ) {
        let mut p = Position::default();
        let mut m = Fifo::default();
        for (buy, price, qty) in fills {
            let side = if buy { Side::Buy } else { Side::Sell };
            let (price, qty) = (Decimal::new(price as i64, 2), Decimal::new(qty as i64, 3));
            p.apply_fill(side, price, qty, Decimal::ZERO);
            m.fill(buy, price, qty);
            prop_assert_eq!(p.pnl(price).realized, m.realized);
            prop_assert_eq!(p.qty(), m.open());
            prop_assert_eq!(p.avg_entry(), m.avg_entry());
            // Every open lot is on the position's side, oldest first.
            let lots: Vec<(Decimal, Decimal)> =
                p.lots.iter().map(|l| (l.price, l.qty.abs())).collect();
            prop_assert_eq!(&lots, &m.lots);
        }
        let mark = Decimal::new(mark as i64, 2);
        prop_assert_eq!(p.unrealized(mark), m.unrealized(mark));
    }
}

fn coinm() -> Position {
    Position::new(crate::contract::Contract {
        inverse: true,
        multiplier: dec!(100),
    })
}

#[test]
fn inverse_contracts_realise_the_difference_of_reciprocals_lot_by_lot_in_the_coin() {
    // BTCUSD_PERP: 100 USD a contract, PnL in BTC.
    let mut p = coinm();
    p.apply_fill(Side::Buy, dec!(50000), dec!(10), dec!(0.00001));
    p.apply_fill(Side::Buy, dec!(40000), dec!(10), dec!(0));
    // Notional in BTC: 1000/50000 + 1000/40000.
    assert_eq!(p.notional(), dec!(0.02) + dec!(0.025));
    // The price whose value equals the two lots': 20 / (10/50000 + 10/40000), not 45,000.
    assert_eq!(p.avg_entry().unwrap().round_dp(6), dec!(44444.444444));
    // 15 at 62,500 closes the 50,000 lot (1000 x (1/50000 - 1/62500) = 0.004) and 5 of the
    // 40,000 lot (500 x (1/40000 - 1/62500) = 0.0045).
    p.apply_fill(Side::Sell, dec!(62500), dec!(15), dec!(0));
    assert_eq!(p.pnl(dec!(62500)).realized, dec!(0.0085));
    assert_eq!(p.qty(), dec!(5));
    assert_eq!(p.avg_entry(), Some(dec!(40000)));
    // 5 left at 40,000, marked at 50,000: 500 x (1/40000 - 1/50000) = 0.0025.
    let pnl = p.pnl(dec!(50000));
    assert_eq!(pnl.unrealized, dec!(0.0025));
    assert_eq!(pnl.total, dec!(0.0085) + dec!(0.0025) - dec!(0.00001));
    assert_eq!(pnl.total, p.equity(dec!(50000)));
    // Through zero: 8 sold at 50,000 closes the 5 and opens a short of 3, whose PnL is the
    // mirror image: 300 x (1/40000 - 1/50000) when the price falls to 40,000.
    p.apply_fill(Side::Sell, dec!(50000), dec!(8), dec!(0));
    assert_eq!(p.pnl(dec!(50000)).realized, dec!(0.011));
    assert_eq!(p.unrealized(dec!(40000)), dec!(0.0015));
}

proptest! {
    #[test]
    fn the_inverse_identity_holds_to_far_below_a_satoshi(
        fills in prop::collection::vec((any::<bool>(), 30000u32..90000, 1u32..50), 1..40),
        mark in 30000u32..90000,
    ) {
        let mut p = coinm();
        for (buy, price, qty) in fills {
            let side = if buy { Side::Buy } else { Side::Sell };
            p.apply_fill(side, Decimal::from(price), Decimal::from(qty), dec!(0.000001));
        }
        let mark = Decimal::from(mark);
        let pnl = p.pnl(mark);
        prop_assert!((pnl.total - p.equity(mark)).abs() < dec!(0.000000000001));
    }
}

#[test]
fn funding_is_its_own_term_in_cash_and_pnl_and_the_contract_is_kept() {
    let mut p = coinm();
    assert_eq!(
        p.contract(),
        crate::contract::Contract {
            inverse: true,
            multiplier: dec!(100),
        }
    );
    let mut p2 = Position::default();
    p2.apply_fill(Side::Buy, dec!(100), dec!(2), dec!(0.01));
    // Paid 0.02, then received 0.005: cash and the funding term move by both, nothing else.
    p2.apply_funding(dec!(-0.02));
    p2.apply_funding(dec!(0.005));
    assert_eq!(p2.cash(), dec!(-200) - dec!(0.01) - dec!(0.015));
    let pnl = p2.pnl(dec!(101));
    assert_eq!(pnl.funding, dec!(-0.015));
    assert_eq!((pnl.realized, pnl.unrealized), (dec!(0), dec!(2)));
    assert_eq!(pnl.total, dec!(2) - dec!(0.01) - dec!(0.015));
    assert_eq!(pnl.total, p2.equity(dec!(101)));
    p.apply_funding(dec!(0.000012));
    assert_eq!(p.pnl(dec!(50000)).funding, dec!(0.000012));
}
