//! One resting order on hand-computed cases: queue position, fills, partial fills, post-only,
//! latency and fees.

use super::*;
use crate::config::{Config, MarketConfig};
use crate::event::*;
use crate::sim::model::{ConservativeQueue, QueueModel};
use crate::sim::SimVenue;
use rust_decimal_macros::dec;

#[test]
fn conservative_queue_by_hand() {
    let q = ConservativeQueue;
    assert_eq!(q.on_arrival(dec!(2.0)), dec!(2.0));
    assert_eq!(q.on_trade(dec!(2.0), dec!(1.5)), (dec!(0.5), dec!(0)));
    assert_eq!(q.on_trade(dec!(0.5), dec!(1.0)), (dec!(0), dec!(0.5)));
    assert_eq!(q.on_trade(dec!(0), dec!(0.3)), (dec!(0), dec!(0.3)));
}

#[test]
fn the_queue_ahead_is_consumed_by_trades_at_our_price_then_we_fill_partially() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    let r = rest(&mut v, &order(1, Side::Buy, dec!(100), dec!(1.0), true), &b);
    assert!(matches!(r[0].input, Input::OrderAck(_)));
    assert_eq!(v.queue_ahead(1), Some(dec!(2.0)));
    // A buy aggressor at our price does not touch the bid queue.
    v.on_market(60 * MS, &trade(dec!(100), dec!(5), Side::Buy), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(2.0)));
    v.on_market(61 * MS, &trade(dec!(100), dec!(1.5), Side::Sell), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(0.5)));
    assert!(reports(&mut v).is_empty());
    v.on_market(62 * MS, &trade(dec!(100), dec!(0.8), Side::Sell), &b);
    let r = reports(&mut v);
    assert_eq!(fills(&r), vec![(dec!(0.3), dec!(0.7), Liquidity::Maker)]);
    assert_eq!(r[0].ts, 62 * MS);
    v.on_market(63 * MS, &trade(dec!(100), dec!(2), Side::Sell), &b);
    assert_eq!(
        fills(&reports(&mut v)),
        vec![(dec!(0.7), dec!(0), Liquidity::Maker)]
    );
    assert_eq!(v.resting(), 0);
}

#[test]
fn cancellations_ahead_of_us_do_not_advance_us() {
    let mut b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    rest(&mut v, &order(1, Side::Buy, dec!(100), dec!(1.0), true), &b);
    // The level shrinks to 0.1 without a trade: someone ahead (or behind) cancelled.
    let d = BookDelta {
        symbol: sym(),
        first_update_id: 2,
        last_update_id: 2,
        prev_update_id: None,
        bids: vec![Level {
            price: dec!(100),
            qty: dec!(0.1),
        }],
        asks: vec![],
    };
    b.apply_delta(&d);
    v.on_market(60 * MS, &Input::BookDelta(d), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(2.0)));
    v.on_market(61 * MS, &trade(dec!(100), dec!(0.3), Side::Sell), &b);
    assert!(fills(&reports(&mut v)).is_empty());
}

#[test]
fn a_new_price_level_puts_us_first() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    rest(
        &mut v,
        &order(1, Side::Buy, dec!(100.5), dec!(1.0), true),
        &b,
    );
    assert_eq!(v.queue_ahead(1), Some(dec!(0)));
    v.on_market(60 * MS, &trade(dec!(100.5), dec!(0.4), Side::Sell), &b);
    assert_eq!(
        fills(&reports(&mut v)),
        vec![(dec!(0.4), dec!(0.6), Liquidity::Maker)]
    );
}

#[test]
fn a_trade_through_our_price_fills_us_in_full() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(-1));
    rest(&mut v, &order(1, Side::Buy, dec!(100), dec!(1.0), true), &b);
    v.on_market(60 * MS, &trade(dec!(99.9), dec!(0.01), Side::Sell), &b);
    let r = reports(&mut v);
    assert_eq!(fills(&r), vec![(dec!(1.0), dec!(0), Liquidity::Maker)]);
    // A 1 bp rebate on 100 of notional.
    assert!(matches!(&r[0].input, Input::Fill(f) if f.fee == dec!(-0.01) && f.price == dec!(100)));
}

#[test]
fn the_book_crossing_our_price_fills_us() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    rest(
        &mut v,
        &order(1, Side::Sell, dec!(101), dec!(0.5), true),
        &b,
    );
    assert_eq!(v.queue_ahead(1), Some(dec!(1)));
    let bbo = Bbo {
        symbol: sym(),
        update_id: Some(5),
        bid: dec!(101),
        bid_qty: dec!(3),
        ask: dec!(101.5),
        ask_qty: dec!(1),
    };
    let mut b2 = b.clone();
    b2.apply_bbo(&bbo);
    v.on_market(60 * MS, &Input::Bbo(bbo), &b2);
    assert_eq!(
        fills(&reports(&mut v)),
        vec![(dec!(0.5), dec!(0), Liquidity::Maker)]
    );
}

#[test]
fn post_only_orders_that_would_cross_are_rejected() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    let r = rest(&mut v, &order(1, Side::Buy, dec!(101), dec!(1.0), true), &b);
    assert!(matches!(&r[0].input, Input::OrderReject(x) if x.reason.contains("post-only")));
    assert_eq!(v.resting(), 0);
}

