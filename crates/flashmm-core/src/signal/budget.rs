//! The budget governor: USD caps per rolling hour, per UTC day and for the whole run. A request
//! goes out only if what is spent, plus the worst case of every request still in flight, plus
//! the worst case of this one, stays under every cap: the caps are never exceeded, not merely
//! noticed afterwards.

use rust_decimal::Decimal;
use std::collections::VecDeque;

const NS_PER_HOUR: i64 = 3_600 * 1_000_000_000;
const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Hour,
    Day,
    Total,
}

impl Cap {
    pub fn key(self) -> &'static str {
        match self {
            Cap::Hour => "predict.budget_usd_per_hour",
            Cap::Day => "predict.budget_usd_per_day",
            Cap::Total => "predict.budget_usd_total",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Budget {
    per_hour: Decimal,
    per_day: Decimal,
    /// Zero means no cap for the run.
    total: Decimal,
    hour: VecDeque<(i64, Decimal)>,
    hour_sum: Decimal,
    day: i64,
    day_sum: Decimal,
    total_sum: Decimal,
    reserved: Decimal,
}

impl Budget {
    pub fn new(per_hour: Decimal, per_day: Decimal, total: Decimal) -> Budget {
        Budget {
            per_hour,
            per_day,
            total,
            hour: VecDeque::new(),
            hour_sum: Decimal::ZERO,
            day: i64::MIN,
            day_sum: Decimal::ZERO,
            total_sum: Decimal::ZERO,
            reserved: Decimal::ZERO,
        }
    }

    fn roll(&mut self, now: i64) {
        while self
            .hour
            .front()
            .is_some_and(|(t, _)| *t <= now - NS_PER_HOUR)
        {
            if let Some((_, c)) = self.hour.pop_front() {
                self.hour_sum -= c;
            }
        }
        let day = now.div_euclid(NS_PER_DAY);
        if day != self.day {
            self.day = day;
            self.day_sum = Decimal::ZERO;
        }
    }

    /// The first cap that `extra` more, beside every reservation, would break, if any.
    pub fn blocks(&mut self, now: i64, extra: Decimal) -> Option<Cap> {
        self.first_broken(now, self.reserved + extra)
    }

    /// The first cap that `extra` more than what is settled would break: a cap no request can
    /// fit under whatever the calls in flight turn out to cost.
    pub fn blocks_settled(&mut self, now: i64, extra: Decimal) -> Option<Cap> {
        self.first_broken(now, extra)
    }

    fn first_broken(&mut self, now: i64, committed: Decimal) -> Option<Cap> {
        self.roll(now);
        if self.hour_sum + committed > self.per_hour {
            Some(Cap::Hour)
        } else if self.day_sum + committed > self.per_day {
            Some(Cap::Day)
        } else if !self.total.is_zero() && self.total_sum + committed > self.total {
            Some(Cap::Total)
        } else {
            None
        }
    }

    pub fn reserve(&mut self, amount: Decimal) {
        self.reserved += amount;
    }

    /// A request came back: release its reservation and book what it cost.
    pub fn settle(&mut self, now: i64, reserved: Decimal, cost: Decimal) {
        self.roll(now);
        self.reserved = (self.reserved - reserved).max(Decimal::ZERO);
        self.hour.push_back((now, cost));
        self.hour_sum += cost;
        self.day_sum += cost;
        self.total_sum += cost;
    }

    pub fn spent(&self) -> (Decimal, Decimal, Decimal) {
        (self.hour_sum, self.day_sum, self.total_sum)
    }

    /// When an hour-window or day cap could next loosen.
    pub fn deadline(&self, cap: Cap) -> Option<i64> {
        match cap {
            Cap::Hour => self.hour.front().map(|(t, _)| t + NS_PER_HOUR),
            Cap::Day => Some((self.day + 1) * NS_PER_DAY),
            Cap::Total => None,
        }
    }

    pub fn limit(&self, cap: Cap) -> Decimal {
        match cap {
            Cap::Hour => self.per_hour,
            Cap::Day => self.per_day,
            Cap::Total => self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn caps_count_what_is_in_flight_and_roll() {
        let mut b = Budget::new(dec!(1), dec!(1.5), dec!(0));
        assert_eq!(b.blocks(0, dec!(0.6)), None);
        b.reserve(dec!(0.6));
        // Another 0.6 would break the hour cap while the first is in flight.
        assert_eq!(b.blocks(1, dec!(0.6)), Some(Cap::Hour));
        b.settle(2, dec!(0.6), dec!(0.5));
        assert_eq!(b.blocks(3, dec!(0.5)), None);
        b.reserve(dec!(0.5));
        b.settle(4, dec!(0.5), dec!(0.5));
        assert_eq!(b.blocks(5, dec!(0.1)), Some(Cap::Hour));
        // An hour later the hour frees, but the day has spent 1.0 of 1.5.
        assert_eq!(b.blocks(NS_PER_HOUR + 5, dec!(0.6)), Some(Cap::Day));
        assert_eq!(b.blocks(NS_PER_HOUR + 5, dec!(0.5)), None);
        assert_eq!(b.blocks(NS_PER_DAY, dec!(1.0)), None);
    }

    #[test]
    fn a_total_cap_for_the_run() {
        let mut b = Budget::new(dec!(100), dec!(100), dec!(0.01));
        assert_eq!(b.blocks(0, dec!(0.011)), Some(Cap::Total));
        assert_eq!(b.blocks(0, dec!(0.01)), None);
    }
}
