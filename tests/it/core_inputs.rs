//! The core's answer to the live inputs that recover from a broken venue link: a book read over
//! REST does not make a dead stream look alive, and a position read from the venue is adopted.

use flashmm_core::config::Config;
use flashmm_core::event::*;
use flashmm_core::{Emitted, Engine};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_723_161_253_000_000_000;
const MS: i64 = 1_000_000;

struct Core {
    engine: Engine,
    seq: u64,
    symbol: Symbol,
}

impl Core {
    fn new(cfg: &Config) -> Core {
        Core {
            engine: Engine::new(cfg),
            seq: 0,
            symbol: cfg.market.symbol,
        }
    }

    fn feed(&mut self, ts: i64, input: Input) -> Vec<Output> {
        self.seq += 1;
        let e = Entry {
            seq: self.seq,
            ts_ns: ts,
            venue_ts_ns: None,
            session: 1,
            cause: None,
            body: Body::Input(input),
        };
        let mut out: Vec<Emitted> = Vec::new();
        self.engine.on_event(&e, &mut out);
        out.into_iter().map(|e| e.output).collect()
    }

    fn book(&self, bid: Decimal, ask: Decimal) -> BookSnapshot {
        BookSnapshot {
            symbol: self.symbol,
            update_id: self.seq,
            bids: vec![Level {
                price: bid,
                qty: dec!(1),
            }],
            asks: vec![Level {
                price: ask,
                qty: dec!(1),
            }],
        }
    }
}

fn stale_feed(out: &[Output]) -> Option<bool> {
    out.iter().rev().find_map(|o| match o {
        Output::RiskAction(a) if a.kind == RiskKind::StaleFeed => Some(a.engaged),
        _ => None,
    })
}

fn places(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::PlaceOrder(_)))
        .count()
}

fn cfg() -> Config {
    let mut c = Config::default();
    c.risk.stale_feed_ms = 1_000;
    c.strategy.min_refresh_ms = 0;
    c
}

#[test]
fn books_read_over_rest_do_not_hold_off_the_stale_feed_guard() {
    let mut core = Core::new(&cfg());
    let b = core.book(dec!(60000), dec!(60001));
    let first = core.feed(T0, Input::BookSnapshot(b));
    assert!(places(&first) > 0, "a streamed book is quoted");
    // The stream dies; only REST reads arrive, every 200 ms, for 3 s.
    let mut engaged = None;
    for k in 1..=15 {
        let b = core.book(dec!(60000), dec!(60001));
        let out = core.feed(T0 + k * 200 * MS, Input::BookPolled(b));
        engaged = engaged.or(stale_feed(&out).filter(|e| *e));
        if let Some(t) = core.engine.poll_timeout() {
            if t <= T0 + k * 200 * MS {
                let out = core.feed(t, Input::Timer);
                engaged = engaged.or(stale_feed(&out).filter(|e| *e));
            }
        }
    }
    assert_eq!(
        engaged,
        Some(true),
        "the stale-feed guard engaged on REST reads alone"
    );
    // The stream speaks again: the guard releases.
    let b = core.book(dec!(60000), dec!(60001));
    let out = core.feed(T0 + 3_100 * MS, Input::BookSnapshot(b));
    assert_eq!(stale_feed(&out), Some(false));
}

#[test]
fn a_stream_that_never_spoke_is_stale_even_with_rest_books() {
    let mut core = Core::new(&cfg());
    let mut engaged = false;
    let mut placed_late = 0;
    for k in 0..20 {
        let now = T0 + k * 200 * MS;
        let b = core.book(dec!(60000), dec!(60001));
        let out = core.feed(now, Input::BookPolled(b));
        engaged |= stale_feed(&out) == Some(true);
        if let Some(t) = core.engine.poll_timeout().filter(|t| *t <= now) {
            engaged |= stale_feed(&core.feed(t, Input::Timer)) == Some(true);
        }
        if k * 200 > 1_200 {
            placed_late += places(&out);
        }
    }
    assert!(engaged, "no stream data for longer than risk.stale_feed_ms");
    assert_eq!(
        placed_late, 0,
        "nothing is quoted off REST books once stale"
    );
}

