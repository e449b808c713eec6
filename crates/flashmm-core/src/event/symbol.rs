//! A market symbol stored inline, so decoding a market event does not allocate for it.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const CAP: usize = 23;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol {
    len: u8,
    bytes: [u8; CAP],
}

#[derive(Debug, thiserror::Error)]
#[error("symbol {0:?} is invalid: it must be 1 to 23 ASCII letters, digits, '-', '_' or '/'")]
pub struct SymbolError(pub String);

impl Symbol {
    pub fn new(s: &str) -> Result<Symbol, SymbolError> {
        let ok = !s.is_empty()
            && s.len() <= CAP
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b));
        if !ok {
            return Err(SymbolError(s.to_string()));
        }
        let mut bytes = [0u8; CAP];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Symbol {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this cannot fail.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Symbol, SymbolError> {
        Symbol::new(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Symbol, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Symbol;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a market symbol")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Symbol, E> {
                Symbol::new(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}
