//! Rounding to ticks and lots that are not powers of ten, in the safe direction: bids down,
//! asks up, sizes toward zero, and never to a value off the grid.

use super::*;
use proptest::prelude::*;

#[test]
fn prices_round_to_a_tick_of_a_quarter_or_a_half_toward_the_safe_side() {
    let t = dec!(0.25);
    assert_eq!(round_price(dec!(100.74), t, Side::Buy), dec!(100.5));
    assert_eq!(round_price(dec!(100.51), t, Side::Sell), dec!(100.75));
    assert_eq!(round_price(dec!(100.75), t, Side::Buy), dec!(100.75));
    assert_eq!(round_price(dec!(100.75), t, Side::Sell), dec!(100.75));
    let t = dec!(0.5);
    assert_eq!(round_price(dec!(100.99), t, Side::Buy), dec!(100.5));
    assert_eq!(round_price(dec!(100.01), t, Side::Sell), dec!(100.5));
    assert_eq!(round_price(dec!(0.4), t, Side::Buy), dec!(0));
}

#[test]
fn prices_round_to_a_tick_of_25_and_of_0_003() {
    assert_eq!(round_price(dec!(1012), dec!(25), Side::Buy), dec!(1000));
    assert_eq!(
        round_price(dec!(1000.000001), dec!(25), Side::Sell),
        dec!(1025)
    );
    assert_eq!(round_price(dec!(1025), dec!(25), Side::Sell), dec!(1025));
    assert_eq!(
        round_price(dec!(1.0049), dec!(0.003), Side::Buy),
        dec!(1.002)
    );
    assert_eq!(
        round_price(dec!(1.0021), dec!(0.003), Side::Sell),
        dec!(1.005)
    );
}

#[test]
fn a_tick_written_with_trailing_zeros_is_the_same_tick() {
    // 0.10 has mantissa 10: it must not take the power-of-ten path as 0.01 would.
    assert_eq!(
        round_price(dec!(100.17), dec!(0.10), Side::Buy),
        dec!(100.1)
    );
    assert_eq!(
        round_price(dec!(100.11), dec!(0.10), Side::Sell),
        dec!(100.2)
    );
    assert_eq!(round_qty(dec!(0.0119), dec!(0.0010)), dec!(0.011));
}

#[test]
fn sizes_round_down_to_a_lot_of_0_003_and_of_25() {
    assert_eq!(round_qty(dec!(0.0119), dec!(0.003)), dec!(0.009));
    assert_eq!(round_qty(dec!(0.012), dec!(0.003)), dec!(0.012));
    assert_eq!(round_qty(dec!(0.0029999), dec!(0.003)), dec!(0));
    assert_eq!(round_qty(dec!(74.9), dec!(25)), dec!(50));
    assert_eq!(round_qty(dec!(75), dec!(25)), dec!(75));
    assert_eq!(round_qty(dec!(24.999), dec!(25)), dec!(0));
}

#[test]
fn a_price_a_hair_below_a_tick_still_rounds_a_bid_down() {
    // 1e-25 below 3000.003 (a multiple of 0.003): price / tick is 1000001 - 3.3e-23, which
    // Decimal's 28 digits would round up to 1000001, putting the bid above the price.
    let p = dec!(3000.0029999999999999999999999);
    assert_eq!(round_price(p, dec!(0.003), Side::Buy), dec!(3000));
    assert_eq!(round_price(p, dec!(0.003), Side::Sell), dec!(3000.003));
    let q = dec!(3000.0029999999999999999999999);
    assert_eq!(round_qty(q, dec!(0.003)), dec!(3000));
}

#[test]
fn hostile_values_keep_their_direction_and_do_not_panic() {
    // A negative size rounds toward zero, as it does with a power-of-ten lot.
    assert_eq!(round_qty(dec!(-0.0119), dec!(0.003)), dec!(-0.009));
    assert_eq!(round_qty(dec!(-0.0119), dec!(0.001)), dec!(-0.011));
    // A negative price still rounds a bid down and an ask up.
    assert_eq!(round_price(dec!(-1.1), dec!(0.25), Side::Buy), dec!(-1.25));
    assert_eq!(round_price(dec!(-1.1), dec!(0.25), Side::Sell), dec!(-1));
    // No grid (a tick or lot of zero or below) leaves the value as it is.
    assert_eq!(round_price(dec!(100.3), dec!(0), Side::Buy), dec!(100.3));
    assert_eq!(
        round_price(dec!(100.3), dec!(-0.5), Side::Sell),
        dec!(100.3)
    );
    assert_eq!(round_qty(dec!(1.7), dec!(0)), dec!(1.7));
    // The largest prices and sizes Decimal holds, and the smallest steps.
    assert_eq!(
        round_price(Decimal::MAX, dec!(0.25), Side::Sell),
        Decimal::MAX
    );
    assert_eq!(
        round_price(Decimal::MAX, dec!(25), Side::Buy),
        Decimal::MAX - dec!(10)
    );
    // No multiple of 25 above it is representable: left off the grid, for the venue to refuse,
    // rather than rounded down.
    assert_eq!(
        round_price(Decimal::MAX, dec!(25), Side::Sell),
        Decimal::MAX
    );
    assert_eq!(round_qty(Decimal::MAX, dec!(25)), Decimal::MAX - dec!(10));
    assert_eq!(round_qty(Decimal::MIN, dec!(0.003)), Decimal::MIN);
    assert_eq!(
        round_price(dec!(1.5), dec!(0.0000000000000000000000000003), Side::Buy),
        dec!(1.5)
    );
    assert_eq!(
        round_qty(dec!(0.0000000000000000000000000001), dec!(0.003)),
        dec!(0)
    );
}

fn ticks() -> impl Strategy<Value = Decimal> {
    prop::sample::select(vec![
        dec!(0.5),
        dec!(0.25),
        dec!(0.003),
        dec!(25),
        dec!(2.5),
        dec!(0.05),
        dec!(0.01),
        dec!(1),
        dec!(0.00000001),
        dec!(0.0000075),
    ])
}

proptest! {
    #[test]
    fn any_price_rounds_onto_the_grid_within_one_tick_on_the_safe_side(
        mantissa in 1i64..=i64::MAX,
        scale in 0u32..=18,
        tick in ticks(),
    ) {
        let p = Decimal::new(mantissa, scale);
        let bid = round_price(p, tick, Side::Buy);
        let ask = round_price(p, tick, Side::Sell);
        prop_assert!(bid <= p && p - bid < tick, "bid {bid} for {p} at tick {tick}");
        prop_assert!(ask >= p && ask - p < tick, "ask {ask} for {p} at tick {tick}");
        prop_assert!((bid % tick).is_zero() && (ask % tick).is_zero());
        prop_assert!(ask == bid || ask - bid == tick);
    }

    #[test]
    fn any_size_rounds_down_onto_the_lot_within_one_lot(
        mantissa in 0i64..=i64::MAX,
        scale in 0u32..=18,
        lot in ticks(),
    ) {
        let q = Decimal::new(mantissa, scale);
        let r = round_qty(q, lot);
        prop_assert!(r <= q && q - r < lot, "{r} for {q} at lot {lot}");
        prop_assert!((r % lot).is_zero());
    }
}
