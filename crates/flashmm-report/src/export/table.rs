//! The tables of a CSV or Parquet export: their columns, and the rows each journal entry gives.
//! docs/export.md is generated from these definitions (`schema_markdown`), and a test keeps
//! the two equal.
//!
//! Longer than 600 lines on purpose: the twelve tables are declared side by side so a column
//! change is one edit that the schema document and both writers follow.

use flashmm_core::book::Book;
use flashmm_core::event::{Body, Bound, Entry, Input, Liquidity, Output};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    U64,
    I64,
    U32,
    F64,
    Bool,
    Str,
    /// Parquet: decimal128(38, 18); CSV: the exact decimal as journaled.
    Dec,
    /// Parquet: timestamp[ns, UTC]; CSV: RFC 3339 with nanoseconds.
    Ts,
}

impl Ty {
    fn doc(self) -> &'static str {
        match self {
            Ty::U64 => "uint64",
            Ty::I64 => "int64",
            Ty::U32 => "uint32",
            Ty::F64 => "float64",
            Ty::Bool => "bool",
            Ty::Str => "string",
            Ty::Dec => "decimal",
            Ty::Ts => "timestamp",
        }
    }
}

pub struct Col {
    pub name: &'static str,
    pub ty: Ty,
    pub null: bool,
    pub doc: &'static str,
}

const fn c(name: &'static str, ty: Ty, doc: &'static str) -> Col {
    Col {
        name,
        ty,
        null: false,
        doc,
    }
}

const fn n(name: &'static str, ty: Ty, doc: &'static str) -> Col {
    Col {
        name,
        ty,
        null: true,
        doc,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    U64(u64),
    I64(i64),
    U32(u32),
    F64(f64),
    Bool(bool),
    Str(String),
    Dec(Decimal),
    Ts(i64),
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Val) -> Val {
    v.map_or(Val::Null, f)
}

fn s(x: &str) -> Val {
    Val::Str(x.to_string())
}

/// Serde's snake_case name of a unit-like enum value.
fn name<T: serde::Serialize>(v: &T) -> Val {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(x)) => Val::Str(x),
        Ok(other) => Val::Str(other.to_string()),
        Err(_) => Val::Null,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    Fills,
    Orders,
    Cancels,
    OrderReports,
    Quotes,
    QuoteLevels,
    Predictions,
    PredictionRequests,
    Risk,
    PredictorStatus,
    Trades,
    Bbo,
}

const SEQ: Col = c("seq", Ty::U64, "the entry's journal seq");
const TS_NS: Col = c(
    "ts_ns",
    Ty::I64,
    "the entry's time, ns since the Unix epoch (market time in a backtest)",
);
const TS: Col = c("ts", Ty::Ts, "the same time as a timestamp (UTC)");
const SESSION: Col = c("session", Ty::U64, "the session that wrote the entry");
const CAUSE: Col = n("cause", Ty::U64, "seq of the entry that caused it");

const FILLS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    n("cause", Ty::U64, "seq of the place_order (orders.seq)"),
    c("cid", Ty::U64, "client order id"),
    c("side", Ty::Str, "buy or sell"),
    c("price", Ty::Dec, ""),
    c("qty", Ty::Dec, ""),
    c("liquidity", Ty::Str, "maker or taker"),
    c("fee", Ty::Dec, "quote currency; negative is a rebate"),
    c("leaves_qty", Ty::Dec, "what remains open on the order"),
];

const ORDERS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    n("cause", Ty::U64, "seq of the quote decision (quotes.seq)"),
    c("cid", Ty::U64, "client order id"),
    c("symbol", Ty::Str, ""),
    c("side", Ty::Str, "buy or sell"),
    c("price", Ty::Dec, ""),
    c("qty", Ty::Dec, ""),
    c("post_only", Ty::Bool, ""),
    c("level", Ty::U32, "ladder level, 0 nearest the mid"),
];

const CANCELS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    CAUSE,
    c("cid", Ty::U64, "the order to cancel"),
    c("why", Ty::Str, "reprice, resize, risk or shutdown"),
];

const ORDER_REPORTS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    CAUSE,
    c("cid", Ty::U64, ""),
    c("report", Ty::Str, "ack, reject or canceled"),
    n("venue_order_id", Ty::Str, "ack only"),
    n("reason", Ty::Str, "reject and canceled"),
    n(
        "canceled_qty",
        Ty::Dec,
        "canceled only: the unfilled quantity removed",
    ),
];

