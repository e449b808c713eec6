//! Sei's chain clock: `eth_subscribe` to `newHeads` over the EVM JSON-RPC WebSocket. Blocks come
//! about every 400 ms; the core halts quoting when they stop (settlement depends on them).

use super::FeedEvent;
use crate::backoff::Backoff;
use flashmm_core::event::ChainHead;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn hex_u64(v: &serde_json::Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// The head in an `eth_subscription` notification, if that is what `text` is.
pub fn parse_head(text: &str) -> Option<ChainHead> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["method"] != "eth_subscription" {
        return None;
    }
    let r = &v["params"]["result"];
    Some(ChainHead {
        height: hex_u64(&r["number"])?,
        block_ts_ns: hex_u64(&r["timestamp"])? as i64 * 1_000_000_000,
    })
}

pub async fn heads(
    url: String,
    base_ms: u64,
    max_ms: u64,
    tx: mpsc::Sender<FeedEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(base_ms, max_ms, crate::backoff::seed());
    while !*stop.borrow() {
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await;
        let Ok(Ok((mut ws, _))) = conn else {
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let sub = r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#;
        if ws.send(WsMessage::Text(sub.into())).await.is_err() {
            continue;
        }
        backoff.reset();
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                frame = ws.next() => {
                    match frame {
                        Some(Ok(WsMessage::Text(t))) => {
                            if let Some(head) = parse_head(&t) {
                                if tx.send(FeedEvent::Chain { head, received: Instant::now() }).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Some(Ok(WsMessage::Ping(p))) => {
                            let _ = ws.send(WsMessage::Pong(p)).await;
                        }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_head() {
        let t = r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x1b4","timestamp":"0x66b55d80","hash":"0x00"}}}"#;
        let h = parse_head(t).unwrap();
        assert_eq!(
            (h.height, h.block_ts_ns),
            (436, 1_723_161_984 * 1_000_000_000)
        );
        assert!(parse_head(r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#).is_none());
    }
}
