//! The fake Citrex (REST + WebSocket) and the fake Sei EVM WebSocket, driven with raw clients:
//! reqwest, tokio-tungstenite and the EIP-712 signer. What the live client will meet.

use crate::common::PATIENCE;
use flashmm_testkit::citrex::{FakeCitrex, FakeConfig, LIMIT, LIMIT_MAKER};
use flashmm_testkit::sei::FakeSei;
use flashmm_venue::citrex::eip712::{self, encode_hex, keccak, Address, Domain, Message, Signer};
use flashmm_venue::citrex::wire::{
    AccountUpdate, CancelAllRequest, CancelReplaceRequest, CancelRequest, Depth, OrderRequest,
    OrderStatus, Outcome, Product, RpcMessage, ServerTime, StreamPush, VenueOrder, VenuePosition,
    WsTrade, E18,
};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const KEY1: &str = "0x36f973d09569752528d6d2033f635b57dad67d3c3d1a42cb196010b266d52c4f";
const KEY2: &str = "0x823556342401436a0a5e011b5ee56604a64749f9e93e743c6da2e935914a9e1e";
const SUB: u8 = 1;
const BTC: u32 = 1003;

fn me() -> Signer {
    Signer::from_hex(KEY1).unwrap()
}

fn someone_else() -> Signer {
    Signer::from_hex(KEY2).unwrap()
}

fn cfg() -> FakeConfig {
    FakeConfig {
        depth_interval_ms: 50,
        ..FakeConfig::default()
    }
}

fn e18(d: Decimal) -> E18 {
    E18::from_decimal(d).unwrap()
}

fn sig_hex(s: [u8; 65]) -> String {
    format!("0x{}", encode_hex(&s))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An order for `account`, signed by `by`.
#[allow(clippy::too_many_arguments)]
fn order_as(
    by: &Signer,
    account: Address,
    domain: &Domain,
    is_buy: bool,
    order_type: u8,
    price: Decimal,
    qty: Decimal,
    nonce: u64,
) -> OrderRequest {
    let o = OrderRequest {
        account: account.checksummed(),
        sub_account_id: SUB,
        product_id: BTC,
        is_buy,
        order_type,
        time_in_force: 0,
        expiration: now_ms() + 600_000,
        nonce,
        price: e18(price),
        quantity: e18(qty),
        signature: String::new(),
    };
    sign_order(by, domain, o)
}

/// Signs `o` (whatever its fields) with `by`.
fn sign_order(by: &Signer, domain: &Domain, mut o: OrderRequest) -> OrderRequest {
    let msg = Message::Order(eip712::Order {
        account: Address::parse(&o.account).unwrap(),
        sub_account_id: o.sub_account_id,
        product_id: o.product_id,
        is_buy: o.is_buy,
        order_type: o.order_type,
        time_in_force: o.time_in_force,
        expiration: o.expiration,
        price: o.price.0 as u128,
        quantity: o.quantity.0 as u128,
        nonce: o.nonce,
    });
    o.signature = sig_hex(by.sign(&msg, domain));
    o
}

fn order(domain: &Domain, is_buy: bool, price: Decimal, qty: Decimal, nonce: u64) -> OrderRequest {
    let s = me();
    order_as(
        &s,
        s.address(),
        domain,
        is_buy,
        LIMIT_MAKER,
        price,
        qty,
        nonce,
    )
}

fn cancel_req(domain: &Domain, order_id: &str) -> CancelRequest {
    let s = me();
    let msg = Message::CancelOrder {
        account: s.address(),
        sub_account_id: SUB,
        product_id: BTC,
        order_id: order_id.into(),
    };
    CancelRequest {
        account: s.address().checksummed(),
        order_id: order_id.into(),
        product_id: BTC,
        sub_account_id: SUB,
        signature: sig_hex(s.sign(&msg, domain)),
    }
}

fn auth_sig(by: &Signer, account: Address, domain: &Domain) -> String {
    sig_hex(by.sign(
        &Message::SignedAuthentication {
            account,
            sub_account_id: SUB,
        },
        domain,
    ))
}

async fn venue() -> (FakeCitrex, reqwest::Client) {
    let fake = FakeCitrex::start(cfg()).await.unwrap();
    fake.set_book(
        "btcperp",
        vec![(dec!(59990), dec!(1.5)), (dec!(59980), dec!(2))],
        vec![(dec!(60010), dec!(1)), (dec!(60020), dec!(3))],
    );
    (fake, reqwest::Client::new())
}

/// Status and JSON body.
async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_order(fake: &FakeCitrex, http: &reqwest::Client, o: &OrderRequest) -> (u16, Value) {
    send(http.post(format!("{}/order", fake.rest_url())).json(o)).await
}

async fn recv(ws: &mut Socket) -> Value {
    recv_within(ws, PATIENCE)
        .await
        .unwrap_or_else(|| panic!("no message within {PATIENCE:?}"))
}

/// The next text frame as JSON; `None` on timeout.
async fn recv_within(ws: &mut Socket, t: Duration) -> Option<Value> {
    recv_until(ws, TokioInstant::now() + t).await
}

/// Fails on any frame within `window` that `leftover` does not accept. The fakes answer a
/// request straight away but queue their pushes, so pushes made before the change under test
/// can still arrive after its answer, and on a loaded machine after any quiet spell: they are
/// told apart by content instead. Silence can only be sampled: a slow machine makes this check
/// weaker, never wrong.
async fn assert_quiet(
    ws: &mut Socket,
    window: Duration,
    leftover: impl Fn(&Value) -> bool,
    what: &str,
) {
    let end = TokioInstant::now() + window;
    while let Some(v) = recv_until(ws, end).await {
        assert!(leftover(&v), "{what}: {v}");
    }
}

async fn recv_until(ws: &mut Socket, deadline: TokioInstant) -> Option<Value> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Ws::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("socket ended: {other:?}"),
        }
    }
}

