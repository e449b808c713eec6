//! How a position's value follows the price: linear (spot and USD-margined perpetuals) or
//! inverse (coin-margined perpetuals, whose contracts are worth a fixed amount of the quote).
//!
//! Every amount here is in the settlement currency: the quote for linear, the base for inverse.

use crate::config::{InstrumentKind, MarketConfig};
use rust_decimal::Decimal;

/// Decimal places an inverse value is rounded to: far below a satoshi, and fixed so every
/// reader (engine, report, post-mortem) gets the same digits from the same fills.
const INVERSE_DP: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contract {
    pub inverse: bool,
    pub multiplier: Decimal,
}

impl Default for Contract {
    fn default() -> Self {
        Contract {
            inverse: false,
            multiplier: Decimal::ONE,
        }
    }
}

impl Contract {
    pub fn of(m: &MarketConfig) -> Contract {
        Contract {
            inverse: m.kind == InstrumentKind::InversePerp,
            multiplier: m.multiplier,
        }
    }

    /// What holding signed `qty` at `price` is worth in the settlement currency. Buying pays
    /// it; selling receives it. For inverse contracts a long is short the base coin, so the
    /// value is `-qty x multiplier / price`, and the PnL of a lot is
    /// `qty x multiplier x (1/entry - 1/exit)`.
    pub fn value(&self, qty: Decimal, price: Decimal) -> Decimal {
        if !self.inverse {
            return qty * price * self.multiplier;
        }
        if price <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (-(qty * self.multiplier) / price).round_dp(INVERSE_DP)
    }

    /// The size of `qty` at `price` in the settlement currency, unsigned.
    pub fn notional(&self, qty: Decimal, price: Decimal) -> Decimal {
        self.value(qty.abs(), price).abs()
    }

    /// The size of `qty` in the quote currency (USD for an inverse contract), unsigned.
    pub fn quote_notional(&self, qty: Decimal, price: Decimal) -> Decimal {
        if self.inverse {
            qty.abs() * self.multiplier
        } else {
            qty.abs() * price * self.multiplier
        }
    }

    /// `qty` as an amount of the base asset (what inventory risk is measured in): contracts
    /// times multiplier, divided by the price for an inverse contract.
    pub fn base_qty(&self, qty: Decimal, price: Decimal) -> Decimal {
        if !self.inverse {
            return qty * self.multiplier;
        }
        if price <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (qty * self.multiplier / price).round_dp(INVERSE_DP)
    }

    /// An amount in the settlement currency, in the quote currency at `price` (limits such as
    /// `risk.daily_loss_limit` are in the quote).
    pub fn in_quote(&self, amount: Decimal, price: Decimal) -> Decimal {
        if self.inverse {
            amount * price
        } else {
            amount
        }
    }

    /// The quantity whose quote notional at `price` is `notional` (not rounded to a lot).
    pub fn qty_for(&self, notional: Decimal, price: Decimal) -> Decimal {
        let per_unit = if self.inverse {
            self.multiplier
        } else {
            price * self.multiplier
        };
        if per_unit <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        notional.checked_div(per_unit).unwrap_or(Decimal::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn coinm() -> Contract {
        Contract {
            inverse: true,
            multiplier: dec!(100),
        }
    }

    #[test]
    fn an_inverse_round_trip_earns_the_difference_of_reciprocals_in_the_coin() {
        // 10 contracts of 100 USD: long at 50,000, out at 62,500.
        // 1000 USD x (1/50000 - 1/62500) = 0.02 - 0.016 = 0.004 BTC.
        let c = coinm();
        let paid = c.value(dec!(10), dec!(50000));
        let received = c.value(dec!(10), dec!(62500));
        assert_eq!(received - paid, dec!(0.004));
        assert_eq!(c.notional(dec!(10), dec!(50000)), dec!(0.02));
        assert_eq!(c.quote_notional(dec!(-10), dec!(50000)), dec!(1000));
        assert_eq!(c.qty_for(dec!(1000), dec!(61000)), dec!(10));
        // 10 contracts at 50,000 hold 0.02 BTC of exposure; 0.004 BTC at 62,500 is 250 USD.
        assert_eq!(c.base_qty(dec!(10), dec!(50000)), dec!(0.02));
        assert_eq!(c.in_quote(dec!(0.004), dec!(62500)), dec!(250));
    }

    #[test]
    fn a_linear_contract_is_quantity_times_price() {
        let c = Contract::default();
        assert_eq!(c.value(dec!(-0.5), dec!(100)), dec!(-50));
        assert_eq!(c.qty_for(dec!(50), dec!(100)), dec!(0.5));
        assert_eq!(c.quote_notional(dec!(-0.5), dec!(100)), dec!(50));
        let m = Contract {
            inverse: false,
            multiplier: dec!(0.1),
        };
        assert_eq!(m.value(dec!(3), dec!(200)), dec!(60));
        assert_eq!(m.qty_for(dec!(60), dec!(200)), dec!(3));
        assert_eq!(m.base_qty(dec!(3), dec!(200)), dec!(0.3));
        assert_eq!(m.quote_notional(dec!(-3), dec!(200)), dec!(60));
        assert_eq!(m.in_quote(dec!(7), dec!(200)), dec!(7));
    }

    #[test]
    fn impossible_prices_are_worth_nothing_rather_than_a_panic() {
        assert_eq!(coinm().value(dec!(1), Decimal::ZERO), Decimal::ZERO);
        assert_eq!(coinm().value(dec!(1), dec!(-5)), Decimal::ZERO);
        assert_eq!(
            Contract::default().qty_for(dec!(1), Decimal::ZERO),
            Decimal::ZERO
        );
    }
}
