//! Fresh journals holding the shipped fixtures, and builders for Binance recording lines.

use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::{Journal, Writer};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name of the shipped recorded model session, beside the Binance fixture (the binary
/// names it too: `flashmm::mode::replay::RECORDED_FIXTURE`; a test checks they agree).
pub const RECORDED_FIXTURE: &str = "recorded-20240808.jsonl.gz";

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(crate_dir)
        .join("fixtures")
}

/// The shipped Binance BTCUSDT recording.
pub fn fixture() -> PathBuf {
    fixtures_dir().join("binance-spot-btcusdt-20240808.gz")
}

pub fn gz(path: &Path, text: &str) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
}

/// A journal in a fresh temp dir with the fixture imported as session 1.
pub fn imported() -> (tempfile::TempDir, Journal, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    binance::import(&mut w, &fixture(), &ImportOptions::default()).unwrap();
    (dir, j, w)
}

/// A journal holding the shipped recording: the Binance import (session 1) and the recorded
/// backtest session with model answers (session 2), imported from its JSONL export.
pub fn recorded() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    binance::import(&mut w, &fixture(), &ImportOptions::default()).unwrap();
    // The export continues a journal whose session 1 is this import made from another path (the
    // session start names it), so it is checked on its own chain and rebased onto this one.
    let opts = flashmm_journal::jsonl::ImportOptions {
        rebase: true,
        ..Default::default()
    };
    flashmm_journal::jsonl::import_file(&mut w, &fixture().with_file_name(RECORDED_FIXTURE), &opts)
        .unwrap();
    w.close().unwrap();
    (dir, j)
}

/// Every entry of a session in the order the core saw it (market entries merged in).
pub fn stream(j: &Journal, session: u64) -> Vec<flashmm_core::event::Entry> {
    flashmm_journal::stream::session_stream(j, session)
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
}

/// The local time of line `ts` of a hand-made recording: an offset in ns from a real moment,
/// since the importer refuses times outside 2000..2200.
pub const LINE_T0: u64 = 1_723_161_253_000_000_000;

pub fn depth(ts: u64, first: u64, last: u64, bids: &str, asks: &str) -> String {
    let ts = LINE_T0 + ts;
    format!(
        r#"{ts} {{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161253000,"s":"BTCUSDT","U":{first},"u":{last},"b":[{bids}],"a":[{asks}]}}}}"#
    )
}

/// A Binance futures (USD-M or COIN-M) depth diff: `pu` names the previous diff's `u`.
pub fn futures_depth(ts: u64, first: u64, last: u64, pu: u64, bids: &str, asks: &str) -> String {
    let ts = LINE_T0 + ts;
    format!(
        r#"{ts} {{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161253000,"T":1723161253000,"s":"BTCUSDT","U":{first},"u":{last},"pu":{pu},"b":[{bids}],"a":[{asks}]}}}}"#
    )
}

