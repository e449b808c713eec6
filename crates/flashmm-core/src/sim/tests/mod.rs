//! The simulated venue on hand-computed cases. Helpers shared by the files below.

mod latency;
mod one_order;
mod queue_models;
mod several_orders;

use super::{Report, SimVenue};
use crate::book::Book;
use crate::config::{Config, MarketConfig};
use crate::event::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub(super) const MS: i64 = 1_000_000;

pub(super) fn sym() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

pub(super) fn book(bids: &[(Decimal, Decimal)], asks: &[(Decimal, Decimal)]) -> Book {
    let mut b = Book::new();
    let lv = |&(price, qty): &(Decimal, Decimal)| Level { price, qty };
    b.apply_snapshot(&BookSnapshot {
        symbol: sym(),
        update_id: 1,
        bids: bids.iter().map(lv).collect(),
        asks: asks.iter().map(lv).collect(),
    });
    b
}

/// 50 ms entry and cancel latency and 0 ms response (the defaults), 5 bps taker.
pub(super) fn venue(maker_bps: Decimal) -> SimVenue {
    let mut cfg = Config::default().venue;
    cfg.maker_fee_bps = maker_bps;
    cfg.taker_fee_bps = dec!(5);
    SimVenue::new(&cfg, &MarketConfig::default())
}

pub(super) fn order(
    cid: u64,
    side: Side,
    price: Decimal,
    qty: Decimal,
    post_only: bool,
) -> PlaceOrder {
    PlaceOrder {
        cid,
        symbol: sym(),
        side,
        price,
        qty,
        post_only,
        level: 0,
    }
}

pub(super) fn trade(price: Decimal, qty: Decimal, aggressor: Side) -> Input {
    Input::Trade(Trade {
        symbol: sym(),
        trade_id: 1,
        price,
        qty,
        aggressor,
    })
}

pub(super) fn level_delta(side: Side, price: Decimal, qty: Decimal) -> BookDelta {
    let lv = vec![Level { price, qty }];
    BookDelta {
        symbol: sym(),
        first_update_id: 2,
        last_update_id: 2,
        prev_update_id: None,
        bids: if side == Side::Buy {
            lv.clone()
        } else {
            vec![]
        },
        asks: if side == Side::Sell { lv } else { vec![] },
    }
}

pub(super) fn reports(v: &mut SimVenue) -> Vec<Report> {
    std::iter::from_fn(|| v.pop_report()).collect()
}

pub(super) fn fills(rs: &[Report]) -> Vec<(Decimal, Decimal, Liquidity)> {
    rs.iter()
        .filter_map(|r| match &r.input {
            Input::Fill(f) => Some((f.qty, f.leaves_qty, f.liquidity)),
            _ => None,
        })
        .collect()
}

/// (cid, price, qty) of each fill, in the order the venue reported them.
pub(super) fn fills_of(rs: &[Report]) -> Vec<(u64, Decimal, Decimal)> {
    rs.iter()
        .filter_map(|r| match &r.input {
            Input::Fill(f) => Some((f.cid, f.price, f.qty)),
            _ => None,
        })
        .collect()
}

/// Submits at t=0 and lets it arrive (50 ms entry latency) against `b`.
pub(super) fn rest(v: &mut SimVenue, o: &PlaceOrder, b: &Book) -> Vec<Report> {
    v.submit(0, o);
    assert_eq!(v.next_arrival(), Some(50 * MS));
    v.arrive(b);
    reports(v)
}

/// Submits each order at its own time (ms) and lets them all arrive against `b`.
pub(super) fn rest_all(v: &mut SimVenue, orders: &[(i64, PlaceOrder)], b: &Book) {
    for (t, o) in orders {
        v.submit(t * MS, o);
    }
    while v.next_arrival().is_some() {
        v.arrive(b);
    }
    let acks = reports(v)
        .iter()
        .filter(|r| matches!(r.input, Input::OrderAck(_)))
        .count();
    assert_eq!(acks, orders.len());
}