async fn send_ws(ws: &mut Socket, v: Value) {
    ws.send(Ws::Text(v.to_string())).await.unwrap();
}

/// A socket logged in as `me()` and subscribed to its account updates.
async fn account_socket(fake: &FakeCitrex) -> Socket {
    let (mut ws, _) = connect_async(fake.ws_url()).await.unwrap();
    let s = me();
    let domain = &fake.config().domain;
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"1","method":"session.login",
               "params":{"account": s.address().checksummed(), "subAccountId": SUB,
                         "signature": auth_sig(&s, s.address(), domain)}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"jsonrpc":"2.0","id":"1","result":{"success":true}})
    );
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"2","method":"account.updates",
               "params":{"account": s.address().checksummed(), "subAccountId": SUB}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"jsonrpc":"2.0","id":"2","result":{"success":true}})
    );
    ws
}

async fn update(ws: &mut Socket) -> AccountUpdate {
    let m: RpcMessage = serde_json::from_value(recv(ws).await).unwrap();
    assert_eq!(m.method.as_deref(), Some("account.updates"));
    serde_json::from_value(m.params.unwrap()).unwrap()
}

async fn order_update(ws: &mut Socket) -> VenueOrder {
    match update(ws).await {
        AccountUpdate::Order(o) => o,
        other => panic!("expected an order update, got {other:?}"),
    }
}

/// The best bid of a depth push; `None` for anything else.
fn best_bid_of(v: &Value) -> Option<E18> {
    let push: StreamPush = serde_json::from_value(v.clone()).ok()?;
    if !push.id.contains("@depth") {
        return None;
    }
    let d: Depth = serde_json::from_value(push.result).ok()?;
    d.bids.first()?.first().copied()
}

fn error_of(body: &Value) -> &str {
    assert_eq!(body["success"], json!(false), "{body}");
    body["error"].as_str().unwrap()
}

// ------------------------------------------------------------------------------------ REST

#[tokio::test]
async fn public_rest_endpoints() {
    let (fake, http) = venue().await;
    let base = fake.rest_url();
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"));

    let (status, body) = send(http.get(format!("{base}/products"))).await;
    assert_eq!(status, 200);
    let products: Vec<Product> = serde_json::from_value(body).unwrap();
    assert!(products
        .iter()
        .any(|p| p.id == BTC && p.symbol == "btcperp"));

    let (_, body) = send(http.get(format!("{base}/time"))).await;
    let t: ServerTime = serde_json::from_value(body).unwrap();
    assert!(t.server_time.abs_diff(now_ms()) < 5_000);

    let (status, body) = send(http.get(format!("{base}/depth?symbol=btcperp&limit=5"))).await;
    assert_eq!(status, 200);
    let d: Depth = serde_json::from_value(body).unwrap();
    let row = |p, q, c| vec![e18(p), e18(q), e18(c)];
    assert_eq!(
        d.bids,
        vec![
            row(dec!(59990), dec!(1.5), dec!(1.5)),
            row(dec!(59980), dec!(2), dec!(3.5))
        ]
    );
    assert_eq!(
        d.asks,
        vec![
            row(dec!(60010), dec!(1), dec!(1)),
            row(dec!(60020), dec!(3), dec!(4))
        ]
    );
    let (_, body) = send(http.get(format!("{base}/depth?symbol=BTCPERP&limit=1"))).await;
    assert_eq!(serde_json::from_value::<Depth>(body).unwrap().asks.len(), 1);

    let (status, body) = send(http.get(format!("{base}/depth?symbol=dogeperp"))).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("unknown symbol"));
    let (status, body) = send(http.get(format!("{base}/nowhere"))).await;
    assert_eq!(status, 404);
    error_of(&body);
}

