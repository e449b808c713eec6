//! The probabilistic queue models inside the venue, by hand: cancels at our price move us up by
//! the share of the queue ahead, trades are not counted twice, and a fill follows sooner than
//! under the conservative rule.

use super::*;
use crate::config::{QueueKind, VenueConfig};

fn venue_with(queue: QueueKind, power: f64) -> SimVenue {
    let cfg = VenueConfig {
        queue,
        queue_power: power,
        ..Config::default().venue
    };
    SimVenue::new(&cfg, &MarketConfig::default())
}

/// A bid of ours at 100 behind 3 visible; then the level is 4 (1 joined behind us).
fn resting_behind_three(v: &mut SimVenue) -> Book {
    let mut b = book(&[(dec!(100), dec!(3))], &[(dec!(101), dec!(1))]);
    rest(v, &order(1, Side::Buy, dec!(100), dec!(1), true), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(3)));
    let grow = bid_at(dec!(4), 2);
    b.apply_delta(&grow);
    v.on_market(60 * MS, &Input::BookDelta(grow), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(3)), "growth joins behind us");
    b
}

/// The bid level at 100 set to `qty`, as the `id`-th update.
fn bid_at(qty: Decimal, id: u64) -> BookDelta {
    BookDelta {
        first_update_id: id,
        last_update_id: id,
        ..level_delta(Side::Buy, dec!(100), qty)
    }
}

fn cancel_to(v: &mut SimVenue, b: &mut Book, qty: Decimal) {
    let id = b.last_update_id() + 1;
    let d = bid_at(qty, id);
    b.apply_delta(&d);
    v.on_market(70 * MS, &Input::BookDelta(d), b);
}

#[test]
fn a_cancel_moves_us_up_by_the_power_laws_share_of_it() {
    let mut v = venue_with(QueueKind::Power, 2.0);
    let mut b = resting_behind_three(&mut v);
    // 4 -> 2: 2 canceled, 9/(9+1) of it ahead: 3 - 1.8.
    cancel_to(&mut v, &mut b, dec!(2));
    assert_eq!(v.queue_ahead(1), Some(dec!(1.2)));
    // A sell of 1.5 at 100 now fills 0.3 of ours; the conservative venue fills none.
    v.on_market(80 * MS, &trade(dec!(100), dec!(1.5), Side::Sell), &b);
    assert_eq!(
        fills(&reports(&mut v)),
        vec![(dec!(0.3), dec!(0.7), Liquidity::Maker)]
    );
    let mut c = venue_with(QueueKind::Conservative, 2.0);
    let mut cb = resting_behind_three(&mut c);
    cancel_to(&mut c, &mut cb, dec!(2));
    assert_eq!(c.queue_ahead(1), Some(dec!(3)));
    c.on_market(80 * MS, &trade(dec!(100), dec!(1.5), Side::Sell), &cb);
    assert!(fills(&reports(&mut c)).is_empty());
}

#[test]
fn the_log_form_moves_us_up_by_its_share() {
    let mut v = venue_with(QueueKind::Log, 2.0);
    let mut b = resting_behind_three(&mut v);
    cancel_to(&mut v, &mut b, dec!(2));
    // ln 4 / (ln 4 + ln 2) = 2/3 of the 2 canceled.
    assert_eq!(v.queue_ahead(1), Some(dec!(1.66666667)));
}

#[test]
fn a_trade_whose_size_was_replaced_behind_us_is_not_taken_for_a_later_cancel() {
    let mut v = venue_with(QueueKind::Power, 2.0);
    let mut b = resting_behind_three(&mut v);
    v.on_market(75 * MS, &trade(dec!(100), dec!(1), Side::Sell), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(2)));
    // The level shows 4 again: the trade took 1 and 1 joined behind us; the trade is counted.
    cancel_to(&mut v, &mut b, dec!(4));
    assert_eq!(v.queue_ahead(1), Some(dec!(2)));
    // Then 4 -> 2.5, all of it a cancel: front 2, back 2, half of 1.5 ahead: 2 - 0.75.
    cancel_to(&mut v, &mut b, dec!(2.5));
    assert_eq!(v.queue_ahead(1), Some(dec!(1.25)));
}

#[test]
fn a_trade_then_the_depth_it_caused_is_counted_once() {
    let mut v = venue_with(QueueKind::Power, 2.0);
    let mut b = resting_behind_three(&mut v);
    // A sell of 1 at 100 takes 1 from the front: 2 ahead.
    v.on_market(75 * MS, &trade(dec!(100), dec!(1), Side::Sell), &b);
    assert_eq!(v.queue_ahead(1), Some(dec!(2)));
    // The depth update that follows shows the level at 3: that is the trade, not a cancel.
    cancel_to(&mut v, &mut b, dec!(3));
    assert_eq!(v.queue_ahead(1), Some(dec!(2)));
    // Then 3 -> 1.5: front 2, back 1, 1.5 canceled: 4/5 of it ahead, 2 - 1.2 = 0.8.
    cancel_to(&mut v, &mut b, dec!(1.5));
    assert_eq!(v.queue_ahead(1), Some(dec!(0.8)));
}

#[test]
fn the_exponent_is_validated() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 101.0] {
        let e = Config::load_text(None, &[format!("venue.queue_power={bad}")]);
        let e = e.map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("venue.queue_power"), "{bad}: {e}");
    }
    let ok = Config::load_text(None, &["venue.queue=\"log\"".into()]).unwrap();
    assert_eq!(ok.venue.queue, QueueKind::Log);
}

#[test]
fn the_builder_replaces_one_model_and_an_inverse_venue_charges_fees_in_the_coin() {
    let mut cfg = Config::default().venue;
    cfg.taker_fee_bps = dec!(5);
    let coinm = MarketConfig {
        kind: crate::config::InstrumentKind::InversePerp,
        multiplier: dec!(100),
        ..MarketConfig::default()
    };
    let mut v = SimVenue::builder(&cfg, &coinm)
        .queue(Box::new(crate::sim::queue::ProbQueue {
            shape: crate::sim::queue::Shape::Log,
        }))
        .build();
    let b = book(&[(dec!(49990), dec!(100))], &[(dec!(50000), dec!(100))]);
    // A buy of 10 contracts crossing at 50,000: 1000 USD = 0.02 BTC, 5 bps = 0.00001 BTC.
    let r = rest(
        &mut v,
        &order(1, Side::Buy, dec!(50000), dec!(10), false),
        &b,
    );
    let fee = r.iter().find_map(|r| match &r.input {
        Input::Fill(f) => Some(f.fee),
        _ => None,
    });
    assert_eq!(fee, Some(dec!(0.00001)));
    // The queue model is the one given: a log-shaped share of a cancel moves a resting bid up.
    let mut b = book(&[(dec!(100), dec!(3))], &[(dec!(101), dec!(1))]);
    let mut v = SimVenue::builder(&cfg, &MarketConfig::default())
        .queue(Box::new(crate::sim::queue::ProbQueue {
            shape: crate::sim::queue::Shape::Log,
        }))
        .build();
    rest(&mut v, &order(2, Side::Buy, dec!(100), dec!(1), true), &b);
    let grow = bid_at(dec!(4), 2);
    b.apply_delta(&grow);
    v.on_market(60 * MS, &Input::BookDelta(grow), &b);
    cancel_to(&mut v, &mut b, dec!(2));
    assert_eq!(v.queue_ahead(2), Some(dec!(1.66666667)));
}
