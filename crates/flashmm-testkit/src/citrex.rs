//! A local stand-in for Citrex, on 127.0.0.1, speaking the venue's protocol with the shapes of
//! [`flashmm_venue::citrex::wire`]: REST on one port, the WebSocket (`/v1/ws/operate`) on another. Tests start
//! it to run the live mode end to end. Like the venue, it recovers the signer of every signed
//! request from its EIP-712 digest and refuses a wrong one.
//!
//! The book is what the test sets with [`FakeCitrex::set_book`] (other traders' levels) merged
//! with the orders resting in the fake (ours). There is no matching engine: orders rest, and
//! [`FakeCitrex::trade`] prints a public trade that fills resting orders at or through its
//! price. Choices where the real venue is unknown, which a client must not depend on beyond
//! what is written here:
//!
//! - Any correctly signed order consumes its nonce, even one then refused (off tick, crossing).
//!   A request answered by a scripted failure ([`FakeCitrex::fail_next`]) consumes nothing.
//! - Orders must be GTC LIMIT (0) or LIMIT_MAKER (1) and must not cross: a crossing
//!   LIMIT_MAKER is refused with "post-only order would cross"; a crossing LIMIT is refused too
//!   (the fake does not match takers). `expiration` is Unix milliseconds and must be in the
//!   future; a resting order past it is pushed EXPIRED.
//! - Cancel-and-replace checks the new order's signature and nonce, then the id to cancel
//!   (which must be an open order of the same account and sub-account), cancels it, then places
//!   the new order. If the new order is then refused, the old one stays cancelled.
//! - A fill is at the resting order's price, maker, fee = makerFee x price x quantity, and
//!   there is no queue ahead of our orders. Its pushes come in the order Fill, Order, Position.
//! - `account` is echoed in EIP-55 checksummed form.
//! - Scripted 429 and 503 answers carry `retry-after` (seconds, [`FakeConfig::retry_after_secs`]).
//! - WebSocket: JSON-RPC errors use -32700 (not JSON), -32600 (not a request), -32601 (unknown
//!   method), -32602 (bad params), -32001 (bad signature), -32002 (not logged in). A market
//!   message that fails gets `{"id", "success": false, "result": "<why>"}`.
//!   `drop_connections` ends every socket without a close frame, like a network drop.
//!
//! Longer than 600 lines on purpose: a whole fake venue (REST, WebSocket, matching, signature
//! recovery, scripted failures) that shares one state; it is test code, never in a release build.

use crate::http::{accept_loop, response, Request, RequestReader};
use flashmm_venue::citrex::eip712::{
    self, decode_hex, encode_hex, keccak, recover, Address, Domain, Message,
};
use flashmm_venue::citrex::wire::{
    AccountParams, AccountUpdate, CancelAllRequest, CancelReplaceRequest, CancelRequest, Depth,
    LoginParams, OrderRequest, OrderStatus, Outcome, Product, RpcError, RpcMessage, RpcRequest,
    ServerTime, StreamPush, Subscribe, VenueOrder, VenuePosition, WsFill, WsTrade, E18,
};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Response};
use tokio_tungstenite::tungstenite::{http, Message as WsMessage};

/// The WebSocket path.
pub const WS_PATH: &str = "/v1/ws/operate";

/// Order types and time in force, as the venue numbers them.
pub const LIMIT: u8 = 0;
pub const LIMIT_MAKER: u8 = 1;
pub const MARKET: u8 = 2;
pub const GTC: u8 = 0;

#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The EIP-712 domain signatures are checked against.
    pub domain: Domain,
    pub products: Vec<Product>,
    /// How often depth snapshots are pushed to subscribers.
    pub depth_interval_ms: u64,
    /// The `retry-after` header, in seconds, on scripted 429 and 503 answers.
    pub retry_after_secs: u64,
}

impl Default for FakeConfig {
    /// The testnet domain (chainId 1328); `ethperp` (1002, tick 0.1, min 0.01) and `btcperp`
    /// (1003, tick 1, min 0.001), maker fee 1 bp, taker fee 5 bp; depth every 100 ms.
    fn default() -> FakeConfig {
        let e18 = |d: Decimal| E18::from_decimal(d).unwrap_or_default();
        let product = |id, symbol: &str, tick, min| Product {
            id,
            symbol: symbol.into(),
            increment: e18(tick),
            min_quantity: e18(min),
            maker_fee: e18(Decimal::new(1, 4)),
            taker_fee: e18(Decimal::new(5, 4)),
            active: true,
        };
        FakeConfig {
            domain: Domain {
                name: "ciao".into(),
                version: "0.0.0".into(),
                chain_id: 1328,
                verifying_contract: Address::parse("0x24f4e9Db8225e6AE220FE89782E4A010aEB7bb14")
                    .unwrap_or(Address([0; 20])),
            },
            products: vec![
                product(1002, "ethperp", Decimal::new(1, 1), Decimal::new(1, 2)),
                product(1003, "btcperp", Decimal::ONE, Decimal::new(1, 3)),
            ],
            depth_interval_ms: 100,
            retry_after_secs: 1,
        }
    }
}

/// The envelope of account pushes. The docs do not fix it; deployments differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccountEnvelope {
    /// `{"jsonrpc":"2.0","method":"account.updates","params":{"type","data"}}`
    #[default]
    JsonRpc,
    /// `{"id":"account.updates","success":true,"result":<bare order, fill or position>}`, as the
    /// market streams wrap theirs.
    Result,
}

/// One REST request and how the fake answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Without the query (`/v1/order`).
    pub path: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    /// Whoever the signature recovers to, when the request carried one that recovers.
    pub signer: Option<Address>,
}