const QUOTES: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    n(
        "cause",
        Ty::U64,
        "seq of the entry that triggered the decision",
    ),
    c("mid", Ty::Dec, "features.mid"),
    c("best_bid", Ty::Dec, ""),
    c("bid_qty", Ty::Dec, ""),
    c("best_ask", Ty::Dec, ""),
    c("ask_qty", Ty::Dec, ""),
    c("spread_bps", Ty::F64, "market spread"),
    c(
        "volatility_bps",
        Ty::F64,
        "realised volatility per sqrt second",
    ),
    c("depth_imbalance", Ty::F64, ""),
    c("trade_momentum", Ty::F64, ""),
    c("top_size_ratio", Ty::F64, ""),
    c("price_change_1m_bps", Ty::F64, ""),
    c("volume_1m", Ty::Dec, ""),
    c("trade_count_1m", Ty::U32, ""),
    c("position", Ty::Dec, "our position at the decision"),
    c(
        "reservation",
        Ty::Dec,
        "mid + prediction_skew - inventory_skew",
    ),
    c("prediction_skew", Ty::Dec, "quote currency"),
    c("inventory_skew", Ty::Dec, "quote currency"),
    c("half_spread_bps", Ty::Dec, ""),
    c(
        "model_weight",
        Ty::Dec,
        "the prediction's weight in the blend",
    ),
    n(
        "prediction_response_seq",
        Ty::U64,
        "the prediction used (predictions.seq)",
    ),
    n("prediction_source", Ty::Str, ""),
    n("prediction_direction", Ty::Str, ""),
    n("prediction_confidence", Ty::Dec, ""),
    n("prediction_price_change_bps", Ty::Dec, ""),
    n("prediction_age_ms", Ty::U64, ""),
    n("rules_direction", Ty::Str, ""),
    n("rules_confidence", Ty::Dec, ""),
    n("rules_price_change_bps", Ty::Dec, ""),
    n(
        "bid_price",
        Ty::Dec,
        "best quoted bid (quote_levels has them all)",
    ),
    n("bid_size", Ty::Dec, ""),
    n("ask_price", Ty::Dec, "best quoted ask"),
    n("ask_size", Ty::Dec, ""),
    c("bid_levels", Ty::U32, ""),
    c("ask_levels", Ty::U32, ""),
    c(
        "bounds",
        Ty::Str,
        "constraints that moved the quote, `;`-separated, e.g. `min_spread;post_only_clamp:buy:0`",
    ),
];

const QUOTE_LEVELS: &[Col] = &[
    c("seq", Ty::U64, "the quote decision (quotes.seq)"),
    TS_NS,
    TS,
    SESSION,
    c("side", Ty::Str, "buy or sell"),
    c("level", Ty::U32, ""),
    c("price", Ty::Dec, ""),
    c("qty", Ty::Dec, ""),
];

const PREDICTIONS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    n(
        "cause",
        Ty::U64,
        "seq of the request (prediction_requests.seq)",
    ),
    c("request_id", Ty::U64, ""),
    c("source", Ty::Str, "rules, stub, azure or recorded"),
    c("ok", Ty::Bool, ""),
    n("direction", Ty::Str, "bullish, bearish or neutral"),
    n("confidence", Ty::Dec, ""),
    n("price_change_bps", Ty::Dec, ""),
    n("reasoning", Ty::Str, ""),
    n("failure_kind", Ty::Str, "when not ok"),
    n("failure_message", Ty::Str, ""),
    c("latency_ms", Ty::U64, "request to answer, retries included"),
    n("prompt_tokens", Ty::U32, ""),
    n("cached_tokens", Ty::U32, ""),
    n("completion_tokens", Ty::U32, "reasoning tokens included"),
    n("reasoning_tokens", Ty::U32, ""),
    c("cost_usd", Ty::Dec, ""),
    n("http_attempts", Ty::U32, ""),
    n("http_status", Ty::U32, "of the last attempt"),
    c("raw", Ty::Str, "the answer verbatim"),
];

const PREDICTION_REQUESTS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    CAUSE,
    c("request_id", Ty::U64, ""),
    c("symbol", Ty::Str, ""),
    c("mid", Ty::Dec, ""),
    c("spread_bps", Ty::F64, ""),
    c("volatility_bps", Ty::F64, ""),
    n("prompt_developer", Ty::Str, "a language model's prompt"),
    n("prompt_user", Ty::Str, ""),
];

const RISK: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    CAUSE,
    c(
        "kind",
        Ty::Str,
        "kill_switch, stale_feed, daily_loss, inventory_limit, book_invalid, operator_halt",
    ),
    c(
        "engaged",
        Ty::Bool,
        "true when the guard engages, false when it releases",
    ),
    c("detail", Ty::Str, ""),
];

