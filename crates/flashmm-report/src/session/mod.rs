//! `flashmm report`: one session read back from the journal, summarised (`Summary`) and drawn:
//! PnL, inventory, quoted and market spreads, our quotes and fills on the price, the markout
//! distribution, the model's latency and cost, and risk actions on the timeline.

mod html;
mod json;
mod text;

use super::horizon::{self, Horizon};
use super::markout::{FillMarks, Markouts};
use super::select::{self, Picked};
use super::{ReportError, SessionReport, Summary};
use flashmm_core::contract::Contract;
use flashmm_core::event::{
    Body, Entry, Input, Liquidity, Output, PredictorGate, PredictorKind, RiskKind, Side, TokenUsage,
};
use flashmm_journal::stream::session_stream;
use flashmm_journal::Journal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;

pub struct FillDot {
    pub seq: u64,
    pub ts_ns: i64,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub liquidity: Liquidity,
}

/// One answer from the predictor.
pub struct Answer {
    pub seq: u64,
    pub ts_ns: i64,
    pub source: PredictorKind,
    pub latency_ms: u64,
    pub cost_usd: Decimal,
    /// The failure kind, for a failed answer.
    pub failure: Option<&'static str>,
}

pub struct RiskMark {
    pub seq: u64,
    pub ts_ns: i64,
    pub kind: RiskKind,
    pub engaged: bool,
    pub detail: String,
    /// The market whose guard it is; `None` for one over every market.
    pub symbol: Option<flashmm_core::event::Symbol>,
}

pub struct GateMark {
    pub seq: u64,
    pub ts_ns: i64,
    pub gate: PredictorGate,
    pub detail: String,
}

/// A session read back: its summary, and the series its charts draw. Times are ns.
pub struct SessionView {
    pub picked: Picked,
    pub summary: Summary,
    pub first_ts: i64,
    pub last_ts: i64,
    pub horizons: Vec<Horizon>,
    pub marks: Vec<FillMarks>,
    pub mid: Vec<(i64, f64)>,
    /// Our best resting bid and ask (NaN while we have none on that side).
    pub our_bid: Vec<(i64, f64)>,
    pub our_ask: Vec<(i64, f64)>,
    /// Total PnL (realized + unrealized at the mid - fees) after each fill and mid change.
    pub pnl: Vec<(i64, f64)>,
    pub position: Vec<(i64, f64)>,
    /// Level-0 spread of each quote decision, bps of the mid.
    pub quoted_spread: Vec<(i64, f64)>,
    pub market_spread: Vec<(i64, f64)>,
    pub fills: Vec<FillDot>,
    pub requests: u64,
    pub answers: Vec<Answer>,
    /// Calls no quote used, by what became of them (`CallOutcome::as_str`).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Quote decisions, and the age of the model answer each one that had one used.
    pub decisions: u64,
    pub answer_ages_ms: Vec<u64>,
    pub usage: TokenUsage,
    pub gates: Vec<GateMark>,
    /// Every market's guards (with several markets, each names its market).
    pub risk: Vec<RiskMark>,
    /// With several markets (`[[markets]]`): each market's own summary, in config order. The
    /// rest of the view (charts, fills, markouts) is the first market's.
    pub markets: Vec<(flashmm_core::config::MarketConfig, Summary)>,
}

