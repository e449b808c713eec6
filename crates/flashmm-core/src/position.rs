//! Position and PnL. FIFO lots keep realised PnL exact in Decimal, so
//! realised + unrealised - fees equals cash + position x mark to the last digit (for inverse
//! contracts, whose values are reciprocals, to within 1e-15 of the coin).
//!
//! Amounts are in the contract's settlement currency (`Contract`): the quote for spot and
//! linear perpetuals, the base coin for inverse ones.

use crate::contract::Contract;
use crate::event::Side;
use rust_decimal::Decimal;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq)]
struct Lot {
    price: Decimal,
    /// Signed: positive for a long lot.
    qty: Decimal,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    contract: Contract,
    lots: VecDeque<Lot>,
    qty: Decimal,
    /// Quote currency: minus what we paid, plus what we received, minus fees.
    cash: Decimal,
    realized: Decimal,
    fees: Decimal,
    /// Funding received (negative: paid), in the settlement currency.
    funding: Decimal,
    volume: Decimal,
    notional: Decimal,
    fills: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pnl {
    pub realized: Decimal,
    pub unrealized: Decimal,
    pub fees: Decimal,
    /// Received (negative: paid) on perpetuals at funding times.
    pub funding: Decimal,
    /// realized + unrealized - fees + funding.
    pub total: Decimal,
}

impl Position {
    pub fn new(contract: Contract) -> Position {
        Position {
            contract,
            ..Position::default()
        }
    }

    pub fn contract(&self) -> Contract {
        self.contract
    }

    pub fn qty(&self) -> Decimal {
        self.qty
    }
    pub fn cash(&self) -> Decimal {
        self.cash
    }
    pub fn fees(&self) -> Decimal {
        self.fees
    }
    pub fn volume(&self) -> Decimal {
        self.volume
    }
    pub fn notional(&self) -> Decimal {
        self.notional
    }
    pub fn fills(&self) -> u64 {
        self.fills
    }

    pub fn apply_fill(&mut self, side: Side, price: Decimal, qty: Decimal, fee: Decimal) {
        let signed = side.sign() * qty;
        let c = self.contract;
        self.cash -= c.value(signed, price) + fee;
        self.fees += fee;
        self.volume += qty;
        self.notional += c.notional(qty, price);
        self.fills += 1;
        self.qty += signed;
        let mut left = signed;
        while !left.is_zero() {
            match self.lots.front_mut() {
                Some(lot) if lot.qty.is_sign_positive() != left.is_sign_positive() => {
                    let closed = if lot.qty.abs() <= left.abs() {
                        lot.qty
                    } else {
                        -left
                    };
                    // Closing `closed` (signed like the lot) at `price`.
                    self.realized += c.value(closed, price) - c.value(closed, lot.price);
                    lot.qty -= closed;
                    left += closed;
                    if lot.qty.is_zero() {
                        self.lots.pop_front();
                    }
                }
                _ => {
                    self.lots.push_back(Lot { price, qty: left });
                    left = Decimal::ZERO;
                }
            }
        }
    }

    /// Funding received (negative: paid) goes to cash, so the PnL identity still holds.
    pub fn apply_funding(&mut self, amount: Decimal) {
        self.cash += amount;
        self.funding += amount;
    }

    /// Takes the venue's position as ours (reconciliation): the difference is booked as a fill
    /// at `avg_price`, so the PnL identity still holds.
    pub fn adopt(&mut self, qty: Decimal, avg_price: Decimal) {
        let diff = qty - self.qty;
        if diff.is_zero() {
            return;
        }
        let side = if diff > Decimal::ZERO {
            Side::Buy
        } else {
            Side::Sell
        };
        self.apply_fill(side, avg_price, diff.abs(), Decimal::ZERO);
        self.fills -= 1;
        self.volume -= diff.abs();
        self.notional -= self.contract.notional(diff.abs(), avg_price);
    }

    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        let c = self.contract;
        self.lots
            .iter()
            .map(|l| c.value(l.qty, mark) - c.value(l.qty, l.price))
            .sum()
    }

    pub fn equity(&self, mark: Decimal) -> Decimal {
        if self.qty.is_zero() {
            return self.cash;
        }
        self.cash + self.contract.value(self.qty, mark)
    }

    pub fn pnl(&self, mark: Decimal) -> Pnl {
        let unrealized = self.unrealized(mark);
        Pnl {
            realized: self.realized,
            unrealized,
            fees: self.fees,
            funding: self.funding,
            total: self.realized + unrealized - self.fees + self.funding,
        }
    }

    /// The entry price of the open lots: volume-weighted, or for inverse contracts the
    /// price whose value equals theirs (the harmonic mean).
    pub fn avg_entry(&self) -> Option<Decimal> {
        if self.qty.is_zero() {
            return None;
        }
        if self.contract.inverse {
            let per_price: Decimal = self.lots.iter().map(|l| l.qty / l.price).sum();
            return self.qty.checked_div(per_price);
        }
        let cost: Decimal = self.lots.iter().map(|l| l.qty * l.price).sum();
        Some(cost / self.qty)
    }
}