#[test]
fn a_crossing_limit_order_takes_then_rests_the_remainder() {
    let b = book(
        &[(dec!(100), dec!(2.0))],
        &[
            (dec!(101), dec!(0.4)),
            (dec!(101.5), dec!(0.3)),
            (dec!(102), dec!(9)),
        ],
    );
    let mut v = venue(dec!(0));
    let r = rest(
        &mut v,
        &order(1, Side::Buy, dec!(101.5), dec!(1.0), false),
        &b,
    );
    assert_eq!(
        fills(&r),
        vec![
            (dec!(0.4), dec!(0.6), Liquidity::Taker),
            (dec!(0.3), dec!(0.3), Liquidity::Taker)
        ]
    );
    // 5 bps taker on 0.4 x 101 = 0.0202.
    assert!(matches!(&r[1].input, Input::Fill(f) if f.fee == dec!(0.0202)));
    assert_eq!(v.resting(), 1);
    assert_eq!(v.queue_ahead(1), Some(dec!(0)));
}

#[test]
fn latency_keeps_an_order_off_the_book_until_it_arrives() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    v.submit(0, &order(1, Side::Buy, dec!(100.5), dec!(1.0), true));
    v.on_market(10 * MS, &trade(dec!(100.0), dec!(5), Side::Sell), &b);
    assert!(reports(&mut v).is_empty());
    v.arrive(&b);
    assert_eq!(reports(&mut v)[0].ts, 50 * MS);
}

#[test]
fn a_cancel_returns_the_unfilled_size_and_one_that_overtakes_its_order_cancels_it_on_arrival() {
    let b = book(&[(dec!(100), dec!(2.0))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    rest(&mut v, &order(1, Side::Buy, dec!(100), dec!(1.0), true), &b);
    v.cancel(100 * MS, 1);
    v.arrive(&b);
    let r = reports(&mut v);
    assert!(matches!(&r[0].input, Input::OrderCanceled(c) if c.canceled_qty == dec!(1.0)));
    assert_eq!(r[0].ts, 150 * MS);

    let mut cfg = Config::default().venue;
    cfg.cancel_latency_ms = 10;
    let mut v = SimVenue::new(&cfg, &MarketConfig::default());
    v.submit(0, &order(2, Side::Buy, dec!(100), dec!(1.0), true));
    v.cancel(1, 2);
    v.arrive(&b);
    v.arrive(&b);
    let r = reports(&mut v);
    assert_eq!(r.len(), 1);
    assert!(matches!(&r[0].input, Input::OrderCanceled(c) if c.cid == 2));
    assert_eq!(v.resting(), 0);
}

#[test]
fn a_crossing_sell_takes_the_bids_down_to_its_price_then_rests() {
    let b = book(
        &[
            (dec!(100), dec!(0.5)),
            (dec!(99.5), dec!(0.2)),
            (dec!(99), dec!(9)),
        ],
        &[(dec!(101), dec!(1))],
    );
    let mut v = venue(dec!(0));
    let r = rest(
        &mut v,
        &order(1, Side::Sell, dec!(99.5), dec!(1.0), false),
        &b,
    );
    // 0.5 at 100 and 0.2 at 99.5; the 99 bid is below the limit, so 0.3 rests at 99.5.
    assert_eq!(
        fills_of(&r),
        vec![(1, dec!(100), dec!(0.5)), (1, dec!(99.5), dec!(0.2))]
    );
    assert_eq!(v.resting(), 1);
}

#[test]
fn an_order_of_no_size_or_no_price_is_rejected() {
    let b = book(&[(dec!(100), dec!(1))], &[(dec!(101), dec!(1))]);
    for (price, qty) in [
        (dec!(99), dec!(0)),
        (dec!(0), dec!(1)),
        (dec!(99), dec!(-1)),
    ] {
        let mut v = venue(dec!(0));
        let r = rest(&mut v, &order(1, Side::Buy, price, qty, true), &b);
        assert!(
            matches!(&r[0].input, Input::OrderReject(x) if x.reason.contains("invalid order")),
            "{price} x {qty}: {r:?}"
        );
        assert_eq!(v.resting(), 0);
    }
}

#[test]
fn each_accepted_order_gets_its_own_venue_id() {
    let b = book(&[(dec!(100), dec!(1))], &[(dec!(101), dec!(1))]);
    let mut v = venue(dec!(0));
    let ids: Vec<String> = (1..=3)
        .flat_map(|cid| rest(&mut v, &order(cid, Side::Buy, dec!(99), dec!(1), true), &b))
        .filter_map(|r| match r.input {
            Input::OrderAck(a) => Some(a.venue_order_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["sim-1", "sim-2", "sim-3"]);
}

#[test]
fn an_order_filled_in_full_as_taker_does_not_rest() {
    let b = book(&[(dec!(100), dec!(1))], &[(dec!(101), dec!(2))]);
    let mut v = venue(dec!(0));
    let r = rest(&mut v, &order(1, Side::Buy, dec!(101), dec!(2), false), &b);
    assert_eq!(fills(&r), vec![(dec!(2), dec!(0), Liquidity::Taker)]);
    assert_eq!(v.resting(), 0);
    assert_eq!(v.queue_ahead(1), None);
}
