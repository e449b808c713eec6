//! Whether a file is a Tardis CSV, and of which dataset and market, from its first lines only:
//! what `backtest --data` needs to pick the importer and to pair a trades file with its book.

use super::csv::{columns, Kind, Line, Lines};
use super::rows;
use crate::binance::ImportError;
use std::path::Path;

/// A book file's first good row comes right after its header; this many lines are enough to
/// pass over a few malformed ones without reading a damaged file to its end.
const ROWS_LOOKED_AT: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    Book,
    Trades,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peek {
    /// `None` when the header is Tardis's but not a complete one of either dataset: the
    /// importer then says what is missing.
    pub dataset: Option<Dataset>,
    /// The `exchange` and `symbol` of the first row that parses, if one does soon.
    pub market: Option<(String, String)>,
}

/// A Tardis header names `exchange` and `local_timestamp` (both datasets have them, and no
/// other recording this flashmm reads starts with such a line): `None` for anything else,
/// including a file whose first line cannot be read, which its own importer then reports.
pub fn peek(path: &Path) -> Result<Option<Peek>, ImportError> {
    let mut lines = Lines::open(path)?;
    let header = match lines.next_line() {
        Ok(Some((1, Line::Text(h)))) => h.to_string(),
        _ => return Ok(None),
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if !(names.contains(&"exchange") && names.contains(&"local_timestamp")) {
        return Ok(None);
    }
    let Ok(cols) = columns(path, &header) else {
        return Ok(Some(Peek {
            dataset: None,
            market: None,
        }));
    };
    let dataset = Some(match cols.kind {
        Kind::Book => Dataset::Book,
        Kind::Trades => Dataset::Trades,
    });
    let mut market = None;
    while let Ok(Some((n, line))) = lines.next_line() {
        if n > ROWS_LOOKED_AT {
            break;
        }
        if let Line::Text(t) = line {
            if let Ok(r) = rows::parse(&cols, t) {
                market = Some((r.exchange.to_string(), r.symbol.to_string()));
                break;
            }
        }
    }
    Ok(Some(Peek { dataset, market }))
}
