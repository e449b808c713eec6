//! No order the core sends can break a risk limit, whatever the market and the venue do:
//! a proptest drives the engine with random books, trades, predictions and an adversarial
//! venue that fills, acks, cancels and rejects whatever it likes.

use flashmm_core::config::Config;
use flashmm_core::event::*;
use flashmm_core::{Emitted, Engine};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Act {
    Wait(u32),
    Move {
        ticks: i32,
        spread: u8,
        bid_qty: u16,
        ask_qty: u16,
    },
    Trade {
        buy: bool,
        qty: u16,
    },
    Ack(u8),
    Fill(u8, u8),
    Gone(u8),
    Predict {
        dir: u8,
        bps: i16,
        conf: u8,
    },
    Timer,
    Operator(u8),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        (1u32..3000).prop_map(Act::Wait),
        (-200i32..200, 1u8..6, 1u16..500, 1u16..500).prop_map(
            |(ticks, spread, bid_qty, ask_qty)| Act::Move {
                ticks,
                spread,
                bid_qty,
                ask_qty
            }
        ),
        (any::<bool>(), 1u16..500).prop_map(|(buy, qty)| Act::Trade { buy, qty }),
        any::<u8>().prop_map(Act::Ack),
        (any::<u8>(), 1u8..=100).prop_map(|(i, pct)| Act::Fill(i, pct)),
        any::<u8>().prop_map(Act::Gone),
        (0u8..3, -500i16..=500, 0u8..=100).prop_map(|(dir, bps, conf)| Act::Predict {
            dir,
            bps,
            conf
        }),
        Just(Act::Timer),
        (0u8..3).prop_map(Act::Operator),
    ]
}

fn cfg() -> Config {
    let mut c = Config::default();
    c.risk.max_position = dec!(0.006);
    c.risk.max_notional = dec!(300);
    c.strategy.min_refresh_ms = 0;
    c.features.vol_min_samples = 3;
    c
}

struct Harness {
    engine: Engine,
    cfg: Config,
    seq: u64,
    ts: i64,
    mid: Decimal,
    ask: Decimal,
    bid: Decimal,
    position: Decimal,
    open: BTreeMap<u64, (Side, Decimal, Decimal)>,
    requests: Vec<u64>,
    placed: u64,
}

impl Harness {
    /// A fresh engine that has seen a one-tick market at 60000.
    fn new() -> Result<Harness, TestCaseError> {
        let cfg = cfg();
        let mut h = Harness {
            engine: Engine::new(&cfg),
            cfg: cfg.clone(),
            seq: 0,
            ts: 1_723_161_253_000_000_000,
            mid: dec!(60000.005),
            bid: dec!(60000.00),
            ask: dec!(60000.01),
            position: Decimal::ZERO,
            open: BTreeMap::new(),
            requests: Vec::new(),
            placed: 0,
        };
        let lv = |price, qty| Level { price, qty };
        h.feed(Input::BookSnapshot(BookSnapshot {
            symbol: cfg.market.symbol,
            update_id: 1,
            bids: vec![lv(dec!(60000.00), dec!(1))],
            asks: vec![lv(dec!(60000.01), dec!(1))],
        }))?;
        Ok(h)
    }

