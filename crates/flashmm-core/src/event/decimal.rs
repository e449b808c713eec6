//! Serde for `Decimal` that survives both our formats.
//!
//! rust_decimal's own serde impl decodes through `deserialize_any`, which bincode refuses
//! (`AnyNotSupported`), so the failure would only show at replay. Binary formats get the exact
//! (mantissa, scale) pair, which keeps the scale and therefore the bytes; human-readable formats
//! (JSON, TOML) get a string, because a JSON number would go through f64.

use rust_decimal::Decimal;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};
use std::fmt;
use std::str::FromStr;

pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.collect_str(d)
    } else {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&d.mantissa())?;
        t.serialize_element(&(d.scale() as u8))?;
        t.end()
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(TextVisitor)
    } else {
        d.deserialize_tuple(2, PartsVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number or a decimal string such as \"0.01\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        Decimal::from_str(v.trim())
            .or_else(|_| Decimal::from_scientific(v.trim()))
            .map_err(|e| E::custom(format!("invalid decimal {v:?}: {e}")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        // f64's Display is the shortest string that round-trips, so 0.01 stays 0.01.
        if !v.is_finite() {
            return Err(E::custom(format!("invalid decimal {v}")));
        }
        self.visit_str(&v.to_string())
    }
}

struct PartsVisitor;

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a (mantissa, scale) pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Decimal, A::Error> {
        let m: i128 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let scale: u8 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Decimal::try_from_i128_with_scale(m, scale as u32)
            .map_err(|e| de::Error::custom(format!("decimal out of range: {e}")))
    }
}

/// The same encoding for `Option<Decimal>`.
pub mod opt {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super")] Decimal);

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        d.map(W).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}
