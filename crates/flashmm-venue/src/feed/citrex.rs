//! Citrex market streams (depth snapshots and trades) and the account stream (JSON-RPC 2.0).

use super::FeedEvent;
use crate::backoff::Backoff;
use crate::citrex::client::CitrexClient;
use crate::citrex::wire::{AccountParams, Depth, LoginParams, RpcMessage, Subscribe, WsTrade};
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
    let id = t.uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
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
                            let ev = FeedEvent::Market {
                                input: snapshot(symbol, n, &d),
                                venue_ts: None,
                                received: Instant::now(),
                            };
                            if tx.send(ev).await.is_err() {
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
        failures = 0;
        backoff.reset();
        let sub = Subscribe {
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
            if let Ok(d) = rest.depth(&cfg.product, DEPTH_LIMIT).await {
                n += 1;
                let ev = FeedEvent::Market {
                    input: snapshot(symbol, n, &d),
                    venue_ts: None,
                    received: Instant::now(),
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if tx
                .send(status(
                    symbol,
                    FeedState::Resynced,
                    "market stream reconnected; book reloaded from GET /depth",
                ))
                .await
                .is_err()
            {
                return;
            }
        }
        connected_before = true;
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
                    let events = parse_market(&text, symbol, &depth_stream, &trade_stream, &mut n, received);
                    for ev in events {
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if tx
            .send(status(
                symbol,
                FeedState::Disconnected,
                "market stream closed; reconnecting",
            ))
            .await
            .is_err()
        {
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
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    pub success: bool,
    #[serde(borrow)]
    pub result: Option<&'a serde_json::value::RawValue>,
}

fn parse_market(
    text: &str,
    symbol: Symbol,
    depth: &str,
    trades: &str,
    n: &mut u64,
    received: Instant,
) -> Vec<FeedEvent> {
    let malformed = |why: String| {
        vec![status(
            symbol,
            FeedState::Malformed,
            format!("{why}: {}", text.chars().take(300).collect::<String>()),
        )]
    };
    let push: RawPush = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => return malformed(format!("not a stream message ({e})")),
    };
    let result = push.result.map(|r| r.get()).unwrap_or("null");
    if push.id == depth {
        match serde_json::from_str::<Depth>(result) {
            Ok(d) => {
                *n += 1;
                vec![FeedEvent::Market {
                    input: snapshot(symbol, *n, &d),
                    venue_ts: None,
                    received,
                }]
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
            Ok(ts) => ts
                .iter()
                .map(|t| {
                    let (input, venue_ts) = trade(symbol, t);
                    FeedEvent::Market {
                        input,
                        venue_ts: Some(venue_ts),
                        received,
                    }
                })
                .collect(),
            Err(e) => malformed(format!("bad trade ({e})")),
        }
    } else if !push.success && result != "null" {
        malformed("the venue refused a subscription".into())
    } else {
        // Subscription acks and streams we did not ask for.
        Vec::new()
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
        backoff.reset();
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
                    let msg: Result<RpcMessage, _> = serde_json::from_str(&text);
                    let ev = match msg {
                        Ok(m) if m.method.as_deref() == Some("account.updates") && m.params.is_some() => {
                            match serde_json::from_value(m.params.unwrap_or_default()) {
                                Ok(update) => FeedEvent::Account { update, received },
                                Err(e) => status(symbol, FeedState::Malformed, format!("bad account update ({e}): {}", text.chars().take(300).collect::<String>())),
                            }
                        }
                        Ok(m) if m.error.is_some() => {
                            let e = m.error.map(|e| format!("{} {}", e.code, e.message)).unwrap_or_default();
                            status(symbol, FeedState::Malformed, format!("account stream error: {e}"))
                        }
                        Ok(_) => continue,
                        Err(e) => status(symbol, FeedState::Malformed, format!("not JSON-RPC ({e}): {}", text.chars().take(300).collect::<String>())),
                    };
                    if tx.send(ev).await.is_err() {
                        return;
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
