//! The journal schema: every entry the engine reads or writes.
//!
//! `Entry.cause` is what a post-mortem walks: a fill's cause is its `PlaceOrder`, an order's cause
//! is its `QuoteDecision`, a prediction response's cause is its `PredictionRequest`.
//!
//! Longer than 600 lines on purpose: this is the journal's format; every type that reaches disk
//! is here so a format change is reviewed in one file (`decimal`, `symbol`, `when` are split out).

pub mod bounds;
pub mod decimal;
pub mod symbol;
pub mod when;

pub use symbol::Symbol;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Bumped on any change to the encoding of `Entry`; a journal written under another version is
/// refused rather than misread.
pub const FORMAT_VERSION: u8 = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Local receive time for inputs, decision time for outputs, market time in backtests.
    pub ts_ns: i64,
    /// The venue's own timestamp, when the venue gave one.
    pub venue_ts_ns: Option<i64>,
    pub session: u64,
    pub cause: Option<u64>,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    // Large, rare variants are boxed so an `Entry` stays small to move; serde encodes a box as
    // its contents, so the bytes are the same.
    SessionStart(Box<SessionStart>),
    SessionEnd(SessionEnd),
    Input(Input),
    Output(Output),
    /// What the venue adapter sent (or, in a dry run, would have sent): neither an input nor an
    /// output of the core, so replay passes over it.
    Wire(Box<WireRecord>),
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::SessionStart(_) => "session_start",
            Body::SessionEnd(_) => "session_end",
            Body::Input(i) => i.kind(),
            Body::Output(o) => o.kind(),
            Body::Wire(_) => "wire",
        }
    }

    /// The symbol a market entry is about.
    pub fn market_symbol(&self) -> Option<Symbol> {
        match self {
            Body::Input(Input::BookSnapshot(s)) => Some(s.symbol),
            Body::Input(Input::BookPolled(s)) => Some(s.symbol),
            Body::Input(Input::BookDelta(d)) => Some(d.symbol),
            Body::Input(Input::Bbo(b)) => Some(b.symbol),
            Body::Input(Input::Trade(t)) => Some(t.symbol),
            Body::Input(Input::FeedStatus(f)) => Some(f.symbol),
            Body::Input(Input::FundingRate(f)) => Some(f.symbol),
            _ => None,
        }
    }

    pub fn is_market(&self) -> bool {
        matches!(
            self,
            Body::Input(
                Input::BookSnapshot(_)
                    | Input::BookPolled(_)
                    | Input::BookDelta(_)
                    | Input::Bbo(_)
                    | Input::Trade(_)
                    | Input::FeedStatus(_)
                    | Input::FundingRate(_)
            )
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    Paper,
    Replay,
    Backtest,
    Import,
    /// `flashmm predict --once`: one model call at a recorded moment.
    Probe,
    /// `flashmm live --dry-run`: live data, orders signed and journaled, never sent.
    DryRun,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Paper => "paper",
            Mode::Replay => "replay",
            Mode::Backtest => "backtest",
            Mode::Import => "import",
            Mode::Probe => "probe",
            Mode::DryRun => "dry-run",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    pub mode: Mode,
    /// The flashmm version that wrote the session.
    pub version: String,
    /// The full effective configuration, as TOML.
    pub config: String,
    pub label: String,
    /// The session this one was derived from (a what-if replay).
    pub parent: Option<u64>,
    pub source: Option<Source>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A recording imported from a file.
    File {
        path: String,
        format: String,
        sha256: String,
        bytes: u64,
    },
    /// Market entries already in the journal, referenced by seq instead of copied.
    Journal {
        session: u64,
        from_seq: u64,
        to_seq: u64,
    },
    /// The market entries of several sessions (imports of different markets), copied and
    /// merged by time so that one session can quote them together.
    Merged { sessions: Vec<u64> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Completed,
    Failed(String),
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub status: SessionStatus,
    /// Entries in the session, this one excluded.
    pub entries: u64,
    /// Free text: importer statistics, the reason for an interruption.
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// +1 for a buy, -1 for a sell: the sign of the position change.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

// ---------------------------------------------------------------- inputs

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    BookSnapshot(BookSnapshot),
    BookDelta(BookDelta),
    Bbo(Bbo),
    Trade(Trade),
    Timer,
    PredictionResponse(Box<PredictionResponse>),
    OrderAck(OrderAck),
    OrderReject(OrderReject),
    OrderCanceled(OrderCanceled),
    Fill(Fill),
    FeedStatus(FeedStatus),
    Operator(Operator),
    /// A new block on the chain that settles the venue: the chain clock.
    ChainHead(ChainHead),
    /// The venue's view of our position, adopted at start and after an account-stream reconnect.
    PositionSync(PositionSync),
    /// A book read over REST (after a reconnect, or polled while the stream is down). It
    /// replaces the book like a snapshot but is not the market stream speaking, so it does not
    /// hold off the stale-feed guard.
    BookPolled(BookSnapshot),
    /// A perpetual's funding rate, as the venue announces it before it is charged (Binance's
    /// `markPriceUpdate`: `r`, due at `T`).
    FundingRate(FundingRate),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FundingRate {
    pub symbol: Symbol,
    /// Per funding interval; positive: longs pay shorts.
    #[serde(with = "decimal")]
    pub rate: Decimal,
    /// When it is charged, in ns.
    pub due_ns: i64,
    /// The venue's mark price, which the charge is computed at.
    #[serde(with = "decimal")]
    pub mark: Decimal,
}

impl Input {
    pub fn kind(&self) -> &'static str {
        match self {
            Input::BookSnapshot(_) => "book_snapshot",
            Input::BookDelta(_) => "book_delta",
            Input::Bbo(_) => "bbo",
            Input::Trade(_) => "trade",
            Input::Timer => "timer",
            Input::PredictionResponse(_) => "prediction_response",
            Input::OrderAck(_) => "order_ack",
            Input::OrderReject(_) => "order_reject",
            Input::OrderCanceled(_) => "order_canceled",
            Input::Fill(_) => "fill",
            Input::FeedStatus(_) => "feed_status",
            Input::Operator(_) => "operator",
            Input::ChainHead(_) => "chain_head",
            Input::PositionSync(_) => "position_sync",
            Input::BookPolled(_) => "book_polled",
            Input::FundingRate(_) => "funding_rate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    #[serde(with = "decimal")]
    pub price: Decimal,
    /// Zero removes the level in a delta.
    #[serde(with = "decimal")]
    pub qty: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub symbol: Symbol,
    pub update_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookDelta {
    pub symbol: Symbol,
    pub first_update_id: u64,
    pub last_update_id: u64,
    /// The previous delta's `last_update_id`, on venues that send it (Binance futures `pu`).
    pub prev_update_id: Option<u64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// Best bid and offer (Binance `bookTicker`): fresher than the depth diffs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bbo {
    pub symbol: Symbol,
    pub update_id: Option<u64>,
    #[serde(with = "decimal")]
    pub bid: Decimal,
    #[serde(with = "decimal")]
    pub bid_qty: Decimal,
    #[serde(with = "decimal")]
    pub ask: Decimal,
    #[serde(with = "decimal")]
    pub ask_qty: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub symbol: Symbol,
    pub trade_id: u64,
    #[serde(with = "decimal")]
    pub price: Decimal,
    #[serde(with = "decimal")]
    pub qty: Decimal,
    /// The side that crossed the spread.
    pub aggressor: Side,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorKind {
    Rules,
    Stub,
    Azure,
    Recorded,
}

impl PredictorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PredictorKind::Rules => "rules",
            PredictorKind::Stub => "stub",
            PredictorKind::Azure => "azure",
            PredictorKind::Recorded => "recorded",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Bullish,
    Bearish,
    Neutral,
}

impl Direction {
    pub fn sign(self) -> i32 {
        match self {
            Direction::Bullish => 1,
            Direction::Bearish => -1,
            Direction::Neutral => 0,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Bullish => "bullish",
            Direction::Bearish => "bearish",
            Direction::Neutral => "neutral",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub direction: Direction,
    /// In [0, 1].
    #[serde(with = "decimal")]
    pub confidence: Decimal,
    /// Expected mid move over the prediction horizon.
    #[serde(with = "decimal")]
    pub price_change_bps: Decimal,
    pub reasoning: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An HTTP error status that retries did not cure.
    Http,
    Timeout,
    /// The connection failed or dropped.
    Connection,
    /// Azure's content filter: a 200 with `finish_reason: content_filter`, or a 400 with
    /// `code: content_filter`.
    ContentFilter,
    /// `finish_reason: length` with empty content: `azure.max_completion_tokens` is too small
    /// for the hidden reasoning tokens.
    Length,
    /// The model refused (`message.refusal`).
    Refusal,
    /// The body or the answer is not the JSON we asked for.
    Malformed,
    /// The JSON parsed but broke a rule (confidence outside [0, 1], |bps| > 500, direction
    /// against the sign of the bps).
    Invalid,
    /// A failure the stub predictor was scripted to return.
    Scripted,
    /// No answer to give: the recorded predictor has no recorded response for this request.
    Unavailable,
    /// The core gave up on the call (`predict.timeout_ms`) and the driver ended it, dropping
    /// its connection. Whether the service billed it is unknown: the core books the call's
    /// worst case against the caps.
    Cancelled,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Http => "http",
            FailureKind::Timeout => "timeout",
            FailureKind::Connection => "connection",
            FailureKind::ContentFilter => "content_filter",
            FailureKind::Length => "length",
            FailureKind::Refusal => "refusal",
            FailureKind::Malformed => "malformed",
            FailureKind::Invalid => "invalid",
            FailureKind::Scripted => "scripted",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// One HTTP try at a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `None` when no response came (timeout, connection error).
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// What the server asked us to wait (`retry-after-ms` or `retry-after`).
    pub retry_after_ms: Option<u64>,
}

/// The HTTP side of a model call, for the post-mortem and for tuning rate limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// Every try, in order; the last one is the outcome.
    pub attempts: Vec<Attempt>,
    pub ratelimit_remaining_requests: Option<u64>,
    pub ratelimit_remaining_tokens: Option<u64>,
    /// The server's request id (`apim-request-id` or `x-request-id`), for support tickets.
    pub request_id: Option<String>,
    /// The server's own processing time (`openai-processing-ms`), when it reports one.
    pub server_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt: u32,
    pub cached: u32,
    pub completion: u32,
    pub reasoning: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionResponse {
    pub request_id: u64,
    pub source: PredictorKind,
    pub result: Result<Prediction, PredictionFailure>,
    /// What the predictor said, verbatim (the whole HTTP body for a model), so a bad answer can
    /// be read later.
    pub raw: String,
    /// From sending the request to having the answer, retries included.
    pub latency_ms: u64,
    pub usage: Option<TokenUsage>,
    #[serde(with = "decimal")]
    pub cost_usd: Decimal,
    pub http: Option<HttpExchange>,
}

impl PredictionResponse {
    /// The end of a call the driver cut off after the core gave up on it.
    pub fn cancelled(request_id: u64, source: PredictorKind, latency_ms: u64) -> Self {
        PredictionResponse {
            request_id,
            source,
            result: Err(PredictionFailure {
                kind: FailureKind::Cancelled,
                message: "the core gave up waiting (predict.timeout_ms); the call was ended".into(),
            }),
            raw: String::new(),
            latency_ms,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderAck {
    pub cid: u64,
    pub venue_order_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderReject {
    pub cid: u64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderCanceled {
    pub cid: u64,
    /// Unfilled quantity that the cancel removed.
    #[serde(with = "decimal")]
    pub canceled_qty: Decimal,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Maker,
    Taker,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub cid: u64,
    pub side: Side,
    #[serde(with = "decimal")]
    pub price: Decimal,
    #[serde(with = "decimal")]
    pub qty: Decimal,
    pub liquidity: Liquidity,
    /// Quote currency; negative is a rebate.
    #[serde(with = "decimal")]
    pub fee: Decimal,
    /// What remains open on the order after this fill.
    #[serde(with = "decimal")]
    pub leaves_qty: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    Connected,
    Disconnected,
    /// Sequence gap: the book is wrong until the next snapshot.
    Gap,
    Resynced,
    /// A frame that did not parse; kept with its text so nothing the venue said is lost.
    Malformed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedStatus {
    pub symbol: Symbol,
    pub state: FeedState,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainHead {
    pub height: u64,
    /// The block's own timestamp.
    pub block_ts_ns: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionSync {
    pub symbol: Symbol,
    #[serde(with = "decimal")]
    pub qty: Decimal,
    #[serde(with = "decimal")]
    pub avg_price: Decimal,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireAction {
    Place,
    Cancel,
    CancelAll,
    CancelReplace,
    /// A reconciliation with the venue: at start, an order found there that we cancel; after an
    /// account-stream reconnect, what the venue's orders and position said.
    Reconcile,
    /// The venue refused or failed a request; `body` holds what it said.
    Failure,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireRecord {
    pub action: WireAction,
    pub cid: Option<u64>,
    /// The order's nonce: journaled before the order leaves, so none is ever reused.
    pub nonce: Option<u64>,
    /// The request body, signature included (a signature is not a secret).
    pub body: String,
    /// False in a dry run: signed and journaled, never sent.
    pub sent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorCommand {
    /// Cancel everything and stop quoting until `Resume`.
    Halt,
    /// Clear every halt that an operator may clear: operator halt and kill switch.
    Resume,
    CancelAll,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub command: OperatorCommand,
    pub note: String,
}

// ---------------------------------------------------------------- outputs

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    PredictionRequest(Box<PredictionRequest>),
    QuoteDecision(Box<QuoteDecision>),
    PlaceOrder(PlaceOrder),
    CancelOrder(CancelOrder),
    RiskAction(RiskAction),
    PredictorStatus(PredictorStatus),
    /// Funding charged on (or paid to) the position at a funding time.
    Funding(Funding),
    /// What became of a model call that no quote used: the core gave up waiting (the driver
    /// must end the call), or an answer came that the core ignored.
    PredictionOutcome(PredictionOutcome),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionOutcome {
    pub request_id: u64,
    pub outcome: CallOutcome,
    /// How long after the request this happened, in ms of journal time.
    pub after_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// No answer within `predict.timeout_ms`: a failure for the breaker; the call keeps its
    /// in-flight slot and its budget reservation until the driver reports its end.
    GaveUp,
    /// An answer to a call the core had given up on: its cost is booked, its content unused.
    AnsweredAfterGiveUp,
    /// An answer older than `predict.ttl_ms` when it came.
    Stale,
    /// An answer to an older request than the one whose answer is in use.
    Superseded,
    /// An answer to no request in flight (a duplicate, or from before a restart).
    Unknown,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::GaveUp => "gave_up",
            CallOutcome::AnsweredAfterGiveUp => "answered_after_give_up",
            CallOutcome::Stale => "stale",
            CallOutcome::Superseded => "superseded",
            CallOutcome::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Funding {
    /// When it was due (the entry's ts is when the core saw that time pass).
    pub due_ns: i64,
    #[serde(with = "decimal")]
    pub rate: Decimal,
    /// The position it was charged on, and the price.
    #[serde(with = "decimal")]
    pub position: Decimal,
    #[serde(with = "decimal")]
    pub mark: Decimal,
    /// In the settlement currency; positive is received.
    #[serde(with = "decimal")]
    pub amount: Decimal,
    /// The market it was charged in (format 3; `None` in an export from format 2, whose
    /// sessions had one market).
    #[serde(default)]
    pub symbol: Option<Symbol>,
}

impl Output {
    pub fn kind(&self) -> &'static str {
        match self {
            Output::PredictionRequest(_) => "prediction_request",
            Output::QuoteDecision(_) => "quote_decision",
            Output::PlaceOrder(_) => "place_order",
            Output::CancelOrder(_) => "cancel_order",
            Output::RiskAction(_) => "risk_action",
            Output::PredictorStatus(_) => "predictor_status",
            Output::Funding(_) => "funding",
            Output::PredictionOutcome(_) => "prediction_outcome",
        }
    }
}

/// The market picture the core computed; f64 statistics are computed in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    #[serde(with = "decimal")]
    pub best_bid: Decimal,
    #[serde(with = "decimal")]
    pub bid_qty: Decimal,
    #[serde(with = "decimal")]
    pub best_ask: Decimal,
    #[serde(with = "decimal")]
    pub ask_qty: Decimal,
    #[serde(with = "decimal")]
    pub mid: Decimal,
    pub spread_bps: f64,
    /// Best bid size / best ask size.
    pub top_size_ratio: f64,
    /// (bid depth - ask depth) / (bid depth + ask depth) over the top five levels.
    pub depth_imbalance: f64,
    /// (buy volume - sell volume) / volume over the last trades, by aggressor.
    pub trade_momentum: f64,
    #[serde(with = "decimal")]
    pub volume_1m: Decimal,
    pub trade_count_1m: u32,
    pub price_change_1m_bps: f64,
    /// Realised volatility of mid per square-root second, in bps.
    pub volatility_bps: f64,
    pub vol_samples: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub developer: String,
    pub user: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRequest {
    pub request_id: u64,
    pub symbol: Symbol,
    pub features: Features,
    /// The full prompt, when the predictor is a language model.
    pub prompt: Option<Prompt>,
}

/// Whether the core may ask the model. Anything but `Open` means quoting on rules alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorGate {
    Open,
    /// Too many consecutive failures; no requests until the cooldown ends.
    BreakerOpen,
    /// Cooldown over: one probe request may go; its outcome closes or reopens the breaker.
    HalfOpen,
    /// Another request would break `predict.budget_usd_per_hour`.
    OverBudgetHour,
    /// ... `predict.budget_usd_per_day`.
    OverBudgetDay,
    /// ... `predict.budget_usd_total` (a backtest's `--max-cost-usd`).
    OverBudgetTotal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictorStatus {
    pub gate: PredictorGate,
    pub detail: String,
}

/// The local rules' view at the moment of a quote: the fast signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulesSignal {
    pub direction: Direction,
    #[serde(with = "decimal")]
    pub confidence: Decimal,
    #[serde(with = "decimal")]
    pub price_change_bps: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionUsed {
    pub request_id: u64,
    /// The `PredictionResponse` entry this came from.
    pub response_seq: u64,
    pub source: PredictorKind,
    pub direction: Direction,
    #[serde(with = "decimal")]
    pub confidence: Decimal,
    #[serde(with = "decimal")]
    pub price_change_bps: Decimal,
    pub age_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteLevel {
    pub level: u8,
    #[serde(with = "decimal")]
    pub price: Decimal,
    #[serde(with = "decimal")]
    pub qty: Decimal,
}

/// A constraint that moved or removed a quote: what a what-if would change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The half-spread was raised to the configured minimum spread.
    MinSpread,
    /// The price was pulled back so a post-only order would not cross.
    PostOnlyClamp { side: Side, level: u8 },
    /// Size was cut (or the level dropped) by `risk.max_position`.
    PositionLimit { side: Side, level: u8 },
    /// Size was cut (or the level dropped) by `risk.max_notional`.
    NotionalLimit { side: Side, level: u8 },
    /// Size fell below the venue minimum after rounding.
    MinQty { side: Side, level: u8 },
    /// Size was cut (or the level dropped) by `risk.max_total_notional`, the limit over every
    /// market of the session.
    TotalNotionalLimit { side: Side, level: u8 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteDecision {
    pub features: Features,
    /// The predictor's latest unexpired answer (the slow signal), if any.
    pub prediction: Option<PredictionUsed>,
    /// The local rules on the same features (the fast signal), unless `predict.fallback_rules`
    /// is off.
    pub rules: Option<RulesSignal>,
    /// The weight the prediction got in the blend: `predict.model_weight` x (1 - age / ttl).
    /// The rules got the rest.
    #[serde(with = "decimal")]
    pub model_weight: Decimal,
    #[serde(with = "decimal")]
    pub position: Decimal,
    /// mid + prediction_skew - inventory_skew.
    #[serde(with = "decimal")]
    pub reservation: Decimal,
    #[serde(with = "decimal")]
    pub prediction_skew: Decimal,
    #[serde(with = "decimal")]
    pub inventory_skew: Decimal,
    #[serde(with = "decimal")]
    pub half_spread_bps: Decimal,
    pub bids: Vec<QuoteLevel>,
    pub asks: Vec<QuoteLevel>,
    pub bounds: Vec<Bound>,
    /// The market quoted (format 3; `None` in an export from format 2, whose sessions had one
    /// market).
    #[serde(default)]
    pub symbol: Option<Symbol>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub cid: u64,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(with = "decimal")]
    pub price: Decimal,
    #[serde(with = "decimal")]
    pub qty: Decimal,
    pub post_only: bool,
    pub level: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelWhy {
    Reprice,
    Resize,
    Risk,
    Shutdown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub cid: u64,
    pub why: CancelWhy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskKind {
    KillSwitch,
    StaleFeed,
    DailyLoss,
    /// Quoting one side only: the other side would breach a position or notional limit.
    InventoryLimit,
    /// The book is not trustworthy (no snapshot yet, or a sequence gap).
    BookInvalid,
    OperatorHalt,
    /// No block on the settlement chain for `risk.chain_halt_ms`.
    ChainHalt,
    /// Fills moved the position and no read of the venue's account has confirmed it for
    /// `risk.position_unconfirmed_ms`.
    PositionUnconfirmed,
    /// The markets together lost `risk.max_total_loss` since the session began: every market
    /// stops quoting for the rest of the session.
    TotalLoss,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskAction {
    pub kind: RiskKind,
    /// True when the guard engages, false when it releases.
    pub engaged: bool,
    pub detail: String,
    /// The market whose guard it is; `None` for a guard over every market (`TotalLoss`), and
    /// in an export from format 2.
    #[serde(default)]
    pub symbol: Option<Symbol>,
}
