//! Citrex market streams (depth snapshots and trades) and the account stream (JSON-RPC 2.0).

use super::FeedEvent;
use crate::backoff::Backoff;
use crate::citrex::client::CitrexClient;
use crate::citrex::wire::{
    account_frame, AccountFrame, AccountParams, Depth, LoginParams, RpcMessage, Subscribe, WsTrade,
};
use flashmm_core::config::CitrexConfig;
use flashmm_core::event::{BookSnapshot, FeedState, FeedStatus, Input, Level, Side, Symbol, Trade};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Consecutive failed connects after which the market feed polls REST for a while.
const FALLBACK_AFTER: u32 = 3;
const DEPTH_LIMIT: u32 = 20;

fn levels(rows: &[Vec<crate::citrex::wire::E18>]) -> Vec<Level> {
    rows.iter()
        .filter(|r| r.len() >= 2)
        .map(|r| Level {
            price: r[0].to_decimal(),
            qty: r[1].to_decimal(),
        })
        .filter(|l| l.price > rust_decimal::Decimal::ZERO && l.qty > rust_decimal::Decimal::ZERO)
        .collect()
}

/// The depth stream carries snapshots with no sequence number: each replaces the book. The
/// feed numbers them so the journal shows their order.
pub fn snapshot(symbol: Symbol, n: u64, d: &Depth) -> Input {
    Input::BookSnapshot(BookSnapshot {
        symbol,
        update_id: n,
        bids: levels(&d.bids),
        asks: levels(&d.asks),
    })
}

pub fn trade(symbol: Symbol, t: &WsTrade) -> (Input, i64) {
    // FNV-1a of the venue's id, or of the trade's own fields when it sends none.
    let key = match &t.uid {
        Some(uid) => uid.clone(),
        None => format!(
            "{}/{}/{}/{}",
            t.price.0, t.quantity.0, t.created_at, t.taker_is_buyer
        ),
    };
    let id = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let input = Input::Trade(Trade {
        symbol,
        trade_id: id,
        price: t.price.to_decimal(),
        qty: t.quantity.to_decimal(),
        aggressor: if t.taker_is_buyer {
            Side::Buy
        } else {
            Side::Sell
        },
    });
    (input, t.created_at as i64 * 1_000_000)
}

/// A book read over REST: it replaces the book, but is not the stream speaking.
fn polled(symbol: Symbol, n: u64, d: &Depth) -> FeedEvent {
    let input = match snapshot(symbol, n, d) {
        Input::BookSnapshot(s) => Input::BookPolled(s),
        other => other,
    };
    FeedEvent::Market {
        input,
        venue_ts: None,
        received: Instant::now(),
    }
}

pub fn stream_name(template: &str, product: &str) -> String {
    template.replace("{symbol}", product)
}

fn status(symbol: Symbol, state: FeedState, detail: impl Into<String>) -> FeedEvent {
    FeedEvent::Status(FeedStatus {
        symbol,
        state,
        detail: detail.into(),
    })
}

