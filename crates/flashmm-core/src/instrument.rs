//! What a market is: its symbol, venue, contract kind and trading rules, from the data or from a
//! table of known instruments, never from a BTC default (docs/instruments.md).
//!
//! An import records the instrument it learned in its session (`Instrument::to_toml`, the
//! session start's `config`); a backtest takes the market from there, and a config key the user
//! set that contradicts it is an error naming both (`reconcile`).

use crate::config::{InstrumentKind, MarketConfig};
use crate::event::Symbol;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

/// Where an instrument's rules came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The table of known instruments (the venue's published rules).
    Table,
    /// Inferred from the recording: the finest price and size steps its first book shows. The
    /// venue's real tick may be finer, so a config may set a finer one.
    Data,
    /// A session's own configuration (a live or paper session).
    Config,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    pub origin: Origin,
    pub market: MarketConfig,
}

#[derive(Serialize, Deserialize)]
struct Doc {
    instrument: OriginDoc,
    market: MarketConfig,
}

#[derive(Serialize, Deserialize)]
struct OriginDoc {
    origin: Origin,
}

/// The venue names importers use.
pub mod venue {
    pub const BINANCE_SPOT: &str = "binance-spot";
    pub const BINANCE_USDM: &str = "binance-usdm";
    pub const BINANCE_COINM: &str = "binance-coinm";
    pub const HYPERLIQUID: &str = "hyperliquid";
}

struct Known {
    venue: &'static str,
    symbol: &'static str,
    kind: InstrumentKind,
    tick: Decimal,
    lot: Decimal,
    min_qty: Decimal,
    multiplier: Decimal,
    quote: &'static str,
    settle: &'static str,
}

/// Published rules of the instruments the shipped recordings and the usual collectors cover
/// (Binance `exchangeInfo` PRICE_FILTER / LOT_SIZE, Hyperliquid `meta` szDecimals), as of 2024.
/// Anything else is inferred from the data.
// A row of the table, positional on purpose so each row fits one line.
#[allow(clippy::too_many_arguments)]
const fn known(
    venue: &'static str,
    symbol: &'static str,
    kind: InstrumentKind,
    tick: Decimal,
    lot: Decimal,
    multiplier: Decimal,
    quote: &'static str,
    settle: &'static str,
) -> Known {
    Known {
        venue,
        symbol,
        kind,
        tick,
        lot,
        min_qty: lot,
        multiplier,
        quote,
        settle,
    }
}

use venue::{BINANCE_COINM, BINANCE_SPOT, BINANCE_USDM};
use InstrumentKind::{InversePerp, LinearPerp, Spot};

// One row per instrument reads as the table it is.
#[rustfmt::skip]
const TABLE: [Known; 10] = [
    known(BINANCE_SPOT, "BTCUSDT", Spot, dec!(0.01), dec!(0.00001), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_SPOT, "ETHUSDT", Spot, dec!(0.01), dec!(0.0001), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_SPOT, "SOLUSDT", Spot, dec!(0.01), dec!(0.001), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_USDM, "BTCUSDT", LinearPerp, dec!(0.1), dec!(0.001), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_USDM, "ETHUSDT", LinearPerp, dec!(0.01), dec!(0.001), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_USDM, "SOLUSDT", LinearPerp, dec!(0.01), dec!(1), Decimal::ONE, "USDT", "USDT"),
    known(BINANCE_COINM, "BTCUSD_PERP", InversePerp, dec!(0.1), dec!(1), dec!(100), "USD", "BTC"),
    known(BINANCE_COINM, "ETHUSD_PERP", InversePerp, dec!(0.01), dec!(1), dec!(10), "USD", "ETH"),
    known(venue::HYPERLIQUID, "BTC", LinearPerp, dec!(1), dec!(0.00001), Decimal::ONE, "USD", "USDC"),
    known(venue::HYPERLIQUID, "ETH", LinearPerp, dec!(0.1), dec!(0.0001), Decimal::ONE, "USD", "USDC"),
];

