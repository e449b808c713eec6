//! The ladder's rules by hand-computed cases: no ladder without a two-sided market, the
//! inventory skew and the volatility spread at a sigma other than 1, the minimum spread at and
//! around its edge, sizes from notional, the venue minimum at its edge, the post-only clamp and
//! the one-tick steps after it, and no bid at a price of zero.

use super::*;

fn features(bid: Decimal, ask: Decimal) -> Features {
    Features {
        best_bid: bid,
        best_ask: ask,
        bid_qty: dec!(1),
        ask_qty: dec!(1),
        mid: (bid + ask) / Decimal::TWO,
        ..Features::default()
    }
}

fn prices(levels: &[QuoteLevel]) -> Vec<Decimal> {
    levels.iter().map(|l| l.price).collect()
}

#[test]
fn a_book_without_two_sides_or_crossed_gives_no_ladder() {
    let cfg = Config::default();
    // A positive mid, but no bid.
    assert_eq!(
        ladder(&cfg, &features(dec!(0), dec!(100)), dec!(0), dec!(0)),
        None
    );
    // Crossed, and locked.
    for (bid, ask) in [(dec!(100), dec!(99.99)), (dec!(100), dec!(100))] {
        assert_eq!(ladder(&cfg, &features(bid, ask), dec!(0), dec!(0)), None);
    }
}

#[test]
fn inventory_skew_and_volatility_spread_at_two_bps_and_the_post_only_clamp() {
    let cfg = Config::default();
    let mut f = features(dec!(9999.99), dec!(10000.01));
    f.volatility_bps = 2.0;
    f.vol_samples = 1000;
    let l = ladder(&cfg, &f, Decimal::ZERO, dec!(0.05)).expect("a ladder");
    // sigma = 2 bps of 10,000 = 2: 0.05 x 0.5 x 2 x 2 x 60 = 6.
    assert_eq!(l.inventory_skew, dec!(6));
    assert_eq!(l.reservation, dec!(9994));
    // 1 bp + 1 x 2 bps.
    assert_eq!(l.half_spread_bps, dec!(3));
    assert_eq!(prices(&l.bids), vec![dec!(9991), dec!(9990), dec!(9989)]);
    // 9997, 9998 and 9999 would cross the bid of 9999.99: the first goes one tick above it, the
    // next ones a tick above the one before.
    assert_eq!(
        prices(&l.asks),
        vec![dec!(10000.00), dec!(10000.01), dec!(10000.02)]
    );
    assert!(l.bounds.contains(&Bound::PostOnlyClamp {
        side: Side::Sell,
        level: 0
    }));
}

#[test]
fn the_minimum_spread_binds_below_it_and_not_at_it() {
    let mut cfg = Config::default();
    let f = features(dec!(9999.99), dec!(10000.01));
    // Twice the 1 bp half-spread is 2 bps: at a 2 bps minimum nothing changes.
    cfg.strategy.min_spread_bps = dec!(2);
    let l = ladder(&cfg, &f, Decimal::ZERO, Decimal::ZERO).expect("a ladder");
    assert_eq!(l.half_spread_bps, dec!(1));
    assert!(!l.bounds.contains(&Bound::MinSpread));
    cfg.strategy.min_spread_bps = dec!(2.5);
    let l = ladder(&cfg, &f, Decimal::ZERO, Decimal::ZERO).expect("a ladder");
    assert_eq!(l.half_spread_bps, dec!(1.25));
    assert!(l.bounds.contains(&Bound::MinSpread));
    // 1.25 bps of 10,000 = 1.25: bids round down, asks up.
    assert_eq!(l.bids[0].price, dec!(9998.75));
    assert_eq!(l.asks[0].price, dec!(10001.25));
}

#[test]
fn sizes_come_from_notional_and_the_venue_minimum_drops_only_smaller_levels() {
    let mut cfg = Config::default();
    let f = features(dec!(9999.99), dec!(10000.01));
    cfg.strategy.base_notional = dec!(100);
    let l = ladder(&cfg, &f, Decimal::ZERO, Decimal::ZERO).expect("a ladder");
    // 100 USD at 10,000 is 0.01, then x 1.5 a level.
    let sizes: Vec<_> = l.bids.iter().map(|q| q.qty).collect();
    assert_eq!(sizes, vec![dec!(0.01), dec!(0.015), dec!(0.0225)]);
    let mut cfg = Config::default();
    cfg.market.min_qty = dec!(0.0015);
    let l = ladder(&cfg, &f, Decimal::ZERO, Decimal::ZERO).expect("a ladder");
    // 0.001 is below the minimum; 0.0015 is at it, and quoted.
    let levels: Vec<_> = l.asks.iter().map(|q| (q.level, q.qty)).collect();
    assert_eq!(levels, vec![(1, dec!(0.0015)), (2, dec!(0.00225))]);
    assert!(l.bounds.contains(&Bound::MinQty {
        side: Side::Buy,
        level: 0
    }));
    assert!(!l.bounds.contains(&Bound::MinQty {
        side: Side::Buy,
        level: 1
    }));
}

#[test]
fn a_bid_stepped_down_to_zero_is_not_quoted() {
    let cfg = Config::default();
    // A tick as wide as the book: every level rounds to the same prices, so each steps one
    // tick past the one before; the second bid would be at 0.
    let l = ladder(&cfg, &features(dec!(0.01), dec!(0.03)), dec!(0), dec!(0)).expect("a ladder");
    assert_eq!(prices(&l.bids), vec![dec!(0.01)]);
    assert_eq!(prices(&l.asks), vec![dec!(0.03), dec!(0.04), dec!(0.05)]);
}