/// Runs until `stop` turns true or the driver goes away.
pub async fn market(
    cfg: CitrexConfig,
    symbol: Symbol,
    rest: Arc<CitrexClient>,
    tx: mpsc::Sender<FeedEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let depth_stream = stream_name(&cfg.depth_stream, &cfg.product);
    let trade_stream = stream_name(&cfg.trade_stream, &cfg.product);
    let mut backoff = Backoff::new(
        cfg.reconnect_base_ms,
        cfg.reconnect_max_ms,
        crate::backoff::seed(),
    );
    let mut n = 0u64;
    let mut failures = 0u32;
    let mut connected_before = false;
    while !*stop.borrow() {
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(cfg.stream()),
        )
        .await;
        let mut ws = match conn {
            Ok(Ok((ws, _))) => ws,
            other => {
                failures += 1;
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".into(),
                };
                if tx
                    .send(status(
                        symbol,
                        FeedState::Disconnected,
                        format!("market stream: {why}"),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
                let wait = backoff.next_delay();
                if failures >= FALLBACK_AFTER {
                    // The stream is unreachable: poll the book over REST until the next try.
                    let until = Instant::now() + wait.max(Duration::from_millis(cfg.rest_poll_ms));
                    while Instant::now() < until && !*stop.borrow() {
                        if let Ok(d) = rest.depth(&cfg.product, DEPTH_LIMIT).await {
                            n += 1;
                            if tx.send(polled(symbol, n, &d)).await.is_err() {
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(cfg.rest_poll_ms)).await;
                    }
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                }
                continue;
            }
        };
        let sub = Subscribe {
            jsonrpc: "2.0".into(),
            method: "SUBSCRIBE".into(),
            params: vec![depth_stream.clone(), trade_stream.clone()],
            id: "1".into(),
        };
        if ws
            .send(WsMessage::Text(
                serde_json::to_string(&sub).unwrap_or_default(),
            ))
            .await
            .is_err()
        {
            continue;
        }
        if connected_before {
            // Whatever happened while we were away: start from a fresh book.
            let said = match rest.depth(&cfg.product, DEPTH_LIMIT).await {
                Ok(d) => {
                    n += 1;
                    if tx.send(polled(symbol, n, &d)).await.is_err() {
                        return;
                    }
                    status(
                        symbol,
                        FeedState::Resynced,
                        "market stream reconnected; book reloaded from GET /depth",
                    )
                }
                Err(e) => status(
                    symbol,
                    FeedState::Connected,
                    format!(
                        "market stream reconnected; GET /depth failed ({e}), so the book waits for the stream's first snapshot"
                    ),
                ),
            };
            if tx.send(said).await.is_err() {
                return;
            }
        }
        connected_before = true;
        let mut first_data: Option<Instant> = None;
        let mut refused = None;
        let mut ping = tokio::time::interval(Duration::from_secs(cfg.ping_interval_s.max(1)));
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ = ping.tick() => {
                    if ws.send(WsMessage::Ping(Vec::new())).await.is_err() {
                        break;
                    }
                }
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Ping(p))) => {
                            let _ = ws.send(WsMessage::Pong(p)).await;
                            continue;
                        }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => continue,
                    };
                    let received = Instant::now();
                    let frame = parse_market(&text, symbol, &depth_stream, &trade_stream, &mut n, received);
                    if let Some(why) = frame.refused {
                        refused = Some(why);
                        break;
                    }
                    if frame.data {
                        let since = *first_data.get_or_insert(received);
                        if since.elapsed() >= Duration::from_millis(cfg.reconnect_healthy_ms) {
                            failures = 0;
                            backoff.reset();
                        }
                    }
                    for ev in frame.events {
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let said = match refused {
            Some(why) => {
                // Connected but not subscribed is as good as down: count it toward the REST
                // fallback and keep backing off.
                failures += 1;
                let _ = ws.close(None).await;
                status(
                    symbol,
                    FeedState::Disconnected,
                    format!("market stream refused the subscription ({why}); backing off"),
                )
            }
            None => status(
                symbol,
                FeedState::Disconnected,
                "market stream closed; reconnecting",
            ),
        };
        if tx.send(said).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A stream push with its result left unparsed, so a depth frame is decoded once, straight
/// into its type (this is on the quoting path).
#[derive(serde::Deserialize)]
pub struct RawPush<'a> {
    #[serde(borrow, default)]
    pub id: std::borrow::Cow<'a, str>,
    /// Present in the market envelope; a JSON-RPC reply has none, which is not a refusal.
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(borrow)]
    pub result: Option<&'a serde_json::value::RawValue>,
    /// A JSON-RPC error (`{"code","message"}`), sent by venues that answer a refused frame so.
    #[serde(borrow, default)]
    pub error: Option<&'a serde_json::value::RawValue>,
}

/// What a market frame said: inputs for the journal, whether it was data from a stream we
/// asked for, and whether the venue refused our subscription.
pub struct MarketFrame {
    pub events: Vec<FeedEvent>,
    pub data: bool,
    pub refused: Option<String>,
}

pub fn parse_market(
    text: &str,
    symbol: Symbol,
    depth: &str,
    trades: &str,
    n: &mut u64,
    received: Instant,
) -> MarketFrame {
    let said = |events: Vec<FeedEvent>, data: bool| MarketFrame {
        events,
        data,
        refused: None,
    };
    let malformed = |why: String| {
        said(
            vec![status(
                symbol,
                FeedState::Malformed,
                format!("{why}: {}", text.chars().take(300).collect::<String>()),
            )],
            false,
        )
    };
    let push: RawPush = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => return malformed(format!("not a stream message ({e})")),
    };
    if let Some(e) = push.error.filter(|e| e.get() != "null") {
        return MarketFrame {
            events: Vec::new(),
            data: false,
            refused: Some(e.get().chars().take(300).collect()),
        };
    }
    let result = push.result.map(|r| r.get()).unwrap_or("null");
    if push.id == depth {
        match serde_json::from_str::<Depth>(result) {
            Ok(d) => {
                *n += 1;
                said(
                    vec![FeedEvent::Market {
                        input: snapshot(symbol, *n, &d),
                        venue_ts: None,
                        received,
                    }],
                    true,
                )
            }
            Err(e) => malformed(format!("bad depth ({e})")),
        }
    } else if push.id == trades {
        let list = if result.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<WsTrade>>(result)
        } else {
            serde_json::from_str::<WsTrade>(result).map(|t| vec![t])
        };
        match list {
            Ok(ts) => said(
                ts.iter()
                    .map(|t| {
                        let (input, venue_ts) = trade(symbol, t);
                        FeedEvent::Market {
                            input,
                            venue_ts: Some(venue_ts),
                            received,
                        }
                    })
                    .collect(),
                true,
            ),
            Err(e) => malformed(format!("bad trade ({e})")),
        }
    } else if push.success == Some(false) {
        MarketFrame {
            events: Vec::new(),
            data: false,
            refused: Some(result.chars().take(300).collect()),
        }
    } else {
        // Subscription acks and streams we did not ask for.
        said(Vec::new(), false)
    }
}

