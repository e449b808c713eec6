//! One CSV row of either dataset, parsed and checked against `bounds`: decimals by
//! `Decimal::from_str`, exactly, never through a float (so `NaN` and `inf` are refused; an
//! exponent, which Tardis's writer uses for tiny amounts like `1e-7`, is read exactly), and
//! timestamps in microseconds turned into nanoseconds.

use super::csv::{Columns, Kind};
use flashmm_core::event::{bounds, Side, Symbol};
use rust_decimal::Decimal;
use std::str::FromStr;

/// The fields both datasets share.
#[derive(Debug)]
pub(super) struct Row<'a> {
    pub exchange: &'a str,
    pub symbol: Symbol,
    /// `local_timestamp`, in ns: when the collector received the message.
    pub local_ns: i64,
    /// `timestamp`, in ns: the exchange's time (Tardis falls back to the local time).
    pub venue_ns: Option<i64>,
    pub price: Decimal,
    pub amount: Decimal,
    pub what: What<'a>,
}

#[derive(Debug, PartialEq)]
pub(super) enum What<'a> {
    /// A book level: `Side::Buy` for `bid`, `Side::Sell` for `ask`.
    Level { snapshot: bool, side: Side },
    /// A trade: the taker's side, `None` for `unknown`; the `id` column as written.
    Trade { side: Option<Side>, id: &'a str },
}

/// Microseconds since the epoch to nanoseconds, within the years `bounds::ts` allows.
pub(super) fn micros(what: &str, s: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} {s:?} is not a whole number of microseconds"
        ));
    }
    let us: i64 = s
        .parse()
        .map_err(|_| format!("{what} {s:?} is too large"))?;
    let ns = us
        .checked_mul(1000)
        .ok_or_else(|| format!("{what} {s} microseconds is beyond the year 2200"))?;
    bounds::ts(what, ns)?;
    Ok(ns)
}

fn decimal(what: &str, s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s).map_err(|e| format!("{what} {s:?} is not a decimal number: {e}"))
}

pub(super) fn parse<'a>(c: &Columns, text: &'a str) -> Result<Row<'a>, String> {
    let f: Vec<&str> = text.split(',').collect();
    if f.len() != c.count {
        return Err(format!(
            "{} columns, but the header has {}",
            f.len(),
            c.count
        ));
    }
    let exchange = f[c.exchange].trim();
    if exchange.is_empty() {
        return Err("the exchange is empty".into());
    }
    let symbol = f[c.symbol].trim();
    let symbol = Symbol::new(&symbol.to_ascii_uppercase()).map_err(|e| e.to_string())?;
    let local_ns = micros("local_timestamp", f[c.local_timestamp].trim())?;
    let venue_ns = match f[c.timestamp].trim() {
        "" => None,
        t => Some(micros("timestamp", t)?),
    };
    let price = decimal("price", f[c.price].trim())?;
    bounds::price("price", price)?;
    let amount = decimal("amount", f[c.amount].trim())?;
    bounds::qty("amount", amount)?;
    let side = f[c.side].trim();
    let what = match c.kind {
        Kind::Book => {
            let snapshot = match f[c.extra].trim() {
                "true" => true,
                "false" => false,
                s => return Err(format!("is_snapshot {s:?} is neither true nor false")),
            };
            let side = match side {
                "bid" => Side::Buy,
                "ask" => Side::Sell,
                s => return Err(format!("side {s:?} is neither bid nor ask")),
            };
            What::Level { snapshot, side }
        }
        Kind::Trades => {
            let side = match side {
                "buy" => Some(Side::Buy),
                "sell" => Some(Side::Sell),
                "unknown" => None,
                s => return Err(format!("side {s:?} is not buy, sell or unknown")),
            };
            if amount.is_zero() {
                return Err("trade amount is 0".into());
            }
            What::Trade {
                side,
                id: f[c.extra].trim(),
            }
        }
    };
    Ok(Row {
        exchange,
        symbol,
        local_ns,
        venue_ns,
        price,
        amount,
        what,
    })
}

