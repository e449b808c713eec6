//! Session summaries, computed from journal entries only (never from the core's memory), so
//! the same numbers come out of a live run, a backtest and a journal read back later.
//!
//! Beside the summary: `postmortem` (one fill's markouts and cause chain), `session` (the
//! session report with charts), `export` (CSV and Parquet tables), `chart` and `html` (the
//! self-contained SVG and HTML they are drawn with), `markout` (per-fill markouts at any horizon).

pub mod chart;
pub mod error;
pub mod export;
pub mod horizon;
pub mod html;
pub mod markout;
pub mod postmortem;
pub mod select;
pub mod session;
pub mod split;

pub use error::ReportError;

use flashmm_core::book::Book;
use flashmm_core::contract::Contract;
use flashmm_core::event::{Body, Direction, Entry, Input, Liquidity, Output, Side};
use flashmm_core::position::{Pnl, Position};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use std::collections::VecDeque;

const NS_PER_S: i64 = 1_000_000_000;

/// Markout horizons reported by default, in seconds.
pub const HORIZONS_S: [u64; 3] = [1, 5, 30];

#[derive(Clone)]
struct Pending {
    due: i64,
    side: Side,
    price: Decimal,
}

#[derive(Clone)]
struct Markout {
    horizon_s: u64,
    pending: VecDeque<Pending>,
    sum_bps: Decimal,
    samples: u64,
}

#[derive(Clone)]
struct PendingCall {
    due: i64,
    mid: Decimal,
    sign: i32,
}

/// Summary statistics of one session. Feed it every entry in the order the core saw it, with
/// the market book as it stands after that entry (`SessionReport` keeps that book for you).
#[derive(Clone)]
pub struct Summary {
    /// Mid after the previous market entry: the price that held until the current one.
    mid: Option<Decimal>,
    top: Option<(Decimal, Decimal)>,
    spread_bps: f64,
    position: Position,
    pub events: u64,
    pub quotes: u64,
    pub orders: u64,
    pub cancels: u64,
    pub rejects: u64,
    pub fills: u64,
    pub maker_fills: u64,
    pub taker_fills: u64,
    pub risk_actions: u64,
    /// Funding charges (or payments) at funding times.
    pub fundings: u64,
    pub predictions: u64,
    pub prediction_failures: u64,
    max_abs_position: Decimal,
    quoted_spread_sum: f64,
    quoted_spread_n: u64,
    /// Time-weighted market spread: sum of spread x seconds, and seconds.
    market_spread_area: f64,
    market_spread_time: f64,
    last_market: Option<(i64, f64)>,
    markouts: Vec<Markout>,
    horizon_ns: i64,
    calls: VecDeque<PendingCall>,
    hits: u64,
    calls_scored: u64,
    last_ts: i64,
}

impl Summary {
    /// `prediction_horizon_s` is the horizon a prediction is scored over.
    /// `contract` values the position (linear, or inverse in the base coin).
    pub fn new(prediction_horizon_s: u64, contract: Contract) -> Summary {
        Summary {
            mid: None,
            top: None,
            spread_bps: 0.0,
            position: Position::new(contract),
            events: 0,
            quotes: 0,
            orders: 0,
            cancels: 0,
            rejects: 0,
            fills: 0,
            maker_fills: 0,
            taker_fills: 0,
            risk_actions: 0,
            fundings: 0,
            predictions: 0,
            prediction_failures: 0,
            max_abs_position: Decimal::ZERO,
            quoted_spread_sum: 0.0,
            quoted_spread_n: 0,
            market_spread_area: 0.0,
            market_spread_time: 0.0,
            last_market: None,
            markouts: HORIZONS_S
                .iter()
                .map(|&h| Markout {
                    horizon_s: h,
                    pending: VecDeque::new(),
                    sum_bps: Decimal::ZERO,
                    samples: 0,
                })
                .collect(),
            horizon_ns: prediction_horizon_s as i64 * NS_PER_S,
            calls: VecDeque::new(),
            hits: 0,
            calls_scored: 0,
            last_ts: i64::MIN,
        }
    }