#[tokio::test]
async fn a_good_order_rests_and_is_pushed() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    let mut ws = account_socket(&fake).await;
    let o = order(&domain, true, dec!(59995), dec!(0.01), 7);
    let (status, body) = post_order(&fake, &http, &o).await;
    assert_eq!(status, 200, "{body}");
    let placed: VenueOrder = serde_json::from_value(body).unwrap();
    let sig = eip712::decode_hex(&o.signature).unwrap();
    assert_eq!(placed.id, format!("0x{}", encode_hex(&keccak(&[&sig]))));
    assert_eq!(placed.status, OrderStatus::Open);
    assert_eq!(placed.residual_quantity, o.quantity);
    assert_eq!(
        (placed.price, placed.nonce, placed.product_id),
        (o.price, 7, BTC)
    );

    assert_eq!(order_update(&mut ws).await, placed);
    let addr = me().address();
    assert_eq!(fake.open_orders(addr), vec![placed.clone()]);
    assert_eq!(fake.nonces(addr), vec![7]);
    let rec = fake.requests().pop().unwrap();
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str()),
        ("POST", "/v1/order")
    );
    assert_eq!((rec.status, rec.signer), (200, Some(addr)));
    assert_eq!(rec.body, serde_json::to_string(&o).unwrap());

    // The book now shows it, and GET /openOrders returns it to its owner.
    let (_, body) = send(http.get(format!("{}/depth?symbol=btcperp", fake.rest_url()))).await;
    let d: Depth = serde_json::from_value(body).unwrap();
    assert_eq!(d.bids[0][0..2], [e18(dec!(59995)), e18(dec!(0.01))]);
    let auth = auth_sig(&me(), addr, &domain);
    let url = format!(
        "{}/openOrders?account={}&subAccountId={SUB}&signature={auth}",
        fake.rest_url(),
        addr.checksummed()
    );
    let (status, body) = send(http.get(&url)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_value::<Vec<VenueOrder>>(body).unwrap(),
        vec![placed]
    );
    // Someone else's authentication does not open our orders.
    let forged = auth_sig(&someone_else(), addr, &domain);
    let (status, body) = send(http.get(url.replace(&auth, &forged))).await;
    assert_eq!(status, 401);
    assert_eq!(error_of(&body), "invalid signature");
}

#[tokio::test]
async fn a_wrong_signer_is_refused_with_401() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    let mine = me().address();
    let o = order_as(
        &someone_else(),
        mine,
        &domain,
        true,
        LIMIT_MAKER,
        dec!(59000),
        dec!(0.01),
        1,
    );
    let (status, body) = post_order(&fake, &http, &o).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "invalid signature", "success": false})
    );
    let rec = fake.requests().pop().unwrap();
    assert_eq!(
        (rec.status, rec.signer),
        (401, Some(someone_else().address()))
    );
    assert!(fake.open_orders(mine).is_empty());
    assert!(fake.nonces(mine).is_empty(), "a forged order uses no nonce");

    // Signed for another domain (testnet key, mainnet chain id): also refused.
    let mainnet = Domain {
        chain_id: 1329,
        ..domain.clone()
    };
    let o = order(&mainnet, true, dec!(59000), dec!(0.01), 2);
    assert_eq!(post_order(&fake, &http, &o).await.0, 401);
    // A tampered field breaks the signature.
    let mut o = order(&domain, true, dec!(59000), dec!(0.01), 3);
    o.quantity = e18(dec!(0.02));
    assert_eq!(post_order(&fake, &http, &o).await.0, 401);
    // Garbage for a signature.
    o.signature = "0x1234".into();
    assert_eq!(post_order(&fake, &http, &o).await.0, 401);

    // And on the WebSocket, a login signed by someone else is an error.
    let (mut ws, _) = connect_async(fake.ws_url()).await.unwrap();
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"a","method":"session.login",
               "params":{"account": mine.checksummed(), "subAccountId": SUB,
                         "signature": auth_sig(&someone_else(), mine, &domain)}}),
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["id"], json!("a"));
    assert_eq!(reply["error"]["code"], json!(-32001));
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"b","method":"account.updates",
               "params":{"account": mine.checksummed(), "subAccountId": SUB}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["error"]["code"], json!(-32002));
}

#[tokio::test]
async fn a_reused_nonce_is_refused() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    let a = order(&domain, true, dec!(59000), dec!(0.01), 42);
    assert_eq!(post_order(&fake, &http, &a).await.0, 200);
    // Same nonce, different order.
    let b = order(&domain, false, dec!(61000), dec!(0.01), 42);
    let (status, body) = post_order(&fake, &http, &b).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&body), "nonce already used");
    assert_eq!(fake.nonces(me().address()), vec![42, 42]);
    assert_eq!(fake.open_orders(me().address()).len(), 1);
    // The nonce is per account: another account may use 42.
    let other = someone_else();
    let c = order_as(
        &other,
        other.address(),
        &domain,
        true,
        LIMIT_MAKER,
        dec!(59000),
        dec!(0.01),
        42,
    );
    assert_eq!(post_order(&fake, &http, &c).await.0, 200);
}