/// What an importer saw of a market: enough to look the instrument up, or to infer it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub venue: &'static str,
    pub symbol: Symbol,
    /// The most decimal places (trailing zeros dropped) of any price and size in the first book.
    pub price_dp: u32,
    pub size_dp: u32,
}

impl Instrument {
    /// The table's entry for this venue and symbol, else the rules the data shows.
    pub fn from_seen(seen: &Seen) -> Instrument {
        if let Some(k) = TABLE
            .iter()
            .find(|k| k.venue == seen.venue && k.symbol == seen.symbol.as_str())
        {
            return Instrument {
                origin: Origin::Table,
                market: MarketConfig {
                    symbol: seen.symbol,
                    venue: k.venue.to_string(),
                    kind: k.kind,
                    tick_size: k.tick,
                    lot_size: k.lot,
                    min_qty: k.min_qty,
                    multiplier: k.multiplier,
                    quote_currency: k.quote.to_string(),
                    settle_currency: k.settle.to_string(),
                },
            };
        }
        let step = |dp: u32| Decimal::new(1, dp.min(18));
        let (kind, multiplier, quote, settle) = guess_contract(seen);
        Instrument {
            origin: Origin::Data,
            market: MarketConfig {
                symbol: seen.symbol,
                venue: seen.venue.to_string(),
                kind,
                tick_size: step(seen.price_dp),
                lot_size: step(seen.size_dp),
                min_qty: step(seen.size_dp),
                multiplier,
                quote_currency: quote,
                settle_currency: settle,
            },
        }
    }

    /// The instrument of a session that quoted (live, paper): its own market config.
    pub fn from_config(market: &MarketConfig) -> Instrument {
        Instrument {
            origin: Origin::Config,
            market: market.clone(),
        }
    }

    /// One line for people: `ETHUSDT on binance-spot (spot): tick 0.01, lot 0.0001, ...`.
    pub fn describe(&self) -> String {
        let m = &self.market;
        format!(
            "{} on {} ({}): tick {}, lot {}, min {}, multiplier {}, prices in {}, PnL in {} ({})",
            m.symbol,
            m.venue,
            m.kind.as_str(),
            m.tick_size,
            m.lot_size,
            m.min_qty,
            m.multiplier,
            m.quote_currency,
            m.settle_currency,
            match self.origin {
                Origin::Table => "the venue's published rules",
                Origin::Data => "inferred from the data's first book: check them, and set market.* to correct them",
                Origin::Config => "the session's config",
            }
        )
    }

    /// The text an import session records as its `config`.
    pub fn to_toml(&self) -> String {
        let doc = Doc {
            instrument: OriginDoc {
                origin: self.origin,
            },
            market: self.market.clone(),
        };
        toml::to_string(&doc).unwrap_or_else(|e| format!("# instrument could not be rendered: {e}"))
    }

    /// Reads what `to_toml` wrote; `None` for an import from before instruments were recorded.
    pub fn from_toml(text: &str) -> Option<Instrument> {
        let doc: Doc = toml::from_str(text).ok()?;
        Some(Instrument {
            origin: doc.instrument.origin,
            market: doc.market,
        })
    }
}

