//! A local stand-in for the Sei EVM JSON-RPC WebSocket (`wss://evm-ws.sei-apis.com`), on
//! 127.0.0.1, for tests of the chain clock. It speaks Ethereum JSON-RPC 2.0 over WebSocket:
//!
//! - `eth_subscribe ["newHeads"]` answers a subscription id (`"0x"` + 32 hex digits), then every
//!   `block_ms` pushes `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":id,
//!   "result":{"number","hash","parentHash","timestamp"}}}`, all hex quantities, `timestamp` in
//!   Unix seconds; `eth_unsubscribe [id]` answers `true` or `false`;
//! - `eth_chainId` answers `"0x531"` (1329, Sei mainnet), `net_version` `"1329"`,
//!   `eth_blockNumber` the current height;
//! - ids are echoed as sent (number or string); a batch (JSON array) gets an array;
//! - anything else gets a JSON-RPC error: -32700 parse error, -32600 invalid request,
//!   -32601 unknown method, -32602 bad params. A WebSocket ping gets a pong.
//!
//! Test controls: `halt(true)` stops producing blocks (a chain halt) until `halt(false)`;
//! `drop_connections()` closes every socket without a close frame (a network drop).

use crate::http::accept_loop;
use flashmm_venue::citrex::eip712::{encode_hex, keccak};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The chain id the fake reports: Sei mainnet.
pub const CHAIN_ID: u64 = 1329;
/// The height of the first block the fake produces is `FIRST_HEIGHT + 1`.
pub const FIRST_HEIGHT: u64 = 100_000_000;

struct Client {
    tx: mpsc::UnboundedSender<String>,
    /// Subscription ids to `newHeads`.
    subs: Vec<String>,
}

struct State {
    height: u64,
    hash: [u8; 32],
    halted: bool,
    clients: BTreeMap<u64, Client>,
    next_client: u64,
    next_sub: u64,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeSei {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeSei {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn block_hash(height: u64) -> [u8; 32] {
    keccak(&[b"fake-sei-block", &height.to_be_bytes()])
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FakeSei {
    /// Starts on a free port of 127.0.0.1, producing a block every `block_ms`.
    pub async fn start(block_ms: u64) -> std::io::Result<FakeSei> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                height: FIRST_HEIGHT,
                hash: block_hash(FIRST_HEIGHT),
                halted: false,
                clients: BTreeMap::new(),
                next_client: 0,
                next_sub: 0,
            }),
        });
        let s = shared.clone();
        let server = tokio::spawn(accept_loop(listener, move |conn| serve(conn, s.clone())));
        let s = shared.clone();
        let period = Duration::from_millis(block_ms.max(1));
        let producer = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                produce(&s);
            }
        });
        Ok(FakeSei {
            addr,
            shared,
            tasks: vec![server, producer],
        })
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stops (`true`) or resumes (`false`) block production.
    pub fn halt(&self, halted: bool) {
        self.shared.lock().halted = halted;
    }

    /// Closes every WebSocket, without a close frame.
    pub fn drop_connections(&self) {
        self.shared.lock().clients.clear();
    }

    /// The height of the latest block.
    pub fn height(&self) -> u64 {
        self.shared.lock().height
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.shared.lock().clients.len()
    }
}

fn produce(s: &Shared) {
    let mut st = s.lock();
    if st.halted {
        return;
    }
    let parent = st.hash;
    st.height += 1;
    st.hash = block_hash(st.height);
    let head = json!({
        "number": format!("0x{:x}", st.height),
        "hash": format!("0x{}", encode_hex(&st.hash)),
        "parentHash": format!("0x{}", encode_hex(&parent)),
        "timestamp": format!("0x{:x}", unix_secs()),
    });
    for c in st.clients.values() {
        for sub in &c.subs {
            let note = json!({
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": sub, "result": head},
            });
            let _ = c.tx.send(note.to_string());
        }
    }
}

async fn serve(conn: TcpStream, s: Arc<Shared>) {
    let Ok(ws) = tokio_tungstenite::accept_async(conn).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut st = s.lock();
        st.next_client += 1;
        let id = st.next_client;
        st.clients.insert(
            id,
            Client {
                tx,
                subs: Vec::new(),
            },
        );
        id
    };
    let (mut sink, mut source) = ws.split();
    loop {
        tokio::select! {
            frame = source.next() => {
                let reply = match frame {
                    Some(Ok(Message::Text(t))) => handle(&s, id, &t),
                    Some(Ok(Message::Binary(b))) => handle(&s, id, &String::from_utf8_lossy(&b)),
                    Some(Ok(Message::Ping(p))) => {
                        if sink.send(Message::Pong(p)).await.is_err() {
                            break;
                        }
                        None
                    }
                    Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => None,
                    Some(Ok(Message::Close(_))) => {
                        let _ = sink.flush().await;
                        break;
                    }
                    Some(Err(_)) | None => break,
                };
                if let Some(r) = reply {
                    if sink.send(Message::Text(r)).await.is_err() {
                        break;
                    }
                }
            }
            out = rx.recv() => match out {
                Some(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                // drop_connections: end without a close frame.
                None => break,
            },
        }
    }
    s.lock().clients.remove(&id);
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn handle(s: &Shared, client: u64, text: &str) -> Option<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Some(error(Value::Null, -32700, "parse error").to_string()),
    };
    match v {
        Value::Array(batch) if !batch.is_empty() => {
            Some(Value::Array(batch.iter().map(|r| call(s, client, r)).collect()).to_string())
        }
        other => Some(call(s, client, &other).to_string()),
    }
}

fn call(s: &Shared, client: u64, req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return error(id, -32600, "invalid request");
    };
    let params = req.get("params").cloned().unwrap_or(Value::Null);
    let ok = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    let mut st = s.lock();
    match method {
        "eth_chainId" => ok(json!(format!("0x{CHAIN_ID:x}"))),
        "net_version" => ok(json!(CHAIN_ID.to_string())),
        "eth_blockNumber" => ok(json!(format!("0x{:x}", st.height))),
        "eth_subscribe" => match params.get(0).and_then(Value::as_str) {
            Some("newHeads") => {
                st.next_sub += 1;
                let n = st.next_sub;
                let sub = format!(
                    "0x{}",
                    encode_hex(&keccak(&[b"fake-sei-sub", &n.to_be_bytes()])[..16])
                );
                if let Some(c) = st.clients.get_mut(&client) {
                    c.subs.push(sub.clone());
                }
                ok(json!(sub))
            }
            Some(other) => error(
                id,
                -32602,
                &format!("the fake supports only newHeads, not {other:?}"),
            ),
            None => error(id, -32602, "missing subscription type"),
        },
        "eth_unsubscribe" => match params.get(0).and_then(Value::as_str) {
            Some(sub) => {
                let removed = st.clients.get_mut(&client).is_some_and(|c| {
                    let before = c.subs.len();
                    c.subs.retain(|x| x != sub);
                    c.subs.len() != before
                });
                ok(json!(removed))
            }
            None => error(id, -32602, "missing subscription id"),
        },
        other => error(
            id,
            -32601,
            &format!("the method {other} does not exist/is not available"),
        ),
    }
}
