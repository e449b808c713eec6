use super::*;
use crate::event::{BookSnapshot, Fill, Level, Liquidity, Side, Trade};
use rust_decimal_macros::dec;

const T0: i64 = 1_723_161_600_000_000_000;

fn cfg(extra: &str) -> Config {
    Config::from_toml_str(&format!(
        r#"
[strategy]
levels = 1
base_size = "0.01"
[risk]
max_position = "1"
max_notional = "100000"
{extra}
[[markets]]
symbol = "BTCUSDT"
[[markets]]
symbol = "ETHUSDT"
base_size = "0.1"
max_position = "10"
"#
    ))
    .expect("config")
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

fn snapshot(sym: &str, bid: Decimal, ask: Decimal) -> Input {
    Input::BookSnapshot(BookSnapshot {
        symbol: Symbol::new(sym).expect("symbol"),
        update_id: 1,
        bids: vec![Level {
            price: bid,
            qty: dec!(5),
        }],
        asks: vec![Level {
            price: ask,
            qty: dec!(5),
        }],
    })
}

fn places(out: &[Emitted]) -> Vec<(String, u64, Side, Decimal)> {
    out.iter()
        .filter_map(|e| match &e.output {
            Output::PlaceOrder(p) => Some((p.symbol.to_string(), p.cid, p.side, p.qty)),
            _ => None,
        })
        .collect()
}

#[test]
fn each_market_quotes_its_own_book_with_its_own_size_and_ids_never_collide() {
    let mut d = Desk::new(&cfg("")).expect("desk");
    let mut out = Vec::new();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    let btc = places(&out);
    assert!(
        btc.iter().all(|p| p.0 == "BTCUSDT" && p.3 == dec!(0.01)),
        "{btc:?}"
    );
    assert_eq!(btc.len(), 2, "one level a side");
    out.clear();
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        &mut out,
    );
    let eth = places(&out);
    assert!(
        eth.iter().all(|p| p.0 == "ETHUSDT" && p.3 == dec!(0.1)),
        "{eth:?}"
    );
    for o in &out {
        if let Output::QuoteDecision(q) = &o.output {
            assert_eq!(q.symbol.map(|s| s.to_string()).as_deref(), Some("ETHUSDT"));
        }
    }
    // A timer reaches both engines; the ids they mint for it are distinct.
    out.clear();
    let late = T0 + 30 * 1_000_000_000;
    d.on_event(&entry(3, late, Input::Timer), &mut out);
    let mut cids: Vec<u64> = places(&out).iter().map(|p| p.1).collect();
    cids.extend(btc.iter().chain(&eth).map(|p| p.1));
    let n = cids.len();
    cids.sort();
    cids.dedup();
    assert_eq!(cids.len(), n, "every id once");
}

#[test]
fn a_fill_moves_only_the_market_of_its_order() {
    let mut d = Desk::new(&cfg("")).expect("desk");
    let mut out = Vec::new();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        &mut out,
    );
    let (_, cid, side, qty) = places(&out)
        .into_iter()
        .find(|p| p.0 == "ETHUSDT" && p.2 == Side::Buy)
        .expect("an ETH bid");
    out.clear();
    let fill = Input::Fill(Fill {
        cid,
        side,
        price: dec!(2600),
        qty,
        liquidity: Liquidity::Maker,
        fee: Decimal::ZERO,
        leaves_qty: Decimal::ZERO,
    });
    d.on_event(&entry(3, T0 + 2, fill.clone()), &mut out);
    assert_eq!(d.engines()[0].position().qty(), Decimal::ZERO);
    assert_eq!(d.engines()[1].position().qty(), qty);
    // The order is done: a second report of it belongs to no market and is counted.
    d.on_event(&entry(4, T0 + 3, fill), &mut out);
    assert_eq!(d.engines()[1].position().qty(), qty);
    assert_eq!(d.stats().unknown_reports, 1);
    // A market nobody quotes is counted, not given to anyone.
    let other = Input::Trade(Trade {
        symbol: Symbol::new("SOLUSDT").expect("symbol"),
        trade_id: 1,
        price: dec!(150),
        qty: dec!(1),
        aggressor: Side::Buy,
    });
    d.on_event(&entry(5, T0 + 4, other), &mut out);
    assert_eq!(d.stats().other_symbol, 1);
}

