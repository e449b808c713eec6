//! Small model traits in the style of hftbacktest: queue position, latency and fees are each
//! one decision the simulated venue delegates.

use crate::config::VenueConfig;
use crate::event::{Liquidity, PlaceOrder};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const NS_PER_MS: i64 = 1_000_000;

pub trait QueueModel: Send {
    /// Quantity ahead of a new order at its price, given the visible size there on arrival.
    fn on_arrival(&self, visible: Decimal) -> Decimal;
    /// A trade of `qty` printed at our price: returns (new queue ahead, quantity that reached us).
    fn on_trade(&self, ahead: Decimal, qty: Decimal) -> (Decimal, Decimal);
    /// The visible size at our price went from `prev` to `now`, of which `traded` was trades
    /// already passed to `on_trade`: returns the new queue ahead. The rest of a decrease is
    /// cancels, and a model decides how much of it was ahead of us. By default none was.
    fn on_depth(&self, ahead: Decimal, _prev: Decimal, _now: Decimal, _traded: Decimal) -> Decimal {
        ahead
    }
}

/// Everyone visible at our price was there first, and only trades move us forward:
/// cancellations ahead of us are assumed to come from behind.
pub struct ConservativeQueue;

impl QueueModel for ConservativeQueue {
    fn on_arrival(&self, visible: Decimal) -> Decimal {
        visible
    }

    fn on_trade(&self, ahead: Decimal, qty: Decimal) -> (Decimal, Decimal) {
        if qty <= ahead {
            (ahead - qty, Decimal::ZERO)
        } else {
            (Decimal::ZERO, qty - ahead)
        }
    }
}

pub trait LatencyModel: Send {
    /// From our decision at `ts` to the venue accepting `order`.
    fn entry_ns(&mut self, ts: i64, order: &PlaceOrder) -> i64;
    /// From our decision at `ts` to the venue applying the cancel of `cid`.
    fn cancel_ns(&mut self, ts: i64, cid: u64) -> i64;
    /// From the venue's event at `ts` to our receiving the report.
    fn response_ns(&mut self, ts: i64) -> i64;
    /// A market event reached us `feed_ns` after the venue made it (receive - exchange time).
    fn on_feed(&mut self, _feed_ns: i64) {}
}

pub struct ConstantLatency {
    pub entry_ns: i64,
    pub cancel_ns: i64,
    pub response_ns: i64,
}

impl ConstantLatency {
    pub fn from_config(cfg: &VenueConfig) -> ConstantLatency {
        ConstantLatency {
            entry_ns: cfg.entry_latency_ms as i64 * NS_PER_MS,
            cancel_ns: cfg.cancel_latency_ms as i64 * NS_PER_MS,
            response_ns: cfg.response_latency_ms as i64 * NS_PER_MS,
        }
    }
}

impl LatencyModel for ConstantLatency {
    fn entry_ns(&mut self, _ts: i64, _order: &PlaceOrder) -> i64 {
        self.entry_ns
    }
    fn cancel_ns(&mut self, _ts: i64, _cid: u64) -> i64 {
        self.cancel_ns
    }
    fn response_ns(&mut self, _ts: i64) -> i64 {
        self.response_ns
    }
}

pub trait FeeModel: Send {
    /// Fee in quote currency for a fill of `notional`; negative is a rebate.
    fn fee(&self, liquidity: Liquidity, notional: Decimal) -> Decimal;
}

pub struct BpsFees {
    pub maker_bps: Decimal,
    pub taker_bps: Decimal,
}

impl FeeModel for BpsFees {
    fn fee(&self, liquidity: Liquidity, notional: Decimal) -> Decimal {
        let bps = match liquidity {
            Liquidity::Maker => self.maker_bps,
            Liquidity::Taker => self.taker_bps,
        };
        notional * bps / dec!(10000)
    }
}
