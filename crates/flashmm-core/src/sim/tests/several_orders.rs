//! Several of our orders resting at once: one trade shares its size among those at its price in
//! queue order, fills those it went through in full, and never fills more than it printed.

use super::*;
use crate::sim::model::{BpsFees, ConstantLatency, QueueModel};
use proptest::prelude::*;

/// A queue model that puts every order at the front: each trade at our price reaches each of
/// our orders in full, so only the venue's own cap on the trade's size limits what fills.
struct Front;

impl QueueModel for Front {
    fn on_arrival(&self, _visible: Decimal) -> Decimal {
        Decimal::ZERO
    }
    fn on_trade(&self, _ahead: Decimal, qty: Decimal) -> (Decimal, Decimal) {
        (Decimal::ZERO, qty)
    }
}

fn front_venue() -> SimVenue {
    SimVenue::with_models(
        Box::new(Front),
        Box::new(ConstantLatency {
            entry_ns: 50 * MS,
            cancel_ns: 50 * MS,
            response_ns: 0,
        }),
        Box::new(BpsFees {
            maker_bps: dec!(0),
            taker_bps: dec!(0),
        }),
    )
}

fn bids() -> Book {
    book(
        &[(dec!(100), dec!(2)), (dec!(99.5), dec!(1))],
        &[(dec!(101), dec!(1)), (dec!(101.5), dec!(3))],
    )
}

fn buy(cid: u64, price: Decimal, qty: Decimal) -> PlaceOrder {
    order(cid, Side::Buy, price, qty, true)
}

fn sell(cid: u64, price: Decimal, qty: Decimal) -> PlaceOrder {
    order(cid, Side::Sell, price, qty, true)
}

#[test]
fn one_trade_never_fills_more_than_its_size_even_if_the_queue_model_would() {
    let b = bids();
    let mut v = front_venue();
    rest_all(
        &mut v,
        &[
            (0, buy(1, dec!(100), dec!(1))),
            (1, buy(2, dec!(100), dec!(1))),
            (2, buy(3, dec!(100), dec!(1))),
        ],
        &b,
    );
    v.on_market(60 * MS, &trade(dec!(100), dec!(1.5), Side::Sell), &b);
    // 1.5 printed: 1 to the first order, 0.5 to the second, none to the third.
    assert_eq!(
        fills_of(&reports(&mut v)),
        vec![(1, dec!(100), dec!(1)), (2, dec!(100), dec!(0.5))]
    );
    assert_eq!(v.resting(), 2);
}

#[test]
fn our_later_order_at_a_price_queues_behind_our_earlier_one() {
    let b = bids();
    let mut v = venue(dec!(0));
    // Both see 2 of others' size at 100; the second also has the first ahead of it.
    rest_all(
        &mut v,
        &[
            (0, buy(1, dec!(100), dec!(1))),
            (1, buy(2, dec!(100), dec!(1))),
        ],
        &b,
    );
    assert_eq!(v.queue_ahead(1), Some(dec!(2)));
    assert_eq!(v.queue_ahead(2), Some(dec!(2)));
    // 2.5 printed: 2 to the others ahead, 0.5 to our first order, nothing to the second.
    v.on_market(60 * MS, &trade(dec!(100), dec!(2.5), Side::Sell), &b);
    assert_eq!(fills_of(&reports(&mut v)), vec![(1, dec!(100), dec!(0.5))]);
    assert_eq!(v.queue_ahead(1), Some(dec!(0)));
    // Only our own first order (0.5 left) is ahead of the second now, not others.
    assert_eq!(v.queue_ahead(2), Some(dec!(0)));
    // 0.8 more: 0.5 finishes the first, 0.3 reaches the second.
    v.on_market(61 * MS, &trade(dec!(100), dec!(0.8), Side::Sell), &b);
    assert_eq!(
        fills_of(&reports(&mut v)),
        vec![(1, dec!(100), dec!(0.5)), (2, dec!(100), dec!(0.3))]
    );
    assert_eq!(v.resting(), 1);
}