/// The account stream: log in with a `SignedAuthentication` signature, subscribe to
/// `account.updates`, forward every update.
pub async fn account(
    cfg: CitrexConfig,
    client: Arc<CitrexClient>,
    symbol: Symbol,
    tx: mpsc::Sender<FeedEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(
        cfg.reconnect_base_ms,
        cfg.reconnect_max_ms,
        crate::backoff::seed(),
    );
    let mut first = true;
    while !*stop.borrow() {
        let signature = match client.login_signature() {
            Ok(s) => s,
            Err(_) => return,
        };
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(cfg.ws()),
        )
        .await;
        let Ok(Ok((mut ws, _))) = conn else {
            let _ = tx
                .send(status(
                    symbol,
                    FeedState::Disconnected,
                    "account stream: cannot connect",
                ))
                .await;
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let account = client.account().to_string();
        let login = RpcMessage {
            jsonrpc: "2.0".into(),
            id: Some("1".into()),
            method: Some("session.login".into()),
            result: None,
            error: None,
            params: serde_json::to_value(LoginParams {
                account: account.clone(),
                sub_account_id: cfg.sub_account_id,
                signature,
            })
            .ok(),
        };
        let updates = RpcMessage {
            jsonrpc: "2.0".into(),
            id: Some("2".into()),
            method: Some("account.updates".into()),
            result: None,
            error: None,
            params: serde_json::to_value(AccountParams {
                account,
                sub_account_id: cfg.sub_account_id,
            })
            .ok(),
        };
        let ok = ws
            .send(WsMessage::Text(
                serde_json::to_string(&login).unwrap_or_default(),
            ))
            .await
            .is_ok()
            && ws
                .send(WsMessage::Text(
                    serde_json::to_string(&updates).unwrap_or_default(),
                ))
                .await
                .is_ok();
        if !ok {
            continue;
        }
        let connected_at = Instant::now();
        let healthy = Duration::from_millis(cfg.reconnect_healthy_ms);
        if !first && tx.send(FeedEvent::AccountResynced).await.is_err() {
            return;
        }
        first = false;
        let mut ping = tokio::time::interval(Duration::from_secs(cfg.ping_interval_s.max(1)));
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ = ping.tick() => {
                    if ws.send(WsMessage::Ping(Vec::new())).await.is_err() {
                        break;
                    }
                }
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Ping(p))) => {
                            let _ = ws.send(WsMessage::Pong(p)).await;
                            continue;
                        }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => continue,
                    };
                    let received = Instant::now();
                    if connected_at.elapsed() >= healthy {
                        backoff.reset();
                    }
                    let (events, refused) = account_events(&text, symbol, received);
                    for ev in events {
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    if refused {
                        let _ = ws.close(None).await;
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One account-stream frame as events for the driver, and whether the venue refused us (then
/// the connection is dropped and retried with backoff). Anything we cannot read is a doubt: the
/// driver journals it and reads the account back, since the frame may have carried a fill.
pub fn account_events(text: &str, symbol: Symbol, received: Instant) -> (Vec<FeedEvent>, bool) {
    let quoted = || text.chars().take(300).collect::<String>();
    match account_frame(text) {
        Ok(AccountFrame::Updates(us)) => (
            us.into_iter()
                .map(|update| FeedEvent::Account { update, received })
                .collect(),
            false,
        ),
        Ok(AccountFrame::Other) => (Vec::new(), false),
        Ok(AccountFrame::Refused(why)) => (
            vec![FeedEvent::AccountDoubt(FeedStatus {
                symbol,
                state: FeedState::Malformed,
                detail: format!("account stream refused a request ({why}): {}", quoted()),
            })],
            true,
        ),
        Err(why) => (
            vec![FeedEvent::AccountDoubt(FeedStatus {
                symbol,
                state: FeedState::Malformed,
                detail: format!("unreadable account frame ({why}): {}", quoted()),
            })],
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> (MarketFrame, u64) {
        let mut n = 0;
        let f = parse_market(
            text,
            Symbol::new("BTCPERP").unwrap(),
            "btcperp@depth20_10",
            "btcperp@trade",
            &mut n,
            Instant::now(),
        );
        (f, n)
    }

    #[test]
    fn account_frames_become_updates_doubts_or_refusals() {
        let sym = Symbol::new("BTCPERP").unwrap();
        let now = Instant::now();
        let fill = r#"{"orderId":"0xab","productId":1003,"isBuy":true,"price":"1","quantity":"2","fee":"0","isMaker":true,"residualQuantity":"0","createdAt":1,"tradeId":"t1"}"#;
        let (evs, refused) = account_events(
            &format!(r#"{{"id":"account.updates","success":true,"result":[{fill},{fill}]}}"#),
            sym,
            now,
        );
        assert!(!refused);
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| matches!(e, FeedEvent::Account { .. })));
        let (evs, refused) =
            account_events(r#"{"jsonrpc":"2.0","id":"1","result":true}"#, sym, now);
        assert!(evs.is_empty() && !refused);
        let (evs, refused) = account_events(
            r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32600,"message":"no"}}"#,
            sym,
            now,
        );
        assert!(refused);
        assert!(
            matches!(evs.as_slice(), [FeedEvent::AccountDoubt(s)] if s.detail.contains("refused"))
        );
        let (evs, refused) = account_events("{garbage", sym, now);
        assert!(!refused);
        assert!(
            matches!(evs.as_slice(), [FeedEvent::AccountDoubt(s)] if s.detail.contains("{garbage"))
        );
    }

    #[test]
    fn refusals_are_refusals_and_acks_are_not() {
        for text in [
            r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32600,"message":"missing field `jsonrpc`"}}"#,
            r#"{"id":"1","success":false,"result":"unknown stream"}"#,
        ] {
            let (f, _) = frame(text);
            assert!(f.refused.is_some(), "{text}");
            assert!(f.events.is_empty() && !f.data);
        }
        for text in [
            r#"{"id":"1","success":true,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":"1","result":{"subscribed":true}}"#,
            r#"{"id":"other@trade","success":true,"result":[]}"#,
        ] {
            let (f, _) = frame(text);
            assert!(
                f.refused.is_none() && !f.data && f.events.is_empty(),
                "{text}"
            );
        }
    }

    #[test]
    fn data_frames_are_data_and_depth_reads_decimals_or_e18() {
        let (f, n) = frame(
            r#"{"id":"btcperp@depth20_10","success":true,"result":{"bids":[["61000.5","0.25"]],"asks":[["61001000000000000000000",1000000000000000]]}}"#,
        );
        assert!(f.data && f.refused.is_none());
        assert_eq!(n, 1);
        match f.events.as_slice() {
            [FeedEvent::Market {
                input: Input::BookSnapshot(s),
                ..
            }] => {
                assert_eq!(s.bids[0].price.to_string(), "61000.5");
                assert_eq!(s.bids[0].qty.to_string(), "0.25");
                assert_eq!(s.asks[0].price.to_string(), "61001");
                assert_eq!(s.asks[0].qty.to_string(), "0.001");
            }
            other => panic!("{other:?}"),
        }
        let (f, _) = frame(
            r#"{"id":"btcperp@trade","success":true,"result":[{"price":"61000","quantity":"0.001","takerIsBuyer":true,"timestamp":5},{"price":"61000","quantity":"0.002","takerIsBuyer":true,"createdAt":5,"uid":"x"}]}"#,
        );
        assert!(f.data);
        let ids: Vec<u64> = f
            .events
            .iter()
            .map(|e| match e {
                FeedEvent::Market {
                    input: Input::Trade(t),
                    venue_ts,
                    ..
                } => {
                    assert_eq!(*venue_ts, Some(5_000_000));
                    t.trade_id
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1], "a trade without uid gets an id of its own");
        let (f, _) = frame(r#"{"id":"btcperp@depth20_10","success":true,"result":{"bids":"x"}}"#);
        assert!(!f.data && f.refused.is_none());
        assert!(matches!(
            f.events.as_slice(),
            [FeedEvent::Status(s)] if s.state == FeedState::Malformed
        ));
    }
}