#[cfg(test)]
#[path = "position_fifo_tests.rs"]
mod fifo_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn round_trip_realises_the_spread() {
        let mut p = Position::default();
        p.apply_fill(Side::Buy, dec!(100), dec!(2), dec!(0.02));
        p.apply_fill(Side::Sell, dec!(101), dec!(3), dec!(-0.01));
        assert_eq!(p.qty(), dec!(-1));
        let pnl = p.pnl(dec!(100));
        assert_eq!(pnl.realized, dec!(2));
        assert_eq!(pnl.unrealized, dec!(1));
        assert_eq!(pnl.fees, dec!(0.01));
        assert_eq!(pnl.total, p.equity(dec!(100)));
    }

    #[test]
    fn each_fill_counts_in_the_statistics() {
        let mut p = Position::default();
        p.apply_fill(Side::Buy, dec!(100), dec!(2), dec!(0.02));
        p.apply_fill(Side::Sell, dec!(101), dec!(0.5), dec!(0.01));
        assert_eq!(p.fills(), 2);
        assert_eq!(p.volume(), dec!(2.5));
        assert_eq!(p.notional(), dec!(250.5));
        assert_eq!(p.fees(), dec!(0.03));
        assert_eq!(p.cash(), dec!(-200) - dec!(0.02) + dec!(50.5) - dec!(0.01));
        assert_eq!(p.qty(), dec!(1.5));
        // Closing half a lot realises half its move; the rest stays at its own price.
        assert_eq!(p.pnl(dec!(100)).realized, dec!(0.5));
        assert_eq!(p.avg_entry(), Some(dec!(100)));
    }

    #[test]
    fn the_entry_price_is_weighted_by_size_and_signed_lots_close_in_order() {
        let mut p = Position::default();
        assert_eq!(p.avg_entry(), None);
        p.apply_fill(Side::Buy, dec!(100), dec!(1), dec!(0));
        p.apply_fill(Side::Buy, dec!(103), dec!(2), dec!(0));
        assert_eq!(p.avg_entry(), Some(dec!(102)));
        // A sell closes the oldest lot first.
        p.apply_fill(Side::Sell, dec!(104), dec!(1.5), dec!(0));
        assert_eq!(p.pnl(dec!(104)).realized, dec!(4) + dec!(0.5));
        assert_eq!(p.avg_entry(), Some(dec!(103)));
        // Through zero: the rest opens a short at the fill's price.
        p.apply_fill(Side::Sell, dec!(105), dec!(2.5), dec!(0));
        assert_eq!(p.qty(), dec!(-1));
        assert_eq!(p.avg_entry(), Some(dec!(105)));
        assert_eq!(p.unrealized(dec!(104)), dec!(1));
        p.apply_fill(Side::Buy, dec!(104), dec!(1), dec!(0));
        assert_eq!(p.avg_entry(), None);
        assert_eq!(p.equity(dec!(1)), p.cash());
    }

    #[test]
    fn adopting_the_venues_position_books_the_difference_at_its_price_and_nothing_else() {
        let mut p = Position::default();
        p.apply_fill(Side::Buy, dec!(100), dec!(1), dec!(0.01));
        // The venue holds 3 at an average of 101: 2 more, booked at 101.
        p.adopt(dec!(3), dec!(101));
        assert_eq!(p.qty(), dec!(3));
        assert_eq!(p.cash(), dec!(-100) - dec!(0.01) - dec!(202));
        assert_eq!(p.avg_entry(), Some(dec!(302) / dec!(3)));
        // Not a fill of ours: counts, volume, notional and fees are unchanged.
        assert_eq!(p.fills(), 1);
        assert_eq!(p.volume(), dec!(1));
        assert_eq!(p.notional(), dec!(100));
        assert_eq!(p.fees(), dec!(0.01));
        // Down to a short of 1 at 99: 4 sold at 99, closing the lots in order.
        p.adopt(dec!(-1), dec!(99));
        assert_eq!(p.qty(), dec!(-1));
        assert_eq!(p.pnl(dec!(99)).realized, dec!(-1) + dec!(-4));
        assert_eq!(p.avg_entry(), Some(dec!(99)));
        assert_eq!(p.fills(), 1);
        assert_eq!(p.volume(), dec!(1));
        assert_eq!(p.notional(), dec!(100));
        // The same position again changes nothing.
        let before = p.clone();
        p.adopt(dec!(-1), dec!(50));
        assert_eq!(p, before);
    }

    proptest! {
        #[test]
        fn pnl_identity_holds_for_any_fills(
            fills in prop::collection::vec((any::<bool>(), 1u32..20000, 1u32..500, -50i32..50), 1..60),
            mark in 1u32..20000,
        ) {
            let mut p = Position::default();
            let mut sum = Decimal::ZERO;
            for (buy, price, qty, fee) in fills {
                let side = if buy { Side::Buy } else { Side::Sell };
                let (price, qty) = (Decimal::new(price as i64, 2), Decimal::new(qty as i64, 3));
                p.apply_fill(side, price, qty, Decimal::new(fee as i64, 4));
                sum += side.sign() * qty;
            }
            let mark = Decimal::new(mark as i64, 2);
            // Σ fills = position.
            prop_assert_eq!(p.qty(), sum);
            // cash + position x mark = equity = realised + unrealised - fees.
            let pnl = p.pnl(mark);
            prop_assert_eq!(p.cash() + p.qty() * mark, p.equity(mark));
            prop_assert_eq!(pnl.total, p.equity(mark));
        }
    }
}
