//! Risk guards. A guard that engages or releases is reported once, as a `RiskAction`.

use crate::config::RiskConfig;
use crate::contract::Contract;
use crate::event::{Bound, RiskAction, RiskKind, Side};
use rust_decimal::Decimal;

pub const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
const NS_PER_MS: i64 = 1_000_000;

/// How much more we may buy (or sell) so that the worst case stays inside the limits: every
/// order on that side that could still fill does fill, valued at the worse of its price and mid.
/// Returns the room and, when it is the tighter one, the limit that sets it.
// The hot path calls this per level; a struct of its inputs would only be built to be taken apart.
#[allow(clippy::too_many_arguments)]
pub fn room(
    cfg: &RiskConfig,
    contract: Contract,
    side: Side,
    position: Decimal,
    exposure: Decimal,
    price: Decimal,
    mid: Decimal,
    level: u8,
) -> (Decimal, Bound) {
    let worst = side.sign() * position + exposure;
    let by_position = cfg.max_position - worst;
    let ref_price = price.max(mid);
    // risk.max_notional is in the quote currency, whatever the contract.
    let by_notional = if ref_price > Decimal::ZERO {
        contract.qty_for(cfg.max_notional, ref_price) - worst
    } else {
        Decimal::ZERO
    };
    if by_notional < by_position {
        (
            by_notional.max(Decimal::ZERO),
            Bound::NotionalLimit { side, level },
        )
    } else {
        (
            by_position.max(Decimal::ZERO),
            Bound::PositionLimit { side, level },
        )
    }
}

const HALTS: [RiskKind; 8] = [
    RiskKind::KillSwitch,
    RiskKind::StaleFeed,
    RiskKind::DailyLoss,
    RiskKind::BookInvalid,
    RiskKind::OperatorHalt,
    RiskKind::ChainHalt,
    RiskKind::PositionUnconfirmed,
    RiskKind::TotalLoss,
];

fn slot(kind: RiskKind) -> usize {
    match kind {
        RiskKind::KillSwitch => 0,
        RiskKind::StaleFeed => 1,
        RiskKind::DailyLoss => 2,
        RiskKind::BookInvalid => 3,
        RiskKind::OperatorHalt => 4,
        RiskKind::InventoryLimit => 5,
        RiskKind::ChainHalt => 6,
        RiskKind::PositionUnconfirmed => 7,
        RiskKind::TotalLoss => 8,
    }
}

#[derive(Clone, Debug)]
pub struct Risk {
    cfg: RiskConfig,
    engaged: [bool; 9],
    kill_until: i64,
    day: Option<i64>,
    day_start_equity: Decimal,
    /// Which sides the inventory limit has switched off: [bids, asks].
    sides_off: [bool; 2],
}

impl Risk {
    pub fn new(cfg: &RiskConfig) -> Risk {
        Risk {
            cfg: cfg.clone(),
            engaged: [false; 9],
            kill_until: 0,
            day: None,
            day_start_equity: Decimal::ZERO,
            sides_off: [false; 2],
        }
    }

    pub fn is_engaged(&self, kind: RiskKind) -> bool {
        self.engaged[slot(kind)]
    }

    /// True when no order may rest: every guard but the one-sided inventory limit halts quoting.
    pub fn halted(&self) -> bool {
        HALTS.iter().any(|k| self.is_engaged(*k))
    }

    fn set(
        &mut self,
        kind: RiskKind,
        engaged: bool,
        detail: impl FnOnce() -> String,
    ) -> Option<RiskAction> {
        let s = &mut self.engaged[slot(kind)];
        if *s == engaged {
            return None;
        }
        *s = engaged;
        Some(RiskAction {
            kind,
            engaged,
            detail: detail(),
            symbol: None,
        })
    }

    /// The desk's guard over every market (`risk.max_total_loss`): once engaged it holds for
    /// the rest of the session.
    pub fn engage_total_loss(&mut self, detail: impl FnOnce() -> String) -> Option<RiskAction> {
        self.set(RiskKind::TotalLoss, true, detail)
    }

    /// A mid move over the kill window beyond `kill_sigma` standard deviations halts quoting.
    pub fn check_kill(
        &mut self,
        now: i64,
        move_bps: f64,
        sigma_bps: f64,
        vol_ready: bool,
    ) -> Option<RiskAction> {
        if self.is_engaged(RiskKind::KillSwitch) {
            if self.cfg.kill_cooldown_s > 0 && now >= self.kill_until {
                let cooldown = self.cfg.kill_cooldown_s;
                return self.set(RiskKind::KillSwitch, false, || {
                    format!("cooldown of {cooldown} s (risk.kill_cooldown_s) elapsed")
                });
            }
            return None;
        }
        if !vol_ready {
            return None;
        }
        let window_s = self.cfg.kill_window_ms as f64 / 1000.0;
        let sigma_window = sigma_bps * window_s.sqrt();
        let threshold = (self.cfg.kill_sigma * sigma_window).max(self.cfg.kill_min_move_bps);
        if move_bps <= threshold {
            return None;
        }
        self.kill_until = if self.cfg.kill_cooldown_s == 0 {
            i64::MAX
        } else {
            now.saturating_add(self.cfg.kill_cooldown_s as i64 * 1_000_000_000)
        };
        let (k, w) = (self.cfg.kill_sigma, self.cfg.kill_window_ms);
        self.set(RiskKind::KillSwitch, true, || {
            format!(
                "mid moved {move_bps:.2} bps within {w} ms, over the {threshold:.2} bps threshold \
                 ({k} sigma of {sigma_window:.3} bps; risk.kill_sigma, risk.kill_min_move_bps)"
            )
        })
    }

