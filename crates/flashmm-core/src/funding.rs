//! Funding of perpetuals: when it is due and what it costs. A pure clock the engine asks on
//! every input, so a backtest and its replay charge the same amounts at the same entries.
//!
//! Rates come from the data (`Input::FundingRate`, the venue's announcement of the next charge)
//! or, when the data has none, from `[funding]` on a grid of `interval_h` hours from 00:00 UTC.
//! Spot markets pay none.

use crate::config::{FundingConfig, InstrumentKind, MarketConfig};
use crate::contract::Contract;
use crate::event::FundingRate;
use rust_decimal::Decimal;

const NS_PER_H: i64 = 3_600 * 1_000_000_000;

#[derive(Clone, Debug)]
pub struct FundingClock {
    perp: bool,
    rate: Decimal,
    mark: Option<Decimal>,
    interval_ns: i64,
    next: Option<i64>,
    /// Whether the data has announced a rate: then `[funding]` no longer applies.
    recorded: bool,
}

impl FundingClock {
    pub fn new(cfg: &FundingConfig, market: &MarketConfig) -> FundingClock {
        FundingClock {
            perp: market.kind != InstrumentKind::Spot,
            rate: cfg.rate,
            mark: None,
            interval_ns: cfg.interval_h.max(1) as i64 * NS_PER_H,
            next: None,
            recorded: false,
        }
    }

    /// The first time the engine sees: a configured rate starts at the next grid point.
    pub fn start(&mut self, now: i64) {
        if self.perp && !self.recorded && self.next.is_none() && !self.rate.is_zero() {
            let k = now.div_euclid(self.interval_ns).saturating_add(1);
            self.next = Some(k.saturating_mul(self.interval_ns));
        }
    }

    pub fn on_rate(&mut self, r: &FundingRate) {
        if !self.perp {
            return;
        }
        self.recorded = true;
        self.rate = r.rate;
        self.mark = Some(r.mark);
        self.next = Some(r.due_ns);
    }

    /// The next funding time, for the engine's timer.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// A charge due at or before `now`: (due, rate, the venue's mark if it gave one). The
    /// next one follows an interval later at the same rate until the venue says otherwise.
    pub fn due(&mut self, now: i64) -> Option<(i64, Decimal, Option<Decimal>)> {
        let at = self.next.filter(|t| *t <= now)?;
        self.next = Some(at.saturating_add(self.interval_ns));
        // The venue's mark is for the time it announced; a later charge at the same rate is
        // valued at our mid then.
        Some((at, self.rate, self.mark.take()))
    }
}

/// What holding `qty` at `mark` is charged at `rate`, in the settlement currency; positive is
/// received. Longs pay a positive rate: linear `-qty x multiplier x mark x rate`, inverse
/// `-qty x multiplier / mark x rate` (the position's value in the coin).
pub fn amount(contract: Contract, qty: Decimal, mark: Decimal, rate: Decimal) -> Decimal {
    let exposure = if contract.inverse {
        -contract.value(qty, mark)
    } else {
        contract.value(qty, mark)
    };
    -(exposure * rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::Symbol;
    use rust_decimal_macros::dec;

    fn perp() -> MarketConfig {
        MarketConfig {
            kind: InstrumentKind::LinearPerp,
            ..Config::default().market
        }
    }

    #[test]
    fn a_long_pays_a_positive_rate_and_a_short_receives_it() {
        let lin = Contract::default();
        // 0.5 BTC long at 60,000, 0.01%: 3 USDT paid.
        assert_eq!(amount(lin, dec!(0.5), dec!(60000), dec!(0.0001)), dec!(-3));
        assert_eq!(amount(lin, dec!(-0.5), dec!(60000), dec!(0.0001)), dec!(3));
        // 20 contracts of 100 USD long at 50,000: 0.04 BTC of exposure, 0.000004 BTC paid.
        let inv = Contract {
            inverse: true,
            multiplier: dec!(100),
        };
        assert_eq!(
            amount(inv, dec!(20), dec!(50000), dec!(0.0001)),
            dec!(-0.000004)
        );
        assert_eq!(
            amount(inv, dec!(-20), dec!(50000), dec!(-0.0001)),
            dec!(-0.000004)
        );
    }

    #[test]
    fn a_configured_rate_falls_due_on_the_eight_hour_grid() {
        let cfg = FundingConfig {
            rate: dec!(0.0001),
            interval_h: 8,
        };
        let mut c = FundingClock::new(&cfg, &perp());
        let t = 1_723_161_600 * 1_000_000_000; // 2024-08-09 00:00 UTC
        c.start(t - 60 * 1_000_000_000);
        assert_eq!(c.next(), Some(t));
        assert_eq!(c.due(t - 1), None);
        assert_eq!(c.due(t), Some((t, dec!(0.0001), None)));
        assert_eq!(c.next(), Some(t + 8 * NS_PER_H));
    }

    #[test]
    fn the_venues_rate_replaces_the_configured_one_and_spot_pays_none() {
        let mut c = FundingClock::new(&FundingConfig::default(), &perp());
        c.start(0);
        assert_eq!(c.next(), None, "no rate, no funding");
        let r = FundingRate {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            rate: dec!(-0.0002),
            due_ns: 5_000,
            mark: dec!(61000),
        };
        c.on_rate(&r);
        assert_eq!(
            c.due(6_000),
            Some((5_000, dec!(-0.0002), Some(dec!(61000))))
        );
        let mut spot = FundingClock::new(
            &FundingConfig {
                rate: dec!(0.0001),
                interval_h: 8,
            },
            &Config::default().market,
        );
        spot.start(0);
        spot.on_rate(&r);
        assert_eq!(spot.due(i64::MAX), None);
    }
}
