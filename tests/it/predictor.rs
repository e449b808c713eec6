//! The core's side of the slow signal: gates (breaker, budget, rate limit), late answers, and the
//! blend with the rules, all on journal time.

use flashmm_core::config::Config;
use flashmm_core::event::*;
use flashmm_core::{Emitted, Engine};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub(crate) const S: i64 = 1_000_000_000;
pub(crate) const T0: i64 = 1_723_161_253 * S;

pub(crate) struct H {
    pub(crate) engine: Engine,
    seq: u64,
    pub(crate) ts: i64,
    pub(crate) out: Vec<Output>,
}

impl H {
    pub(crate) fn new(cfg: Config) -> H {
        let mut h = H {
            engine: Engine::new(&cfg),
            seq: 0,
            ts: T0,
            out: Vec::new(),
        };
        let lv = |price, qty| Level { price, qty };
        h.feed(Input::BookSnapshot(BookSnapshot {
            symbol: cfg.market.symbol,
            update_id: 1,
            bids: vec![lv(dec!(60000.00), dec!(3))],
            asks: vec![lv(dec!(60000.01), dec!(1))],
        }));
        h
    }

    pub(crate) fn feed(&mut self, input: Input) -> Vec<Output> {
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
        let out: Vec<Output> = out.into_iter().map(|e| e.output).collect();
        self.out.extend(out.iter().cloned());
        out
    }

    /// Moves market time to `ts` with a fresh, unchanged top of book (so the feed is not stale).
    pub(crate) fn at(&mut self, ts: i64) -> Vec<Output> {
        self.ts = ts;
        let update_id = Some(self.seq + 100);
        self.feed(Input::Bbo(Bbo {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            update_id,
            bid: dec!(60000.00),
            bid_qty: dec!(3),
            ask: dec!(60000.01),
            ask_qty: dec!(1),
        }))
    }