    /// `polled_only`: books have come only from REST reads, the stream never spoke; that is
    /// as stale as a stream that stopped.
    pub fn check_stale(
        &mut self,
        now: i64,
        last_market: Option<i64>,
        polled_only: bool,
    ) -> Option<RiskAction> {
        let Some(last) = last_market else {
            if !polled_only {
                return None;
            }
            return self.set(RiskKind::StaleFeed, true, || {
                "the market stream has sent nothing; books come only from REST reads".to_string()
            });
        };
        let age_ms = (now - last) / NS_PER_MS;
        let stale = age_ms > self.cfg.stale_feed_ms as i64;
        let limit = self.cfg.stale_feed_ms;
        self.set(RiskKind::StaleFeed, stale, || {
            if stale {
                format!("no market data for {age_ms} ms (risk.stale_feed_ms = {limit})")
            } else {
                "market data resumed".to_string()
            }
        })
    }

    /// Settlement depends on the chain: no block for `risk.chain_halt_ms` halts quoting. Only
    /// sessions that see blocks (live) have a chain clock to lose.
    pub fn check_chain(&mut self, now: i64, last_block: Option<i64>) -> Option<RiskAction> {
        let last = last_block?;
        let age_ms = (now - last) / NS_PER_MS;
        let halted = age_ms > self.cfg.chain_halt_ms as i64;
        let limit = self.cfg.chain_halt_ms;
        self.set(RiskKind::ChainHalt, halted, || {
            if halted {
                format!("no block for {age_ms} ms (risk.chain_halt_ms = {limit}): settlement is stalled")
            } else {
                "blocks resumed".to_string()
            }
        })
    }

    /// Live, fills are the venue's word relayed by pushes that can be lost: once the account has
    /// been read at all, a position moved by fills must be confirmed by a read within
    /// `risk.position_unconfirmed_ms` (0 = never required), or quoting stops until it is.
    pub fn check_unconfirmed(&mut self, now: i64, since: Option<i64>) -> Option<RiskAction> {
        let limit = self.cfg.position_unconfirmed_ms;
        let over = match since {
            Some(t) if limit > 0 => (now - t) / NS_PER_MS > limit as i64,
            _ => false,
        };
        self.set(RiskKind::PositionUnconfirmed, over, || {
            if over {
                format!(
                    "fills moved the position and no account read has confirmed it for {limit} ms (risk.position_unconfirmed_ms)"
                )
            } else {
                "the venue's account read confirms the position".to_string()
            }
        })
    }

    /// `equity` is marked to mid. The loss is measured from the equity at the start of the UTC day.
    pub fn check_daily(&mut self, now: i64, equity: Decimal) -> Option<RiskAction> {
        let day = now.div_euclid(NS_PER_DAY);
        if self.day != Some(day) {
            self.day = Some(day);
            self.day_start_equity = equity;
            if self.is_engaged(RiskKind::DailyLoss) {
                return self.set(RiskKind::DailyLoss, false, || "new UTC day".to_string());
            }
        }
        let pnl = equity - self.day_start_equity;
        if pnl < -self.cfg.daily_loss_limit {
            let limit = self.cfg.daily_loss_limit;
            return self.set(RiskKind::DailyLoss, true, || {
                format!(
                    "day PnL {} is below -{limit} (risk.daily_loss_limit); halted until 00:00 UTC",
                    pnl.round_dp(4)
                )
            });
        }
        None
    }

    pub fn set_book_invalid(
        &mut self,
        invalid: bool,
        detail: impl FnOnce() -> String,
    ) -> Option<RiskAction> {
        self.set(RiskKind::BookInvalid, invalid, detail)
    }

    pub fn operator_halt(&mut self) -> Option<RiskAction> {
        self.set(RiskKind::OperatorHalt, true, || "operator halt".to_string())
    }

    /// Clears what an operator may clear: their own halt and the kill switch.
    pub fn operator_resume(&mut self, out: &mut Vec<RiskAction>) {
        out.extend(self.set(RiskKind::OperatorHalt, false, || {
            "operator resume".to_string()
        }));
        out.extend(self.set(RiskKind::KillSwitch, false, || {
            "operator resume".to_string()
        }));
    }

