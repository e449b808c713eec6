//! Latency taken from the recording, and seeded jitter (docs/fill-models.md).
//!
//! `FeedLatency` adds the one-way latency of the latest market event (its receive time minus
//! the exchange's time: how far the venue is from the recorder) to each configured constant, so
//! an order sent while the feed lags arrives late too. `Jitter` adds a uniform draw in
//! `[0, max]` from a SplitMix64 stream seeded by `venue.latency_seed`: the same seed gives the
//! same latencies in the same order, so a replay makes the same fills.

use super::model::{ConstantLatency, LatencyModel};
use crate::event::PlaceOrder;

/// Feed latencies beyond this are a recorder's clock, not a network: they are clamped.
pub const MAX_FEED_NS: i64 = 10_000_000_000;

pub struct FeedLatency {
    pub base: ConstantLatency,
    last_feed: i64,
}

impl FeedLatency {
    pub fn new(base: ConstantLatency) -> FeedLatency {
        FeedLatency { base, last_feed: 0 }
    }
}

impl LatencyModel for FeedLatency {
    fn entry_ns(&mut self, ts: i64, order: &PlaceOrder) -> i64 {
        self.base.entry_ns(ts, order).saturating_add(self.last_feed)
    }
    fn cancel_ns(&mut self, ts: i64, cid: u64) -> i64 {
        self.base.cancel_ns(ts, cid).saturating_add(self.last_feed)
    }
    fn response_ns(&mut self, ts: i64) -> i64 {
        self.base.response_ns(ts).saturating_add(self.last_feed)
    }
    fn on_feed(&mut self, feed_ns: i64) {
        // A recorder whose clock runs behind the venue's shows negative latency: none, then.
        self.last_feed = feed_ns.clamp(0, MAX_FEED_NS);
    }
}

/// Another model's latencies plus a seeded uniform draw in `[0, max_ns]`.
pub struct Jitter {
    pub inner: Box<dyn LatencyModel>,
    pub max_ns: i64,
    state: u64,
}

impl Jitter {
    pub fn new(inner: Box<dyn LatencyModel>, max_ns: i64, seed: u64) -> Jitter {
        Jitter {
            inner,
            max_ns: max_ns.max(0),
            state: seed,
        }
    }

    /// SplitMix64 (Steele, Lea and Flood 2014): integer arithmetic only, the same everywhere.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn draw(&mut self) -> i64 {
        if self.max_ns == 0 {
            return 0;
        }
        (self.next() % (self.max_ns as u64 + 1)) as i64
    }
}

impl LatencyModel for Jitter {
    fn entry_ns(&mut self, ts: i64, order: &PlaceOrder) -> i64 {
        let d = self.draw();
        self.inner.entry_ns(ts, order).saturating_add(d)
    }
    fn cancel_ns(&mut self, ts: i64, cid: u64) -> i64 {
        let d = self.draw();
        self.inner.cancel_ns(ts, cid).saturating_add(d)
    }
    fn response_ns(&mut self, ts: i64) -> i64 {
        let d = self.draw();
        self.inner.response_ns(ts).saturating_add(d)
    }
    fn on_feed(&mut self, feed_ns: i64) {
        self.inner.on_feed(feed_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Side, Symbol};
    use rust_decimal_macros::dec;

    const MS: i64 = 1_000_000;

    fn base() -> ConstantLatency {
        ConstantLatency {
            entry_ns: 50 * MS,
            cancel_ns: 40 * MS,
            response_ns: 5 * MS,
        }
    }

    fn order() -> PlaceOrder {
        PlaceOrder {
            cid: 1,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side: Side::Buy,
            price: dec!(100),
            qty: dec!(1),
            post_only: true,
            level: 0,
        }
    }

    #[test]
    fn the_feeds_lag_is_added_to_each_constant_and_clamped() {
        let mut l = FeedLatency::new(base());
        assert_eq!(l.entry_ns(0, &order()), 50 * MS);
        l.on_feed(12 * MS);
        assert_eq!(l.entry_ns(0, &order()), 62 * MS);
        assert_eq!(l.cancel_ns(0, 1), 52 * MS);
        assert_eq!(l.response_ns(0), 17 * MS);
        l.on_feed(-3 * MS);
        assert_eq!(l.entry_ns(0, &order()), 50 * MS);
        l.on_feed(i64::MAX);
        assert_eq!(l.response_ns(0), 5 * MS + MAX_FEED_NS);
    }

    #[test]
    fn jitter_is_bounded_and_the_same_seed_draws_the_same_latencies() {
        let draws = |seed: u64| {
            let mut j = Jitter::new(Box::new(base()), 10 * MS, seed);
            (0..200)
                .map(|_| j.entry_ns(0, &order()))
                .collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
        assert!(a.iter().all(|l| (50 * MS..=60 * MS).contains(l)));
        // Spread over the range, not stuck at one end.
        assert!(a.iter().any(|l| *l < 52 * MS) && a.iter().any(|l| *l > 58 * MS));
        // SplitMix64's first output for seed 0 (the reference implementation's).
        // Jitter wraps a feed-following model: the lag passes through, each latency is drawn.
        let mut f = Jitter::new(Box::new(FeedLatency::new(base())), 2 * MS, 3);
        f.on_feed(100 * MS);
        assert!((140 * MS..=142 * MS).contains(&f.cancel_ns(0, 1)));
        assert!((105 * MS..=107 * MS).contains(&f.response_ns(0)));
        let mut j = Jitter::new(Box::new(base()), 0, 0);
        assert_eq!(j.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(j.response_ns(0), 5 * MS);
    }
}