    /// Settles everything whose horizon ended before `ts`, at the mid that held until then.
    fn settle(&mut self, ts: i64) {
        let Some(mid) = self.mid else { return };
        for m in &mut self.markouts {
            while m.pending.front().is_some_and(|p| p.due < ts) {
                if let Some(p) = m.pending.pop_front() {
                    m.sum_bps += markout_bps(p.side, p.price, mid);
                    m.samples += 1;
                }
            }
        }
        while self.calls.front().is_some_and(|c| c.due < ts) {
            if let Some(c) = self.calls.pop_front() {
                let moved = match mid.cmp(&c.mid) {
                    std::cmp::Ordering::Greater => 1,
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                };
                self.calls_scored += 1;
                if moved == c.sign {
                    self.hits += 1;
                }
            }
        }
    }

    /// Feeds one entry, in the order the core saw it; `book` has already applied it.
    pub fn on_entry(&mut self, e: &Entry, book: &Book) {
        self.last_ts = self.last_ts.max(e.ts_ns);
        match &e.body {
            Body::Input(_) if e.body.is_market() => {
                self.settle(e.ts_ns);
                self.events += 1;
                let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) else {
                    return;
                };
                if self.top != Some((b, a)) {
                    self.top = Some((b, a));
                    let mid = (b + a) / Decimal::TWO;
                    self.mid = Some(mid);
                    self.spread_bps = ((a - b) / mid * dec!(10000)).to_f64().unwrap_or(0.0);
                }
                if let Some((t0, s0)) = self.last_market {
                    let dt = (e.ts_ns - t0) as f64 / 1e9;
                    self.market_spread_area += s0 * dt;
                    self.market_spread_time += dt;
                }
                self.last_market = Some((e.ts_ns, self.spread_bps));
            }
            Body::Input(Input::Fill(f)) => {
                self.fills += 1;
                match f.liquidity {
                    Liquidity::Maker => self.maker_fills += 1,
                    Liquidity::Taker => self.taker_fills += 1,
                }
                self.position.apply_fill(f.side, f.price, f.qty, f.fee);
                self.max_abs_position = self.max_abs_position.max(self.position.qty().abs());
                for m in &mut self.markouts {
                    m.pending.push_back(Pending {
                        due: e.ts_ns + m.horizon_s as i64 * NS_PER_S,
                        side: f.side,
                        price: f.price,
                    });
                }
            }
            Body::Input(Input::PositionSync(p)) => {
                // A live session starts from (and, after a reconnect, catches up with) the
                // position the venue reports.
                self.position.adopt(p.qty, p.avg_price);
                self.max_abs_position = self.max_abs_position.max(self.position.qty().abs());
            }
            Body::Input(Input::OrderReject(_)) => self.rejects += 1,
            Body::Input(Input::PredictionResponse(r)) => {
                self.predictions += 1;
                match &r.result {
                    Ok(p) if p.direction != Direction::Neutral => {
                        if let Some(mid) = self.mid {
                            self.calls.push_back(PendingCall {
                                due: e.ts_ns + self.horizon_ns,
                                mid,
                                sign: p.direction.sign(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(_) => self.prediction_failures += 1,
                }
            }
            Body::Output(Output::QuoteDecision(q)) => {
                self.quotes += 1;
                if let (Some(b), Some(a)) = (q.bids.first(), q.asks.first()) {
                    if !q.features.mid.is_zero() {
                        self.quoted_spread_sum += ((a.price - b.price) / q.features.mid
                            * dec!(10000))
                        .to_f64()
                        .unwrap_or(0.0);
                        self.quoted_spread_n += 1;
                    }
                }
            }
            Body::Output(Output::PlaceOrder(_)) => self.orders += 1,
            Body::Output(Output::CancelOrder(_)) => self.cancels += 1,
            Body::Output(Output::RiskAction(_)) => self.risk_actions += 1,
            Body::Output(Output::Funding(f)) => {
                self.fundings += 1;
                self.position.apply_funding(f.amount);
            }
            _ => {}
        }
    }

    /// Closes the books at the end of the data. Horizons that end after the last market entry
    /// have no price to score against and are left out (counted in `markout_unscored`).
    pub fn finish(&mut self) {
        self.settle(self.last_ts.saturating_add(1));
    }

    pub fn mid(&self) -> Option<Decimal> {
        self.mid
    }

    pub fn pnl(&self) -> Pnl {
        self.position.pnl(self.mid.unwrap_or_default())
    }

    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The deterministic part of the report, as JSON. Decimals are strings.
    pub fn to_json(&self) -> Value {
        let pnl = self.pnl();
        let r4 = |d: Decimal| d.round_dp(4).normalize().to_string();
        let r8 = |d: Decimal| d.round_dp(8).normalize().to_string();
        // Money in a coin (inverse contracts settle in BTC) needs satoshis, not cents.
        let money = |d: Decimal| {
            if self.position.contract().inverse {
                r8(d)
            } else {
                r4(d)
            }
        };
        let f4 = |x: f64| (x * 1e4).round() / 1e4;
        let mut markout = serde_json::Map::new();
        let mut samples = serde_json::Map::new();
        let mut unscored = serde_json::Map::new();
        for m in &self.markouts {
            let key = format!("{}s", m.horizon_s);
            let avg = (m.samples > 0).then(|| r4(m.sum_bps / Decimal::from(m.samples)));
            markout.insert(key.clone(), json!(avg));
            samples.insert(key.clone(), json!(m.samples));
            unscored.insert(key, json!(m.pending.len()));
        }
        json!({
            "events": self.events,
            "quotes": self.quotes,
            "orders": self.orders,
            "cancels": self.cancels,
            "rejects": self.rejects,
            "fills": self.fills,
            "maker_fills": self.maker_fills,
            "taker_fills": self.taker_fills,
            "volume": r8(self.position.volume()),
            "notional": money(self.position.notional()),
            "pnl": {
                "realized": money(pnl.realized),
                "unrealized": money(pnl.unrealized),
                "fees": money(pnl.fees),
                "funding": money(pnl.funding),
                "total": money(pnl.total),
            },
            "final_position": r8(self.position.qty()),
            "max_abs_position": r8(self.max_abs_position),
            "final_mid": self.mid.map(|m| m.normalize().to_string()),
            "avg_quoted_spread_bps": (self.quoted_spread_n > 0).then(|| f4(self.quoted_spread_sum / self.quoted_spread_n as f64)),
            "avg_market_spread_bps": (self.market_spread_time > 0.0).then(|| f4(self.market_spread_area / self.market_spread_time)),
            "markout_bps": markout,
            "markout_samples": samples,
            "markout_unscored": unscored,
            "predictions": self.predictions,
            "prediction_failures": self.prediction_failures,
            "prediction_calls_scored": self.calls_scored,
            "prediction_hit_rate": (self.calls_scored > 0).then(|| f4(self.hits as f64 / self.calls_scored as f64)),
            "risk_actions": self.risk_actions,
            "fundings": self.fundings,
        })
    }
}

/// A `Summary` with its own copy of the market book, for reading a session back.
pub struct SessionReport {
    book: Book,
    pub summary: Summary,
}

impl SessionReport {
    pub fn new(prediction_horizon_s: u64, contract: Contract) -> SessionReport {
        SessionReport {
            book: Book::new(),
            summary: Summary::new(prediction_horizon_s, contract),
        }
    }

    pub fn on_entry(&mut self, e: &Entry) {
        self.book.apply_entry(e);
        self.summary.on_entry(e, &self.book);
    }

    /// The market book after the last entry fed.
    pub fn book(&self) -> &Book {
        &self.book
    }
}

/// The move in mid against us after a fill, in bps of the fill price; positive is good for us.
pub fn markout_bps(side: Side, price: Decimal, mid: Decimal) -> Decimal {
    side.sign() * (mid - price) / price * dec!(10000)
}