/// For a symbol the table lacks: the venue says the contract kind; a COIN-M symbol names its
/// base currency before `USD_`.
fn guess_contract(seen: &Seen) -> (InstrumentKind, Decimal, String, String) {
    let s = seen.symbol.as_str();
    let quote_of = |s: &str| {
        ["USDT", "USDC", "FDUSD", "BUSD", "USD", "BTC", "ETH"]
            .iter()
            .find(|q| s.ends_with(*q) && s.len() > q.len())
            .map_or_else(|| "USD".to_string(), |q| q.to_string())
    };
    match seen.venue {
        venue::BINANCE_COINM => {
            let base = s.split("USD_").next().unwrap_or(s).to_string();
            // Binance's COIN-M contracts are 100 USD for BTC and 10 USD for every other coin.
            let mult = if base == "BTC" { dec!(100) } else { dec!(10) };
            (InversePerp, mult, "USD".into(), base)
        }
        venue::BINANCE_USDM => {
            let q = quote_of(s);
            (LinearPerp, Decimal::ONE, q.clone(), q)
        }
        venue::HYPERLIQUID => (LinearPerp, Decimal::ONE, "USD".into(), "USDC".into()),
        _ => {
            let q = quote_of(s);
            (Spot, Decimal::ONE, q.clone(), q)
        }
    }
}

/// The market keys a user can set, as `market.KEY`.
pub const MARKET_KEYS: [&str; 9] = [
    "symbol",
    "venue",
    "kind",
    "tick_size",
    "lot_size",
    "min_qty",
    "multiplier",
    "quote_currency",
    "settle_currency",
];

/// The market a run trades: the data's, with the keys the user set (`set`, as `market.KEY`)
/// kept where they agree with it. A key that contradicts the data is an error naming both; a
/// tick, lot or minimum coarser than the venue's (a multiple of it) is allowed, a finer one
/// only where the data's was inferred.
pub fn reconcile(
    cfg: &MarketConfig,
    set: &[String],
    data: &Instrument,
    what: &str,
) -> Result<MarketConfig, String> {
    let is_set = |k: &str| set.iter().any(|s| s == &format!("market.{k}"));
    let mut out = data.market.clone();
    let mismatch = |k: &str, ours: String, theirs: String| {
        format!(
            "config key `market.{k}` is {ours} but {what} is {theirs}; remove market.{k} from the config (the data's value is used) or pick data of {ours}"
        )
    };
    if is_set("symbol") && cfg.symbol != out.symbol {
        return Err(mismatch(
            "symbol",
            cfg.symbol.to_string(),
            out.symbol.to_string(),
        ));
    }
    let fixed: [(&str, String, String); 5] = [
        ("venue", cfg.venue.clone(), out.venue.clone()),
        ("kind", cfg.kind.as_str().into(), out.kind.as_str().into()),
        (
            "multiplier",
            cfg.multiplier.to_string(),
            out.multiplier.to_string(),
        ),
        (
            "quote_currency",
            cfg.quote_currency.clone(),
            out.quote_currency.clone(),
        ),
        (
            "settle_currency",
            cfg.settle_currency.clone(),
            out.settle_currency.clone(),
        ),
    ];
    for (k, ours, theirs) in fixed {
        let differs = if k == "multiplier" {
            cfg.multiplier != out.multiplier
        } else {
            ours != theirs
        };
        if is_set(k) && differs {
            return Err(mismatch(k, ours, theirs));
        }
    }
    let steps: [(&str, Decimal, &mut Decimal); 3] = [
        ("tick_size", cfg.tick_size, &mut out.tick_size),
        ("lot_size", cfg.lot_size, &mut out.lot_size),
        ("min_qty", cfg.min_qty, &mut out.min_qty),
    ];
    for (k, ours, theirs) in steps {
        if !is_set(k) || ours == *theirs {
            continue;
        }
        let coarser = !theirs.is_zero() && (ours % *theirs).is_zero() && ours > *theirs;
        if coarser || data.origin == Origin::Data {
            *theirs = ours;
        } else {
            return Err(format!(
                "config key `market.{k}` is {ours} but {what} has {k} {theirs} ({}); use a multiple of {theirs} or remove market.{k}",
                match data.origin {
                    Origin::Table => "the venue's published rule",
                    Origin::Config => "the session's own config",
                    Origin::Data => "inferred from the data",
                }
            ));
        }
    }
    if out.min_qty < out.lot_size {
        out.min_qty = out.lot_size;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "instrument_tests.rs"]
mod tests;