const PREDICTOR_STATUS: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    SESSION,
    CAUSE,
    c(
        "gate",
        Ty::Str,
        "open, breaker_open, half_open, over_budget_hour, over_budget_day, over_budget_total",
    ),
    c("detail", Ty::Str, ""),
];

const TRADES: &[Col] = &[
    SEQ,
    TS_NS,
    TS,
    n("venue_ts_ns", Ty::I64, "the venue's own time"),
    SESSION,
    c("symbol", Ty::Str, ""),
    c("trade_id", Ty::U64, ""),
    c("price", Ty::Dec, ""),
    c("qty", Ty::Dec, ""),
    c("aggressor", Ty::Str, "the side that crossed the spread"),
];

const BBO: &[Col] = &[
    c(
        "seq",
        Ty::U64,
        "the market entry after which the top looked like this",
    ),
    TS_NS,
    TS,
    SESSION,
    c("source", Ty::Str, "book_snapshot, book_delta or bbo"),
    n("bid", Ty::Dec, ""),
    n("bid_qty", Ty::Dec, ""),
    n("ask", Ty::Dec, ""),
    n("ask_qty", Ty::Dec, ""),
];

impl Table {
    pub const ALL: [Table; 12] = [
        Table::Fills,
        Table::Orders,
        Table::Cancels,
        Table::OrderReports,
        Table::Quotes,
        Table::QuoteLevels,
        Table::Predictions,
        Table::PredictionRequests,
        Table::Risk,
        Table::PredictorStatus,
        Table::Trades,
        Table::Bbo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Fills => "fills",
            Table::Orders => "orders",
            Table::Cancels => "cancels",
            Table::OrderReports => "order_reports",
            Table::Quotes => "quotes",
            Table::QuoteLevels => "quote_levels",
            Table::Predictions => "predictions",
            Table::PredictionRequests => "prediction_requests",
            Table::Risk => "risk",
            Table::PredictorStatus => "predictor_status",
            Table::Trades => "trades",
            Table::Bbo => "bbo",
        }
    }

    pub fn from_name(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == s)
    }

    /// What one row is.
    pub fn rows_doc(self) -> &'static str {
        match self {
            Table::Fills => "One row per `Fill` input",
            Table::Orders => "One row per `PlaceOrder` output",
            Table::Cancels => "One row per `CancelOrder` output",
            Table::OrderReports => {
                "One row per `OrderAck`, `OrderReject` and `OrderCanceled` input"
            }
            Table::Quotes => "One row per `QuoteDecision` output",
            Table::QuoteLevels => "One row per level (bids, then asks) of each `QuoteDecision`",
            Table::Predictions => "One row per `PredictionResponse` input",
            Table::PredictionRequests => "One row per `PredictionRequest` output",
            Table::Risk => "One row per `RiskAction` output",
            Table::PredictorStatus => "One row per `PredictorStatus` output",
            Table::Trades => "One row per market `Trade` input",
            Table::Bbo => {
                "One row per market entry (snapshot, delta, bbo) after which the best bid or ask of the rebuilt book (price or size) changed"
            }
        }
    }

    pub fn columns(self) -> &'static [Col] {
        match self {
            Table::Fills => FILLS,
            Table::Orders => ORDERS,
            Table::Cancels => CANCELS,
            Table::OrderReports => ORDER_REPORTS,
            Table::Quotes => QUOTES,
            Table::QuoteLevels => QUOTE_LEVELS,
            Table::Predictions => PREDICTIONS,
            Table::PredictionRequests => PREDICTION_REQUESTS,
            Table::Risk => RISK,
            Table::PredictorStatus => PREDICTOR_STATUS,
            Table::Trades => TRADES,
            Table::Bbo => BBO,
        }
    }
}

type Top = (Option<(Decimal, Decimal)>, Option<(Decimal, Decimal)>);

/// Turns entries into table rows. Keeps one market book per session for `bbo`.
#[derive(Default)]
pub struct Rows {
    books: BTreeMap<u64, (Book, Top)>,
}

fn head(e: &Entry) -> Vec<Val> {
    vec![
        Val::U64(e.seq),
        Val::I64(e.ts_ns),
        Val::Ts(e.ts_ns),
        Val::U64(e.session),
    ]
}