struct Failure {
    method: String,
    path: String,
    status: u16,
    left: u32,
    /// Carry the request out, then answer the failure: the outcome is lost on the way back.
    after: bool,
}

struct OrderRec {
    order: VenueOrder,
    owner: Address,
}

impl OrderRec {
    fn is_open(&self) -> bool {
        self.order.status == OrderStatus::Open
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stream {
    Depth { product: u32, levels: usize },
    Trade { product: u32 },
}

struct WsClient {
    tx: mpsc::UnboundedSender<String>,
    /// Market streams, by the name subscribed.
    streams: BTreeMap<String, Stream>,
    login: Option<(Address, u8)>,
    updates: bool,
}

#[derive(Default)]
struct Position {
    quantity: Decimal,
    avg_entry: Decimal,
}

/// (price, size) levels.
type Levels = Vec<(E18, E18)>;

#[derive(Default)]
struct State {
    /// Other traders' levels by product: (bids, asks) as (price, size).
    books: BTreeMap<u32, (Levels, Levels)>,
    /// Every order accepted, in arrival order.
    orders: Vec<OrderRec>,
    nonces: BTreeMap<Address, Vec<u64>>,
    used: BTreeSet<(Address, u64)>,
    positions: BTreeMap<(Address, u8, u32), Position>,
    requests: Vec<Recorded>,
    failures: Vec<Failure>,
    cancel_alls: Vec<(Address, u8, u32)>,
    clients: BTreeMap<u64, WsClient>,
    next_client: u64,
    paused: bool,
    lose_pushes: bool,
    /// How account pushes are wrapped, and whether fills get pushes of their own.
    envelope: AccountEnvelope,
    hide_fills: bool,
    /// Refuse market subscriptions: all of them, or those without `"jsonrpc":"2.0"`.
    refuse_subscriptions: bool,
    require_jsonrpc: bool,
    /// WebSocket connections accepted, ever.
    accepted: u64,
    trades: u64,
    fills: u64,
}

struct Shared {
    cfg: FakeConfig,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn product(&self, id: u32) -> Option<&Product> {
        self.cfg.products.iter().find(|p| p.id == id)
    }

    fn product_by_symbol(&self, symbol: &str) -> Option<&Product> {
        self.cfg
            .products
            .iter()
            .find(|p| p.symbol.eq_ignore_ascii_case(symbol))
    }
}

pub struct FakeCitrex {
    rest: SocketAddr,
    ws: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeCitrex {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn e18(d: Decimal) -> E18 {
    E18::from_decimal(d.round_dp(18)).unwrap_or_default()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl FakeCitrex {
    /// Starts the REST and WebSocket servers on two free ports of 127.0.0.1.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<FakeCitrex> {
        let rest_listener = TcpListener::bind("127.0.0.1:0").await?;
        let ws_listener = TcpListener::bind("127.0.0.1:0").await?;
        let rest = rest_listener.local_addr()?;
        let ws = ws_listener.local_addr()?;
        let interval = Duration::from_millis(cfg.depth_interval_ms.max(1));
        let shared = Arc::new(Shared {
            cfg,
            state: Mutex::new(State::default()),
        });
        let s = shared.clone();
        let rest_task = tokio::spawn(accept_loop(rest_listener, move |c| {
            serve_rest(c, s.clone())
        }));
        let s = shared.clone();
        let ws_task = tokio::spawn(accept_loop(ws_listener, move |c| serve_ws(c, s.clone())));
        let s = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                on_tick(&s);
            }
        });
        Ok(FakeCitrex {
            rest,
            ws,
            shared,
            tasks: vec![rest_task, ws_task, ticker],
        })
    }

    /// The same venue with no sockets and no ticker, for a simulation in one process on a
    /// paused clock: requests go through `serve`, pushes come out of `attach_account`, and
    /// `tick` expires orders.
    pub fn in_process(cfg: FakeConfig) -> FakeCitrex {
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
        FakeCitrex {
            rest: nowhere,
            ws: nowhere,
            shared: Arc::new(Shared {
                cfg,
                state: Mutex::new(State::default()),
            }),
            tasks: Vec::new(),
        }
    }

    /// One REST request, answered as the server would: (status, headers, body). `target` is
    /// the path and query (`/v1/order`).
    pub fn serve(
        &self,
        method: &str,
        target: &str,
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let req = Request {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            body: body.to_string(),
        };
        handle_rest(&self.shared, &req)
    }

    /// A logged-in account stream: every account push for `account`/`sub`, as the text frame
    /// the WebSocket would carry.
    pub fn attach_account(&self, account: Address, sub: u8) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.shared.lock();
        st.next_client += 1;
        let id = st.next_client;
        st.clients.insert(
            id,
            WsClient {
                tx,
                streams: BTreeMap::new(),
                login: Some((account, sub)),
                updates: true,
            },
        );
        rx
    }

    /// Expires every open order of `account` now, as the venue does at an order's expiry:
    /// each gets an `EXPIRED` push.
    pub fn expire_open_orders(&self, account: Address) {
        let mut st = self.shared.lock();
        let mut expired = Vec::new();
        for r in st.orders.iter_mut() {
            if r.is_open() && r.owner == account {
                r.order.status = OrderStatus::Expired;
                expired.push(r.order.clone());
            }
        }
        for o in expired {
            push_account(&st, account, o.sub_account_id, AccountUpdate::Order(o));
        }
    }

    /// What the ticker does: expire orders, push depth to market subscribers.
    pub fn tick(&self) {
        on_tick(&self.shared);
    }

