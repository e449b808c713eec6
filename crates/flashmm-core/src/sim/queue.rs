//! Probabilistic queue position, after hftbacktest's `ProbQueueModel`: a cancel at our price
//! came from ahead of us with a probability that grows with the share of the queue ahead.
//!
//! With `front` ahead of us and `back` behind (the visible size before the change, less
//! `front`), a decrease of `chg` that trades do not explain is split
//!
//! ```text
//! p_front = f(front) / (f(front) + f(back))
//! front'  = front - p_front x chg,   held within [0, visible now]
//! ```
//!
//! (hftbacktest adds `min(back - (1 - p_front) x chg, 0)`, what the back cannot absorb; that
//! makes front' = front + back - chg = the visible size now, which the clamp gives anyway).
//! `f(x) = x^n` is the power form (n = `venue.queue_power`; larger n sends more of each cancel to
//! whichever side is longer) and `f(x) = ln(1 + x)` the logarithmic one. An increase joins
//! behind us. The arithmetic is f64 through `libm` (the same bits on every machine), rounded to
//! `DP` places on the way back to Decimal.

use super::model::{ConservativeQueue, QueueModel};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

const DP: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Power(f64),
    Log,
}

pub struct ProbQueue {
    pub shape: Shape,
}

impl ProbQueue {
    fn f(&self, x: f64) -> f64 {
        match self.shape {
            Shape::Power(n) => libm::pow(x, n),
            Shape::Log => libm::log1p(x),
        }
    }

    /// The share of a cancel that was ahead of us.
    pub fn p_front(&self, front: f64, back: f64) -> f64 {
        let (ff, fb) = (self.f(front.max(0.0)), self.f(back.max(0.0)));
        if ff + fb > 0.0 && (ff + fb).is_finite() {
            return ff / (ff + fb);
        }
        // Nothing queued, or powers too large for f64: the longer side takes it all.
        match front.partial_cmp(&back) {
            Some(std::cmp::Ordering::Greater) => 1.0,
            Some(std::cmp::Ordering::Less) => 0.0,
            _ => 0.5,
        }
    }
}

impl QueueModel for ProbQueue {
    // Arrival and trades are the conservative rule's; only cancels differ.
    fn on_arrival(&self, visible: Decimal) -> Decimal {
        ConservativeQueue.on_arrival(visible)
    }

    fn on_trade(&self, ahead: Decimal, qty: Decimal) -> (Decimal, Decimal) {
        ConservativeQueue.on_trade(ahead, qty)
    }

