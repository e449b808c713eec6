//! The Citrex REST client: signed requests, retries on 429 / 5xx / connection errors, and the
//! venue's tick and minimum size applied in the safe direction before anything is signed.

use super::eip712::{encode_hex, Address, Domain, Message, Order as SignedOrder, Signer};
use super::wire::{
    CancelAllRequest, CancelReplaceRequest, CancelRequest, Depth, OrderRequest, Outcome, Product,
    ServerTime, VenueOrder, VenuePosition, E18,
};
use crate::backoff::Backoff;
use flashmm_core::config::CitrexConfig;
use flashmm_core::event::{PlaceOrder, Side};
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// LIMIT_MAKER: a post-only quote.
pub const ORDER_TYPE_LIMIT_MAKER: u8 = 1;
pub const ORDER_TYPE_LIMIT: u8 = 0;
pub const TIF_GTC: u8 = 0;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum VenueError {
    #[error("Citrex answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("Citrex rate limit (HTTP 429) after {attempts} attempts")]
    RateLimited { attempts: u32 },
    #[error("cannot reach Citrex: {0}")]
    Connection(String),
    #[error("unexpected answer from Citrex: {0}")]
    Decode(String),
    #[error("{0}")]
    Refused(String),
    #[error(
        "no signing key: set FLASHMM_SEI_PRIVATE_KEY or pass --key-file (or run with --paper)"
    )]
    NoKey,
}

/// The product as the venue defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductSpec {
    pub id: u32,
    pub symbol: String,
    pub tick: Decimal,
    pub min_qty: Decimal,
    pub maker_fee: Decimal,
    pub taker_fee: Decimal,
}

impl ProductSpec {
    pub fn from_wire(p: &Product) -> ProductSpec {
        ProductSpec {
            id: p.id,
            symbol: p.symbol.clone(),
            tick: p.increment.to_decimal(),
            min_qty: p.min_quantity.to_decimal(),
            maker_fee: p.maker_fee.to_decimal(),
            taker_fee: p.taker_fee.to_decimal(),
        }
    }

    /// Bids round down, asks up, to the tick; sizes down to a multiple of the minimum.
    pub fn round(
        &self,
        side: Side,
        price: Decimal,
        qty: Decimal,
    ) -> Result<(Decimal, Decimal), VenueError> {
        let price = if self.tick > Decimal::ZERO {
            flashmm_core::quote::round_price(price, self.tick, side)
        } else {
            price
        };
        let qty = if self.min_qty > Decimal::ZERO {
            flashmm_core::quote::round_qty(qty, self.min_qty)
        } else {
            qty
        };
        if qty < self.min_qty || qty <= Decimal::ZERO {
            return Err(VenueError::Refused(format!(
                "size {qty} is below the product's minQuantity {}",
                self.min_qty
            )));
        }
        if price <= Decimal::ZERO {
            return Err(VenueError::Refused(format!(
                "price {price} is not positive"
            )));
        }
        Ok((price, qty))
    }
}

/// What came back over HTTP: enough for the client's rules (status, retry hints, body).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<HttpAnswer, String>> + Send + 'a>>;

/// How requests reach Citrex: HTTPS in production; in a simulation, a venue in the same
/// process. An `Err` is a connection that failed (the request may or may not have arrived).
pub trait Transport: Send + Sync {
    /// `method` is upper case, `url` absolute; `body` is JSON.
    fn send<'a>(&'a self, method: &'a str, url: &'a str, body: Option<String>) -> Sending<'a>;
}

struct Https(reqwest::Client);

impl Transport for Https {
    fn send<'a>(&'a self, method: &'a str, url: &'a str, body: Option<String>) -> Sending<'a> {
        Box::pin(async move {
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            let mut req = self.0.request(method, url);
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b);
            }
            let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
            let status = resp.status().as_u16();
            let retry_after = retry_after(resp.headers());
            let body = resp.text().await.map_err(|e| e.without_url().to_string())?;
            Ok(HttpAnswer {
                status,
                retry_after,
                body,
            })
        })
    }
}

pub struct CitrexClient {
    http: Arc<dyn Transport>,
    base: String,
    signer: Option<Arc<Signer>>,
    account: Address,
    sub: u8,
    domain: Domain,
    max_retries: u32,
    backoff: (u64, u64),
    /// Retry jitter from this seed, one step per request (a simulation that must reproduce);
    /// `None` seeds from the clock.
    jitter: Option<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for CitrexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("CitrexClient")
            .field("base", &self.base)
            .field("account", &self.account)
            .finish()
    }
}

fn hex65(sig: &[u8; 65]) -> String {
    format!("0x{}", encode_hex(sig))
}

