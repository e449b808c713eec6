//! The simulated venue: latency on the way in, queue position while resting, fills from the
//! recorded trades and book, fees on the way out. It watches the same market entries as the
//! core, through its own copy of the book, and answers with the inputs a real venue would send.

mod builder;
pub mod latency;
pub mod model;
pub mod queue;

use crate::book::Book;
use crate::config::{LatencyKind, MarketConfig, VenueConfig};
use crate::contract::Contract;
use crate::event::{
    Fill, Input, Liquidity, OrderAck, OrderCanceled, OrderReject, PlaceOrder, Side,
};
pub use builder::Builder;
use model::{ConstantLatency, FeeModel, LatencyModel, QueueModel};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
struct Resting {
    side: Side,
    price: Decimal,
    remaining: Decimal,
    /// Others' quantity ahead of us in the queue at our price; our own earlier orders there
    /// are ahead of us too, and are counted when a trade is matched.
    ahead: Decimal,
    /// When it reached the venue (the venue's counter): time priority among our own orders.
    arrival: u64,
    /// The visible size at our price when the queue model last looked, and the trades at our
    /// price since, which `on_trade` has already taken from the queue.
    visible: Decimal,
    traded: Decimal,
}

enum Arrival {
    Order(PlaceOrder),
    Cancel(u64),
}

/// A report the venue sends back: `ts` is when we receive it, `venue_ts` when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub ts: i64,
    pub venue_ts: i64,
    pub input: Input,
}

pub struct SimVenue {
    queue: Box<dyn QueueModel>,
    latency: Box<dyn LatencyModel>,
    fees: Box<dyn FeeModel>,
    /// Fees are charged on the fill's notional in the settlement currency.
    contract: Contract,
    resting: BTreeMap<u64, Resting>,
    in_flight: BTreeMap<(i64, u64), Arrival>,
    /// Orders whose cancel reached the venue before they did.
    canceled_early: BTreeSet<u64>,
    reports: BTreeMap<(i64, u64), Report>,
    counter: u64,
    acks: u64,
}

impl SimVenue {
    pub fn new(cfg: &VenueConfig, market: &MarketConfig) -> SimVenue {
        SimVenue::builder(cfg, market).build()
    }

    /// The models `[venue]` names, each of which can be replaced before `build`.
    pub fn builder(cfg: &VenueConfig, market: &MarketConfig) -> Builder {
        Builder::from_config(cfg, market)
    }

    /// A market event reached us `feed_ns` after the venue made it: latency models that
    /// follow the feed (`venue.latency = "feed"`) use it for what comes next.
    pub fn on_feed(&mut self, feed_ns: i64) {
        self.latency.on_feed(feed_ns);
    }

    /// The venue's fees in `contract`'s settlement currency (the default is linear).
    pub fn for_contract(mut self, contract: Contract) -> SimVenue {
        self.contract = contract;
        self
    }

