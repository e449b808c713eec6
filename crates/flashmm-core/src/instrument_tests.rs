use super::*;
use crate::config::Config;
use rust_decimal_macros::dec;

fn seen(venue: &'static str, symbol: &str, price_dp: u32, size_dp: u32) -> Seen {
    Seen {
        venue,
        symbol: Symbol::new(symbol).unwrap(),
        price_dp,
        size_dp,
    }
}

#[test]
fn a_known_instrument_takes_the_venues_rules_not_the_datas() {
    let i = Instrument::from_seen(&seen(venue::BINANCE_COINM, "BTCUSD_PERP", 1, 0));
    assert_eq!(i.origin, Origin::Table);
    let m = &i.market;
    assert_eq!(m.kind, InstrumentKind::InversePerp);
    assert_eq!(
        (m.tick_size, m.lot_size, m.multiplier),
        (dec!(0.1), dec!(1), dec!(100))
    );
    assert_eq!(
        (m.quote_currency.as_str(), m.settle_currency.as_str()),
        ("USD", "BTC")
    );
    // The same symbol on another venue is another instrument.
    let spot = Instrument::from_seen(&seen(venue::BINANCE_USDM, "ETHUSDT", 2, 3));
    assert_eq!(spot.market.kind, InstrumentKind::LinearPerp);
    assert_eq!(spot.market.tick_size, dec!(0.01));
}

#[test]
fn an_unknown_instrument_is_inferred_from_the_finest_steps_in_its_book() {
    let i = Instrument::from_seen(&seen(venue::BINANCE_SPOT, "DOGEFDUSD", 5, 0));
    assert_eq!(i.origin, Origin::Data);
    assert_eq!(i.market.tick_size, dec!(0.00001));
    assert_eq!(i.market.lot_size, dec!(1));
    assert_eq!(i.market.min_qty, dec!(1));
    assert_eq!(i.market.quote_currency, "FDUSD");
    assert_eq!(i.market.kind, InstrumentKind::Spot);
    let coin = Instrument::from_seen(&seen(venue::BINANCE_COINM, "ADAUSD_PERP", 5, 0));
    assert_eq!(coin.market.kind, InstrumentKind::InversePerp);
    assert_eq!(coin.market.multiplier, dec!(10));
    assert_eq!(coin.market.settle_currency, "ADA");
}

#[test]
fn the_recorded_instrument_reads_back_exactly() {
    for s in [
        seen(venue::BINANCE_COINM, "BTCUSD_PERP", 1, 0),
        seen(venue::BINANCE_SPOT, "XYZUSDT", 4, 2),
    ] {
        let i = Instrument::from_seen(&s);
        assert_eq!(Instrument::from_toml(&i.to_toml()), Some(i));
    }
    // An import from before instruments were recorded has an empty config.
    assert_eq!(Instrument::from_toml(""), None);
}

fn eth() -> Instrument {
    Instrument::from_seen(&seen(venue::BINANCE_SPOT, "ETHUSDT", 2, 4))
}

#[test]
fn keys_the_user_did_not_set_come_from_the_data() {
    let cfg = Config::default();
    let m = reconcile(&cfg.market, &[], &eth(), "the data").unwrap();
    assert_eq!(m.symbol.as_str(), "ETHUSDT");
    assert_eq!(m.lot_size, dec!(0.0001));
}

#[test]
fn a_symbol_the_user_set_that_the_data_is_not_is_an_error_naming_both() {
    let cfg = Config::default();
    let e = reconcile(
        &cfg.market,
        &["market.symbol".into()],
        &eth(),
        "the market data of session 1",
    )
    .unwrap_err();
    assert!(
        e.contains("market.symbol") && e.contains("BTCUSDT") && e.contains("ETHUSDT"),
        "{e}"
    );
    for k in [
        "venue",
        "kind",
        "multiplier",
        "quote_currency",
        "settle_currency",
    ] {
        let mut m = cfg.market.clone();
        m.symbol = Symbol::new("ETHUSDT").unwrap();
        m.venue = "binance-usdm".into();
        m.kind = InstrumentKind::InversePerp;
        m.multiplier = dec!(10);
        m.quote_currency = "USD".into();
        m.settle_currency = "ETH".into();
        let e = reconcile(&m, &[format!("market.{k}")], &eth(), "the data").unwrap_err();
        assert!(e.contains(&format!("market.{k}")), "{k}: {e}");
        // The same keys agreeing with the data are fine.
        let ok = reconcile(&eth().market, &[format!("market.{k}")], &eth(), "the data");
        assert!(ok.is_ok(), "{k}");
    }
}

#[test]
fn a_coarser_tick_is_allowed_and_a_finer_one_only_where_the_data_guessed() {
    let mut cfg = Config::default().market;
    cfg.tick_size = dec!(0.05);
    let keys = ["market.tick_size".to_string()];
    assert_eq!(
        reconcile(&cfg, &keys, &eth(), "d").unwrap().tick_size,
        dec!(0.05)
    );
    cfg.tick_size = dec!(0.001);
    let e = reconcile(&cfg, &keys, &eth(), "d").unwrap_err();
    assert!(e.contains("market.tick_size") && e.contains("0.01"), "{e}");
    // 0.015 is coarser but not a multiple of 0.01: no venue would take it.
    cfg.tick_size = dec!(0.015);
    assert!(reconcile(&cfg, &keys, &eth(), "d").is_err());
    let guessed = Instrument::from_seen(&seen(venue::BINANCE_SPOT, "XYZUSDT", 2, 2));
    cfg.tick_size = dec!(0.001);
    assert_eq!(
        reconcile(&cfg, &keys, &guessed, "d").unwrap().tick_size,
        dec!(0.001)
    );
}

#[test]
fn the_minimum_is_never_below_the_lot() {
    let mut cfg = Config::default().market;
    cfg.lot_size = dec!(0.001);
    let m = reconcile(&cfg, &["market.lot_size".into()], &eth(), "d").unwrap();
    assert_eq!((m.lot_size, m.min_qty), (dec!(0.001), dec!(0.001)));
}

#[test]
fn explicit_keys_are_the_files_and_the_sets() {
    let keys = Config::explicit_keys(
        Some("[market]\nsymbol = \"X\"\n[strategy]\nlevels = 2\n"),
        &[
            "market.tick_size=0.1".into(),
            "risk.max_position = 1".into(),
        ],
    );
    assert_eq!(
        keys,
        [
            "market.symbol",
            "market.tick_size",
            "risk.max_position",
            "strategy.levels"
        ]
    );
}