    pub(crate) fn requests(out: &[Output]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Output::PredictionRequest(r) => Some(r.request_id),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn gates(out: &[Output]) -> Vec<PredictorGate> {
        out.iter()
            .filter_map(|o| match o {
                Output::PredictorStatus(s) => Some(s.gate),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn answer(
        &mut self,
        request_id: u64,
        result: Result<Prediction, PredictionFailure>,
        cost: Decimal,
    ) -> Vec<Output> {
        self.feed(Input::PredictionResponse(Box::new(PredictionResponse {
            request_id,
            source: PredictorKind::Azure,
            result,
            raw: String::new(),
            latency_ms: 0,
            usage: None,
            cost_usd: cost,
            http: None,
        })))
    }
}

pub(crate) fn bullish() -> Result<Prediction, PredictionFailure> {
    Ok(Prediction {
        direction: Direction::Bullish,
        confidence: dec!(0.8),
        price_change_bps: dec!(5),
        reasoning: String::new(),
    })
}

fn broken() -> Result<Prediction, PredictionFailure> {
    Err(PredictionFailure {
        kind: FailureKind::Http,
        message: "HTTP 500".into(),
    })
}

pub(crate) fn quotes(out: &[Output]) -> Vec<&QuoteDecision> {
    out.iter()
        .filter_map(|o| match o {
            Output::QuoteDecision(q) => Some(q.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_request_carries_the_full_prompt() {
    let h = H::new(Config::default());
    let r = h
        .out
        .iter()
        .find_map(|o| match o {
            Output::PredictionRequest(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a request at the first valid book");
    let p = r.prompt.unwrap();
    assert!(
        p.user.contains("best bid: 60000 x 3") && p.user.contains("best ask: 60000.01 x 1"),
        "{}",
        p.user
    );
    assert!(p.user.contains("our inventory: 0"));
    assert!(p.developer.contains("next 60 seconds"));
}

#[test]
fn five_failures_open_the_breaker_then_half_open_then_close() {
    let mut h = H::new(Config::default());
    let mut id = H::requests(&h.out)[0];
    for i in 0..5 {
        let out = h.answer(id, broken(), dec!(0));
        if i < 4 {
            assert!(H::gates(&out).is_empty());
            // The next request waits for predict.interval_ms.
            let out = h.at(h.ts + 10 * S);
            id = H::requests(&out)[0];
        } else {
            assert_eq!(H::gates(&out), vec![PredictorGate::BreakerOpen]);
        }
    }
    // Open: nothing is asked, quoting runs on rules alone.
    let out = h.at(h.ts + 20 * S);
    assert!(H::requests(&out).is_empty());
    // 30 s after opening: half-open, and one probe goes.
    let out = h.at(h.ts + 10 * S + 1);
    assert_eq!(H::gates(&out), vec![PredictorGate::HalfOpen]);
    let probe = H::requests(&out);
    assert_eq!(probe.len(), 1);
    let out = h.answer(probe[0], bullish(), dec!(0));
    assert_eq!(H::gates(&out), vec![PredictorGate::Open]);
    // A used prediction shows in the next quote with its blend weight.
    let q = quotes(&out);
    assert!(q.last().unwrap().prediction.is_some(), "{out:?}");
}

#[test]
fn a_failed_probe_reopens_the_breaker() {
    let mut cfg = Config::default();
    cfg.predict.breaker_failures = 1;
    let mut h = H::new(cfg);
    let id = H::requests(&h.out)[0];
    assert_eq!(
        H::gates(&h.answer(id, broken(), dec!(0))),
        vec![PredictorGate::BreakerOpen]
    );
    let out = h.at(h.ts + 30 * S);
    assert_eq!(H::gates(&out), vec![PredictorGate::HalfOpen]);
    let probe = H::requests(&out)[0];
    assert_eq!(
        H::gates(&h.answer(probe, broken(), dec!(0))),
        vec![PredictorGate::BreakerOpen]
    );
}

#[test]
fn the_budget_cap_stops_requests_before_it_is_exceeded() {
    let mut cfg = Config::default();
    cfg.predict.budget_usd_per_hour = dec!(0.05);
    cfg.predict.max_requests_per_minute = 100;
    let mut h = H::new(cfg.clone());
    let mut spent = Decimal::ZERO;
    let mut id = H::requests(&h.out).first().copied();
    let mut over_at = None;
    for i in 0..50 {
        if let Some(r) = id {
            spent += dec!(0.008);
            let out = h.answer(r, bullish(), dec!(0.008));
            if H::gates(&out).contains(&PredictorGate::OverBudgetHour) {
                over_at = Some(i);
            }
        }
        let out = h.at(h.ts + 10 * S);
        id = H::requests(&out).first().copied();
    }
    // Each request may cost up to ~0.009 (2000 completion tokens at 4.40/M plus the prompt):
    // the governor stops while the worst case still fits under 0.05.
    assert!(over_at.is_some(), "never went over budget");
    assert!(spent <= cfg.predict.budget_usd_per_hour, "spent {spent}");
    assert!(spent >= dec!(0.032), "stopped too early: {spent}");
    // An hour after the first answers roll out of the window, requests resume.
    let out = h.at(h.ts + 3600 * S);
    assert_eq!(H::gates(&out), vec![PredictorGate::Open]);
}

#[test]
fn an_answer_after_its_ttl_is_ignored() {
    let mut h = H::new(Config::default());
    let id = H::requests(&h.out)[0];
    h.ts += 31 * S;
    let out = h.answer(id, bullish(), dec!(0));
    assert!(quotes(&out).iter().all(|q| q.prediction.is_none()));
    assert_eq!(h.engine.prediction_stats().late, 1);
}

#[test]
fn one_request_in_flight_and_a_per_minute_limit() {
    let mut cfg = Config::default();
    cfg.predict.interval_ms = 1_000;
    cfg.predict.ttl_ms = 5_000;
    cfg.predict.max_requests_per_minute = 3;
    let mut h = H::new(cfg);
    let first = H::requests(&h.out)[0];
    // Unanswered: no second request, however long we wait (short of the timeout).
    for k in 1..20 {
        assert!(H::requests(&h.at(T0 + k * S)).is_empty());
    }
    // Answer everything at once from here on: the per-minute limit is what holds them back.
    let mut asked = vec![first];
    let mut pending = H::requests(&h.answer(first, bullish(), dec!(0)));
    for k in 21..60 {
        pending.extend(H::requests(&h.at(T0 + k * S)));
        while let Some(id) = pending.pop() {
            asked.push(id);
            pending.extend(H::requests(&h.answer(id, bullish(), dec!(0))));
        }
    }
    // Within one minute of market time: at most 3.
    assert_eq!(asked.len(), 3, "{asked:?}");
}

#[test]
fn the_blend_fades_the_model_into_the_rules() {
    let mut h = H::new(Config::default());
    let id = H::requests(&h.out)[0];
    let out = h.answer(id, bullish(), dec!(0));
    let q = quotes(&out);
    let q = q.last().unwrap();
    // Fresh: 0.7 to the model (0.8 x 5 = 4 bps), 0.3 to the rules (bid/ask size 3 > 1.5:
    // bullish 0.7 x 2 bps = 1.4).
    assert_eq!(q.model_weight, dec!(0.7));
    let rules = q.rules.as_ref().unwrap();
    assert_eq!(
        (rules.direction, rules.confidence, rules.price_change_bps),
        (Direction::Bullish, dec!(0.7), dec!(2.0))
    );
    assert_eq!(
        flashmm_core::blend(q.prediction.as_ref(), q.rules.as_ref(), q.model_weight),
        dec!(3.22)
    );
    // Half way through the ttl the model gets half of its weight: move the market so the
    // quotes must be redone, and look at the decision.
    h.ts = T0 + 15 * S;
    let update_id = Some(h.seq + 100);
    let out = h.feed(Input::Bbo(Bbo {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        update_id,
        bid: dec!(60030.00),
        bid_qty: dec!(3),
        ask: dec!(60030.01),
        ask_qty: dec!(1),
    }));
    let q = quotes(&out);
    let q = q.last().expect("the move requotes");
    assert_eq!(q.model_weight, dec!(0.35));
    assert_eq!(q.prediction.as_ref().unwrap().age_ms, 15_000);
}

#[test]
fn a_spread_jump_asks_early_but_not_too_early() {
    let mut h = H::new(Config::default());
    let first = H::requests(&h.out)[0];
    h.answer(first, bullish(), dec!(0));
    let wide = |h: &mut H, ts: i64| {
        h.ts = ts;
        let update_id = Some(h.seq + 100);
        h.feed(Input::Bbo(Bbo {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            update_id,
            bid: dec!(59999.90),
            bid_qty: dec!(3),
            ask: dec!(60000.10),
            ask_qty: dec!(1),
        }))
    };
    // The spread went from 1 tick to 20, but predict.early_min_interval_ms (2 s) has not passed.
    assert!(H::requests(&wide(&mut h, T0 + S)).is_empty());
    // After it has, the jump asks at once instead of waiting out the 10 s interval.
    assert_eq!(H::requests(&wide(&mut h, T0 + 2 * S + 1)).len(), 1);
}