#[tokio::test]
async fn off_tick_small_expired_and_unsupported_orders_are_refused_and_orders_expire() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    // btcperp ticks by 1.
    let (status, body) = post_order(
        &fake,
        &http,
        &order(&domain, true, dec!(59000.5), dec!(0.01), 1),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("increment"), "{body}");
    // minQuantity 0.001.
    let (status, body) = post_order(
        &fake,
        &http,
        &order(&domain, true, dec!(59000), dec!(0.0005), 2),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("minQuantity"), "{body}");
    // A crossing plain LIMIT is refused too: the fake does not match takers.
    let s = me();
    let o = order_as(
        &s,
        s.address(),
        &domain,
        true,
        LIMIT,
        dec!(60010),
        dec!(0.01),
        3,
    );
    assert_eq!(post_order(&fake, &http, &o).await.0, 400);
    assert!(fake.open_orders(s.address()).is_empty());
    // Expired, or in seconds rather than milliseconds; MARKET; IOC.
    let base = order(&domain, true, dec!(59000), dec!(0.01), 4);
    let refused = [
        OrderRequest {
            expiration: now_ms() - 1,
            ..base.clone()
        },
        OrderRequest {
            expiration: now_ms() / 1000 + 600,
            nonce: 5,
            ..base.clone()
        },
        OrderRequest {
            order_type: 2,
            nonce: 6,
            ..base.clone()
        },
        OrderRequest {
            time_in_force: 2,
            nonce: 7,
            ..base.clone()
        },
    ];
    for o in refused {
        let (status, body) = post_order(&fake, &http, &sign_order(&s, &domain, o)).await;
        assert_eq!(status, 400, "{body}");
    }
    assert!(fake.open_orders(s.address()).is_empty());
    assert_eq!(fake.nonces(s.address()), vec![1, 2, 3, 4, 5, 6, 7]);

    // An order past its expiration while resting is pushed EXPIRED.
    let mut ws = account_socket(&fake).await;
    let soon = OrderRequest {
        expiration: now_ms() + 150,
        nonce: 8,
        ..base
    };
    assert_eq!(
        post_order(&fake, &http, &sign_order(&s, &domain, soon))
            .await
            .0,
        200
    );
    assert_eq!(order_update(&mut ws).await.status, OrderStatus::Open);
    assert_eq!(order_update(&mut ws).await.status, OrderStatus::Expired);
    assert!(fake.open_orders(s.address()).is_empty());
    // A body that is not an order.
    let (status, body) = send(
        http.post(format!("{}/order", fake.rest_url()))
            .body("{\"nope\":1}")
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("invalid body"));
}

