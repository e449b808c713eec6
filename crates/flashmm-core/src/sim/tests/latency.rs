//! Latency: an order or cancel acts when it reaches the venue, against the market as it is then;
//! every report reaches us one response latency after the venue made it.

use super::*;
use crate::sim::model::{BpsFees, ConservativeQueue, ConstantLatency};

const ENTRY: i64 = 50 * MS;
const CANCEL: i64 = 20 * MS;
const RESPONSE: i64 = 7 * MS;

fn slow_venue() -> SimVenue {
    SimVenue::with_models(
        Box::new(ConservativeQueue),
        Box::new(ConstantLatency {
            entry_ns: ENTRY,
            cancel_ns: CANCEL,
            response_ns: RESPONSE,
        }),
        Box::new(BpsFees {
            maker_bps: dec!(0),
            taker_bps: dec!(0),
        }),
    )
}

fn bids(at_100: Decimal) -> Book {
    book(&[(dec!(100), at_100)], &[(dec!(101), dec!(1))])
}

#[test]
fn the_configured_latencies_are_the_venues() {
    let mut cfg = Config::default().venue;
    cfg.entry_latency_ms = 3;
    cfg.cancel_latency_ms = 4;
    cfg.response_latency_ms = 5;
    let mut v = SimVenue::new(&cfg, &MarketConfig::default());
    v.submit(10 * MS, &order(1, Side::Buy, dec!(100), dec!(1), true));
    assert_eq!(v.next_arrival(), Some(13 * MS));
    v.arrive(&bids(dec!(1)));
    assert_eq!(v.next_report(), Some(18 * MS));
    reports(&mut v);
    v.cancel(20 * MS, 1);
    assert_eq!(v.next_arrival(), Some(24 * MS));
    v.arrive(&bids(dec!(1)));
    let r = reports(&mut v);
    assert_eq!((r[0].venue_ts, r[0].ts), (24 * MS, 29 * MS));
}

#[test]
fn the_queue_ahead_is_the_book_when_the_order_arrives_not_when_it_was_sent() {
    let mut v = slow_venue();
    v.submit(0, &order(1, Side::Buy, dec!(100), dec!(1), true));
    // By the time it arrives the level has grown from 2 to 3.
    v.arrive(&bids(dec!(3)));
    assert_eq!(v.queue_ahead(1), Some(dec!(3)));
    let r = reports(&mut v);
    assert_eq!((r[0].venue_ts, r[0].ts), (ENTRY, ENTRY + RESPONSE));
}

#[test]
fn a_fill_happens_at_the_markets_time_and_reaches_us_a_response_later() {
    let b = bids(dec!(0.5));
    let mut v = slow_venue();
    v.submit(0, &order(1, Side::Buy, dec!(100), dec!(1), true));
    v.arrive(&b);
    reports(&mut v);
    v.on_market(80 * MS, &trade(dec!(100), dec!(0.7), Side::Sell), &b);
    assert_eq!(v.next_report(), Some(80 * MS + RESPONSE));
    let r = reports(&mut v);
    assert_eq!(r[0].venue_ts, 80 * MS);
    assert_eq!(fills(&r), vec![(dec!(0.2), dec!(0.8), Liquidity::Maker)]);
}

#[test]
fn an_order_still_fills_while_its_cancel_is_on_the_way_and_the_cancel_returns_the_rest() {
    let b = bids(dec!(0.5));
    let mut v = slow_venue();
    v.submit(0, &order(1, Side::Buy, dec!(100), dec!(1), true));
    v.arrive(&b);
    reports(&mut v);
    v.cancel(100 * MS, 1);
    v.on_market(110 * MS, &trade(dec!(100), dec!(0.9), Side::Sell), &b);
    assert_eq!(v.next_arrival(), Some(100 * MS + CANCEL));
    v.arrive(&b);
    let r = reports(&mut v);
    assert_eq!(fills(&r), vec![(dec!(0.4), dec!(0.6), Liquidity::Maker)]);
    assert!(
        matches!(&r[1].input, Input::OrderCanceled(c) if c.cid == 1 && c.canceled_qty == dec!(0.6))
    );
    assert_eq!(r[1].ts, 100 * MS + CANCEL + RESPONSE);
    assert_eq!(v.resting(), 0);
}