    pub fn with_models(
        queue: Box<dyn QueueModel>,
        latency: Box<dyn LatencyModel>,
        fees: Box<dyn FeeModel>,
    ) -> SimVenue {
        SimVenue {
            queue,
            latency,
            fees,
            contract: Contract::default(),
            resting: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            canceled_early: BTreeSet::new(),
            reports: BTreeMap::new(),
            counter: 0,
            acks: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn submit(&mut self, now: i64, order: &PlaceOrder) {
        let k = (
            now.saturating_add(self.latency.entry_ns(now, order)),
            self.tick(),
        );
        self.in_flight.insert(k, Arrival::Order(order.clone()));
    }

    pub fn cancel(&mut self, now: i64, cid: u64) {
        let k = (
            now.saturating_add(self.latency.cancel_ns(now, cid)),
            self.tick(),
        );
        self.in_flight.insert(k, Arrival::Cancel(cid));
    }

    fn report(&mut self, venue_ts: i64, input: Input) {
        let k = (
            venue_ts.saturating_add(self.latency.response_ns(venue_ts)),
            self.tick(),
        );
        self.reports.insert(
            k,
            Report {
                ts: k.0,
                venue_ts,
                input,
            },
        );
    }

    /// Time of the next order or cancel reaching the venue.
    pub fn next_arrival(&self) -> Option<i64> {
        self.in_flight.keys().next().map(|k| k.0)
    }

    /// Handles the next arrival; `book` is the market as of its time.
    pub fn arrive(&mut self, book: &Book) {
        let Some(((ts, _), a)) = self.in_flight.pop_first() else {
            return;
        };
        match a {
            Arrival::Order(o) => self.accept(ts, o, book),
            Arrival::Cancel(cid) => match self.resting.remove(&cid) {
                Some(r) => self.report(
                    ts,
                    Input::OrderCanceled(OrderCanceled {
                        cid,
                        canceled_qty: r.remaining,
                        reason: "canceled".into(),
                    }),
                ),
                None => {
                    let pending = self
                        .in_flight
                        .values()
                        .any(|a| matches!(a, Arrival::Order(o) if o.cid == cid));
                    if pending {
                        self.canceled_early.insert(cid);
                    }
                    // Otherwise the order already filled; the fill report closed it.
                }
            },
        }
    }

    fn accept(&mut self, ts: i64, o: PlaceOrder, book: &Book) {
        if self.canceled_early.remove(&o.cid) {
            return self.report(
                ts,
                Input::OrderCanceled(OrderCanceled {
                    cid: o.cid,
                    canceled_qty: o.qty,
                    reason: "canceled before it reached the book".into(),
                }),
            );
        }
        if o.qty <= Decimal::ZERO || o.price <= Decimal::ZERO {
            return self.report(
                ts,
                Input::OrderReject(OrderReject {
                    cid: o.cid,
                    reason: format!("invalid order: price {} qty {}", o.price, o.qty),
                }),
            );
        }
        let opposite = book.best(o.side.opposite());
        let crosses = opposite.is_some_and(|(p, _)| match o.side {
            Side::Buy => o.price >= p,
            Side::Sell => o.price <= p,
        });
        if crosses && o.post_only {
            let (p, _) = opposite.unwrap_or_default();
            return self.report(
                ts,
                Input::OrderReject(OrderReject {
                    cid: o.cid,
                    reason: format!(
                        "post-only {} at {} would take liquidity: best {} is {p}",
                        o.side.as_str(),
                        o.price,
                        if o.side == Side::Buy { "ask" } else { "bid" }
                    ),
                }),
            );
        }
        self.acks += 1;
        let venue_order_id = format!("sim-{}", self.acks);
        self.report(
            ts,
            Input::OrderAck(OrderAck {
                cid: o.cid,
                venue_order_id,
            }),
        );
        let mut remaining = o.qty;
        if crosses {
            // Take from the visible book; our own taking does not change the recorded market.
            let takes: Vec<(Decimal, Decimal)> = book
                .levels(o.side.opposite())
                .take_while(|l| match o.side {
                    Side::Buy => l.price <= o.price,
                    Side::Sell => l.price >= o.price,
                })
                .map(|l| (l.price, l.qty))
                .collect();
            for (price, qty) in takes {
                if remaining <= Decimal::ZERO {
                    break;
                }
                let q = qty.min(remaining);
                remaining -= q;
                self.fill(ts, o.cid, o.side, price, q, Liquidity::Taker, remaining);
            }
        }
        if remaining > Decimal::ZERO {
            let visible = book.qty_at(o.side, o.price);
            let ahead = self.queue.on_arrival(visible);
            let arrival = self.tick();
            self.resting.insert(
                o.cid,
                Resting {
                    side: o.side,
                    price: o.price,
                    remaining,
                    ahead,
                    arrival,
                    visible,
                    traded: Decimal::ZERO,
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        ts: i64,
        cid: u64,
        side: Side,
        price: Decimal,
        qty: Decimal,
        liquidity: Liquidity,
        leaves: Decimal,
    ) {
        let fee = self.fees.fee(liquidity, self.contract.notional(qty, price));
        self.report(
            ts,
            Input::Fill(Fill {
                cid,
                side,
                price,
                qty,
                liquidity,
                fee,
                leaves_qty: leaves,
            }),
        );
    }

    /// Matches resting orders against one market entry, after `book` has applied it.
    pub fn on_market(&mut self, ts: i64, input: &Input, book: &Book) {
        if self.resting.is_empty() {
            return;
        }
        let mut fills: Vec<(u64, Decimal)> = Vec::new();
        match input {
            Input::Trade(t) => {
                // A sell aggressor hits bids, so it can fill our buys: best price first, then
                // the order that reached the venue first.
                let ours = t.aggressor.opposite();
                let mut ids: Vec<(Decimal, u64, u64)> = self
                    .resting
                    .iter()
                    .filter(|(_, r)| r.side == ours)
                    .map(|(cid, r)| (r.price, r.arrival, *cid))
                    .collect();
                ids.sort_by(|a, b| match ours {
                    Side::Buy => b.0.cmp(&a.0).then(a.1.cmp(&b.1)),
                    Side::Sell => a.0.cmp(&b.0).then(a.1.cmp(&b.1)),
                });
                // The trade's size is shared by everyone at its price, so whatever the queue
                // model says, our fills there never add up to more than it.
                let mut trade_left = t.qty;
                // Our orders at the trade's price already matched: their size before this
                // trade, what it filled of them, and where in the queue the last one ends.
                // A later order of ours queues behind all of that.
                let (mut ours_ahead, mut ours_filled, mut front) =
                    (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
                for (price, _, cid) in ids {
                    let Some(r) = self.resting.get_mut(&cid) else {
                        continue;
                    };
                    let through = match ours {
                        Side::Buy => t.price < price,
                        Side::Sell => t.price > price,
                    };
                    if through {
                        // The aggressor swept past our price: our whole level traded.
                        fills.push((cid, r.remaining));
                    } else if t.price == price {
                        r.traded = r.traded.saturating_add(t.qty);
                        let total_ahead = (r.ahead + ours_ahead).max(front);
                        let (left_ahead, reached) = self.queue.on_trade(total_ahead, t.qty);
                        let q = reached.min(r.remaining).min(trade_left);
                        // What stays ahead, less our own size still resting there, is others'.
                        r.ahead = (left_ahead - (ours_ahead - ours_filled)).max(Decimal::ZERO);
                        front = total_ahead + r.remaining;
                        ours_ahead += r.remaining;
                        ours_filled += q;
                        if q > Decimal::ZERO {
                            trade_left -= q;
                            fills.push((cid, q));
                        }
                    }
                }
            }
            Input::BookSnapshot(_) | Input::BookPolled(_) | Input::BookDelta(_) | Input::Bbo(_) => {
                let (bid, ask) = (book.best_bid().map(|b| b.0), book.best_ask().map(|a| a.0));
                for (cid, r) in self.resting.iter_mut() {
                    let crossed = match r.side {
                        Side::Buy => ask.is_some_and(|a| a <= r.price),
                        Side::Sell => bid.is_some_and(|b| b >= r.price),
                    };
                    if crossed {
                        fills.push((*cid, r.remaining));
                        continue;
                    }
                    let now = book.qty_at(r.side, r.price);
                    if now != r.visible || !r.traded.is_zero() {
                        r.ahead = self.queue.on_depth(r.ahead, r.visible, now, r.traded);
                        r.visible = now;
                        r.traded = Decimal::ZERO;
                    }
                }
            }
            _ => {}
        }
        for (cid, q) in fills {
            let Some(r) = self.resting.get_mut(&cid) else {
                continue;
            };
            r.remaining -= q;
            let (side, price, leaves) = (r.side, r.price, r.remaining);
            if leaves <= Decimal::ZERO {
                self.resting.remove(&cid);
            }
            self.fill(ts, cid, side, price, q, Liquidity::Maker, leaves);
        }
    }

    /// Time at which the next report reaches us.
    pub fn next_report(&self) -> Option<i64> {
        self.reports.keys().next().map(|k| k.0)
    }

    pub fn pop_report(&mut self) -> Option<Report> {
        self.reports.pop_first().map(|(_, r)| r)
    }

    pub fn resting(&self) -> usize {
        self.resting.len()
    }

    /// The queue ahead of a resting order, for tests and reports.
    pub fn queue_ahead(&self, cid: u64) -> Option<Decimal> {
        self.resting.get(&cid).map(|r| r.ahead)
    }
}

/// The latency model `[venue]` asks for: constant or following the feed, plus seeded jitter.
fn latency_of(cfg: &VenueConfig) -> Box<dyn LatencyModel> {
    let base = ConstantLatency::from_config(cfg);
    let model: Box<dyn LatencyModel> = match cfg.latency {
        LatencyKind::Constant => Box::new(base),
        LatencyKind::Feed => Box::new(latency::FeedLatency::new(base)),
    };
    if cfg.latency_jitter_ms == 0 {
        return model;
    }
    Box::new(latency::Jitter::new(
        model,
        cfg.latency_jitter_ms as i64 * 1_000_000,
        cfg.latency_seed,
    ))
}

#[cfg(test)]
mod tests;