pub fn snapshot(ts: u64, id: u64, bids: &str, asks: &str) -> String {
    let ts = LINE_T0 + ts;
    format!(r#"{ts} {{"lastUpdateId":{id},"bids":[{bids}],"asks":[{asks}]}}"#)
}

pub fn trade(ts: u64, id: u64, price: &str, qty: &str, buyer_maker: bool) -> String {
    let ts = LINE_T0 + ts;
    format!(
        r#"{ts} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723161253000,"s":"BTCUSDT","t":{id},"p":"{price}","q":"{qty}","T":1723161253000,"m":{buyer_maker},"M":true}}}}"#
    )
}

use flashmm_core::event::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// One of every journal body, with awkward values: scales, negatives, empty and None fields.
pub fn every_body() -> Vec<Body> {
    let sym = Symbol::new("BTCUSDT").unwrap();
    let lv = |p: Decimal, q: Decimal| Level { price: p, qty: q };
    let features = Features {
        best_bid: dec!(61685.99000000),
        bid_qty: dec!(0.5),
        best_ask: dec!(61686.00),
        ask_qty: dec!(1e-8),
        mid: dec!(61685.995),
        spread_bps: 0.0016211,
        top_size_ratio: 1.0 / 3.0,
        depth_imbalance: -0.25,
        trade_momentum: 1.0,
        volume_1m: dec!(12.34500),
        trade_count_1m: 77,
        price_change_1m_bps: -3.5,
        volatility_bps: 0.55,
        vol_samples: 31,
    };
    let prediction = Prediction {
        direction: Direction::Bearish,
        confidence: dec!(0.7),
        price_change_bps: dec!(-2.5),
        reasoning: "ratio < 0.5 \"quoted\" ✓".into(),
    };
    vec![
        Body::SessionStart(Box::new(SessionStart {
            mode: Mode::Backtest,
            version: "0.1.0".into(),
            config: "[market]\nsymbol = \"BTCUSDT\"\n".into(),
            label: "label".into(),
            parent: Some(3),
            source: Some(Source::Journal {
                session: 1,
                from_seq: 0,
                to_seq: 9,
            }),
        })),
        Body::SessionStart(Box::new(SessionStart {
            mode: Mode::Import,
            version: "0.1.0".into(),
            config: String::new(),
            label: String::new(),
            parent: None,
            source: Some(Source::File {
                path: "f.gz".into(),
                format: "binance".into(),
                sha256: "ab".into(),
                bytes: 9,
            }),
        })),
        Body::SessionStart(Box::new(SessionStart {
            mode: Mode::Import,
            version: "0.1.0".into(),
            config: String::new(),
            label: "merge of sessions 1 and 4".into(),
            parent: None,
            source: Some(Source::Merged {
                sessions: vec![1, 4],
            }),
        })),
        Body::Input(Input::BookSnapshot(BookSnapshot {
            symbol: sym,
            update_id: u64::MAX,
            bids: vec![lv(dec!(61685.99000000), dec!(3.78826000))],
            asks: vec![],
        })),
        Body::Input(Input::BookPolled(BookSnapshot {
            symbol: sym,
            update_id: 7,
            bids: vec![],
            asks: vec![lv(dec!(61686), dec!(0.5))],
        })),
        Body::Input(Input::BookDelta(BookDelta {
            symbol: sym,
            first_update_id: 5,
            last_update_id: 9,
            prev_update_id: Some(4),
            bids: vec![lv(dec!(1), dec!(0.00000000))],
            asks: vec![lv(
                dec!(79228162514264337593543950335),
                dec!(0.0000000000000000000000000001),
            )],
        })),
        Body::Input(Input::Bbo(Bbo {
            symbol: sym,
            update_id: None,
            bid: dec!(1.5),
            bid_qty: dec!(2),
            ask: dec!(1.6),
            ask_qty: dec!(3),
        })),
        Body::Input(Input::Trade(Trade {
            symbol: sym,
            trade_id: 42,
            price: dec!(61686.00),
            qty: dec!(0.0014),
            aggressor: Side::Sell,
        })),
        Body::Input(Input::Timer),
        Body::Input(Input::PredictionResponse(Box::new(PredictionResponse {
            request_id: 7,
            source: PredictorKind::Azure,
            result: Ok(prediction.clone()),
            raw: "{\"direction\":\"bearish\"}".into(),
            latency_ms: 2345,
            usage: Some(TokenUsage {
                prompt: 900,
                cached: 512,
                completion: 700,
                reasoning: 640,
            }),
            cost_usd: dec!(0.0041195),
            http: Some(HttpExchange {
                attempts: vec![
                    Attempt {
                        status: Some(429),
                        latency_ms: 12,
                        error: None,
                        retry_after_ms: Some(1500),
                    },
                    Attempt {
                        status: None,
                        latency_ms: 30000,
                        error: Some("timeout".into()),
                        retry_after_ms: None,
                    },
                    Attempt {
                        status: Some(200),
                        latency_ms: 2345,
                        error: None,
                        retry_after_ms: None,
                    },
                ],
                ratelimit_remaining_requests: Some(99),
                ratelimit_remaining_tokens: None,
                request_id: Some("apim-1".into()),
                server_ms: Some(2100),
            }),
        }))),
        Body::Input(Input::PredictionResponse(Box::new(PredictionResponse {
            request_id: 8,
            source: PredictorKind::Rules,
            result: Err(PredictionFailure {
                kind: FailureKind::Length,
                message: "raise max_completion_tokens".into(),
            }),
            raw: String::new(),
            latency_ms: 0,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }))),
        Body::Input(Input::OrderAck(OrderAck {
            cid: 64,
            venue_order_id: "0xabc".into(),
        })),
        Body::Input(Input::OrderReject(OrderReject {
            cid: 65,
            reason: "post-only".into(),
        })),
        Body::Input(Input::OrderCanceled(OrderCanceled {
            cid: 66,
            canceled_qty: dec!(0.001),
            reason: "canceled".into(),
        })),
        Body::Input(Input::Fill(Fill {
            cid: 67,
            side: Side::Buy,
            price: dec!(61685.99),
            qty: dec!(0.0005),
            liquidity: Liquidity::Maker,
            fee: dec!(-0.0030842995),
            leaves_qty: dec!(0.0005),
        })),
        Body::Input(Input::FeedStatus(FeedStatus {
            symbol: sym,
            state: FeedState::Gap,
            detail: "line 4".into(),
        })),
        Body::Input(Input::Operator(Operator {
            command: OperatorCommand::Resume,
            note: "ok".into(),
        })),
        Body::Output(Output::PredictionRequest(Box::new(PredictionRequest {
            request_id: 7,
            symbol: sym,
            features: features.clone(),
            prompt: Some(Prompt {
                developer: "answer in JSON".into(),
                user: "book...".into(),
            }),
        }))),
        Body::Output(Output::QuoteDecision(Box::new(QuoteDecision {
            features,
            prediction: Some(PredictionUsed {
                request_id: 7,
                response_seq: 11,
                source: PredictorKind::Rules,
                direction: Direction::Bullish,
                confidence: dec!(0.7),
                price_change_bps: dec!(2),
                age_ms: 120,
            }),
            rules: Some(RulesSignal {
                direction: Direction::Bearish,
                confidence: dec!(0.7),
                price_change_bps: dec!(-2),
            }),
            model_weight: dec!(0.6533),
            position: dec!(-0.0035),
            reservation: dec!(61686.12345678),
            prediction_skew: dec!(4.3),
            inventory_skew: dec!(-0.00000001),
            half_spread_bps: dec!(1.0),
            bids: vec![QuoteLevel {
                level: 0,
                price: dec!(61680.0),
                qty: dec!(0.001),
            }],
            asks: vec![],
            bounds: vec![
                Bound::MinSpread,
                Bound::PostOnlyClamp {
                    side: Side::Buy,
                    level: 0,
                },
                Bound::PositionLimit {
                    side: Side::Sell,
                    level: 2,
                },
                Bound::TotalNotionalLimit {
                    side: Side::Buy,
                    level: 1,
                },
            ],
            symbol: Some(sym),
        }))),
        Body::Output(Output::PlaceOrder(PlaceOrder {
            cid: 70,
            symbol: sym,
            side: Side::Sell,
            price: dec!(61690.01),
            qty: dec!(0.00225),
            post_only: true,
            level: 2,
        })),
        Body::Output(Output::CancelOrder(CancelOrder {
            cid: 70,
            why: CancelWhy::Risk,
        })),
        Body::Output(Output::RiskAction(RiskAction {
            kind: RiskKind::KillSwitch,
            engaged: true,
            detail: "5 sigma".into(),
            symbol: Some(sym),
        })),
        Body::Output(Output::RiskAction(RiskAction {
            kind: RiskKind::TotalLoss,
            engaged: true,
            detail: "the markets together lost 60".into(),
            symbol: None,
        })),
        Body::Output(Output::PredictorStatus(PredictorStatus {
            gate: PredictorGate::OverBudgetHour,
            detail: "spent".into(),
        })),
        Body::Input(Input::ChainHead(ChainHead {
            height: 145_000_000,
            block_ts_ns: 1_723_161_600_000_000_000,
        })),
        Body::Input(Input::PositionSync(PositionSync {
            symbol: sym,
            qty: dec!(-0.0125),
            avg_price: dec!(61686.5),
            note: "positionRisk".into(),
        })),
        Body::Input(Input::FundingRate(FundingRate {
            symbol: sym,
            rate: dec!(-0.000125),
            due_ns: 1_723_190_400_000_000_000,
            mark: dec!(61686.12),
        })),
        Body::Output(Output::Funding(Funding {
            due_ns: 1_723_190_400_000_000_000,
            rate: dec!(0.0001),
            position: dec!(-12),
            mark: dec!(61686.12),
            amount: dec!(0.0000019453),
            symbol: Some(sym),
        })),
        Body::Wire(Box::new(WireRecord {
            action: WireAction::Place,
            cid: Some(64),
            nonce: Some(1_723_161_253_937_085),
            body: "{\"nonce\":1}".into(),
            sent: false,
        })),
        Body::SessionEnd(SessionEnd {
            status: SessionStatus::Failed("disk full".into()),
            entries: 12,
            note: "n".into(),
        }),
    ]
}