#[tokio::test]
async fn a_crossing_post_only_order_is_refused() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    for (is_buy, price) in [
        (true, dec!(60010)),
        (true, dec!(60500)),
        (false, dec!(59990)),
        (false, dec!(59000)),
    ] {
        let (status, body) = post_order(
            &fake,
            &http,
            &order(
                &domain,
                is_buy,
                price,
                dec!(0.01),
                price.mantissa() as u64 + is_buy as u64,
            ),
        )
        .await;
        assert_eq!(status, 400, "{is_buy} {price}");
        assert_eq!(error_of(&body), "post-only order would cross");
    }
    // One tick inside the spread on either side rests.
    assert_eq!(
        post_order(
            &fake,
            &http,
            &order(&domain, true, dec!(60009), dec!(0.01), 1)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post_order(
            &fake,
            &http,
            &order(&domain, false, dec!(60008), dec!(0.01), 2)
        )
        .await
        .0,
        400,
        "our own bid is in the book"
    );
    assert_eq!(
        post_order(
            &fake,
            &http,
            &order(&domain, false, dec!(60010), dec!(0.01), 3)
        )
        .await
        .0,
        200
    );
    // The book moves (set_book): a bid at the new ask is refused.
    fake.set_book(
        "btcperp",
        vec![(dec!(59000), dec!(1))],
        vec![(dec!(59500), dec!(1))],
    );
    let (status, _) = post_order(
        &fake,
        &http,
        &order(&domain, true, dec!(59500), dec!(0.01), 4),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn cancel_cancel_all_and_replace_push_updates() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    let base = fake.rest_url();
    let addr = me().address();
    let mut ws = account_socket(&fake).await;
    let mut ids = Vec::new();
    for (n, price) in [dec!(59900), dec!(59901), dec!(59902)]
        .into_iter()
        .enumerate()
    {
        let (status, body) = post_order(
            &fake,
            &http,
            &order(&domain, true, price, dec!(0.01), n as u64 + 1),
        )
        .await;
        assert_eq!(status, 200);
        ids.push(serde_json::from_value::<VenueOrder>(body).unwrap().id);
        assert_eq!(order_update(&mut ws).await.status, OrderStatus::Open);
    }

    // Cancel one.
    let (status, body) = send(
        http.delete(format!("{base}/order"))
            .json(&cancel_req(&domain, &ids[0])),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_value::<Outcome>(body).unwrap(),
        Outcome {
            success: true,
            error: None
        }
    );
    let o = order_update(&mut ws).await;
    assert_eq!(
        (o.id.as_str(), o.status),
        (ids[0].as_str(), OrderStatus::Cancelled)
    );
    // Again: it is gone.
    let (status, body) = send(
        http.delete(format!("{base}/order"))
            .json(&cancel_req(&domain, &ids[0])),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("not found"));
    let (status, _) = send(
        http.delete(format!("{base}/order"))
            .json(&cancel_req(&domain, "0xdead")),
    )
    .await;
    assert_eq!(status, 400);
    // A cancel signed by someone else.
    let mut forged = cancel_req(&domain, &ids[1]);
    forged.signature = sig_hex(someone_else().sign(
        &Message::CancelOrder {
            account: addr,
            sub_account_id: SUB,
            product_id: BTC,
            order_id: ids[1].clone(),
        },
        &domain,
    ));
    assert_eq!(
        send(http.delete(format!("{base}/order")).json(&forged))
            .await
            .0,
        401
    );

    // Cancel-and-replace ids[1] with a new order.
    let new = order(&domain, true, dec!(59950), dec!(0.02), 10);
    let req = CancelReplaceRequest {
        id_to_cancel: ids[1].clone(),
        new_order: new.clone(),
    };
    let (status, body) = send(
        http.post(format!("{base}/order/cancel-and-replace"))
            .json(&req),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let replaced: VenueOrder = serde_json::from_value(body).unwrap();
    assert_eq!(
        (replaced.price, replaced.nonce, replaced.status),
        (new.price, 10, OrderStatus::Open)
    );
    let o = order_update(&mut ws).await;
    assert_eq!(
        (o.id.as_str(), o.status),
        (ids[1].as_str(), OrderStatus::Cancelled)
    );
    assert_eq!(order_update(&mut ws).await, replaced);
    // Replacing an order that is no longer open is refused, and nothing is placed.
    let req = CancelReplaceRequest {
        id_to_cancel: ids[1].clone(),
        new_order: order(&domain, true, dec!(59951), dec!(0.02), 11),
    };
    assert_eq!(
        send(
            http.post(format!("{base}/order/cancel-and-replace"))
                .json(&req)
        )
        .await
        .0,
        400
    );
    assert_eq!(fake.open_orders(addr).len(), 2);

    // Cancel-all for the product.
    let msg = Message::CancelOrders {
        account: addr,
        sub_account_id: SUB,
        product_id: BTC,
    };
    let all = CancelAllRequest {
        account: addr.checksummed(),
        product_id: BTC,
        sub_account_id: SUB,
        signature: sig_hex(me().sign(&msg, &domain)),
    };
    let (status, body) = send(http.delete(format!("{base}/openOrders")).json(&all)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true}));
    let mut cancelled = [order_update(&mut ws).await, order_update(&mut ws).await];
    cancelled.sort_by(|a, b| a.id.cmp(&b.id));
    assert!(cancelled.iter().all(|o| o.status == OrderStatus::Cancelled));
    assert!(fake.open_orders(addr).is_empty());
    assert_eq!(fake.cancel_all_count(), 1);
    assert_eq!(fake.cancel_alls(), vec![(addr, SUB, BTC)]);
    assert_eq!(fake.orders(addr).len(), 4);
    // A forged cancel-all does not count.
    let bad = CancelAllRequest {
        signature: sig_hex(someone_else().sign(&msg, &domain)),
        ..all
    };
    assert_eq!(
        send(http.delete(format!("{base}/openOrders")).json(&bad))
            .await
            .0,
        401
    );
    assert_eq!(fake.cancel_all_count(), 1);
}