fn bound(b: &Bound) -> String {
    let side_level = |k: &str, side: &flashmm_core::event::Side, level: &u8| {
        format!("{k}:{}:{level}", side.as_str())
    };
    match b {
        Bound::MinSpread => "min_spread".into(),
        Bound::PostOnlyClamp { side, level } => side_level("post_only_clamp", side, level),
        Bound::PositionLimit { side, level } => side_level("position_limit", side, level),
        Bound::NotionalLimit { side, level } => side_level("notional_limit", side, level),
        Bound::MinQty { side, level } => side_level("min_qty", side, level),
        Bound::TotalNotionalLimit { side, level } => {
            side_level("total_notional_limit", side, level)
        }
    }
}

impl Rows {
    /// Calls `emit` with each row `e` gives, in column order.
    pub fn on_entry<E>(
        &mut self,
        e: &Entry,
        emit: &mut dyn FnMut(Table, Vec<Val>) -> Result<(), E>,
    ) -> Result<(), E> {
        let cause = opt(e.cause, Val::U64);
        match &e.body {
            Body::Input(Input::Fill(f)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(f.cid),
                    s(f.side.as_str()),
                    Val::Dec(f.price),
                    Val::Dec(f.qty),
                    s(match f.liquidity {
                        Liquidity::Maker => "maker",
                        Liquidity::Taker => "taker",
                    }),
                    Val::Dec(f.fee),
                    Val::Dec(f.leaves_qty),
                ]);
                emit(Table::Fills, r)
            }
            Body::Output(Output::PlaceOrder(p)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(p.cid),
                    s(p.symbol.as_str()),
                    s(p.side.as_str()),
                    Val::Dec(p.price),
                    Val::Dec(p.qty),
                    Val::Bool(p.post_only),
                    Val::U32(p.level as u32),
                ]);
                emit(Table::Orders, r)
            }
            Body::Output(Output::CancelOrder(c)) => {
                let mut r = head(e);
                r.extend([cause, Val::U64(c.cid), name(&c.why)]);
                emit(Table::Cancels, r)
            }
            Body::Input(Input::OrderAck(a)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(a.cid),
                    s("ack"),
                    s(&a.venue_order_id),
                    Val::Null,
                    Val::Null,
                ]);
                emit(Table::OrderReports, r)
            }
            Body::Input(Input::OrderReject(x)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(x.cid),
                    s("reject"),
                    Val::Null,
                    s(&x.reason),
                    Val::Null,
                ]);
                emit(Table::OrderReports, r)
            }
            Body::Input(Input::OrderCanceled(x)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(x.cid),
                    s("canceled"),
                    Val::Null,
                    s(&x.reason),
                    Val::Dec(x.canceled_qty),
                ]);
                emit(Table::OrderReports, r)
            }
            Body::Output(Output::QuoteDecision(q)) => {
                let f = &q.features;
                let p = q.prediction.as_ref();
                let rl = q.rules.as_ref();
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::Dec(f.mid),
                    Val::Dec(f.best_bid),
                    Val::Dec(f.bid_qty),
                    Val::Dec(f.best_ask),
                    Val::Dec(f.ask_qty),
                    Val::F64(f.spread_bps),
                    Val::F64(f.volatility_bps),
                    Val::F64(f.depth_imbalance),
                    Val::F64(f.trade_momentum),
                    Val::F64(f.top_size_ratio),
                    Val::F64(f.price_change_1m_bps),
                    Val::Dec(f.volume_1m),
                    Val::U32(f.trade_count_1m),
                    Val::Dec(q.position),
                    Val::Dec(q.reservation),
                    Val::Dec(q.prediction_skew),
                    Val::Dec(q.inventory_skew),
                    Val::Dec(q.half_spread_bps),
                    Val::Dec(q.model_weight),
                    opt(p, |p| Val::U64(p.response_seq)),
                    opt(p, |p| s(p.source.as_str())),
                    opt(p, |p| s(p.direction.as_str())),
                    opt(p, |p| Val::Dec(p.confidence)),
                    opt(p, |p| Val::Dec(p.price_change_bps)),
                    opt(p, |p| Val::U64(p.age_ms)),
                    opt(rl, |r| s(r.direction.as_str())),
                    opt(rl, |r| Val::Dec(r.confidence)),
                    opt(rl, |r| Val::Dec(r.price_change_bps)),
                    opt(q.bids.first(), |l| Val::Dec(l.price)),
                    opt(q.bids.first(), |l| Val::Dec(l.qty)),
                    opt(q.asks.first(), |l| Val::Dec(l.price)),
                    opt(q.asks.first(), |l| Val::Dec(l.qty)),
                    Val::U32(q.bids.len() as u32),
                    Val::U32(q.asks.len() as u32),
                    Val::Str(q.bounds.iter().map(bound).collect::<Vec<_>>().join(";")),
                ]);
                emit(Table::Quotes, r)?;
                for (side, levels) in [("buy", &q.bids), ("sell", &q.asks)] {
                    for l in levels {
                        let mut r = head(e);
                        r.extend([
                            s(side),
                            Val::U32(l.level as u32),
                            Val::Dec(l.price),
                            Val::Dec(l.qty),
                        ]);
                        emit(Table::QuoteLevels, r)?;
                    }
                }
                Ok(())
            }
            Body::Input(Input::PredictionResponse(p)) => {
                let ok = p.result.as_ref().ok();
                let err = p.result.as_ref().err();
                let u = p.usage;
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(p.request_id),
                    s(p.source.as_str()),
                    Val::Bool(ok.is_some()),
                    opt(ok, |x| s(x.direction.as_str())),
                    opt(ok, |x| Val::Dec(x.confidence)),
                    opt(ok, |x| Val::Dec(x.price_change_bps)),
                    opt(ok, |x| s(&x.reasoning)),
                    opt(err, |x| s(x.kind.as_str())),
                    opt(err, |x| s(&x.message)),
                    Val::U64(p.latency_ms),
                    opt(u, |u| Val::U32(u.prompt)),
                    opt(u, |u| Val::U32(u.cached)),
                    opt(u, |u| Val::U32(u.completion)),
                    opt(u, |u| Val::U32(u.reasoning)),
                    Val::Dec(p.cost_usd),
                    opt(p.http.as_ref(), |h| Val::U32(h.attempts.len() as u32)),
                    opt(
                        p.http
                            .as_ref()
                            .and_then(|h| h.attempts.last())
                            .and_then(|a| a.status),
                        |st| Val::U32(st as u32),
                    ),
                    s(&p.raw),
                ]);
                emit(Table::Predictions, r)
            }
            Body::Output(Output::PredictionRequest(q)) => {
                let mut r = head(e);
                r.extend([
                    cause,
                    Val::U64(q.request_id),
                    s(q.symbol.as_str()),
                    Val::Dec(q.features.mid),
                    Val::F64(q.features.spread_bps),
                    Val::F64(q.features.volatility_bps),
                    opt(q.prompt.as_ref(), |p| s(&p.developer)),
                    opt(q.prompt.as_ref(), |p| s(&p.user)),
                ]);
                emit(Table::PredictionRequests, r)
            }
            Body::Output(Output::RiskAction(a)) => {
                let mut r = head(e);
                r.extend([cause, name(&a.kind), Val::Bool(a.engaged), s(&a.detail)]);
                emit(Table::Risk, r)
            }
            Body::Output(Output::PredictorStatus(p)) => {
                let mut r = head(e);
                r.extend([cause, name(&p.gate), s(&p.detail)]);
                emit(Table::PredictorStatus, r)
            }
            Body::Input(Input::Trade(t)) => {
                let r = vec![
                    Val::U64(e.seq),
                    Val::I64(e.ts_ns),
                    Val::Ts(e.ts_ns),
                    opt(e.venue_ts_ns, Val::I64),
                    Val::U64(e.session),
                    s(t.symbol.as_str()),
                    Val::U64(t.trade_id),
                    Val::Dec(t.price),
                    Val::Dec(t.qty),
                    s(t.aggressor.as_str()),
                ];
                emit(Table::Trades, r)
            }
            Body::Input(
                Input::BookSnapshot(_) | Input::BookPolled(_) | Input::BookDelta(_) | Input::Bbo(_),
            ) => {
                let (book, last) = self.books.entry(e.session).or_default();
                book.apply_entry(e);
                let top = (book.best_bid(), book.best_ask());
                if top == *last {
                    return Ok(());
                }
                *last = top;
                let mut r = head(e);
                r.extend([
                    s(e.body.kind()),
                    opt(top.0, |b| Val::Dec(b.0)),
                    opt(top.0, |b| Val::Dec(b.1)),
                    opt(top.1, |a| Val::Dec(a.0)),
                    opt(top.1, |a| Val::Dec(a.1)),
                ]);
                emit(Table::Bbo, r)
            }
            _ => Ok(()),
        }
    }
}

/// The schema of every table, as the Markdown in docs/export.md.
pub fn schema_markdown() -> String {
    let mut out = String::new();
    for t in Table::ALL {
        out.push_str(&format!(
            "### `{}`\n\n{}.\n\n| column | type | null | meaning |\n|---|---|---|---|\n",
            t.name(),
            t.rows_doc()
        ));
        for c in t.columns() {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.ty.doc(),
                if c.null { "yes" } else { "" },
                c.doc
            ));
        }
        out.push('\n');
    }
    out
}