#[test]
fn arrival_at_the_venue_not_the_client_id_sets_priority_among_our_orders() {
    let b = bids();
    let mut v = front_venue();
    // The higher id reaches the venue first.
    rest_all(
        &mut v,
        &[
            (0, buy(9, dec!(100), dec!(1))),
            (5, buy(4, dec!(100), dec!(1))),
        ],
        &b,
    );
    v.on_market(60 * MS, &trade(dec!(100), dec!(1.2), Side::Sell), &b);
    assert_eq!(
        fills_of(&reports(&mut v)),
        vec![(9, dec!(100), dec!(1)), (4, dec!(100), dec!(0.2))]
    );
}

#[test]
fn canceling_our_earlier_order_moves_the_later_one_up() {
    let b = bids();
    let mut v = venue(dec!(0));
    rest_all(
        &mut v,
        &[
            (0, buy(1, dec!(100), dec!(1))),
            (1, buy(2, dec!(100), dec!(1))),
        ],
        &b,
    );
    v.cancel(10 * MS, 1);
    v.arrive(&b);
    assert_eq!(reports(&mut v).len(), 1);
    v.on_market(70 * MS, &trade(dec!(100), dec!(2.5), Side::Sell), &b);
    assert_eq!(fills_of(&reports(&mut v)), vec![(2, dec!(100), dec!(0.5))]);
}

#[test]
fn a_sell_aggressor_fills_better_bids_in_full_and_those_at_its_price_from_the_queue() {
    let b = bids();
    let mut v = venue(dec!(0));
    rest_all(
        &mut v,
        &[
            // 99.5 is below the trade: untouched.
            (0, buy(1, dec!(99.5), dec!(1))),
            // 100 is the trade's price: 2 of others ahead.
            (1, buy(2, dec!(100), dec!(1))),
            // 100.5 and 100.25 are new levels above it: the trade went through them.
            (2, buy(3, dec!(100.25), dec!(0.4))),
            (3, buy(4, dec!(100.5), dec!(0.7))),
        ],
        &b,
    );
    v.on_market(60 * MS, &trade(dec!(100), dec!(2.25), Side::Sell), &b);
    let r = reports(&mut v);
    // Best price first; the through-fills are not taken from the trade's 2.25.
    assert_eq!(
        fills_of(&r),
        vec![
            (4, dec!(100.5), dec!(0.7)),
            (3, dec!(100.25), dec!(0.4)),
            (2, dec!(100), dec!(0.25)),
        ]
    );
    assert!(r.iter().all(|r| r.ts == 60 * MS));
    assert_eq!(v.resting(), 2);
    assert_eq!(v.queue_ahead(1), Some(dec!(1)));
}

#[test]
fn a_buy_aggressor_fills_lower_asks_in_full_and_those_at_its_price_from_the_queue() {
    let b = bids();
    let mut v = venue(dec!(0));
    rest_all(
        &mut v,
        &[
            (0, sell(1, dec!(102), dec!(1))),
            (1, sell(2, dec!(101.5), dec!(1))),
            (2, sell(3, dec!(101.25), dec!(0.4))),
            (3, sell(4, dec!(101), dec!(0.7))),
            // A bid: a buy aggressor never fills it.
            (4, buy(5, dec!(100.5), dec!(1))),
        ],
        &b,
    );
    assert_eq!(v.queue_ahead(2), Some(dec!(3)));
    v.on_market(60 * MS, &trade(dec!(101.5), dec!(3.5), Side::Buy), &b);
    assert_eq!(
        fills_of(&reports(&mut v)),
        vec![
            (4, dec!(101), dec!(0.7)),
            (3, dec!(101.25), dec!(0.4)),
            (2, dec!(101.5), dec!(0.5)),
        ]
    );
    assert_eq!(v.resting(), 3);
}