#[tokio::test]
async fn a_trade_through_a_resting_bid_fills_it_partially_then_fully() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    let addr = me().address();
    let mut ws = account_socket(&fake).await;
    let (_, body) = post_order(
        &fake,
        &http,
        &order(&domain, true, dec!(59995), dec!(0.5), 1),
    )
    .await;
    let bid: VenueOrder = serde_json::from_value(body).unwrap();
    order_update(&mut ws).await;
    // Also an ask, which a selling taker does not touch.
    post_order(
        &fake,
        &http,
        &order(&domain, false, dec!(60005), dec!(0.5), 2),
    )
    .await;
    order_update(&mut ws).await;

    // A sell above our bid does not reach it. (Were it to, its fill would also come before the
    // next trade's, which is checked below; so a slow machine cannot fool this.)
    fake.trade("btcperp", dec!(59996), dec!(1), false);
    assert!(recv_within(&mut ws, Duration::from_millis(200))
        .await
        .is_none());

    // 0.2 through our bid.
    fake.trade("btcperp", dec!(59995), dec!(0.2), false);
    let AccountUpdate::Fill(f) = update(&mut ws).await else {
        panic!("a fill first")
    };
    assert_eq!(
        (f.order_id.as_str(), f.is_buy, f.is_maker),
        (bid.id.as_str(), true, true)
    );
    assert_eq!(
        (f.price, f.quantity, f.residual_quantity),
        (e18(dec!(59995)), e18(dec!(0.2)), e18(dec!(0.3)))
    );
    // Maker fee 1 bp of 59995 x 0.2.
    assert_eq!(f.fee.to_decimal(), dec!(1.1999));
    let o = order_update(&mut ws).await;
    assert_eq!(
        (o.status, o.residual_quantity),
        (OrderStatus::Open, e18(dec!(0.3)))
    );
    let AccountUpdate::Position(p) = update(&mut ws).await else {
        panic!("then the position")
    };
    assert_eq!(
        (p.product_id, p.quantity, p.avg_entry_price),
        (BTC, e18(dec!(0.2)), e18(dec!(59995)))
    );

    // 1.0 at 59990 goes through the rest of it.
    fake.trade("btcperp", dec!(59990), dec!(1), false);
    let AccountUpdate::Fill(f) = update(&mut ws).await else {
        panic!("a fill")
    };
    assert_eq!(
        (f.price, f.quantity, f.residual_quantity),
        (e18(dec!(59995)), e18(dec!(0.3)), E18(0))
    );
    assert_ne!(f.trade_id, "");
    let o = order_update(&mut ws).await;
    assert_eq!(
        (o.status, o.residual_quantity),
        (OrderStatus::Filled, E18(0))
    );
    let AccountUpdate::Position(p) = update(&mut ws).await else {
        panic!("the position")
    };
    assert_eq!(p.quantity, e18(dec!(0.5)));

    // The venue reports it too.
    let expected = vec![VenuePosition {
        product_id: BTC,
        product_symbol: "btcperp".into(),
        quantity: e18(dec!(0.5)),
        avg_entry_price: e18(dec!(59995)),
    }];
    assert_eq!(fake.positions(addr), expected);
    let url = format!(
        "{}/positionRisk?account={}&subAccountId={SUB}&signature={}",
        fake.rest_url(),
        addr.checksummed(),
        auth_sig(&me(), addr, &domain)
    );
    let (status, body) = send(http.get(url)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_value::<Vec<VenuePosition>>(body).unwrap(),
        expected
    );
    assert_eq!(fake.open_orders(addr).len(), 1, "the ask still rests");

    // A buying taker lifts the ask: the position shrinks, its entry price stays.
    fake.trade("btcperp", dec!(60100), dec!(0.1), true);
    let AccountUpdate::Fill(f) = update(&mut ws).await else {
        panic!("a fill")
    };
    assert_eq!(
        (f.is_buy, f.price, f.quantity),
        (false, e18(dec!(60005)), e18(dec!(0.1)))
    );
    order_update(&mut ws).await;
    let AccountUpdate::Position(p) = update(&mut ws).await else {
        panic!("the position")
    };
    assert_eq!(
        (p.quantity, p.avg_entry_price),
        (e18(dec!(0.4)), e18(dec!(59995)))
    );
}

// ------------------------------------------------------------------------------- WebSocket

#[tokio::test]
async fn depth_and_trades_stream_and_stop_when_paused() {
    let (fake, _http) = venue().await;
    assert!(
        fake.ws_url().starts_with("ws://127.0.0.1:") && fake.ws_url().ends_with("/v1/ws/operate")
    );
    let (mut ws, _) = connect_async(fake.ws_url()).await.unwrap();
    send_ws(
        &mut ws,
        json!({"method":"SUBSCRIBE","params":["btcperp@depth20_10","btcperp@trade"],"id":"1"}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"id":"1","success":true,"result":null})
    );

    // Depth snapshots at about the interval (50 ms).
    let start = Instant::now();
    for _ in 0..6 {
        let push: StreamPush = serde_json::from_value(recv(&mut ws).await).unwrap();
        assert_eq!(
            (push.id.as_str(), push.success),
            ("btcperp@depth20_10", true)
        );
        let d: Depth = serde_json::from_value(push.result).unwrap();
        assert_eq!(
            d.bids[0],
            vec![e18(dec!(59990)), e18(dec!(1.5)), e18(dec!(1.5))]
        );
        assert_eq!(d.asks.len(), 2);
    }
    // Five intervals at least between the first and the sixth. No upper bound: a loaded
    // machine delays the ticks, and a stream that stops fails `recv`.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");

    // A public trade.
    fake.trade("btcperp", dec!(60010), dec!(0.3), true);
    let trade = loop {
        let push: StreamPush = serde_json::from_value(recv(&mut ws).await).unwrap();
        if push.id == "btcperp@trade" {
            break push;
        }
    };
    let trades: Vec<WsTrade> = serde_json::from_value(trade.result).unwrap();
    assert_eq!(
        (
            trades[0].price,
            trades[0].quantity,
            trades[0].taker_is_buyer
        ),
        (e18(dec!(60010)), e18(dec!(0.3)), true)
    );

    // Paused: nothing, trades included. A new book marks what a push made after the pause
    // would carry; snapshots of the old one were queued before it.
    fake.pause_market(true);
    fake.set_book(
        "btcperp",
        vec![(dec!(59991), dec!(1.5)), (dec!(59980), dec!(2))],
        vec![(dec!(60010), dec!(1)), (dec!(60020), dec!(3))],
    );
    fake.trade("btcperp", dec!(60010), dec!(0.3), true);
    assert_quiet(
        &mut ws,
        Duration::from_millis(300),
        |v| best_bid_of(v) == Some(e18(dec!(59990))),
        "a paused feed is silent",
    )
    .await;
    // Resumed: snapshots again, of the new book.
    fake.pause_market(false);
    let push: StreamPush = loop {
        let v = recv(&mut ws).await;
        if best_bid_of(&v) != Some(e18(dec!(59990))) {
            break serde_json::from_value(v).unwrap();
        }
    };
    assert_eq!(push.id, "btcperp@depth20_10");
    let d: Depth = serde_json::from_value(push.result).unwrap();
    assert_eq!(d.bids[0][0], e18(dec!(59991)));

    // Unsubscribe stops them.
    send_ws(
        &mut ws,
        json!({"method":"UNSUBSCRIBE","params":["btcperp@depth20_10"],"id":"2"}),
    )
    .await;
    loop {
        let v = recv(&mut ws).await;
        if v["id"] == json!("2") {
            assert_eq!(v["success"], json!(true));
            break;
        }
    }
    fake.set_book(
        "btcperp",
        vec![(dec!(59992), dec!(1.5)), (dec!(59980), dec!(2))],
        vec![(dec!(60010), dec!(1)), (dec!(60020), dec!(3))],
    );
    assert_quiet(
        &mut ws,
        Duration::from_millis(200),
        |v| best_bid_of(v) == Some(e18(dec!(59991))),
        "an unsubscribed stream is silent",
    )
    .await;

    // Depth levels follow the stream name.
    send_ws(
        &mut ws,
        json!({"method":"SUBSCRIBE","params":["btcperp@depth1"],"id":"3"}),
    )
    .await;
    // Past any snapshot of the old stream still on its way.
    let reply = loop {
        let v = recv(&mut ws).await;
        if v["id"] == json!("3") {
            break v;
        }
    };
    assert_eq!(reply["success"], json!(true));
    let push: StreamPush = loop {
        let push: StreamPush = serde_json::from_value(recv(&mut ws).await).unwrap();
        if push.id == "btcperp@depth1" {
            break push;
        }
    };
    let d: Depth = serde_json::from_value(push.result).unwrap();
    assert_eq!((d.bids.len(), d.asks.len()), (1, 1));
}