impl CitrexClient {
    /// Without a signer the client can read public data only.
    pub fn new(
        cfg: &CitrexConfig,
        signer: Option<Arc<Signer>>,
    ) -> Result<CitrexClient, VenueError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| VenueError::Connection(e.to_string()))?;
        CitrexClient::with_transport(cfg, signer, Arc::new(Https(http)))
    }

    /// The same client over another transport (a simulation's venue in this process).
    pub fn with_transport(
        cfg: &CitrexConfig,
        signer: Option<Arc<Signer>>,
        http: Arc<dyn Transport>,
    ) -> Result<CitrexClient, VenueError> {
        let domain = Domain {
            name: "ciao".into(),
            version: "0.0.0".into(),
            chain_id: cfg.chain(),
            verifying_contract: Address::parse(&cfg.contract())
                .map_err(|e| VenueError::Refused(format!("citrex.verifying_contract: {e}")))?,
        };
        let account = signer
            .as_ref()
            .map(|s| s.address())
            .unwrap_or(Address([0; 20]));
        Ok(CitrexClient {
            http,
            base: cfg.rest().trim_end_matches('/').to_string(),
            signer,
            account,
            sub: cfg.sub_account_id,
            domain,
            max_retries: cfg.max_retries,
            backoff: (cfg.reconnect_base_ms, cfg.reconnect_max_ms),
            jitter: None,
        })
    }

    /// Retry jitter drawn from `seed`, so a run can be repeated exactly.
    pub fn with_jitter_seed(mut self, seed: u64) -> CitrexClient {
        self.jitter = Some(std::sync::atomic::AtomicU64::new(seed));
        self
    }

    pub fn account(&self) -> Address {
        self.account
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    fn signer(&self) -> Result<&Signer, VenueError> {
        self.signer.as_deref().ok_or(VenueError::NoKey)
    }

    fn auth_signature(&self) -> Result<String, VenueError> {
        let m = Message::SignedAuthentication {
            account: self.account,
            sub_account_id: self.sub,
        };
        Ok(hex65(&self.signer()?.sign(&m, &self.domain)))
    }

    /// Sends with retries on 429 (honouring retry-after; the request was not processed), and,
    /// for reads and cancels, on 5xx and connection errors. An order is not retried after a 5xx
    /// or a lost connection: it may have been placed, and the account stream or
    /// `open_orders` says whether it was.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, VenueError> {
        let idempotent = method != "POST";
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let body = match body {
            Some(b) => Some(
                serde_json::to_string(b).map_err(|e| VenueError::Decode(format!("{path}: {e}")))?,
            ),
            None => None,
        };
        let seed = match &self.jitter {
            Some(s) => s.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed),
            None => crate::backoff::seed(),
        };
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1, seed);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (retry, err) = match self.http.send(method, &url, body.clone()).await {
                Err(e) => (true, VenueError::Connection(e)),
                Ok(HttpAnswer {
                    status,
                    retry_after: wait,
                    body: text,
                }) => {
                    if (200..300).contains(&status) {
                        if let Ok(o) = serde_json::from_str::<Outcome>(&text) {
                            if let (false, Some(e)) = (o.success, o.error.clone()) {
                                return Err(VenueError::Http { status, message: e });
                            }
                        }
                        return serde_json::from_str(&text)
                            .map_err(|e| VenueError::Decode(format!("{path}: {e}")));
                    }
                    let message = serde_json::from_str::<Outcome>(&text)
                        .ok()
                        .and_then(|o| o.error)
                        .unwrap_or_else(|| text.chars().take(200).collect());
                    if status == 429 {
                        if attempt > self.max_retries {
                            return Err(VenueError::RateLimited { attempts: attempt });
                        }
                        tokio::time::sleep(wait.unwrap_or_else(|| backoff.next_delay())).await;
                        continue;
                    }
                    (
                        (500..600).contains(&status),
                        VenueError::Http { status, message },
                    )
                }
            };
            if !retry || !idempotent || attempt > self.max_retries {
                return Err(err);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    pub async fn products(&self) -> Result<Vec<Product>, VenueError> {
        self.call("GET", "products", None::<&()>).await
    }

    pub async fn product(&self, symbol: &str) -> Result<ProductSpec, VenueError> {
        let all = self.products().await?;
        all.iter()
            .find(|p| p.symbol.eq_ignore_ascii_case(symbol))
            .map(ProductSpec::from_wire)
            .ok_or_else(|| {
                VenueError::Refused(format!(
                    "citrex.product {symbol:?} is not listed by GET /products"
                ))
            })
    }

    pub async fn depth(&self, symbol: &str, limit: u32) -> Result<Depth, VenueError> {
        self.call(
            "GET",
            &format!("depth?symbol={symbol}&limit={limit}"),
            None::<&()>,
        )
        .await
    }

    pub async fn time(&self) -> Result<ServerTime, VenueError> {
        self.call("GET", "time", None::<&()>).await
    }

    pub async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError> {
        let sig = self.auth_signature()?;
        let path = format!(
            "openOrders?account={}&subAccountId={}&signature={sig}",
            self.account, self.sub
        );
        self.call("GET", &path, None::<&()>).await
    }

    pub async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError> {
        let sig = self.auth_signature()?;
        let path = format!(
            "positionRisk?account={}&subAccountId={}&signature={sig}",
            self.account, self.sub
        );
        self.call("GET", &path, None::<&()>).await
    }

    /// Rounds to the product and signs: the request that will go, for the journal first.
    pub fn sign_order(
        &self,
        product: &ProductSpec,
        p: &PlaceOrder,
        nonce: u64,
        expiration_ms: u64,
    ) -> Result<OrderRequest, VenueError> {
        let (price, qty) = product.round(p.side, p.price, p.qty)?;
        let (Some(price_e18), Some(qty_e18)) = (E18::from_decimal(price), E18::from_decimal(qty))
        else {
            return Err(VenueError::Refused(format!(
                "price {price} or size {qty} has more than 18 decimals"
            )));
        };
        let order_type = if p.post_only {
            ORDER_TYPE_LIMIT_MAKER
        } else {
            ORDER_TYPE_LIMIT
        };
        let m = Message::Order(SignedOrder {
            account: self.account,
            sub_account_id: self.sub,
            product_id: product.id,
            is_buy: p.side == Side::Buy,
            order_type,
            time_in_force: TIF_GTC,
            expiration: expiration_ms,
            price: price_e18.0 as u128,
            quantity: qty_e18.0 as u128,
            nonce,
        });
        let signature = hex65(&self.signer()?.sign(&m, &self.domain));
        Ok(OrderRequest {
            account: self.account.to_string(),
            sub_account_id: self.sub,
            product_id: product.id,
            is_buy: p.side == Side::Buy,
            order_type,
            time_in_force: TIF_GTC,
            expiration: expiration_ms,
            nonce,
            price: price_e18,
            quantity: qty_e18,
            signature,
        })
    }

    pub fn sign_cancel(
        &self,
        product_id: u32,
        order_id: &str,
    ) -> Result<CancelRequest, VenueError> {
        let m = Message::CancelOrder {
            account: self.account,
            sub_account_id: self.sub,
            product_id,
            order_id: order_id.to_string(),
        };
        Ok(CancelRequest {
            account: self.account.to_string(),
            order_id: order_id.to_string(),
            product_id,
            sub_account_id: self.sub,
            signature: hex65(&self.signer()?.sign(&m, &self.domain)),
        })
    }

    pub fn sign_cancel_all(&self, product_id: u32) -> Result<CancelAllRequest, VenueError> {
        let m = Message::CancelOrders {
            account: self.account,
            sub_account_id: self.sub,
            product_id,
        };
        Ok(CancelAllRequest {
            account: self.account.to_string(),
            product_id,
            sub_account_id: self.sub,
            signature: hex65(&self.signer()?.sign(&m, &self.domain)),
        })
    }

    pub fn login_signature(&self) -> Result<String, VenueError> {
        self.auth_signature()
    }

    pub async fn place(&self, req: &OrderRequest) -> Result<VenueOrder, VenueError> {
        self.call("POST", "order", Some(req)).await
    }

    pub async fn cancel(&self, req: &CancelRequest) -> Result<Outcome, VenueError> {
        self.call("DELETE", "order", Some(req)).await
    }

    pub async fn cancel_all(&self, req: &CancelAllRequest) -> Result<Outcome, VenueError> {
        self.call("DELETE", "openOrders", Some(req)).await
    }

    pub async fn cancel_replace(
        &self,
        req: &CancelReplaceRequest,
    ) -> Result<VenueOrder, VenueError> {
        self.call("POST", "order/cancel-and-replace", Some(req))
            .await
    }
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let ms = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let s = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    ms.map(Duration::from_millis).or_else(|| {
        s.filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    })
}