#[test]
fn a_position_read_from_the_venue_is_adopted_and_marked() {
    let mut core = Core::new(&cfg());
    let b = core.book(dec!(60000), dec!(60001));
    core.feed(T0, Input::BookSnapshot(b));
    let symbol = core.symbol;
    let sync = |qty, avg_price| {
        Input::PositionSync(PositionSync {
            symbol,
            qty,
            avg_price,
            note: "test".into(),
        })
    };
    core.feed(T0 + MS, sync(dec!(-0.0022), dec!(60100)));
    assert_eq!(core.engine.position().qty(), dec!(-0.0022));
    // Short 0.0022 from 60100, marked at 60000.5: a gain of 0.0022 x 99.5.
    let pnl = core.engine.position().pnl(dec!(60000.5));
    assert_eq!(pnl.total, dec!(0.2189));
    // A later read replaces the position, it does not add to it.
    core.feed(T0 + 2 * MS, sync(dec!(0.001), dec!(60000)));
    assert_eq!(core.engine.position().qty(), dec!(0.001));
}

fn guard(out: &[Output], kind: RiskKind) -> Option<bool> {
    out.iter().rev().find_map(|o| match o {
        Output::RiskAction(a) if a.kind == kind => Some(a.engaged),
        _ => None,
    })
}

fn fill(qty: Decimal) -> Input {
    Input::Fill(Fill {
        cid: 0,
        side: Side::Buy,
        price: dec!(60000),
        qty,
        liquidity: Liquidity::Maker,
        fee: Decimal::ZERO,
        leaves_qty: Decimal::ZERO,
    })
}

#[test]
fn fills_the_venue_has_not_confirmed_pull_the_quotes_past_the_bound() {
    let mut c = cfg();
    c.risk.stale_feed_ms = 600_000;
    c.risk.position_unconfirmed_ms = 2_000;
    let mut core = Core::new(&c);
    let symbol = core.symbol;
    let sync = |qty| {
        Input::PositionSync(PositionSync {
            symbol,
            qty,
            avg_price: dec!(60000),
            note: "read".into(),
        })
    };
    let b = core.book(dec!(60000), dec!(60001));
    core.feed(T0, Input::BookSnapshot(b));
    core.feed(T0 + MS, sync(Decimal::ZERO));
    core.feed(T0 + 10 * MS, fill(dec!(0.001)));
    assert!(core.engine.position_unconfirmed());
    // The guard's deadline is the timer: 2 s after the first unconfirmed fill.
    let due = core.engine.poll_timeout().expect("a deadline");
    assert_eq!(due, T0 + 10 * MS + 2_001 * MS);
    let out = core.feed(due, Input::Timer);
    assert_eq!(guard(&out, RiskKind::PositionUnconfirmed), Some(true));
    let b = core.book(dec!(60000), dec!(60001));
    assert_eq!(places(&core.feed(due + MS, Input::BookSnapshot(b))), 0);
    // A read of the venue that agrees confirms it; quoting resumes.
    let out = core.feed(due + 2 * MS, sync(dec!(0.001)));
    assert_eq!(guard(&out, RiskKind::PositionUnconfirmed), Some(false));
    assert!(places(&out) > 0);
    assert!(!core.engine.position_unconfirmed());
}

#[test]
fn without_a_venue_read_fills_need_no_confirmation() {
    // A backtest never reads a venue: its simulated fills are never held against it.
    let mut c = cfg();
    c.risk.stale_feed_ms = 600_000;
    c.risk.position_unconfirmed_ms = 2_000;
    let mut core = Core::new(&c);
    let b = core.book(dec!(60000), dec!(60001));
    core.feed(T0, Input::BookSnapshot(b));
    core.feed(T0 + MS, fill(dec!(0.001)));
    assert!(!core.engine.position_unconfirmed());
    let b = core.book(dec!(60000), dec!(60001));
    let out = core.feed(T0 + 60_000 * MS, Input::BookSnapshot(b));
    assert_eq!(guard(&out, RiskKind::PositionUnconfirmed), None);
}