#[tokio::test]
async fn bad_frames_get_errors_and_ping_gets_pong() {
    let (fake, _http) = venue().await;
    let (mut ws, _) = connect_async(fake.ws_url()).await.unwrap();
    ws.send(Ws::Text("not json".into())).await.unwrap();
    assert_eq!(recv(&mut ws).await["error"]["code"], json!(-32700));
    send_ws(
        &mut ws,
        json!({"method":"SUBSCRIBE","params":["dogeperp@trade"],"id":"9"}),
    )
    .await;
    let v = recv(&mut ws).await;
    assert_eq!(
        (v["id"].clone(), v["success"].clone()),
        (json!("9"), json!(false))
    );
    send_ws(&mut ws, json!({"hello":"there"})).await;
    assert_eq!(recv(&mut ws).await["success"], json!(false));
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"x","method":"nope","params":{}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["error"]["code"], json!(-32601));
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"y","method":"session.login","params":{"account":1}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["error"]["code"], json!(-32602));
    ws.send(Ws::Binary(vec![0xff, 0x00])).await.unwrap();
    assert_eq!(recv(&mut ws).await["error"]["code"], json!(-32700));
    // Still alive: a ping gets its pong.
    ws.send(Ws::Ping(b"hi".to_vec())).await.unwrap();
    let pong = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(Ok(Ws::Pong(p))) = ws.next().await {
                return p;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong, b"hi");
    // A wrong path is not a WebSocket.
    let wrong = fake.ws_url().replace("/v1/ws/operate", "/ws");
    assert!(connect_async(wrong).await.is_err());
}