    fn feed(&mut self, input: Input) -> Result<(), TestCaseError> {
        self.seq += 1;
        let e = Entry {
            seq: self.seq,
            ts_ns: self.ts,
            venue_ts_ns: None,
            session: 1,
            cause: None,
            body: Body::Input(input),
        };
        let mut out: Vec<Emitted> = Vec::new();
        self.engine.on_event(&e, &mut out);
        for em in out {
            match em.output {
                Output::PlaceOrder(p) => self.check(&p)?,
                Output::PredictionRequest(r) => self.requests.push(r.request_id),
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&mut self, p: &PlaceOrder) -> Result<(), TestCaseError> {
        let m = &self.cfg.market;
        let r = &self.cfg.risk;
        prop_assert_eq!(
            p.price % m.tick_size,
            Decimal::ZERO,
            "price {} off tick",
            p.price
        );
        prop_assert_eq!(p.qty % m.lot_size, Decimal::ZERO, "qty {} off lot", p.qty);
        prop_assert!(p.qty >= m.min_qty);
        match p.side {
            Side::Buy => prop_assert!(
                p.price < self.ask,
                "post-only bid {} at or above ask {}",
                p.price,
                self.ask
            ),
            Side::Sell => prop_assert!(
                p.price > self.bid,
                "post-only ask {} at or below bid {}",
                p.price,
                self.bid
            ),
        }
        self.open.insert(p.cid, (p.side, p.price, p.qty));
        let exposure: Decimal = self
            .open
            .values()
            .filter(|o| o.0 == p.side)
            .map(|o| o.2)
            .sum();
        let worst = p.side.sign() * self.position + exposure;
        prop_assert!(
            worst <= r.max_position,
            "{:?}: worst {} > max_position {}",
            p.side,
            worst,
            r.max_position
        );
        let value = worst * p.price.max(self.mid);
        prop_assert!(
            value <= r.max_notional,
            "{:?}: worst notional {} > {}",
            p.side,
            value,
            r.max_notional
        );
        self.placed += 1;
        Ok(())
    }

    fn pick(&self, i: u8) -> Option<u64> {
        if self.open.is_empty() {
            return None;
        }
        self.open.keys().nth(i as usize % self.open.len()).copied()
    }

    fn step(&mut self, a: &Act) -> Result<(), TestCaseError> {
        let sym = self.cfg.market.symbol;
        let tick = self.cfg.market.tick_size;
        self.ts += 1_000_000;
        match a {
            Act::Wait(ms) => self.ts += *ms as i64 * 1_000_000,
            Act::Move {
                ticks,
                spread,
                bid_qty,
                ask_qty,
            } => {
                let bid = (self.bid + tick * Decimal::from(*ticks)).max(dec!(100));
                let ask = bid + tick * Decimal::from(*spread);
                self.bid = bid;
                self.ask = ask;
                self.mid = (bid + ask) / Decimal::TWO;
                let q = |n: u16| Decimal::new(n as i64, 3);
                self.feed(Input::Bbo(Bbo {
                    symbol: sym,
                    update_id: Some(self.seq + 10),
                    bid,
                    bid_qty: q(*bid_qty),
                    ask,
                    ask_qty: q(*ask_qty),
                }))?;
            }
            Act::Trade { buy, qty } => {
                let (price, aggressor) = if *buy {
                    (self.ask, Side::Buy)
                } else {
                    (self.bid, Side::Sell)
                };
                self.feed(Input::Trade(Trade {
                    symbol: sym,
                    trade_id: self.seq,
                    price,
                    qty: Decimal::new(*qty as i64, 4),
                    aggressor,
                }))?;
            }
            Act::Ack(i) => {
                if let Some(cid) = self.pick(*i) {
                    self.feed(Input::OrderAck(OrderAck {
                        cid,
                        venue_order_id: cid.to_string(),
                    }))?;
                }
            }
            Act::Fill(i, pct) => {
                if let Some(cid) = self.pick(*i) {
                    let (side, price, rem) = self.open[&cid];
                    let lot = self.cfg.market.lot_size;
                    let qty = ((rem * Decimal::from(*pct) / dec!(100)) / lot).ceil() * lot;
                    let qty = qty.min(rem);
                    let leaves = rem - qty;
                    self.position += side.sign() * qty;
                    if leaves.is_zero() {
                        self.open.remove(&cid);
                    } else {
                        self.open.insert(cid, (side, price, leaves));
                    }
                    self.feed(Input::Fill(Fill {
                        cid,
                        side,
                        price,
                        qty,
                        liquidity: Liquidity::Maker,
                        fee: Decimal::ZERO,
                        leaves_qty: leaves,
                    }))?;
                }
            }
            Act::Gone(i) => {
                if let Some(cid) = self.pick(*i) {
                    let rem = self.open.remove(&cid).map_or(Decimal::ZERO, |o| o.2);
                    let input = if i % 2 == 0 {
                        Input::OrderCanceled(OrderCanceled {
                            cid,
                            canceled_qty: rem,
                            reason: "t".into(),
                        })
                    } else {
                        Input::OrderReject(OrderReject {
                            cid,
                            reason: "t".into(),
                        })
                    };
                    self.feed(input)?;
                }
            }
            Act::Predict { dir, bps, conf } => {
                if let Some(request_id) = self.requests.last().copied() {
                    let direction =
                        [Direction::Bullish, Direction::Bearish, Direction::Neutral][*dir as usize];
                    self.feed(Input::PredictionResponse(Box::new(PredictionResponse {
                        request_id,
                        source: PredictorKind::Stub,
                        result: Ok(Prediction {
                            direction,
                            confidence: Decimal::new(*conf as i64, 2),
                            price_change_bps: Decimal::from(*bps),
                            reasoning: String::new(),
                        }),
                        raw: String::new(),
                        latency_ms: 0,
                        usage: None,
                        cost_usd: Decimal::ZERO,
                        http: None,
                    })))?;
                }
            }
            Act::Timer => self.feed(Input::Timer)?,
            Act::Operator(k) => {
                let command = [
                    OperatorCommand::Halt,
                    OperatorCommand::Resume,
                    OperatorCommand::CancelAll,
                ][*k as usize];
                self.feed(Input::Operator(Operator {
                    command,
                    note: String::new(),
                }))?;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn no_order_breaks_a_risk_limit(acts in prop::collection::vec(act(), 1..300)) {
        let mut h = Harness::new()?;
        for a in &acts {
            h.step(a)?;
        }
        // The engine's own books agree with the venue's.
        prop_assert_eq!(h.engine.position().qty(), h.position);
    }
}

#[test]
fn the_harness_does_place_orders_and_reach_the_limits() {
    // Guards the proptest against passing vacuously: fill every bid as it appears.
    let cfg = cfg();
    let mut h = Harness::new().unwrap();
    for _ in 0..40 {
        let bid = h
            .open
            .iter()
            .find(|(_, o)| o.0 == Side::Buy)
            .map(|(k, _)| *k);
        if let Some(cid) = bid {
            let i = h.open.keys().position(|k| *k == cid).unwrap() as u8;
            h.step(&Act::Fill(i, 100)).unwrap();
        }
        h.step(&Act::Wait(300)).unwrap();
    }
    assert!(h.placed > 5);
    assert!(h.position > dec!(0.004), "position {}", h.position);
    assert!(h.position <= cfg.risk.max_position);
    assert!(h.engine.guard(RiskKind::InventoryLimit) || h.position < cfg.risk.max_position);
}