    /// The merged book of `symbol` (other traders' levels and resting orders), best first.
    pub fn depth(&self, symbol: &str, levels: usize) -> Depth {
        let id = self.product_id(symbol);
        depth(&self.shared.lock(), id, levels)
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn rest_url(&self) -> String {
        format!("http://{}/v1", self.rest)
    }

    /// `ws://127.0.0.1:PORT/v1/ws/operate`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{WS_PATH}", self.ws)
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.cfg
    }

    // ---------------------------------------------------------------------- test controls

    /// Replaces other traders' levels of `symbol`: (price, size), any order. Panics on an
    /// unknown symbol or a value finer than 1e-18.
    pub fn set_book(
        &self,
        symbol: &str,
        bids: Vec<(Decimal, Decimal)>,
        asks: Vec<(Decimal, Decimal)>,
    ) {
        let id = self.product_id(symbol);
        let conv = |levels: Vec<(Decimal, Decimal)>| -> Vec<(E18, E18)> {
            levels
                .into_iter()
                .filter(|(_, q)| *q > Decimal::ZERO)
                .map(|(p, q)| (exact(p), exact(q)))
                .collect()
        };
        let book = (conv(bids), conv(asks));
        self.shared.lock().books.insert(id, book);
    }

    /// Prints a public trade of `symbol` (pushed on `<symbol>@trade` unless the market is
    /// paused) and fills resting orders on the side the taker hits: a buying taker fills sells
    /// priced at or below `price`, a selling taker fills buys at or above it; best price first,
    /// then oldest, up to `quantity` in all.
    pub fn trade(&self, symbol: &str, price: Decimal, quantity: Decimal, taker_is_buyer: bool) {
        let id = self.product_id(symbol);
        let (price, quantity) = (exact(price), exact(quantity));
        let s = &*self.shared;
        let mut st = s.lock();
        st.trades += 1;
        let uid = format!("fake-trade-{}", st.trades);
        if !st.paused {
            let print = StreamPush {
                id: String::new(),
                success: true,
                result: json!([WsTrade {
                    price,
                    quantity,
                    taker_is_buyer,
                    created_at: now_ms(),
                    uid: Some(uid),
                }]),
            };
            for c in st.clients.values() {
                for (name, stream) in &c.streams {
                    if *stream == (Stream::Trade { product: id }) {
                        let mut p = print.clone();
                        p.id = name.clone();
                        let _ = c.tx.send(to_json(&p));
                    }
                }
            }
        }
        let mut hit: Vec<usize> = (0..st.orders.len())
            .filter(|&i| {
                let o = &st.orders[i].order;
                st.orders[i].is_open()
                    && o.product_id == id
                    && if taker_is_buyer {
                        !o.is_buy && o.price <= price
                    } else {
                        o.is_buy && o.price >= price
                    }
            })
            .collect();
        // Stable: equal prices keep arrival order.
        hit.sort_by_key(|&i| {
            let p = st.orders[i].order.price.0;
            if taker_is_buyer {
                p
            } else {
                -p
            }
        });
        let maker_fee = s.product(id).map(|p| p.maker_fee).unwrap_or_default();
        let mut left = quantity;
        for i in hit {
            if left.0 <= 0 {
                break;
            }
            let rec = &mut st.orders[i];
            let q = E18(left.0.min(rec.order.residual_quantity.0));
            left.0 -= q.0;
            rec.order.residual_quantity.0 -= q.0;
            if rec.order.residual_quantity.0 == 0 {
                rec.order.status = OrderStatus::Filled;
            }
            let order = rec.order.clone();
            let owner = rec.owner;
            let (p, qd) = (order.price.to_decimal(), q.to_decimal());
            let fee = maker_fee
                .to_decimal()
                .checked_mul(p)
                .and_then(|x| x.checked_mul(qd))
                .unwrap_or_default();
            st.fills += 1;
            let fill = WsFill {
                order_id: order.id.clone(),
                product_id: id,
                is_buy: order.is_buy,
                price: order.price,
                quantity: q,
                fee: e18(fee),
                is_maker: true,
                residual_quantity: order.residual_quantity,
                created_at: now_ms(),
                trade_id: format!("fake-fill-{}", st.fills),
            };
            let key = (owner, order.sub_account_id, id);
            let pos = st.positions.entry(key).or_default();
            apply_fill(pos, if order.is_buy { qd } else { -qd }, p);
            let position = VenuePosition {
                product_id: id,
                product_symbol: order.product_symbol.clone(),
                quantity: e18(pos.quantity),
                avg_entry_price: e18(pos.avg_entry),
            };
            let sub = order.sub_account_id;
            if !st.hide_fills {
                push_account(&st, owner, sub, AccountUpdate::Fill(fill));
            }
            push_account(&st, owner, sub, AccountUpdate::Order(order));
            push_account(&st, owner, sub, AccountUpdate::Position(position));
        }
    }

    /// Stops (`true`) or restarts (`false`) depth and trade pushes: a stale feed. Fills and
    /// account pushes go on.
    pub fn pause_market(&self, paused: bool) {
        self.shared.lock().paused = paused;
    }

    /// While `true`, account pushes are lost on the way: a connection that died silently.
    pub fn lose_account_pushes(&self, lose: bool) {
        self.shared.lock().lose_pushes = lose;
    }

    /// Wraps account pushes in `envelope`; with `fill_pushes` false, a fill shows only as the
    /// order's status and residual (and the position).
    pub fn set_account_pushes(&self, envelope: AccountEnvelope, fill_pushes: bool) {
        let mut st = self.shared.lock();
        st.envelope = envelope;
        st.hide_fills = !fill_pushes;
    }