#[tokio::test]
async fn drop_connections_closes_every_socket() {
    let (fake, http) = venue().await;
    let mut market = {
        let (mut ws, _) = connect_async(fake.ws_url()).await.unwrap();
        send_ws(
            &mut ws,
            json!({"method":"SUBSCRIBE","params":["btcperp@depth5"],"id":"1"}),
        )
        .await;
        recv(&mut ws).await;
        ws
    };
    let mut account = account_socket(&fake).await;
    assert_eq!(fake.connections(), 2);
    fake.drop_connections();
    for ws in [&mut market, &mut account] {
        let end = tokio::time::timeout(PATIENCE, async {
            loop {
                match ws.next().await {
                    Some(Ok(Ws::Text(_))) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("the socket ends");
        assert!(!matches!(end, Some(Ok(_))), "{end:?}");
    }
    assert_eq!(fake.connections(), 0);
    // A reconnect starts afresh: logged out, nothing subscribed, and works.
    let mut again = account_socket(&fake).await;
    let domain = fake.config().domain.clone();
    assert_eq!(
        post_order(
            &fake,
            &http,
            &order(&domain, true, dec!(59000), dec!(0.01), 1)
        )
        .await
        .0,
        200
    );
    assert_eq!(order_update(&mut again).await.status, OrderStatus::Open);
}

#[tokio::test]
async fn fail_next_scripts_429_with_retry_after_then_500() {
    let (fake, http) = venue().await;
    let domain = fake.config().domain.clone();
    fake.fail_next("POST", "/order", 429, 2);
    fake.fail_next("GET", "/v1/depth", 500, 1);
    let o = order(&domain, true, dec!(59000), dec!(0.01), 1);
    for _ in 0..2 {
        let r = http
            .post(format!("{}/order", fake.rest_url()))
            .json(&o)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_of(&body), "too many requests");
    }
    assert!(
        fake.nonces(me().address()).is_empty(),
        "a scripted failure consumes nothing"
    );
    // The third goes through, with the same nonce.
    assert_eq!(post_order(&fake, &http, &o).await.0, 200);
    let url = format!("{}/depth?symbol=btcperp", fake.rest_url());
    let (status, body) = send(http.get(&url)).await;
    assert_eq!(status, 500);
    error_of(&body);
    assert_eq!(send(http.get(&url)).await.0, 200);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200, 500, 200]);
}

// -------------------------------------------------------------------------------- Sei

#[tokio::test]
async fn sei_new_heads_arrive_stop_on_halt_and_resume() {
    let sei = FakeSei::start(40).await.unwrap();
    assert!(sei.url().starts_with("ws://127.0.0.1:"));
    let (mut ws, _) = connect_async(sei.url()).await.unwrap();
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"jsonrpc":"2.0","id":1,"result":"0x531"})
    );
    // The height when asked: between the heights seen just before and just after.
    let low = sei.height();
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"n","method":"eth_blockNumber","params":[]}),
    )
    .await;
    let n = recv(&mut ws).await;
    let height =
        u64::from_str_radix(n["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert!((low..=sei.height()).contains(&height), "{height}");

    let subscribed_s = now_ms() / 1000;
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}),
    )
    .await;
    let sub = recv(&mut ws).await;
    assert_eq!(sub["id"], json!(2));
    let sub_id = sub["result"].as_str().unwrap().to_string();
    assert!(sub_id.starts_with("0x") && sub_id.len() > 2);

    let hex =
        |v: &Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let mut last: Option<(u64, String)> = None;
    for _ in 0..4 {
        let note = recv(&mut ws).await;
        assert_eq!(note["method"], json!("eth_subscription"));
        assert_eq!(note["params"]["subscription"], json!(sub_id));
        let head = &note["params"]["result"];
        let number = hex(&head["number"]);
        // Stamped when made: after we subscribed, before it got here.
        let ts = hex(&head["timestamp"]);
        assert!((subscribed_s..=now_ms() / 1000).contains(&ts), "{ts}");
        if let Some((n, hash)) = &last {
            assert_eq!(number, n + 1);
            assert_eq!(head["parentHash"].as_str().unwrap(), hash);
        }
        last = Some((number, head["hash"].as_str().unwrap().to_string()));
    }

    sei.halt(true);
    // Heads made before the halt may still be queued: read up to the last of them.
    let halted_at = sei.height();
    let mut seen = last.as_ref().map_or(0, |(n, _)| *n);
    while seen < halted_at {
        seen = hex(&recv(&mut ws).await["params"]["result"]["number"]);
    }
    assert_quiet(
        &mut ws,
        Duration::from_millis(300),
        |_| false,
        "a halted chain is silent",
    )
    .await;
    assert_eq!(sei.height(), halted_at);
    sei.halt(false);
    let note = recv(&mut ws).await;
    assert_eq!(hex(&note["params"]["result"]["number"]), halted_at + 1);

    // Errors are JSON-RPC errors, and the socket lives on.
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":3,"method":"eth_call","params":[]}),
    )
    .await;
    let err = loop {
        let v = recv(&mut ws).await;
        if v["id"] == json!(3) {
            break v;
        }
    };
    assert_eq!(err["error"]["code"], json!(-32601));
    ws.send(Ws::Text("{".into())).await.unwrap();
    loop {
        let v = recv(&mut ws).await;
        if v.get("error").is_some() {
            assert_eq!(v["error"]["code"], json!(-32700));
            break;
        }
    }

    // Unsubscribed: no more heads.
    send_ws(
        &mut ws,
        json!({"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":[sub_id]}),
    )
    .await;
    loop {
        let v = recv(&mut ws).await;
        if v["id"] == json!(4) {
            assert_eq!(v["result"], json!(true));
            break;
        }
    }
    // Heads up to this height may have been queued before the unsubscribe.
    let unsubscribed_at = sei.height();
    let queued_before = move |v: &Value| {
        v["method"] == json!("eth_subscription")
            && hex(&v["params"]["result"]["number"]) <= unsubscribed_at
    };
    assert_quiet(
        &mut ws,
        Duration::from_millis(200),
        queued_before,
        "no heads after the unsubscribe",
    )
    .await;

    // A dropped connection ends the socket.
    assert_eq!(sei.connections(), 1);
    sei.drop_connections();
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Ws::Text(t)))
                    if queued_before(&serde_json::from_str(&t).unwrap_or_default()) =>
                {
                    continue
                }
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    assert!(!matches!(end, Some(Ok(Ws::Text(_)))), "{end:?}");
}
