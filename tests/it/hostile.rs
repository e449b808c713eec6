//! Hostile market input (issue 11, defects 3 and 4): whatever the entries say, the core never
//! panics, never asks for a timer that does not move time on, and never makes unboundedly many
//! timers before the next market entry; the backtest over such entries ends with an error that
//! names the seq, or finishes.

use flashmm::mode::backtest::{self, BacktestArgs, BacktestError, Data, PredictorChoice};
use flashmm_core::config::Config;
use flashmm_core::event::*;
use flashmm_core::{Emitted, Engine};
use flashmm_journal::Journal;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_723_161_253_000_000_000;
const MS: i64 = 1_000_000;

fn sym() -> Symbol {
    Config::default().market.symbol
}

fn lv(price: Decimal, qty: Decimal) -> Level {
    Level { price, qty }
}

fn entry(seq: u64, ts: i64, input: Input) -> Entry {
    Entry {
        seq,
        ts_ns: ts,
        venue_ts_ns: None,
        session: 1,
        cause: None,
        body: Body::Input(input),
    }
}

/// Feeds `inputs` one per 100 ms, firing the core's timers in between as a driver would, and
/// returns the most timers fired between two inputs.
fn drive(inputs: Vec<(i64, Input)>) -> u64 {
    let mut engine = Engine::new(&Config::default());
    let mut out: Vec<Emitted> = Vec::new();
    let mut seq = 0;
    let mut worst = 0;
    for (ts, input) in inputs {
        let mut timers = 0u64;
        while let Some(t) = engine.poll_timeout().filter(|t| *t <= ts) {
            seq += 1;
            engine.on_event(&entry(seq, t, Input::Timer), &mut out);
            out.clear();
            timers += 1;
            assert!(timers <= 10_000, "runaway timers before the input at {ts}");
        }
        worst = worst.max(timers);
        seq += 1;
        engine.on_event(&entry(seq, ts, input), &mut out);
        out.clear();
        if let Some(t) = engine.poll_timeout() {
            assert!(
                t > ts.min(i64::MAX - 1),
                "a timer at {t} does not move time on past {ts}"
            );
        }
    }
    worst
}

fn snapshot(bids: Vec<Level>, asks: Vec<Level>, update_id: u64) -> Input {
    Input::BookSnapshot(BookSnapshot {
        symbol: sym(),
        update_id,
        bids,
        asks,
    })
}

fn delta(first: u64, last: u64, bids: Vec<Level>, asks: Vec<Level>) -> Input {
    Input::BookDelta(BookDelta {
        symbol: sym(),
        first_update_id: first,
        last_update_id: last,
        prev_update_id: None,
        bids,
        asks,
    })
}

fn book() -> Input {
    snapshot(
        vec![lv(dec!(61000), dec!(1)), lv(dec!(60999), dec!(2))],
        vec![lv(dec!(61001), dec!(1)), lv(dec!(61002), dec!(2))],
        100,
    )
}

#[test]
fn an_entry_at_the_end_of_time_is_refused_and_time_stays_sane() {
    // Before the fix the core took i64::MAX as its time and then asked for a timer at i64::MAX,
    // which the backtest fired forever.
    let mut engine = Engine::new(&Config::default());
    let mut out = Vec::new();
    engine.on_event(&entry(1, T0, book()), &mut out);
    engine.on_event(&entry(2, i64::MAX, book()), &mut out);
    engine.on_event(&entry(3, i64::MAX, Input::Timer), &mut out);
    assert_eq!(engine.stats().refused_inputs, 2);
    if let Some(t) = engine.poll_timeout() {
        assert!(t > T0 && t < T0 + 86_400_000 * MS, "timer at {t}");
    }
}

#[test]
fn a_book_emptied_on_one_side_makes_a_bounded_number_of_timers() {
    let inputs = vec![
        (T0, book()),
        (
            T0 + 100 * MS,
            delta(
                101,
                101,
                vec![lv(dec!(61000), dec!(0)), lv(dec!(60999), dec!(0))],
                vec![],
            ),
        ),
        (T0 + 5_000 * MS, Input::Timer),
        (T0 + 60_000 * MS, Input::Timer),
    ];
    let worst = drive(inputs);
    assert!(worst < 1_000, "{worst} timers between two inputs");
}

#[test]
fn huge_sizes_and_hostile_values_are_refused_not_computed() {
    let huge = Decimal::MAX;
    let inputs = vec![
        (T0, book()),
        (
            T0 + 100 * MS,
            delta(101, 101, vec![lv(dec!(61000), huge)], vec![]),
        ),
        (
            T0 + 200 * MS,
            snapshot(
                vec![lv(dec!(61000), huge)],
                vec![lv(dec!(61001), huge)],
                200,
            ),
        ),
        (
            T0 + 300 * MS,
            Input::Bbo(Bbo {
                symbol: sym(),
                update_id: None,
                bid: dec!(-61000),
                bid_qty: dec!(-5),
                ask: dec!(61001),
                ask_qty: dec!(-79228162514264337593543950335),
            }),
        ),
        (
            T0 + 400 * MS,
            Input::Trade(Trade {
                symbol: sym(),
                trade_id: 1,
                price: huge,
                qty: huge,
                aggressor: Side::Buy,
            }),
        ),
        (
            T0 + 500 * MS,
            snapshot(vec![], vec![lv(dec!(61001), dec!(1))], u64::MAX),
        ),
        (i64::MAX, Input::Timer),
    ];
    drive(inputs);
}