/// Nonces: microseconds since the epoch (as the official SDK makes them), never below the
/// highest one in the journal plus one, so a restart cannot reuse one even if the clock stepped
/// back.
#[derive(Clone, Debug)]
pub struct Nonces {
    last: u64,
}

impl Nonces {
    pub fn after(journaled_max: u64) -> Nonces {
        Nonces {
            last: journaled_max,
        }
    }

    pub fn next(&mut self, now_micros: u64) -> u64 {
        self.last = now_micros.max(self.last + 1);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounding_to_the_product_is_safe() {
        let p = ProductSpec {
            id: 1003,
            symbol: "btcperp".into(),
            tick: dec!(0.5),
            min_qty: dec!(0.001),
            maker_fee: dec!(0),
            taker_fee: dec!(0),
        };
        assert_eq!(
            p.round(Side::Buy, dec!(100.74), dec!(0.0119)).unwrap(),
            (dec!(100.5), dec!(0.011))
        );
        assert_eq!(
            p.round(Side::Sell, dec!(100.26), dec!(0.0119)).unwrap(),
            (dec!(100.5), dec!(0.011))
        );
        assert!(p.round(Side::Buy, dec!(100), dec!(0.0009)).is_err());
    }

    #[test]
    fn nonces_never_go_back() {
        let mut n = Nonces::after(1_000_000);
        assert_eq!(n.next(5), 1_000_001);
        assert_eq!(n.next(2_000_000), 2_000_000);
        assert_eq!(n.next(2_000_000), 2_000_001);
    }
}