/// A trade id: the `id` column when it is a number; Tardis leaves it empty for exchanges that
/// give none, and some give text ids, so those take their place in the file (1, 2, ...).
pub(super) fn trade_id(id: &str, nth: u64) -> u64 {
    id.parse().unwrap_or(nth)
}

#[cfg(test)]
mod tests {
    use super::super::csv::columns;
    use super::*;
    use rust_decimal_macros::dec;
    use std::path::Path;

    const BOOK: &str = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";
    const TRADES: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

    fn book(row: &str) -> Result<(), String> {
        let c = columns(Path::new("b.csv"), BOOK).map_err(|e| e.to_string())?;
        parse(&c, row).map(|_| ())
    }

    #[test]
    fn a_book_row_parses_exactly() {
        let c = columns(Path::new("b.csv"), BOOK).expect("header");
        let r = parse(
            &c,
            "binance,btcusdt,1723161253000000,1723161253001000,true,bid,61685.990,0.50000",
        )
        .expect("row");
        assert_eq!(r.exchange, "binance");
        assert_eq!(r.symbol.as_str(), "BTCUSDT");
        assert_eq!(r.local_ns, 1_723_161_253_001_000_000);
        assert_eq!(r.venue_ns, Some(1_723_161_253_000_000_000));
        assert_eq!((r.price, r.amount), (dec!(61685.990), dec!(0.50000)));
        assert_eq!(
            r.what,
            What::Level {
                snapshot: true,
                side: Side::Buy
            }
        );
    }

    #[test]
    fn exponents_are_read_exactly() {
        let c = columns(Path::new("b.csv"), BOOK).expect("header");
        let r = parse(
            &c,
            "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,1e5,1e-7",
        )
        .expect("row");
        assert_eq!((r.price, r.amount), (dec!(100000), dec!(0.0000001)));
    }

    #[test]
    fn bad_values_are_refused_with_what_is_wrong() {
        let ok = "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,100,1";
        assert!(book(ok).is_ok());
        let cases = [
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,-1,1",
                "price",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,NaN,1",
                "price",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,inf,1",
                "price",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,1e10,1",
                "price",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,100,1e30",
                "amount",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,100,-0.1",
                "amount",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,100,99999999999999",
                "amount",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,buy,100,1",
                "side",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,yes,ask,100,1",
                "is_snapshot",
            ),
            (
                "binance,BTCUSDT,1723161253000000,-5,false,ask,100,1",
                "local_timestamp",
            ),
            (
                "binance,BTCUSDT,1723161253000000,99999999999999999999,false,ask,100,1",
                "local_timestamp",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1000,false,ask,100,1",
                "local_timestamp",
            ),
            (
                "binance,BTCUSDT,1723161253000000,1723161253000000,false,ask,100",
                "columns",
            ),
            (
                "binance,BTC USDT,1723161253000000,1723161253000000,false,ask,100,1",
                "symbol",
            ),
            (
                ",BTCUSDT,1723161253000000,1723161253000000,false,ask,100,1",
                "exchange",
            ),
        ];
        for (row, word) in cases {
            let e = book(row).expect_err(row);
            assert!(e.contains(word), "{row}: {e}");
        }
    }

    #[test]
    fn trade_sides_and_ids() {
        let c = columns(Path::new("t.csv"), TRADES).expect("header");
        // The side a row parses to, or why it does not.
        let side = |side: &str, id: &str, amount: &str| {
            let text = format!(
                "binance,BTCUSDT,1723161253000000,1723161253000000,{id},{side},100,{amount}"
            );
            match parse(&c, &text).map(|r| r.what) {
                Ok(What::Trade { side, .. }) => Ok(side),
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(e),
            }
        };
        assert_eq!(side("buy", "7", "1"), Ok(Some(Side::Buy)));
        assert_eq!(side("sell", "7", "1"), Ok(Some(Side::Sell)));
        assert_eq!(side("unknown", "7", "1"), Ok(None));
        assert!(side("bid", "7", "1").is_err());
        assert!(side("buy", "7", "0").is_err(), "a trade of nothing");
        assert_eq!(trade_id("12345", 3), 12345);
        assert_eq!(trade_id("", 3), 3);
        assert_eq!(trade_id("a1b2-c3", 4), 4);
    }
}