fn arb_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (1i64..10_000_000, 0u32..9).prop_map(|(m, s)| Decimal::new(m, s)),
        Just(Decimal::ZERO),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
        Just(dec!(-1)),
        Just(dec!(0.0000000000000000000000000001)),
    ]
}

fn arb_input() -> impl Strategy<Value = Input> {
    let levels = || {
        prop::collection::vec((arb_decimal(), arb_decimal()), 0..4)
            .prop_map(|v| v.into_iter().map(|(p, q)| lv(p, q)).collect::<Vec<_>>())
    };
    prop_oneof![
        (levels(), levels(), any::<u64>()).prop_map(|(b, a, id)| snapshot(b, a, id)),
        (any::<u64>(), 0u64..3, levels(), levels()).prop_map(|(f, n, b, a)| delta(
            f,
            f.saturating_add(n),
            b,
            a
        )),
        (arb_decimal(), arb_decimal(), arb_decimal(), arb_decimal()).prop_map(|(b, bq, a, aq)| {
            Input::Bbo(Bbo {
                symbol: sym(),
                update_id: None,
                bid: b,
                bid_qty: bq,
                ask: a,
                ask_qty: aq,
            })
        }),
        (arb_decimal(), arb_decimal(), any::<bool>()).prop_map(|(p, q, buy)| {
            Input::Trade(Trade {
                symbol: sym(),
                trade_id: 7,
                price: p,
                qty: q,
                aggressor: if buy { Side::Buy } else { Side::Sell },
            })
        }),
        Just(Input::Timer),
    ]
}

fn arb_ts() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 0i64..2_000,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any sequence of market inputs and times: no panic, timers always move time on, and few
    /// of them between two inputs.
    #[test]
    fn any_market_input_is_safe(steps in prop::collection::vec((arb_ts(), arb_input()), 1..30)) {
        let mut t = T0;
        let mut inputs = vec![(t, book())];
        for (dt, input) in steps {
            t = match dt {
                i64::MAX | i64::MIN => dt,
                d => T0.max(t.min(T0 + 1_000_000 * MS)) + d * MS,
            };
            inputs.push((t, input));
        }
        let worst = drive(inputs);
        prop_assert!(worst < 5_000, "{} timers between two inputs", worst);
    }
}

/// The backtest over a journal whose market session holds a hostile entry stops with an error
/// naming that entry's seq instead of writing timers until the disk is full.
#[test]
fn backtest_over_a_hostile_entry_names_its_seq() {
    for (name, bad) in [
        ("time i64::MAX", (i64::MAX, book())),
        (
            "empty bid side",
            (
                T0 + 200 * MS,
                snapshot(vec![], vec![lv(dec!(61001), dec!(1))], 300),
            ),
        ),
        (
            "lastUpdateId u64::MAX",
            (
                T0 + 200 * MS,
                snapshot(
                    vec![lv(dec!(61000), dec!(1))],
                    vec![lv(dec!(61001), dec!(1))],
                    u64::MAX,
                ),
            ),
        ),
        (
            "size 7.9e28",
            (
                T0 + 200 * MS,
                delta(101, 101, vec![lv(dec!(61000), Decimal::MAX)], vec![]),
            ),
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let mut w = journal.writer().expect("writer");
        let start = SessionStart {
            mode: Mode::Import,
            version: "test".into(),
            config: String::new(),
            label: "hostile".into(),
            parent: None,
            source: None,
        };
        let id = w.begin(T0, start).expect("begin");
        let mut bad_seq = 0;
        for (k, (ts, input)) in [
            (T0, book()),
            (
                T0 + 100 * MS,
                delta(101, 101, vec![lv(dec!(61000), dec!(3))], vec![]),
            ),
            bad,
            (T0 + 300 * MS, Input::Timer),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = Entry {
                session: id,
                ..entry(0, ts, input)
            };
            w.append(&mut e).expect("append");
            if k == 2 {
                bad_seq = e.seq;
            }
        }
        w.end(id, T0 + 300 * MS, SessionStatus::Completed, "test".into())
            .expect("end");
        w.flush(false).expect("flush");
        let args = BacktestArgs {
            data: Data::Journal(Some(id)),
            from: None,
            from_until: None,
            to: None,
            predictor: PredictorChoice::Rules,
            cfg: Config::default(),
            market_keys: None,
            progress: false,
            what_if: None,
        };
        match backtest::run(&mut w, args) {
            Err(BacktestError::BadMarket { seq, why }) => {
                assert_eq!(seq, bad_seq, "{name}: {why}");
            }
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name}: the backtest accepted a hostile entry"),
        }
        w.close().expect("close");
    }
}
