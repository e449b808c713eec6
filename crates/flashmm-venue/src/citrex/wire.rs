//! Citrex's JSON, as the official citrex-sdk sends and reads it (REST), and as the issue
//! describes the WebSocket (market streams, and JSON-RPC 2.0 for the account). Integers scaled
//! by 1e18 travel as decimal strings; some endpoints send them as JSON numbers, and both are
//! read. The WebSocket payload shapes are not in the SDK: they are our reading of the docs,
//! kept in this one file so a correction touches nothing else (see docs/citrex.md).

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// An amount x 1e18 (price, size, fee); signed, for positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E18(pub i128);

const SCALE: u32 = 18;

impl E18 {
    pub fn to_decimal(self) -> Decimal {
        Decimal::try_from_i128_with_scale(self.0, SCALE)
            .map(|d| d.normalize())
            .unwrap_or_default()
    }

    /// `None` unless `d` is a whole number of 1e-18 units that fits.
    pub fn from_decimal(d: Decimal) -> Option<E18> {
        if d.scale() > SCALE {
            return None;
        }
        d.mantissa()
            .checked_mul(10i128.checked_pow(SCALE - d.scale())?)
            .map(E18)
    }
}

impl Serialize for E18 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E18 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<E18, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = E18;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer x 1e18 or a decimal, as a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<E18, E> {
                let t = v.trim();
                if let Ok(i) = t.parse::<i128>() {
                    return Ok(E18(i));
                }
                // A number with a point is already in units ("61000.5"), not scaled by 1e18.
                decimal_e18(t).ok_or_else(|| E::custom(format!("{v:?} is not a number")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<E18, E> {
                Ok(E18(v as i128))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<E18, E> {
                Ok(E18(v as i128))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<E18, E> {
                if v.fract() == 0.0 && v.abs() < 1e38 {
                    Ok(E18(v as i128))
                } else if v.is_finite() {
                    // A JSON number with a fraction is in units; its shortest form is what the
                    // venue wrote.
                    decimal_e18(&v.to_string())
                        .ok_or_else(|| E::custom(format!("{v} is out of range")))
                } else {
                    Err(E::custom(format!("{v} is not a number")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal in units ("61000.5", "1e-3") as an E18, if it fits exactly.
fn decimal_e18(s: &str) -> Option<E18> {
    let d = s
        .parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())?;
    E18::from_decimal(d)
}

// ------------------------------------------------------------------------------------ REST

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: u32,
    pub symbol: String,
    /// Price tick x 1e18.
    pub increment: E18,
    pub min_quantity: E18,
    #[serde(default)]
    pub maker_fee: E18,
    #[serde(default)]
    pub taker_fee: E18,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// `[price, size, cumulative size]` rows, best first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Depth {
    pub bids: Vec<Vec<E18>>,
    pub asks: Vec<Vec<E18>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub account: String,
    pub sub_account_id: u8,
    pub product_id: u32,
    pub is_buy: bool,
    pub order_type: u8,
    pub time_in_force: u8,
    pub expiration: u64,
    pub nonce: u64,
    pub price: E18,
    pub quantity: E18,
    pub signature: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Open,
    Pending,
    Filled,
    Cancelled,
    Expired,
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VenueOrder {
    pub id: String,
    pub account: String,
    pub sub_account_id: u8,
    pub product_id: u32,
    #[serde(default)]
    pub product_symbol: String,
    pub is_buy: bool,
    pub order_type: u8,
    pub time_in_force: u8,
    pub price: E18,
    pub quantity: E18,
    pub residual_quantity: E18,
    pub nonce: u64,
    #[serde(default)]
    pub expiry: u64,
    pub status: OrderStatus,
    #[serde(default)]
    pub created_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    pub account: String,
    pub order_id: String,
    pub product_id: u32,
    pub sub_account_id: u8,
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAllRequest {
    pub account: String,
    pub product_id: u32,
    pub sub_account_id: u8,
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelReplaceRequest {
    pub id_to_cancel: String,
    pub new_order: OrderRequest,
}

/// `{"success": bool, "error": text}`: the answer to cancels, and every error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default)]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VenuePosition {
    pub product_id: u32,
    #[serde(default)]
    pub product_symbol: String,
    /// Signed: negative is short.
    pub quantity: E18,
    #[serde(default)]
    pub avg_entry_price: E18,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    pub server_time: u64,
}

// ------------------------------------------------------------------------------ WebSocket

/// `{"method":"SUBSCRIBE","params":["btcperp@depth20_10","btcperp@trade"],"id":"1"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Sent on every frame: some deployments refuse a frame without it.
    #[serde(default)]
    pub jsonrpc: String,
    pub method: String,
    pub params: Vec<String>,
    pub id: String,
}

/// A market push: `{"id": "<stream>", "success": true, "result": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamPush {
    pub id: String,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub result: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsTrade {
    pub price: E18,
    pub quantity: E18,
    pub taker_is_buyer: bool,
    /// Unix milliseconds; some deployments call it `timestamp`.
    #[serde(alias = "timestamp")]
    pub created_at: u64,
    /// The venue's trade id, when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    pub jsonrpc: String,
    pub id: String,
    pub method: String,
    pub params: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// A reply (with `id`) or a push (with `method`); JSON-RPC 2.0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcMessage {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginParams {
    pub account: String,
    pub sub_account_id: u8,
    /// A `SignedAuthentication` signature.
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountParams {
    pub account: String,
    pub sub_account_id: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsFill {
    pub order_id: String,
    pub product_id: u32,
    pub is_buy: bool,
    pub price: E18,
    pub quantity: E18,
    /// Quote currency x 1e18; negative is a rebate.
    pub fee: E18,
    pub is_maker: bool,
    pub residual_quantity: E18,
    pub created_at: u64,
    pub trade_id: String,
}

/// The `params` of an `account.updates` push.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum AccountUpdate {
    Order(VenueOrder),
    Fill(WsFill),
    Position(VenuePosition),
    Balance(Value),
}

/// What one frame on the account stream says, whichever envelope it came in.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountFrame {
    /// Updates about our orders, fills, positions or balances.
    Updates(Vec<AccountUpdate>),
    /// The venue refused something we sent (a JSON-RPC `error`, or `success: false`).
    Refused(String),
    /// Acks of our own requests and pushes we did not ask for.
    Other,
}

/// Reads an account-stream frame. Two envelopes are accepted (docs/citrex.md): JSON-RPC
/// `{"jsonrpc","method":"account.updates","params":...}` and the market streams' own
/// `{"id":"account.updates","success":true,"result":...}`. The payload may be tagged
/// (`{"type":"fill","data":{..}}`), a bare order, fill or position recognised by its fields, or a
/// list of either. `Err` says why the frame is not an account frame at all.
pub fn account_frame(text: &str) -> Result<AccountFrame, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(m) = &v else {
        return Err("not a JSON object".into());
    };
    if let Some(e) = m.get("error").filter(|e| !e.is_null()) {
        return Ok(AccountFrame::Refused(error_text(e)));
    }
    if m.get("success") == Some(&Value::Bool(false)) {
        let why = m.get("result").map(error_text).unwrap_or_default();
        return Ok(AccountFrame::Refused(why));
    }
    let is_updates = |k: &str| m.get(k).and_then(Value::as_str) == Some("account.updates");
    let payload = if is_updates("method") {
        m.get("params")
    } else if is_updates("id") {
        m.get("result")
    } else {
        None
    };
    match payload {
        None | Some(Value::Null) => Ok(AccountFrame::Other),
        Some(Value::Array(items)) => items
            .iter()
            .map(account_update)
            .collect::<Result<Vec<_>, _>>()
            .map(AccountFrame::Updates),
        Some(p) => account_update(p).map(|u| AccountFrame::Updates(vec![u])),
    }
}

/// A refusal's text: `{code, message}`, a string, or whatever JSON it was.
fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("message") => {
            let code = o.get("code").map(|c| format!("{c} ")).unwrap_or_default();
            let msg = o.get("message").and_then(Value::as_str).unwrap_or_default();
            format!("{code}{msg}")
        }
        other => other.to_string(),
    }
}

/// One update, tagged or bare. A bare object is a fill if it names a trade, an order if it has a
/// status and a residual, a position if it has an entry price or a quantity and no status.
fn account_update(v: &Value) -> Result<AccountUpdate, String> {
    let Value::Object(o) = v else {
        return Err(format!("an account update must be an object, got {v}"));
    };
    let bad = |what: &str, e: serde_json::Error| format!("bad {what} ({e})");
    if o.contains_key("type") && o.contains_key("data") {
        return serde_json::from_value(v.clone()).map_err(|e| bad("account update", e));
    }
    let has = |k: &str| o.contains_key(k);
    if has("tradeId") {
        serde_json::from_value(v.clone())
            .map(AccountUpdate::Fill)
            .map_err(|e| bad("fill", e))
    } else if has("status") && has("residualQuantity") {
        serde_json::from_value(v.clone())
            .map(AccountUpdate::Order)
            .map_err(|e| bad("order", e))
    } else if has("productId") && (has("avgEntryPrice") || has("quantity")) {
        serde_json::from_value(v.clone())
            .map(AccountUpdate::Position)
            .map_err(|e| bad("position", e))
    } else if has("balance") || has("asset") {
        Ok(AccountUpdate::Balance(v.clone()))
    } else {
        Err("an account update that is not an order, fill, position or balance".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn e18_reads_strings_and_numbers_and_converts_exactly() {
        let v: Vec<E18> =
            serde_json::from_str(r#"["3450000000000000000000", 1000000000000000, "-5"]"#).unwrap();
        assert_eq!(v[0].to_decimal(), dec!(3450));
        assert_eq!(v[1].to_decimal(), dec!(0.001));
        assert_eq!(
            E18::from_decimal(dec!(61837.64)),
            Some(E18(61_837_640_000_000_000_000_000))
        );
        assert_eq!(E18::from_decimal(dec!(0.0000000000000000001)), None);
        assert_eq!(serde_json::to_string(&E18(12)).unwrap(), r#""12""#);
        // Decimals in units, as strings or numbers, are read exactly.
        let d: Vec<E18> = serde_json::from_str(r#"["61000.5", 1.5, "0.00001", "1e-3"]"#).unwrap();
        let d: Vec<Decimal> = d.into_iter().map(E18::to_decimal).collect();
        assert_eq!(
            d,
            vec![dec!(61000.5), dec!(1.5), dec!(0.00001), dec!(0.001)]
        );
        assert!(serde_json::from_str::<E18>(r#""abc""#).is_err());
        // The edges: 18 decimals fit, integers of either sign, floats as far as i128 reaches.
        assert_eq!(E18::from_decimal(dec!(0.000000000000000001)), Some(E18(1)));
        assert_eq!(serde_json::from_str::<E18>("-5").unwrap(), E18(-5));
        assert_eq!(
            serde_json::from_str::<E18>("1.5e20").unwrap(),
            E18(150_000_000_000_000_000_000)
        );
        assert!(serde_json::from_str::<E18>("1e39").is_err());
        let p: Product = serde_json::from_str(
            r#"{"id":1,"symbol":"btcperp","increment":"1","minQuantity":"1"}"#,
        )
        .unwrap();
        assert!(p.active, "a product is active unless it says otherwise");
        assert!(serde_json::from_str::<E18>(r#""0.0000000000000000001""#).is_err());
    }

    const ORDER: &str = r#"{"id":"0xab","account":"0x1","subAccountId":1,"productId":1003,"isBuy":true,"orderType":1,"timeInForce":0,"price":"60000000000000000000000","quantity":"1000000000000000","residualQuantity":"0","nonce":7,"status":"FILLED"}"#;
    const FILL: &str = r#"{"orderId":"0xab","productId":1003,"isBuy":true,"price":"1","quantity":"2","fee":"-3","isMaker":true,"residualQuantity":"0","createdAt":1,"tradeId":"t1"}"#;
    const POSITION: &str = r#"{"productId":1003,"quantity":"-2200000000000000","avgEntryPrice":"60100000000000000000000"}"#;

    fn updates(text: &str) -> Vec<AccountUpdate> {
        match account_frame(text) {
            Ok(AccountFrame::Updates(u)) => u,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn account_frames_in_either_envelope_tagged_bare_or_listed() {
        let rpc = format!(
            r#"{{"jsonrpc":"2.0","method":"account.updates","params":{{"type":"order","data":{ORDER}}}}}"#
        );
        let result = format!(r#"{{"id":"account.updates","success":true,"result":{ORDER}}}"#);
        for text in [&rpc, &result] {
            match updates(text).as_slice() {
                [AccountUpdate::Order(o)] => {
                    assert_eq!(o.status, OrderStatus::Filled);
                    assert_eq!(o.residual_quantity, E18(0));
                }
                other => panic!("{other:?}"),
            }
        }
        let list = format!(
            r#"{{"id":"account.updates","success":true,"result":[{FILL},{POSITION},{{"asset":"USDC","balance":"5"}}]}}"#
        );
        match updates(&list).as_slice() {
            [AccountUpdate::Fill(f), AccountUpdate::Position(p), AccountUpdate::Balance(_)] => {
                assert_eq!(f.trade_id, "t1");
                assert_eq!(p.quantity.to_decimal(), dec!(-0.0022));
            }
            other => panic!("{other:?}"),
        }
        let bare_rpc =
            format!(r#"{{"jsonrpc":"2.0","method":"account.updates","params":{POSITION}}}"#);
        assert!(matches!(
            updates(&bare_rpc).as_slice(),
            [AccountUpdate::Position(_)]
        ));
    }

    #[test]
    fn account_refusals_acks_and_garbage_are_told_apart() {
        let refused = [
            r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32600,"message":"missing field jsonrpc"}}"#,
            r#"{"id":"account.updates","success":false,"result":"not logged in"}"#,
            r#"{"id":"2","error":"bad signature"}"#,
        ];
        let why: Vec<String> = refused
            .iter()
            .map(|t| match account_frame(t) {
                Ok(AccountFrame::Refused(w)) => w,
                other => panic!("{t}: {other:?}"),
            })
            .collect();
        assert_eq!(
            why,
            vec![
                "-32600 missing field jsonrpc",
                "not logged in",
                "bad signature"
            ]
        );
        for ack in [
            r#"{"jsonrpc":"2.0","id":"1","result":{"success":true}}"#,
            r#"{"id":"account.updates","success":true,"result":null}"#,
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{}}"#,
        ] {
            assert_eq!(account_frame(ack), Ok(AccountFrame::Other), "{ack}");
        }
        for bad in [
            "not json",
            "[1,2]",
            r#"{"id":"account.updates","success":true,"result":{"what":1}}"#,
            r#"{"id":"account.updates","success":true,"result":{"tradeId":"t","price":"x"}}"#,
            r#"{"id":"account.updates","success":true,"result":[7]}"#,
        ] {
            assert!(account_frame(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bare_updates_are_recognised_by_all_their_fields() {
        let wrap =
            |inner: &str| format!(r#"{{"id":"account.updates","success":true,"result":{inner}}}"#);
        // A `type` without `data` is no tagged update; a status without a residual is no order;
        // a product id alone is no position.
        for bad in [
            r#"{"type":"order","status":"OPEN"}"#,
            r#"{"status":"OPEN","price":"1"}"#,
            r#"{"residualQuantity":"1"}"#,
            r#"{"productId":1003}"#,
            r#"{"quantity":"1"}"#,
        ] {
            assert!(account_frame(&wrap(bad)).is_err(), "{bad}");
        }
        // Each field test matters: a balance carrying `data`, a position carrying `status`, a
        // balance carrying `quantity`, a position with a quantity and no entry price.
        assert!(matches!(
            updates(&wrap(r#"{"asset":"USDC","data":1}"#)).as_slice(),
            [AccountUpdate::Balance(_)]
        ));
        assert!(matches!(
            updates(&wrap(r#"{"productId":1003,"quantity":"1","status":"x"}"#)).as_slice(),
            [AccountUpdate::Position(_)]
        ));
        assert!(matches!(
            updates(&wrap(r#"{"asset":"USDC","quantity":"1"}"#)).as_slice(),
            [AccountUpdate::Balance(_)]
        ));
        assert!(matches!(
            updates(&wrap(r#"{"productId":1003,"quantity":"1"}"#)).as_slice(),
            [AccountUpdate::Position(_)]
        ));
        let position_by_price = r#"{"productId":1003,"avgEntryPrice":"1","quantity":"0"}"#;
        assert!(matches!(
            updates(&wrap(position_by_price)).as_slice(),
            [AccountUpdate::Position(_)]
        ));
        for balance in [r#"{"asset":"USDC"}"#, r#"{"balance":"5"}"#] {
            assert!(matches!(
                updates(&wrap(balance)).as_slice(),
                [AccountUpdate::Balance(_)]
            ));
        }
        // An error object without a message is kept whole.
        assert_eq!(
            account_frame(r#"{"id":"1","error":{"code":7}}"#),
            Ok(AccountFrame::Refused(r#"{"code":7}"#.into()))
        );
    }

    #[test]
    fn trades_with_timestamp_and_without_uid_are_read() {
        let t: WsTrade = serde_json::from_str(
            r#"{"price":"61000.5","quantity":"0.001","takerIsBuyer":false,"timestamp":1723161253000}"#,
        )
        .unwrap();
        assert_eq!(t.created_at, 1_723_161_253_000);
        assert_eq!(t.uid, None);
        assert_eq!(t.price.to_decimal(), dec!(61000.5));
    }

    #[test]
    fn account_updates_are_tagged() {
        let fill = r#"{"type":"fill","data":{"orderId":"0xab","productId":1003,"isBuy":true,"price":"1","quantity":"2","fee":"-3","isMaker":true,"residualQuantity":"0","createdAt":1,"tradeId":"t1"}}"#;
        assert!(
            matches!(serde_json::from_str::<AccountUpdate>(fill).unwrap(), AccountUpdate::Fill(f) if f.fee == E18(-3))
        );
    }
}