    /// Answers every market `SUBSCRIBE` with a JSON-RPC error (`all`), or only those that lack
    /// `"jsonrpc":"2.0"` (`without_jsonrpc`).
    pub fn refuse_subscriptions(&self, all: bool, without_jsonrpc: bool) {
        let mut st = self.shared.lock();
        st.refuse_subscriptions = all;
        st.require_jsonrpc = without_jsonrpc;
    }

    /// WebSocket connections accepted since the start.
    pub fn accepted_connections(&self) -> u64 {
        self.shared.lock().accepted
    }

    /// Closes every WebSocket without a close frame: a disconnect. Logins and subscriptions
    /// go with them.
    pub fn drop_connections(&self) {
        self.shared.lock().clients.clear();
    }

    /// The next `count` requests of `method` to `path` (`/order` or `/v1/order`, no query)
    /// are answered `status` with an error body, and nothing else happens.
    pub fn fail_next(&self, method: &str, path: &str, status: u16, count: u32) {
        self.shared.lock().failures.push(Failure {
            method: method.to_ascii_uppercase(),
            path: route_of(path).unwrap_or(path).to_string(),
            status,
            left: count,
            after: false,
        });
    }

    /// Like `fail_next`, but each request is carried out first (an order is placed): only its
    /// answer is lost, as with a 5xx from a proxy behind which the venue did the work.
    pub fn fail_next_after(&self, method: &str, path: &str, status: u16, count: u32) {
        self.shared.lock().failures.push(Failure {
            method: method.to_ascii_uppercase(),
            path: route_of(path).unwrap_or(path).to_string(),
            status,
            left: count,
            after: true,
        });
    }

    /// Pushes a fill to the account's stream as the venue would, whatever order it names.
    pub fn push_fill(&self, account: Address, sub_account_id: u8, fill: WsFill) {
        let st = self.shared.lock();
        push_account(&st, account, sub_account_id, AccountUpdate::Fill(fill));
    }

    // ------------------------------------------------------------------------- inspection

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// The account's open orders, every sub-account and product, in arrival order.
    pub fn open_orders(&self, account: Address) -> Vec<VenueOrder> {
        let st = self.shared.lock();
        st.orders
            .iter()
            .filter(|r| r.owner == account && r.is_open())
            .map(|r| r.order.clone())
            .collect()
    }

    /// Every order the account placed, in any state, in arrival order.
    pub fn orders(&self, account: Address) -> Vec<VenueOrder> {
        let st = self.shared.lock();
        st.orders
            .iter()
            .filter(|r| r.owner == account)
            .map(|r| r.order.clone())
            .collect()
    }

    /// The nonce of every correctly signed order of the account, in arrival order, refused
    /// ones included: a repeat here is a reused nonce.
    pub fn nonces(&self, account: Address) -> Vec<u64> {
        self.shared
            .lock()
            .nonces
            .get(&account)
            .cloned()
            .unwrap_or_default()
    }

    /// Accepted cancel-all requests, (account, sub-account, product), in arrival order.
    pub fn cancel_alls(&self) -> Vec<(Address, u8, u32)> {
        self.shared.lock().cancel_alls.clone()
    }

    pub fn cancel_all_count(&self) -> usize {
        self.shared.lock().cancel_alls.len()
    }

    /// The account's non-zero positions, as `GET /positionRisk` answers them.
    pub fn positions(&self, account: Address) -> Vec<VenuePosition> {
        let st = self.shared.lock();
        positions_of(&self.shared, &st, account, None)
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.shared.lock().clients.len()
    }

    fn product_id(&self, symbol: &str) -> u32 {
        match self.shared.product_by_symbol(symbol) {
            Some(p) => p.id,
            None => panic!("the fake has no product {symbol:?}"),
        }
    }
}

fn exact(d: Decimal) -> E18 {
    match E18::from_decimal(d) {
        Some(v) => v,
        None => panic!("{d} is not a whole number of 1e-18"),
    }
}

/// Average entry price: kept while reducing, re-based on a flip, weighted while adding.
fn apply_fill(pos: &mut Position, signed_qty: Decimal, price: Decimal) {
    let old = pos.quantity;
    let new = old + signed_qty;
    let zero = Decimal::ZERO;
    if new == zero {
        pos.avg_entry = zero;
    } else if old == zero || (old > zero) == (signed_qty > zero) {
        pos.avg_entry =
            ((old.abs() * pos.avg_entry + signed_qty.abs() * price) / new.abs()).round_dp(18);
    } else if (old > zero) != (new > zero) {
        pos.avg_entry = price;
    }
    pos.quantity = new;
}

fn positions_of(s: &Shared, st: &State, account: Address, sub: Option<u8>) -> Vec<VenuePosition> {
    st.positions
        .iter()
        .filter(|((a, sa, _), p)| {
            *a == account && sub.is_none_or(|x| x == *sa) && p.quantity != Decimal::ZERO
        })
        .map(|((_, _, id), p)| VenuePosition {
            product_id: *id,
            product_symbol: s.product(*id).map(|p| p.symbol.clone()).unwrap_or_default(),
            quantity: e18(p.quantity),
            avg_entry_price: e18(p.avg_entry),
        })
        .collect()
}

fn push_account(st: &State, account: Address, sub: u8, update: AccountUpdate) {
    if st.lose_pushes {
        return;
    }
    let text = match st.envelope {
        AccountEnvelope::JsonRpc => to_json(&RpcMessage {
            jsonrpc: "2.0".into(),
            id: None,
            method: Some("account.updates".into()),
            result: None,
            error: None,
            params: Some(serde_json::to_value(&update).unwrap_or_default()),
        }),
        AccountEnvelope::Result => {
            let bare = match &update {
                AccountUpdate::Order(o) => serde_json::to_value(o),
                AccountUpdate::Fill(f) => serde_json::to_value(f),
                AccountUpdate::Position(p) => serde_json::to_value(p),
                AccountUpdate::Balance(b) => Ok(b.clone()),
            };
            market_reply("account.updates".into(), true, bare.unwrap_or_default())
        }
    };
    for c in st.clients.values() {
        if c.updates && c.login == Some((account, sub)) {
            let _ = c.tx.send(text.clone());
        }
    }
}

