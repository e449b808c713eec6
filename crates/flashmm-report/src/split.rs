//! Which market of a session an entry is about, for reports that break a session of several
//! markets down per market.
//!
//! Market entries, orders, quote decisions, risk actions, funding and prediction requests name
//! their market; order reports and prediction answers are tied to it through the order or the
//! request they answer. Entries about no market (timers, the predictor's gate, the session's
//! start and end, a guard over all markets) belong to every market.

use flashmm_core::event::{Body, Entry, Input, Output, Symbol};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    One(usize),
    All,
    /// A market the session does not quote, or a report of an order it never placed.
    Nobody,
}

pub struct Split {
    symbols: Vec<Symbol>,
    orders: HashMap<u64, usize>,
    requests: HashMap<u64, usize>,
}

impl Split {
    pub fn new(symbols: Vec<Symbol>) -> Split {
        Split {
            symbols,
            orders: HashMap::new(),
            requests: HashMap::new(),
        }
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn of(&self, s: Symbol) -> Owner {
        self.symbols
            .iter()
            .position(|x| *x == s)
            .map_or(Owner::Nobody, Owner::One)
    }

    fn named(&self, s: Option<Symbol>) -> Owner {
        match s {
            Some(s) => self.of(s),
            None => Owner::All,
        }
    }

    fn by(map: &HashMap<u64, usize>, id: u64) -> Owner {
        map.get(&id).map_or(Owner::Nobody, |i| Owner::One(*i))
    }

    /// The market `e` is about; feed every entry of the session in order.
    pub fn owner(&mut self, e: &Entry) -> Owner {
        if self.symbols.len() == 1 {
            return Owner::One(0);
        }
        if let Some(s) = e.body.market_symbol() {
            return self.of(s);
        }
        match &e.body {
            Body::Input(i) => match i {
                Input::OrderAck(a) => Self::by(&self.orders, a.cid),
                Input::OrderReject(r) => Self::by(&self.orders, r.cid),
                Input::OrderCanceled(c) => Self::by(&self.orders, c.cid),
                Input::Fill(f) => Self::by(&self.orders, f.cid),
                Input::PredictionResponse(r) => Self::by(&self.requests, r.request_id),
                Input::PositionSync(p) => self.of(p.symbol),
                _ => Owner::All,
            },
            Body::Output(o) => match o {
                Output::PlaceOrder(p) => {
                    let owner = self.of(p.symbol);
                    if let Owner::One(i) = owner {
                        self.orders.insert(p.cid, i);
                    }
                    owner
                }
                Output::CancelOrder(c) => Self::by(&self.orders, c.cid),
                Output::PredictionRequest(r) => {
                    let owner = self.of(r.symbol);
                    if let Owner::One(i) = owner {
                        self.requests.insert(r.request_id, i);
                    }
                    owner
                }
                Output::QuoteDecision(q) => self.named(q.symbol),
                Output::RiskAction(a) => self.named(a.symbol),
                Output::Funding(f) => self.named(f.symbol),
                Output::PredictorStatus(_) => Owner::All,
                Output::PredictionOutcome(o) => Self::by(&self.requests, o.request_id),
            },
            _ => Owner::All,
        }
    }
}

/// The entries of a session's stream about market `idx` of `symbols`, and those about every
/// market: what a reader of one market of several needs (its book, its fills, its orders).
pub fn of_market<E>(
    stream: impl Iterator<Item = Result<Entry, E>>,
    symbols: Vec<Symbol>,
    idx: usize,
) -> impl Iterator<Item = Result<Entry, E>> {
    let mut split = Split::new(symbols);
    stream.filter(move |e| match e {
        Ok(e) => match split.owner(e) {
            Owner::One(i) => i == idx,
            Owner::All => true,
            Owner::Nobody => false,
        },
        Err(_) => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::event::{Fill, Liquidity, PlaceOrder, Side};
    use rust_decimal::Decimal;

    fn e(seq: u64, body: Body) -> Entry {
        Entry {
            seq,
            ts_ns: seq as i64,
            venue_ts_ns: None,
            session: 2,
            cause: None,
            body,
        }
    }

    #[test]
    fn a_fill_belongs_to_the_market_of_its_order_and_a_timer_to_all() {
        let btc = Symbol::new("BTCUSDT").expect("symbol");
        let eth = Symbol::new("ETHUSDT").expect("symbol");
        let mut s = Split::new(vec![btc, eth]);
        let place = Body::Output(Output::PlaceOrder(PlaceOrder {
            cid: 9,
            symbol: eth,
            side: Side::Buy,
            price: Decimal::ONE,
            qty: Decimal::ONE,
            post_only: true,
            level: 0,
        }));
        assert_eq!(s.owner(&e(1, place)), Owner::One(1));
        let fill = |cid| {
            Body::Input(Input::Fill(Fill {
                cid,
                side: Side::Buy,
                price: Decimal::ONE,
                qty: Decimal::ONE,
                liquidity: Liquidity::Maker,
                fee: Decimal::ZERO,
                leaves_qty: Decimal::ZERO,
            }))
        };
        assert_eq!(s.owner(&e(2, fill(9))), Owner::One(1));
        assert_eq!(s.owner(&e(3, fill(10))), Owner::Nobody);
        assert_eq!(s.owner(&e(4, Body::Input(Input::Timer))), Owner::All);
        let mut one = Split::new(vec![btc]);
        assert_eq!(one.owner(&e(5, fill(10))), Owner::One(0));
    }
}
