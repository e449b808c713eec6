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
                f.write_str("an integer x 1e18, as a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<E18, E> {
                v.trim()
                    .parse::<i128>()
                    .map(E18)
                    .map_err(|_| E::custom(format!("{v:?} is not an integer")))
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
                } else {
                    Err(E::custom(format!("{v} is not an integer")))
                }
            }
        }
        d.deserialize_any(V)
    }
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
    /// Unix milliseconds.
    pub created_at: u64,
    pub uid: String,
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
        assert!(serde_json::from_str::<E18>("1.5").is_err());
    }

    #[test]
    fn account_updates_are_tagged() {
        let fill = r#"{"type":"fill","data":{"orderId":"0xab","productId":1003,"isBuy":true,"price":"1","quantity":"2","fee":"-3","isMaker":true,"residualQuantity":"0","createdAt":1,"tradeId":"t1"}}"#;
        assert!(
            matches!(serde_json::from_str::<AccountUpdate>(fill).unwrap(), AccountUpdate::Fill(f) if f.fee == E18(-3))
        );
    }
}