/// The merged book of a product: other traders' levels plus resting orders, best first.
fn depth(st: &State, product: u32, levels: usize) -> Depth {
    let mut bids: BTreeMap<i128, i128> = BTreeMap::new();
    let mut asks: BTreeMap<i128, i128> = BTreeMap::new();
    if let Some((b, a)) = st.books.get(&product) {
        for (p, q) in b {
            *bids.entry(p.0).or_default() += q.0;
        }
        for (p, q) in a {
            *asks.entry(p.0).or_default() += q.0;
        }
    }
    for r in st.orders.iter().filter(|r| r.is_open()) {
        if r.order.product_id == product {
            let side = if r.order.is_buy { &mut bids } else { &mut asks };
            *side.entry(r.order.price.0).or_default() += r.order.residual_quantity.0;
        }
    }
    let rows = |it: &mut dyn Iterator<Item = (&i128, &i128)>| {
        let mut cum = 0i128;
        it.take(levels)
            .map(|(p, q)| {
                cum += q;
                vec![E18(*p), E18(*q), E18(cum)]
            })
            .collect()
    };
    Depth {
        bids: rows(&mut bids.iter().rev()),
        asks: rows(&mut asks.iter()),
    }
}

fn on_tick(s: &Shared) {
    let mut st = s.lock();
    // Expire resting orders.
    let now = now_ms();
    let mut expired = Vec::new();
    for r in st.orders.iter_mut() {
        if r.is_open() && r.order.expiry <= now {
            r.order.status = OrderStatus::Expired;
            expired.push((r.owner, r.order.clone()));
        }
    }
    for (owner, o) in expired {
        push_account(&st, owner, o.sub_account_id, AccountUpdate::Order(o));
    }
    if st.paused {
        return;
    }
    let mut cache: BTreeMap<(u32, usize), String> = BTreeMap::new();
    for c in st.clients.values() {
        for (name, stream) in &c.streams {
            if let Stream::Depth { product, levels } = stream {
                let d = cache
                    .entry((*product, *levels))
                    .or_insert_with(|| to_json(&depth(&st, *product, *levels)));
                let _ = c.tx.send(format!(
                    r#"{{"id":{},"success":true,"result":{d}}}"#,
                    Value::String(name.clone())
                ));
            }
        }
    }
}

// ------------------------------------------------------------------------------------ REST

type Refusal = (u16, String);

fn refuse<T>(status: u16, why: impl Into<String>) -> Result<T, Refusal> {
    Err((status, why.into()))
}

/// `/v1/order` -> `/order`; `/order` stays; anything else is `None`.
fn route_of(path: &str) -> Option<&str> {
    match path.strip_prefix("/v1") {
        Some(rest) if rest.starts_with('/') => Some(rest),
        Some(_) => None,
        None if path.starts_with('/') => Some(path),
        None => None,
    }
}

async fn serve_rest(mut conn: TcpStream, s: Arc<Shared>) {
    let mut reader = RequestReader::new();
    while let Ok(Some(req)) = reader.next(&mut conn).await {
        let (status, headers, body) = handle_rest(&s, &req);
        if conn
            .write_all(&response(status, &headers, &body))
            .await
            .is_err()
        {
            break;
        }
    }
}

fn handle_rest(s: &Shared, req: &Request) -> (u16, Vec<(String, String)>, String) {
    let mut st = s.lock();
    let mut signer = None;
    let mut headers = Vec::new();
    let method = req.method.to_ascii_uppercase();
    let route = if req.path().starts_with("/v1/") {
        route_of(req.path())
    } else {
        None
    };
    let scripted = route.and_then(|r| {
        let f = st
            .failures
            .iter_mut()
            .find(|f| f.left > 0 && f.method == method && f.path == r)?;
        f.left -= 1;
        Some((f.status, f.after))
    });
    if let (Some((_, true)), Some(r)) = (scripted, route) {
        let _ = route_rest(s, &mut st, &method, r, req, &mut signer);
    }
    let result: Result<String, Refusal> = match (scripted.map(|(status, _)| status), route) {
        (Some(status), _) => {
            if status == 429 || status == 503 {
                headers.push(("retry-after".into(), s.cfg.retry_after_secs.to_string()));
            }
            let why = match status {
                429 => "too many requests",
                500 => "internal server error",
                503 => "service unavailable",
                _ => "scripted failure",
            };
            Err((status, why.into()))
        }
        (None, None) => refuse(404, format!("no route {method} {}", req.path())),
        (None, Some(r)) => route_rest(s, &mut st, &method, r, req, &mut signer),
    };
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err((status, why)) => (
            status,
            to_json(&Outcome {
                success: false,
                error: Some(why),
            }),
        ),
    };
    st.requests.push(Recorded {
        method,
        path: req.path().to_string(),
        query: req.query().to_string(),
        body: req.body.clone(),
        status,
        signer,
    });
    (status, headers, body)
}