#[test]
fn a_book_that_crosses_several_of_our_orders_fills_each_in_full_at_its_own_price() {
    let b = bids();
    let mut v = venue(dec!(0));
    rest_all(
        &mut v,
        &[
            (0, buy(1, dec!(100), dec!(1))),
            (1, buy(2, dec!(100.5), dec!(0.5))),
            (2, buy(3, dec!(99.5), dec!(2))),
            (3, sell(4, dec!(101.5), dec!(1))),
        ],
        &b,
    );
    let d = level_delta(Side::Sell, dec!(100), dec!(4));
    let mut b2 = b.clone();
    b2.apply_delta(&d);
    assert_eq!(b2.best_ask().map(|a| a.0), Some(dec!(100)));
    v.on_market(60 * MS, &Input::BookDelta(d), &b2);
    assert_eq!(
        fills_of(&reports(&mut v)),
        vec![(1, dec!(100), dec!(1)), (2, dec!(100.5), dec!(0.5))]
    );
    assert_eq!(v.resting(), 2);
}

proptest! {
    /// Whatever our orders and the queue model, the fills one trade makes at its price add up to
    /// no more than its size, and no order fills beyond what it had left.
    #[test]
    fn fills_at_the_trades_price_never_exceed_its_size(
        sizes in prop::collection::vec(1i64..300, 1..8),
        visible in 0i64..500,
        trade_qty in 1i64..2000,
        front in any::<bool>(),
    ) {
        let b = book(&[(dec!(100), Decimal::new(visible, 2))], &[(dec!(101), dec!(1))]);
        let mut v = if front { front_venue() } else { venue(dec!(0)) };
        let orders: Vec<(i64, PlaceOrder)> = sizes
            .iter()
            .enumerate()
            .map(|(i, q)| (i as i64, buy(i as u64 + 1, dec!(100), Decimal::new(*q, 2))))
            .collect();
        rest_all(&mut v, &orders, &b);
        let traded = Decimal::new(trade_qty, 2);
        v.on_market(60 * MS, &trade(dec!(100), traded, Side::Sell), &b);
        let fs = fills_of(&reports(&mut v));
        let total: Decimal = fs.iter().map(|f| f.2).sum();
        prop_assert!(total <= traded);
        // Queue order: the fills go to a prefix of our orders, and all but the last fill in full.
        for (k, f) in fs.iter().enumerate() {
            prop_assert_eq!(f.0, k as u64 + 1);
            let size = Decimal::new(sizes[k], 2);
            prop_assert!(f.2 <= size);
            if k + 1 < fs.len() {
                prop_assert_eq!(f.2, size);
            }
        }
        // Under the conservative queue, exactly what passes the others' size reaches us.
        if !front {
            let ours: Decimal = sizes.iter().map(|q| Decimal::new(*q, 2)).sum();
            let expected = (traded - Decimal::new(visible, 2)).max(Decimal::ZERO).min(ours);
            prop_assert_eq!(total, expected);
        }
    }
}

#[test]
fn a_later_order_of_ours_behind_more_others_waits_for_them_and_our_earlier_one() {
    let mut b = bids();
    let mut v = venue(dec!(0));
    rest_all(&mut v, &[(0, buy(1, dec!(100), dec!(1)))], &b);
    // Others join at 100 before our second order arrives: it has 3 of theirs ahead, and ours.
    b.apply_delta(&level_delta(Side::Buy, dec!(100), dec!(3)));
    v.on_market(
        55 * MS,
        &Input::BookDelta(level_delta(Side::Buy, dec!(100), dec!(3))),
        &b,
    );
    rest_all(&mut v, &[(10, buy(2, dec!(100), dec!(1)))], &b);
    assert_eq!(v.queue_ahead(2), Some(dec!(3)));
    // 3.5 printed: 2 others, then 1 to our first order; the second has 3 + 1 ahead, so 0.5 of
    // them are still ahead of it (all others': our first order is done).
    v.on_market(70 * MS, &trade(dec!(100), dec!(3.5), Side::Sell), &b);
    assert_eq!(fills_of(&reports(&mut v)), vec![(1, dec!(100), dec!(1))]);
    assert_eq!(v.queue_ahead(2), Some(dec!(0.5)));
}