#[test]
fn the_total_notional_limit_leaves_the_second_market_what_the_first_does_not_use() {
    // BTC's bid of 0.01 at ~60000 uses 600 of the 1000; ETH's 0.1 at 2600 (260) fits, a
    // second ETH level would not.
    let mut d = Desk::new(&cfg("max_total_notional = \"1000\"")).expect("desk");
    let mut out = Vec::new();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    let btc_worst = d.engines()[0].worst_notional();
    assert!(
        btc_worst > dec!(600) && btc_worst < dec!(601),
        "{btc_worst}"
    );
    out.clear();
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        &mut out,
    );
    let eth = places(&out);
    // 1000 - 600.05 leaves 399.95: 0.1 ETH (260.1) fits on each side.
    assert!(eth.iter().all(|p| p.3 == dec!(0.1)), "{eth:?}");
    // With 700 in total, ETH has 700 - 600.05 = 99.95 left: about 0.0384 ETH a side (rounded
    // down to the lot), cut by the desk's limit.
    let mut d = Desk::new(&cfg("max_total_notional = \"700\"")).expect("desk");
    out.clear();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    out.clear();
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        &mut out,
    );
    let eth = places(&out);
    assert_eq!(eth.len(), 2, "{eth:?}");
    for p in &eth {
        let at_most = p.3 * dec!(2600.5);
        assert!(at_most <= dec!(99.95) && at_most > dec!(99.9), "{eth:?}");
    }
    let bound = out.iter().any(|o| match &o.output {
        Output::QuoteDecision(q) => q
            .bounds
            .iter()
            .any(|b| matches!(b, crate::event::Bound::TotalNotionalLimit { .. })),
        _ => false,
    });
    assert!(bound, "the decision names the desk's limit");
}

#[test]
fn losing_the_total_across_markets_stops_every_market() {
    let mut d = Desk::new(&cfg("max_total_loss = \"50\"")).expect("desk");
    let mut out = Vec::new();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        &mut out,
    );
    let btc_bid = places(&out)
        .into_iter()
        .find(|p| p.0 == "BTCUSDT" && p.2 == Side::Buy)
        .expect("a BTC bid");
    out.clear();
    d.on_event(
        &entry(
            3,
            T0 + 2,
            Input::Fill(Fill {
                cid: btc_bid.1,
                side: Side::Buy,
                price: dec!(60000),
                qty: dec!(0.01),
                liquidity: Liquidity::Maker,
                fee: Decimal::ZERO,
                leaves_qty: Decimal::ZERO,
            }),
        ),
        &mut out,
    );
    assert!(!d.guard(RiskKind::TotalLoss));
    out.clear();
    // BTC falls 6000: 0.01 loses 60 > 50, though neither market alone is at its daily limit.
    d.on_event(
        &entry(4, T0 + 3, snapshot("BTCUSDT", dec!(54000), dec!(54010))),
        &mut out,
    );
    let action = out.iter().position(|o| {
        matches!(&o.output, Output::RiskAction(a) if a.kind == RiskKind::TotalLoss && a.engaged && a.symbol.is_none())
    });
    let action = action.expect("one action over every market");
    assert!(d.engines().iter().all(|e| e.guard(RiskKind::TotalLoss)));
    assert!(d.guard(RiskKind::TotalLoss));
    // Both markets' resting orders are canceled, caused by that action.
    let cancels: Vec<&Emitted> = out
        .iter()
        .filter(|o| matches!(o.output, Output::CancelOrder(_)))
        .collect();
    assert!(cancels.len() >= 2, "{out:?}");
    assert!(cancels.iter().all(|c| c.cause == Cause::Emitted(action)));
    // And nothing quotes again.
    out.clear();
    d.on_event(&entry(5, T0 + 60_000_000_000, Input::Timer), &mut out);
    assert!(places(&out).is_empty());
}