    pub fn set_sides_off(
        &mut self,
        bids_off: bool,
        asks_off: bool,
        position: Decimal,
    ) -> Option<RiskAction> {
        if self.sides_off == [bids_off, asks_off] {
            return None;
        }
        self.sides_off = [bids_off, asks_off];
        // Re-engaging with a different side is a new action, so clear the bit first.
        self.engaged[slot(RiskKind::InventoryLimit)] = !(bids_off || asks_off);
        let max = self.cfg.max_position;
        self.set(RiskKind::InventoryLimit, bids_off || asks_off, || match (bids_off, asks_off) {
            (true, true) => format!("both sides off at position {position} (risk.max_position {max}, risk.max_notional)"),
            (true, false) => format!("quoting asks only: position {position} at the long limit (risk.max_position {max}, risk.max_notional)"),
            (false, true) => format!("quoting bids only: position {position} at the short limit (risk.max_position {max}, risk.max_notional)"),
            (false, false) => format!("both sides quoting again at position {position}"),
        })
    }

    /// The next time a guard may change without any new input.
    pub fn deadline(
        &self,
        last_market: Option<i64>,
        last_block: Option<i64>,
        unconfirmed_since: Option<i64>,
    ) -> Option<i64> {
        let mut d = None::<i64>;
        let mut consider = |t: i64| d = Some(d.map_or(t, |x| x.min(t)));
        if self.is_engaged(RiskKind::KillSwitch) && self.kill_until != i64::MAX {
            consider(self.kill_until);
        }
        if self.is_engaged(RiskKind::DailyLoss) {
            if let Some(day) = self.day {
                consider((day + 1) * NS_PER_DAY);
            }
        }
        if let (false, Some(last)) = (self.is_engaged(RiskKind::StaleFeed), last_market) {
            consider(last + (self.cfg.stale_feed_ms as i64 + 1) * NS_PER_MS);
        }
        if let (false, Some(last)) = (self.is_engaged(RiskKind::ChainHalt), last_block) {
            consider(last + (self.cfg.chain_halt_ms as i64 + 1) * NS_PER_MS);
        }
        let limit = self.cfg.position_unconfirmed_ms as i64;
        if let (false, Some(since), true) = (
            self.is_engaged(RiskKind::PositionUnconfirmed),
            unconfirmed_since,
            limit > 0,
        ) {
            consider(since + (limit + 1) * NS_PER_MS);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn room_is_the_tighter_of_position_and_notional() {
        let cfg = RiskConfig {
            max_position: dec!(1),
            max_notional: dec!(150),
            ..RiskConfig::default()
        };
        let (r, b) = room(
            &cfg,
            Contract::default(),
            Side::Buy,
            dec!(0.2),
            dec!(0.3),
            dec!(100),
            dec!(100),
            0,
        );
        assert_eq!(
            (r, b),
            (
                dec!(0.5),
                Bound::PositionLimit {
                    side: Side::Buy,
                    level: 0
                }
            )
        );
        let (r, b) = room(
            &cfg,
            Contract::default(),
            Side::Buy,
            dec!(0.2),
            dec!(0.3),
            dec!(200),
            dec!(100),
            1,
        );
        assert_eq!(
            (r, b),
            (
                dec!(0.25),
                Bound::NotionalLimit {
                    side: Side::Buy,
                    level: 1
                }
            )
        );
        // Short 0.5: selling has room only for 0.5 more.
        let (r, _) = room(
            &cfg,
            Contract::default(),
            Side::Sell,
            dec!(-0.5),
            dec!(0),
            dec!(100),
            dec!(100),
            0,
        );
        assert_eq!(r, dec!(0.5));
    }

    #[test]
    fn kill_switch_engages_once_and_cools_down() {
        let mut r = Risk::new(&RiskConfig::default());
        assert!(r.check_kill(0, 10.0, 0.5, false).is_none());
        let a = r.check_kill(0, 10.0, 0.5, true).unwrap();
        assert!(a.engaged && r.halted());
        assert!(r.check_kill(1, 20.0, 0.5, true).is_none());
        let a = r.check_kill(60_000_000_000, 0.0, 0.5, true).unwrap();
        assert!(!a.engaged && !r.halted());
    }

    #[test]
    fn daily_loss_halts_until_the_next_utc_day() {
        let mut r = Risk::new(&RiskConfig::default());
        assert!(r.check_daily(10, dec!(0)).is_none());
        assert!(r.check_daily(20, dec!(-251)).unwrap().engaged);
        assert!(r.halted());
        assert_eq!(r.deadline(None, None, None), Some(NS_PER_DAY));
        assert!(!r.check_daily(NS_PER_DAY, dec!(-251)).unwrap().engaged);
    }
}