#[test]
fn a_cancel_that_arrives_after_the_order_filled_reports_nothing() {
    let b = bids(dec!(0.5));
    let mut v = slow_venue();
    v.submit(0, &order(1, Side::Buy, dec!(100), dec!(1), true));
    v.arrive(&b);
    reports(&mut v);
    v.cancel(100 * MS, 1);
    v.on_market(105 * MS, &trade(dec!(99), dec!(0.1), Side::Sell), &b);
    v.arrive(&b);
    let r = reports(&mut v);
    assert_eq!(r.len(), 1);
    assert!(matches!(&r[0].input, Input::Fill(f) if f.leaves_qty.is_zero()));
    // Nothing is left pending: a later order with that id is not canceled by it.
    assert_eq!(v.next_arrival(), None);
    v.submit(200 * MS, &order(1, Side::Buy, dec!(100), dec!(1), true));
    v.arrive(&b);
    assert!(matches!(reports(&mut v)[0].input, Input::OrderAck(_)));
    assert_eq!(v.resting(), 1);
}

#[test]
fn reports_reach_us_in_time_order_whatever_order_they_were_made_in() {
    let b = bids(dec!(0.5));
    let mut v = slow_venue();
    // The cancel is faster than the order: sent later, it reaches the venue first.
    v.submit(0, &order(1, Side::Buy, dec!(100), dec!(1), true));
    v.submit(10 * MS, &order(2, Side::Buy, dec!(100), dec!(1), true));
    v.cancel(15 * MS, 2);
    assert_eq!(v.next_arrival(), Some(15 * MS + CANCEL));
    while v.next_arrival().is_some() {
        v.arrive(&b);
    }
    let r = reports(&mut v);
    let ts: Vec<i64> = r.iter().map(|r| r.ts).collect();
    let mut sorted = ts.clone();
    sorted.sort();
    assert_eq!(ts, sorted);
    assert!(matches!(&r[0].input, Input::OrderAck(a) if a.cid == 1));
    assert!(
        matches!(&r[1].input, Input::OrderCanceled(c) if c.cid == 2 && c.canceled_qty == dec!(1))
    );
    assert_eq!(r.len(), 2);
}

#[test]
fn with_feed_latency_the_recorded_lag_is_added_and_jitter_is_seeded() {
    let mut cfg = Config::default().venue;
    cfg.entry_latency_ms = 3;
    cfg.cancel_latency_ms = 4;
    cfg.response_latency_ms = 5;
    cfg.latency = crate::config::LatencyKind::Feed;
    let mut v = SimVenue::new(&cfg, &MarketConfig::default());
    // The last market event reached the recorder 20 ms after the venue made it.
    v.on_feed(20 * MS);
    v.submit(10 * MS, &order(1, Side::Buy, dec!(100), dec!(1), true));
    assert_eq!(v.next_arrival(), Some(33 * MS));
    v.arrive(&bids(dec!(1)));
    assert_eq!(v.next_report(), Some(58 * MS));
    v.cancel(40 * MS, 1);
    assert_eq!(v.next_arrival(), Some(64 * MS));
    // Jitter: the same seed, the same arrivals; within [constant, constant + jitter].
    let arrivals = |seed: u64| {
        let mut c = Config::default().venue;
        c.latency_jitter_ms = 30;
        c.latency_seed = seed;
        let mut v = SimVenue::new(&c, &MarketConfig::default());
        (0..50u64)
            .map(|i| {
                v.submit(0, &order(i, Side::Buy, dec!(100), dec!(1), true));
                let t = v.next_arrival().unwrap();
                v.arrive(&bids(dec!(1)));
                while v.pop_report().is_some() {}
                t
            })
            .collect::<Vec<_>>()
    };
    let a = arrivals(42);
    assert_eq!(a, arrivals(42));
    assert!(a.iter().all(|t| (50 * MS..=80 * MS).contains(t)), "{a:?}");
    assert!(a.windows(2).any(|w| w[0] != w[1]));
    // The bound is 30 ms, not 30 ns more than a millisecond: the draws spread over it.
    assert!(a.iter().any(|t| *t > 65 * MS), "{a:?}");
}