#[test]
fn markets_quoted_in_coins_and_dollars_cannot_share_a_total_limit() {
    let c = Config::from_toml_str(
        "[risk]\nmax_total_loss = \"10\"\n[[markets]]\nsymbol = \"BTCUSDT\"\n[[markets]]\nsymbol = \"ETHBTC\"\nquote_currency = \"BTC\"\nsettle_currency = \"BTC\"\n",
    )
    .expect("config");
    let e = Desk::new(&c).err().expect("refused").to_string();
    assert!(
        e.contains("risk.max_total_loss") && e.contains("ETHBTC in BTC"),
        "{e}"
    );
    let markets = "[[markets]]\nsymbol = \"BTCUSDT\"\n[[markets]]\nsymbol = \"ETHBTC\"\nquote_currency = \"BTC\"\nsettle_currency = \"BTC\"\n";
    // Without limits over all markets, markets of any currencies quote together.
    let free = Config::from_toml_str(markets).expect("config");
    assert!(Desk::new(&free).is_ok());
    let notional = format!("[risk]\nmax_total_notional = \"10\"\n{markets}");
    let notional = Config::from_toml_str(&notional).expect("config");
    assert!(Desk::new(&notional).is_err());
}

#[test]
fn one_market_is_its_engine_exactly() {
    let c = Config::default();
    let mut d = Desk::new(&c).expect("desk");
    let mut e = Engine::new(&c);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (seq, input) in [
        snapshot("BTCUSDT", dec!(60000), dec!(60010)),
        Input::Timer,
        snapshot("BTCUSDT", dec!(60001), dec!(60011)),
    ]
    .into_iter()
    .enumerate()
    {
        let x = entry(seq as u64, T0 + seq as i64 * 1_000_000_000, input);
        d.on_event(&x, &mut a);
        e.on_event(&x, &mut b);
    }
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(d.stats(), e.stats().clone());
    assert_eq!(d.poll_timeout(), e.poll_timeout());
}

fn both_books(d: &mut Desk, out: &mut Vec<Emitted>) {
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        out,
    );
    d.on_event(
        &entry(2, T0 + 1, snapshot("ETHUSDT", dec!(2600), dec!(2601))),
        out,
    );
}

#[test]
fn reports_answers_and_position_reads_reach_only_their_market() {
    use crate::event::{OrderAck, OrderCanceled, OrderReject, PositionSync};
    let mut d = Desk::new(&cfg("")).expect("desk");
    assert_eq!(
        d.symbols()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["BTCUSDT", "ETHUSDT"]
    );
    let mut out = Vec::new();
    both_books(&mut d, &mut out);
    assert_eq!(d.stats().market_events, 2);
    assert_eq!(d.stats().inputs, 2);
    let eth: Vec<_> = places(&out)
        .into_iter()
        .filter(|p| p.0 == "ETHUSDT")
        .collect();
    let btc: Vec<_> = places(&out)
        .into_iter()
        .filter(|p| p.0 == "BTCUSDT")
        .collect();
    let (eth_bid, eth_ask, btc_bid) = (eth[0].1, eth[1].1, btc[0].1);
    let mut seq = 3;
    let mut feed = |d: &mut Desk, input: Input| {
        seq += 1;
        let mut out = Vec::new();
        d.on_event(&entry(seq, T0 + seq as i64, input), &mut out);
        out
    };
    feed(
        &mut d,
        Input::OrderAck(OrderAck {
            cid: eth_bid,
            venue_order_id: "1".into(),
        }),
    );
    assert!(d.engines()[1]
        .orders()
        .get(eth_bid)
        .is_some_and(|o| o.state == crate::orders::OrderState::Open));
    assert_eq!(d.stats().unknown_reports, 0, "the ack reached ETH alone");
    feed(
        &mut d,
        Input::OrderReject(OrderReject {
            cid: eth_ask,
            reason: "no".into(),
        }),
    );
    assert!(
        d.engines()[1].orders().get(eth_ask).is_none(),
        "the reject reached ETH"
    );
    feed(
        &mut d,
        Input::OrderCanceled(OrderCanceled {
            cid: btc_bid,
            canceled_qty: dec!(0.01),
            reason: "x".into(),
        }),
    );
    assert!(
        d.engines()[0].orders().get(btc_bid).is_none(),
        "the cancel reached BTC"
    );
    assert!(d.engines()[1].orders().get(eth_bid).is_some());
    // Each is forgotten at its last report: a later report of it reaches nobody.
    let before = d.stats().unknown_reports;
    feed(
        &mut d,
        Input::OrderReject(OrderReject {
            cid: eth_ask,
            reason: "again".into(),
        }),
    );
    feed(
        &mut d,
        Input::OrderCanceled(OrderCanceled {
            cid: btc_bid,
            canceled_qty: dec!(0),
            reason: "again".into(),
        }),
    );
    assert_eq!(d.stats().unknown_reports, before + 2);
    // A partial fill keeps the order routable; the rest of it still reaches ETH.
    let part = |leaves| {
        Input::Fill(Fill {
            cid: eth_bid,
            side: Side::Buy,
            price: dec!(2600),
            qty: dec!(0.05),
            liquidity: Liquidity::Maker,
            fee: Decimal::ZERO,
            leaves_qty: leaves,
        })
    };
    feed(&mut d, part(dec!(0.05)));
    feed(&mut d, part(Decimal::ZERO));
    assert_eq!(d.engines()[1].position().qty(), dec!(0.1));
    // The venue's position of one market is adopted by that market only.
    feed(
        &mut d,
        Input::PositionSync(PositionSync {
            symbol: Symbol::new("ETHUSDT").expect("symbol"),
            qty: dec!(0.3),
            avg_price: dec!(2600),
            note: String::new(),
        }),
    );
    assert_eq!(d.engines()[1].position().qty(), dec!(0.3));
    assert_eq!(d.engines()[0].position().qty(), Decimal::ZERO);
}