fn route_rest(
    s: &Shared,
    st: &mut State,
    method: &str,
    route: &str,
    req: &Request,
    signer: &mut Option<Address>,
) -> Result<String, Refusal> {
    match (method, route) {
        ("GET", "/products") => Ok(to_json(&s.cfg.products)),
        ("GET", "/time") => Ok(to_json(&ServerTime {
            server_time: now_ms(),
        })),
        ("GET", "/depth") => {
            let Some(symbol) = req.query_param("symbol") else {
                return refuse(400, "symbol is required");
            };
            let Some(p) = s.product_by_symbol(&symbol) else {
                return refuse(400, format!("unknown symbol {symbol:?}"));
            };
            let limit = match req.query_param("limit") {
                None => 20,
                Some(l) => match l.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => n,
                    _ => return refuse(400, format!("bad limit {l:?}")),
                },
            };
            Ok(to_json(&depth(st, p.id, limit)))
        }
        ("POST", "/order") => {
            let o: OrderRequest = parse(&req.body)?;
            let account = check_order(s, st, &o, signer)?;
            let placed = admit(s, st, &o, account)?;
            Ok(to_json(&placed))
        }
        ("DELETE", "/order") => {
            let c: CancelRequest = parse(&req.body)?;
            let account = parse_account(&c.account)?;
            let msg = Message::CancelOrder {
                account,
                sub_account_id: c.sub_account_id,
                product_id: c.product_id,
                order_id: c.order_id.clone(),
            };
            verify(s, &msg, &c.signature, account, signer)?;
            let i = find_open(st, &c.order_id, account, c.sub_account_id)
                .filter(|&i| st.orders[i].order.product_id == c.product_id)
                .ok_or((400, format!("order {} not found", c.order_id)))?;
            cancel(st, i);
            Ok(to_json(&Outcome {
                success: true,
                error: None,
            }))
        }
        ("DELETE", "/openOrders") => {
            let c: CancelAllRequest = parse(&req.body)?;
            let account = parse_account(&c.account)?;
            let msg = Message::CancelOrders {
                account,
                sub_account_id: c.sub_account_id,
                product_id: c.product_id,
            };
            verify(s, &msg, &c.signature, account, signer)?;
            if s.product(c.product_id).is_none() {
                return refuse(400, format!("unknown product {}", c.product_id));
            }
            st.cancel_alls
                .push((account, c.sub_account_id, c.product_id));
            let open: Vec<usize> = (0..st.orders.len())
                .filter(|&i| {
                    let r = &st.orders[i];
                    r.is_open()
                        && r.owner == account
                        && r.order.sub_account_id == c.sub_account_id
                        && r.order.product_id == c.product_id
                })
                .collect();
            for i in open {
                cancel(st, i);
            }
            Ok(to_json(&Outcome {
                success: true,
                error: None,
            }))
        }
        ("POST", "/order/cancel-and-replace") => {
            let c: CancelReplaceRequest = parse(&req.body)?;
            let o = &c.new_order;
            let account = check_order(s, st, o, signer)?;
            let i = find_open(st, &c.id_to_cancel, account, o.sub_account_id)
                .ok_or((400, format!("order {} not found", c.id_to_cancel)))?;
            cancel(st, i);
            let placed = admit(s, st, o, account)?;
            Ok(to_json(&placed))
        }
        ("GET", "/openOrders") => {
            let (account, sub) = authenticate(s, req, signer)?;
            let product = req
                .query_param("productId")
                .and_then(|p| p.parse::<u32>().ok());
            let open: Vec<&VenueOrder> = st
                .orders
                .iter()
                .filter(|r| {
                    r.is_open()
                        && r.owner == account
                        && r.order.sub_account_id == sub
                        && product.is_none_or(|p| p == r.order.product_id)
                })
                .map(|r| &r.order)
                .collect();
            Ok(to_json(&open))
        }
        ("GET", "/positionRisk") => {
            let (account, sub) = authenticate(s, req, signer)?;
            Ok(to_json(&positions_of(s, st, account, Some(sub))))
        }
        _ => refuse(404, format!("no route {method} /v1{route}")),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Refusal> {
    serde_json::from_str(body).map_err(|e| (400, format!("invalid body: {e}")))
}

fn parse_account(s: &str) -> Result<Address, Refusal> {
    Address::parse(s).map_err(|_| (400, format!("invalid account {s:?}")))
}

/// Recovers the signer (recorded in `signer`) and requires it to be `account`.
fn verify(
    s: &Shared,
    msg: &Message,
    signature: &str,
    account: Address,
    signer: &mut Option<Address>,
) -> Result<(), Refusal> {
    let bytes = decode_hex(signature.trim()).ok_or((401, "invalid signature".to_string()))?;
    *signer = recover(&msg.digest(&s.cfg.domain), &bytes).ok();
    if *signer == Some(account) {
        Ok(())
    } else {
        refuse(401, "invalid signature")
    }
}

/// `GET` authentication: `account`, `subAccountId` and a `SignedAuthentication` signature.
fn authenticate(
    s: &Shared,
    req: &Request,
    signer: &mut Option<Address>,
) -> Result<(Address, u8), Refusal> {
    let account = req
        .query_param("account")
        .ok_or((400, "account is required".to_string()))?;
    let account = parse_account(&account)?;
    let sub = req
        .query_param("subAccountId")
        .and_then(|v| v.parse::<u8>().ok())
        .ok_or((400, "subAccountId is required".to_string()))?;
    let signature = req
        .query_param("signature")
        .ok_or((401, "signature is required".to_string()))?;
    let msg = Message::SignedAuthentication {
        account,
        sub_account_id: sub,
    };
    verify(s, &msg, &signature, account, signer)?;
    Ok((account, sub))
}

/// The signature and the nonce of an order; on success the nonce is consumed.
fn check_order(
    s: &Shared,
    st: &mut State,
    o: &OrderRequest,
    signer: &mut Option<Address>,
) -> Result<Address, Refusal> {
    let account = parse_account(&o.account)?;
    let (Ok(price), Ok(quantity)) = (u128::try_from(o.price.0), u128::try_from(o.quantity.0))
    else {
        return refuse(400, "price and quantity must be positive");
    };
    let msg = Message::Order(eip712::Order {
        account,
        sub_account_id: o.sub_account_id,
        product_id: o.product_id,
        is_buy: o.is_buy,
        order_type: o.order_type,
        time_in_force: o.time_in_force,
        expiration: o.expiration,
        price,
        quantity,
        nonce: o.nonce,
    });
    verify(s, &msg, &o.signature, account, signer)?;
    st.nonces.entry(account).or_default().push(o.nonce);
    if !st.used.insert((account, o.nonce)) {
        return refuse(400, "nonce already used");
    }
    Ok(account)
}

/// The rest of an order's checks; on success it rests and is pushed OPEN.
fn admit(
    s: &Shared,
    st: &mut State,
    o: &OrderRequest,
    account: Address,
) -> Result<VenueOrder, Refusal> {
    let Some(product) = s.product(o.product_id) else {
        return refuse(400, format!("unknown product {}", o.product_id));
    };
    if o.order_type != LIMIT && o.order_type != LIMIT_MAKER {
        return refuse(
            400,
            format!(
                "orderType {} is not supported by the fake (LIMIT 0 or LIMIT_MAKER 1)",
                o.order_type
            ),
        );
    }
    if o.time_in_force != GTC {
        return refuse(
            400,
            format!(
                "timeInForce {} is not supported by the fake (GTC 0)",
                o.time_in_force
            ),
        );
    }
    if o.price.0 <= 0 || o.quantity.0 <= 0 {
        return refuse(400, "price and quantity must be positive");
    }
    if product.increment.0 > 0 && o.price.0 % product.increment.0 != 0 {
        return refuse(400, "price is not a multiple of the product's increment");
    }
    if o.quantity < product.min_quantity {
        return refuse(400, "quantity is below the product's minQuantity");
    }
    let now = now_ms();
    if o.expiration <= now {
        return refuse(400, "order expired (expiration is Unix milliseconds)");
    }
    let d = depth(st, o.product_id, 1);
    let crosses = if o.is_buy {
        d.asks.first().is_some_and(|a| o.price >= a[0])
    } else {
        d.bids.first().is_some_and(|b| o.price <= b[0])
    };
    if crosses {
        return refuse(
            400,
            if o.order_type == LIMIT_MAKER {
                "post-only order would cross"
            } else {
                "order would cross; the fake does not match takers"
            },
        );
    }
    let sig = decode_hex(o.signature.trim()).unwrap_or_default();
    let order = VenueOrder {
        id: format!("0x{}", encode_hex(&keccak(&[&sig]))),
        account: account.checksummed(),
        sub_account_id: o.sub_account_id,
        product_id: o.product_id,
        product_symbol: product.symbol.clone(),
        is_buy: o.is_buy,
        order_type: o.order_type,
        time_in_force: o.time_in_force,
        price: o.price,
        quantity: o.quantity,
        residual_quantity: o.quantity,
        nonce: o.nonce,
        expiry: o.expiration,
        status: OrderStatus::Open,
        created_at: now,
    };
    st.orders.push(OrderRec {
        order: order.clone(),
        owner: account,
    });
    push_account(
        st,
        account,
        o.sub_account_id,
        AccountUpdate::Order(order.clone()),
    );
    Ok(order)
}

fn find_open(st: &State, id: &str, account: Address, sub: u8) -> Option<usize> {
    st.orders.iter().position(|r| {
        r.is_open()
            && r.order.id.eq_ignore_ascii_case(id)
            && r.owner == account
            && r.order.sub_account_id == sub
    })
}

fn cancel(st: &mut State, i: usize) {
    st.orders[i].order.status = OrderStatus::Cancelled;
    let (owner, o) = (st.orders[i].owner, st.orders[i].order.clone());
    push_account(st, owner, o.sub_account_id, AccountUpdate::Order(o));
}

// ------------------------------------------------------------------------------- WebSocket

async fn serve_ws(conn: TcpStream, s: Arc<Shared>) {
    // The error type is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check_path = |req: &http::Request<()>, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == WS_PATH {
            Ok(resp)
        } else {
            let mut refusal = ErrorResponse::new(Some(format!("no WebSocket at {}", req.uri())));
            *refusal.status_mut() = http::StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(conn, check_path).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut st = s.lock();
        st.next_client += 1;
        st.accepted += 1;
        let id = st.next_client;
        st.clients.insert(
            id,
            WsClient {
                tx,
                streams: BTreeMap::new(),
                login: None,
                updates: false,
            },
        );
        id
    };
    let (mut sink, mut source) = ws.split();
    loop {
        tokio::select! {
            frame = source.next() => {
                let reply = match frame {
                    Some(Ok(WsMessage::Text(t))) => handle_ws(&s, id, &t),
                    Some(Ok(WsMessage::Binary(b))) => handle_ws(&s, id, &String::from_utf8_lossy(&b)),
                    Some(Ok(WsMessage::Ping(p))) => {
                        if sink.send(WsMessage::Pong(p)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(Ok(WsMessage::Pong(_))) | Some(Ok(WsMessage::Frame(_))) => continue,
                    Some(Ok(WsMessage::Close(_))) => {
                        let _ = sink.flush().await;
                        break;
                    }
                    Some(Err(_)) | None => break,
                };
                if sink.send(WsMessage::Text(reply)).await.is_err() {
                    break;
                }
            }
            out = rx.recv() => match out {
                Some(text) => {
                    if sink.send(WsMessage::Text(text)).await.is_err() {
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

fn rpc_reply(id: Option<String>, result: Result<Value, RpcError>) -> String {
    let (result, error) = match result {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    to_json(&RpcMessage {
        jsonrpc: "2.0".into(),
        id,
        method: None,
        result,
        error,
        params: None,
    })
}

fn rpc_error(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

fn market_reply(id: String, success: bool, result: Value) -> String {
    to_json(&StreamPush {
        id,
        success,
        result,
    })
}

/// One text frame in, one reply out.
fn handle_ws(s: &Shared, client: u64, text: &str) -> String {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return rpc_reply(None, Err(rpc_error(-32700, "parse error"))),
    };
    let is_subscription = v.get("method").and_then(Value::as_str).is_some_and(|m| {
        m.eq_ignore_ascii_case("SUBSCRIBE") || m.eq_ignore_ascii_case("UNSUBSCRIBE")
    });
    if v.get("jsonrpc").is_some() && !is_subscription {
        return handle_rpc(s, client, v);
    }
    if is_subscription {
        let st = s.lock();
        let without = v.get("jsonrpc").and_then(Value::as_str) != Some("2.0");
        if st.refuse_subscriptions || (st.require_jsonrpc && without) {
            let id = v.get("id").and_then(Value::as_str).map(str::to_string);
            let why = if st.refuse_subscriptions {
                "subscriptions are refused"
            } else {
                "invalid request: missing field `jsonrpc`"
            };
            return rpc_reply(id, Err(rpc_error(-32600, why)));
        }
    }
    let id_of = |v: &Value| match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let method = v
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase();
    if method != "SUBSCRIBE" && method != "UNSUBSCRIBE" {
        return market_reply(
            id_of(&v),
            false,
            json!("unsupported message: expected SUBSCRIBE, UNSUBSCRIBE or JSON-RPC 2.0"),
        );
    }
    let sub: Subscribe = match serde_json::from_value(v.clone()) {
        Ok(sub) => sub,
        Err(e) => return market_reply(id_of(&v), false, json!(format!("invalid {method}: {e}"))),
    };
    let mut streams = Vec::new();
    for name in &sub.params {
        match parse_stream(s, name) {
            Some(st) => streams.push((name.clone(), st)),
            None => return market_reply(sub.id, false, json!(format!("unknown stream {name:?}"))),
        }
    }
    let mut st = s.lock();
    if let Some(c) = st.clients.get_mut(&client) {
        for (name, stream) in streams {
            if method == "SUBSCRIBE" {
                c.streams.insert(name, stream);
            } else {
                c.streams.remove(&name);
            }
        }
    }
    market_reply(sub.id, true, Value::Null)
}

/// `<symbol>@trade`, `<symbol>@depth<N>` or `<symbol>@depth<N>_<anything>`.
fn parse_stream(s: &Shared, name: &str) -> Option<Stream> {
    let (symbol, kind) = name.split_once('@')?;
    let product = s.product_by_symbol(symbol)?.id;
    if kind == "trade" {
        return Some(Stream::Trade { product });
    }
    let n = kind.strip_prefix("depth")?;
    let n = n.split_once('_').map_or(n, |(n, _)| n);
    match n.parse::<usize>() {
        Ok(levels) if levels > 0 => Some(Stream::Depth { product, levels }),
        _ => None,
    }
}

fn handle_rpc(s: &Shared, client: u64, v: Value) -> String {
    let req: RpcRequest = match serde_json::from_value(v.clone()) {
        Ok(r) => r,
        Err(e) => {
            let id = v.get("id").and_then(Value::as_str).map(str::to_string);
            return rpc_reply(id, Err(rpc_error(-32600, format!("invalid request: {e}"))));
        }
    };
    let id = Some(req.id.clone());
    let ok = json!({"success": true});
    match req.method.as_str() {
        "session.login" => {
            let p: LoginParams = match serde_json::from_value(req.params) {
                Ok(p) => p,
                Err(e) => {
                    return rpc_reply(id, Err(rpc_error(-32602, format!("invalid params: {e}"))))
                }
            };
            let Ok(account) = Address::parse(&p.account) else {
                return rpc_reply(id, Err(rpc_error(-32602, "invalid account")));
            };
            let msg = Message::SignedAuthentication {
                account,
                sub_account_id: p.sub_account_id,
            };
            let mut signer = None;
            if verify(s, &msg, &p.signature, account, &mut signer).is_err() {
                return rpc_reply(id, Err(rpc_error(-32001, "invalid signature")));
            }
            if let Some(c) = s.lock().clients.get_mut(&client) {
                c.login = Some((account, p.sub_account_id));
                c.updates = false;
            }
            rpc_reply(id, Ok(ok))
        }
        "account.updates" => {
            let p: AccountParams = match serde_json::from_value(req.params) {
                Ok(p) => p,
                Err(e) => {
                    return rpc_reply(id, Err(rpc_error(-32602, format!("invalid params: {e}"))))
                }
            };
            let Ok(account) = Address::parse(&p.account) else {
                return rpc_reply(id, Err(rpc_error(-32602, "invalid account")));
            };
            let mut st = s.lock();
            match st.clients.get_mut(&client) {
                Some(c) if c.login == Some((account, p.sub_account_id)) => {
                    c.updates = true;
                    rpc_reply(id, Ok(ok))
                }
                _ => rpc_reply(
                    id,
                    Err(rpc_error(
                        -32002,
                        "not logged in as this account (session.login first)",
                    )),
                ),
            }
        }
        "ping" => rpc_reply(id, Ok(json!("pong"))),
        other => rpc_reply(
            id,
            Err(rpc_error(-32601, format!("method {other:?} not found"))),
        ),
    }
}