fn f(x: Decimal) -> f64 {
    x.to_f64().unwrap_or(f64::NAN)
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Appends `(ts, v)` unless it repeats the last value; a value at the same ts as the last one
/// replaces it, so what is drawn is the state at the end of each instant.
fn push(series: &mut Vec<(i64, f64)>, ts: i64, v: f64) {
    if let Some(last) = series.last_mut() {
        if last.0 == ts {
            last.1 = v;
            let n = series.len();
            if n >= 2 && same(series[n - 2].1, v) {
                series.pop();
            }
            return;
        }
        if same(last.1, v) {
            return;
        }
    }
    series.push((ts, v));
}

/// Our resting orders, from the journaled order flow.
#[derive(Default)]
struct Orders {
    placed: BTreeMap<u64, (Side, Decimal)>,
    open: BTreeMap<u64, (Side, Decimal)>,
}

impl Orders {
    fn best(&self, side: Side) -> f64 {
        let prices = self.open.values().filter(|(s, _)| *s == side).map(|o| o.1);
        let best = match side {
            Side::Buy => prices.max(),
            Side::Sell => prices.min(),
        };
        best.map_or(f64::NAN, f)
    }

    /// True when the open orders changed.
    fn on_entry(&mut self, e: &Entry) -> bool {
        match &e.body {
            Body::Output(Output::PlaceOrder(p)) => {
                self.placed.insert(p.cid, (p.side, p.price));
                false
            }
            Body::Input(Input::OrderAck(a)) => match self.placed.remove(&a.cid) {
                Some(o) => {
                    self.open.insert(a.cid, o);
                    true
                }
                None => false,
            },
            Body::Input(Input::OrderReject(r)) => {
                self.placed.remove(&r.cid);
                false
            }
            Body::Input(Input::OrderCanceled(c)) => {
                self.placed.remove(&c.cid);
                self.open.remove(&c.cid).is_some()
            }
            Body::Input(Input::Fill(fl)) => {
                if let Some(o) = self.placed.remove(&fl.cid) {
                    self.open.insert(fl.cid, o);
                }
                if fl.leaves_qty.is_zero() {
                    self.open.remove(&fl.cid);
                }
                true
            }
            _ => false,
        }
    }
}

/// The value at quantile `q` of sorted values, by nearest rank.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

impl SessionView {
    /// Per horizon, the markouts in bps of the fills the data reaches, in journal order.
    pub fn scored(&self, h: usize) -> Vec<Decimal> {
        self.marks
            .iter()
            .filter_map(|m| m.marks.get(h).and_then(|m| m.bps()))
            .collect()
    }

    /// Seconds since the session's first entry: the charts' x.
    pub fn x(&self, ts: i64) -> f64 {
        (ts - self.first_ts) as f64 / 1e9
    }
}

/// Reads `session` (default: the newest with decisions) back from the journal.
pub fn read(journal: &Journal, session: Option<u64>) -> Result<SessionView, ReportError> {
    let picked = select::pick(journal, session)?;
    let horizons = horizon::defaults();
    let per = picked.cfg.market_configs().unwrap_or_default();
    let several = per.len() > 1;
    let first_market = per
        .first()
        .map_or(picked.cfg.market.clone(), |c| c.market.clone());
    let mut split = crate::split::Split::new(picked.cfg.symbols());
    let mut each: Vec<SessionReport> = per
        .iter()
        .filter(|_| several)
        .map(|c| SessionReport::new(c.predict.horizon_s, Contract::of(&c.market)))
        .collect();
    let mut report = SessionReport::new(picked.cfg.predict.horizon_s, Contract::of(&first_market));
    let mut markouts = Markouts::new(&horizons);
    let mut orders = Orders::default();
    let mut v = SessionView {
        summary: Summary::new(picked.cfg.predict.horizon_s, Contract::of(&first_market)),
        markets: Vec::new(),
        first_ts: i64::MAX,
        last_ts: i64::MIN,
        horizons: horizons.clone(),
        marks: Vec::new(),
        mid: Vec::new(),
        our_bid: Vec::new(),
        our_ask: Vec::new(),
        pnl: Vec::new(),
        position: Vec::new(),
        quoted_spread: Vec::new(),
        market_spread: Vec::new(),
        fills: Vec::new(),
        requests: 0,
        answers: Vec::new(),
        outcomes: BTreeMap::new(),
        decisions: 0,
        answer_ages_ms: Vec::new(),
        usage: TokenUsage::default(),
        gates: Vec::new(),
        risk: Vec::new(),
        picked,
    };
    let mut last_mid: Option<Decimal> = None;
    for e in session_stream(journal, v.picked.info.id)? {
        let e = e?;
        v.first_ts = v.first_ts.min(e.ts_ns);
        v.last_ts = v.last_ts.max(e.ts_ns);
        let owner = split.owner(&e);
        match owner {
            crate::split::Owner::One(i) => {
                if let Some(r) = each.get_mut(i) {
                    r.on_entry(&e);
                }
            }
            crate::split::Owner::All => each.iter_mut().for_each(|r| r.on_entry(&e)),
            crate::split::Owner::Nobody => {}
        }
        if !matches!(
            owner,
            crate::split::Owner::One(0) | crate::split::Owner::All
        ) {
            // Another market's: only its guards are listed here; its numbers are its own.
            if let Body::Output(Output::RiskAction(r)) = &e.body {
                v.risk.push(RiskMark {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    kind: r.kind,
                    engaged: r.engaged,
                    detail: r.detail.clone(),
                    symbol: r.symbol,
                });
            }
            continue;
        }
        report.on_entry(&e);
        markouts.on_entry(&e, report.book());
        if orders.on_entry(&e) {
            push(&mut v.our_bid, e.ts_ns, orders.best(Side::Buy));
            push(&mut v.our_ask, e.ts_ns, orders.best(Side::Sell));
        }
        let mid = report.summary.mid();
        let mut revalue = false;
        if e.body.is_market() {
            if mid != last_mid {
                if let Some(m) = mid {
                    push(&mut v.mid, e.ts_ns, f(m));
                }
                last_mid = mid;
                revalue = true;
            }
            let book = report.book();
            if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
                let m = (b + a) / Decimal::TWO;
                if !m.is_zero() {
                    push(&mut v.market_spread, e.ts_ns, f((a - b) / m * dec!(10000)));
                }
            }
        }
        match &e.body {
            Body::Input(Input::Fill(fl)) => {
                v.fills.push(FillDot {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    side: fl.side,
                    price: fl.price,
                    qty: fl.qty,
                    liquidity: fl.liquidity,
                });
                if v.position.is_empty() {
                    v.position.push((v.first_ts, 0.0));
                    v.pnl.push((v.first_ts, 0.0));
                }
                v.position
                    .push((e.ts_ns, f(report.summary.position().qty())));
                revalue = true;
            }
            Body::Input(Input::PredictionResponse(r)) => {
                if let Some(u) = r.usage {
                    v.usage.prompt += u.prompt;
                    v.usage.cached += u.cached;
                    v.usage.completion += u.completion;
                    v.usage.reasoning += u.reasoning;
                }
                v.answers.push(Answer {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    source: r.source,
                    latency_ms: r.latency_ms,
                    cost_usd: r.cost_usd,
                    failure: r.result.as_ref().err().map(|x| x.kind.as_str()),
                });
            }
            Body::Output(Output::PredictionRequest(_)) => v.requests += 1,
            Body::Output(Output::PredictionOutcome(o)) => {
                *v.outcomes.entry(o.outcome.as_str()).or_default() += 1;
            }
            Body::Output(Output::QuoteDecision(q)) => {
                v.decisions += 1;
                if let Some(p) = &q.prediction {
                    v.answer_ages_ms.push(p.age_ms);
                }
                if let (Some(b), Some(a)) = (q.bids.first(), q.asks.first()) {
                    if !q.features.mid.is_zero() {
                        v.quoted_spread.push((
                            e.ts_ns,
                            f((a.price - b.price) / q.features.mid * dec!(10000)),
                        ));
                    }
                }
            }
            Body::Output(Output::RiskAction(r)) => {
                // Quoting stops: the quoted spread has no value until the next decision.
                if r.engaged && r.kind != RiskKind::InventoryLimit {
                    v.quoted_spread.push((e.ts_ns, f64::NAN));
                }
                v.risk.push(RiskMark {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    kind: r.kind,
                    engaged: r.engaged,
                    detail: r.detail.clone(),
                    symbol: r.symbol,
                })
            }
            Body::Output(Output::PredictorStatus(p)) => v.gates.push(GateMark {
                seq: e.seq,
                ts_ns: e.ts_ns,
                gate: p.gate,
                detail: p.detail.clone(),
            }),
            _ => {}
        }
        if revalue && (!v.fills.is_empty() || !v.pnl.is_empty()) {
            push(&mut v.pnl, e.ts_ns, f(report.summary.pnl().total));
        }
    }
    if v.first_ts > v.last_ts {
        v.first_ts = 0;
        v.last_ts = 0;
    }
    report.summary.finish();
    if let Some(&(ts, _)) = v.pnl.last() {
        if ts < v.last_ts {
            v.pnl.push((v.last_ts, f(report.summary.pnl().total)));
        }
    }
    v.summary = report.summary;
    v.markets = per
        .into_iter()
        .zip(each)
        .map(|(c, mut r)| {
            r.summary.finish();
            (c.market, r.summary)
        })
        .collect();
    v.marks = markouts.finish();
    Ok(v)
}