#[test]
fn an_answer_reaches_the_market_that_asked_and_a_hostile_input_is_refused_once() {
    use crate::event::{Prediction, PredictionResponse, PredictorKind};
    let mut d = Desk::new(&cfg("")).expect("desk");
    let mut out = Vec::new();
    both_books(&mut d, &mut out);
    let asked: Vec<(u64, Symbol)> = out
        .iter()
        .filter_map(|o| match &o.output {
            Output::PredictionRequest(r) => Some((r.request_id, r.symbol)),
            _ => None,
        })
        .collect();
    let (id, sym) = *asked.last().expect("a request");
    let i = d
        .symbols()
        .iter()
        .position(|s| *s == sym)
        .expect("its market");
    let answer = Input::PredictionResponse(Box::new(PredictionResponse {
        request_id: id,
        source: PredictorKind::Stub,
        result: Ok(Prediction {
            direction: crate::event::Direction::Neutral,
            confidence: dec!(0.5),
            price_change_bps: Decimal::ZERO,
            reasoning: String::new(),
        }),
        raw: String::new(),
        latency_ms: 1,
        usage: None,
        cost_usd: Decimal::ZERO,
        http: None,
    }));
    d.on_event(&entry(3, T0 + 2, answer.clone()), &mut out);
    assert_eq!(d.engines()[i].prediction_stats().responses, 1);
    assert_eq!(d.engines()[1 - i].prediction_stats().responses, 0);
    // Answered: the same id again reaches nobody.
    d.on_event(&entry(4, T0 + 3, answer), &mut out);
    assert_eq!(d.stats().unknown_reports, 1);
    // A price no book can hold is refused by the desk, once, and reaches no engine.
    d.on_event(
        &entry(5, T0 + 4, snapshot("ETHUSDT", dec!(-1), dec!(2601))),
        &mut out,
    );
    let s = d.stats();
    assert_eq!((s.refused_inputs, s.market_events, s.inputs), (1, 2, 5));
}

#[test]
fn the_total_notional_limit_binds_a_single_market_too() {
    let c = Config::from_toml_str(
        "[strategy]\nlevels = 1\nbase_size = \"0.01\"\n[risk]\nmax_notional = \"100000\"\nmax_total_notional = \"300\"\n",
    )
    .expect("config");
    let mut d = Desk::new(&c).expect("desk");
    let mut out = Vec::new();
    d.on_event(
        &entry(1, T0, snapshot("BTCUSDT", dec!(60000), dec!(60010))),
        &mut out,
    );
    let p = places(&out);
    assert!(
        !p.is_empty()
            && p.iter()
                .all(|p| p.3 < dec!(0.01) && p.3 * dec!(60005) <= dec!(300)),
        "{p:?}"
    );
}