    fn on_depth(&self, ahead: Decimal, prev: Decimal, now: Decimal, traded: Decimal) -> Decimal {
        let now = now.max(Decimal::ZERO);
        let chg = prev.checked_sub(now).and_then(|d| d.checked_sub(traded));
        let Some(chg) = chg.filter(|c| *c > Decimal::ZERO) else {
            return ahead.min(now);
        };
        let (Some(front), Some(back), Some(c)) = (
            ahead.to_f64(),
            (prev - ahead).max(Decimal::ZERO).to_f64(),
            chg.to_f64(),
        ) else {
            return ahead.min(now);
        };
        let p = self.p_front(front, back);
        // What the back cannot absorb comes from the front; then front' = front + back - chg
        // = now, which the clamp below gives.
        let est = front - p * c;
        let est = Decimal::from_f64(est)
            .map(|d| d.round_dp(DP))
            .unwrap_or(ahead);
        est.max(Decimal::ZERO).min(now).min(ahead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const POWER2: ProbQueue = ProbQueue {
        shape: Shape::Power(2.0),
    };
    const LOG: ProbQueue = ProbQueue { shape: Shape::Log };

    #[test]
    fn a_cancel_is_split_by_the_shares_of_the_queue_power_form() {
        // 3 ahead, 1 behind, 2 canceled: p_front = 9 / (9 + 1) = 0.9, so 1.8 of it was ahead.
        assert_eq!(
            POWER2.on_depth(dec!(3), dec!(4), dec!(2), dec!(0)),
            dec!(1.2)
        );
        // n = 1 is proportional: 3/4 of the cancel.
        let linear = ProbQueue {
            shape: Shape::Power(1.0),
        };
        assert_eq!(
            linear.on_depth(dec!(3), dec!(4), dec!(2), dec!(0)),
            dec!(1.5)
        );
    }

    #[test]
    fn a_cancel_is_split_by_the_shares_of_the_queue_log_form() {
        // ln 4 / (ln 4 + ln 2) = 2/3 exactly: 3 - 2 x 2/3.
        assert_eq!(
            LOG.on_depth(dec!(3), dec!(4), dec!(2), dec!(0)),
            dec!(1.66666667)
        );
    }

    #[test]
    fn trades_already_counted_are_not_cancels_and_growth_joins_behind() {
        // The level fell by 2, all of it the trade on_trade already took from the front.
        assert_eq!(POWER2.on_depth(dec!(1), dec!(4), dec!(2), dec!(2)), dec!(1));
        // It grew: new size queues behind us.
        assert_eq!(POWER2.on_depth(dec!(3), dec!(4), dec!(9), dec!(0)), dec!(3));
        // It cannot be more ahead of us than is visible.
        assert_eq!(POWER2.on_depth(dec!(3), dec!(4), dec!(1), dec!(3)), dec!(1));
    }

    #[test]
    fn what_the_back_cannot_absorb_comes_from_the_front() {
        // 1 ahead, 3 behind, 3.5 canceled: p_front = 1/10; the back takes 3.15 of its 3, so
        // 0.15 more comes from the front: 1 - 0.35 - 0.15 = 0.5.
        assert_eq!(
            POWER2.on_depth(dec!(1), dec!(4), dec!(0.5), dec!(0)),
            dec!(0.5)
        );
        // Nothing behind: every cancel was ahead.
        assert_eq!(
            POWER2.on_depth(dec!(2), dec!(2), dec!(1.5), dec!(0)),
            dec!(1.5)
        );
        // Nothing ahead stays nothing.
        assert_eq!(LOG.on_depth(dec!(0), dec!(5), dec!(1), dec!(0)), dec!(0));
    }

    #[test]
    fn the_share_ahead_by_hand_and_at_the_edges() {
        assert_eq!(POWER2.p_front(3.0, 1.0), 0.9);
        assert!((LOG.p_front(3.0, 1.0) - 2.0 / 3.0).abs() < 1e-15);
        // Nothing queued either side: an even split, not a NaN.
        assert_eq!(POWER2.p_front(0.0, 0.0), 0.5);
        assert_eq!(POWER2.p_front(0.0, 2.0), 0.0);
        assert_eq!(POWER2.p_front(2.0, 0.0), 1.0);
        // Powers beyond f64: the longer side takes it all, equal sides split.
        let steep = ProbQueue {
            shape: Shape::Power(400.0),
        };
        assert_eq!(steep.p_front(300.0, 100.0), 1.0);
        assert_eq!(steep.p_front(100.0, 300.0), 0.0);
        assert_eq!(steep.p_front(300.0, 300.0), 0.5);
    }

    #[test]
    fn hostile_sizes_give_a_bounded_answer_not_a_panic() {
        let huge = Decimal::MAX;
        for q in [&POWER2, &LOG] {
            let a = q.on_depth(huge, huge, dec!(1), dec!(0));
            assert!(a >= Decimal::ZERO && a <= dec!(1));
            let b = q.on_depth(dec!(1), huge, Decimal::ZERO, dec!(0));
            assert_eq!(b, Decimal::ZERO);
            // A change that does not fit in a Decimal is not a cancel.
            assert_eq!(q.on_depth(dec!(1), Decimal::MIN, dec!(2), huge), dec!(1));
        }
        let steep = ProbQueue {
            shape: Shape::Power(400.0),
        };
        let a = steep.on_depth(dec!(300), dec!(400), dec!(350), dec!(0));
        assert!(a >= Decimal::ZERO && a <= dec!(300));
    }
}
