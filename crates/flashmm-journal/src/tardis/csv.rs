//! Reading one Tardis CSV file: gzip or plain (told by the gzip magic bytes, not the name), an
//! optional UTF-8 byte-order mark, LF or CRLF line ends, and the columns found by the header's
//! names so that extra columns and another order are accepted.

use crate::binance::ImportError;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use super::TardisError;

/// No Tardis row comes near this (a row is about 100 bytes); a longer line is malformed and is
/// skipped without being held, so a file without newlines cannot exhaust memory.
pub(super) const MAX_ROW_BYTES: usize = 64 << 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BOM: &str = "\u{feff}";

/// What the header says the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Book,
    Trades,
}

impl Kind {
    pub(super) fn dataset(self) -> &'static str {
        match self {
            Kind::Book => "incremental_book_L2",
            Kind::Trades => "trades",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Book => &[
                "exchange",
                "symbol",
                "timestamp",
                "local_timestamp",
                "is_snapshot",
                "side",
                "price",
                "amount",
            ],
            Kind::Trades => &[
                "exchange",
                "symbol",
                "timestamp",
                "local_timestamp",
                "id",
                "side",
                "price",
                "amount",
            ],
        }
    }
}

/// Where each column the importer reads is, and how many columns a row must have.
#[derive(Clone, Debug)]
pub(super) struct Columns {
    pub kind: Kind,
    pub count: usize,
    pub exchange: usize,
    pub symbol: usize,
    pub timestamp: usize,
    pub local_timestamp: usize,
    /// `is_snapshot` for a book file, `id` for a trades file.
    pub extra: usize,
    pub side: usize,
    pub price: usize,
    pub amount: usize,
}

/// Reads the header: which dataset the file is (by its `is_snapshot` or `id` column, else by
/// its name) and where the required columns are; a missing one is an error naming it.
pub(super) fn columns(path: &Path, header: &str) -> Result<Columns, TardisError> {
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let has = |n: &str| names.contains(&n);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let kind = if has("is_snapshot") {
        Kind::Book
    } else if has("id") {
        Kind::Trades
    } else if file_name.contains("incremental_book") {
        Kind::Book
    } else if file_name.contains("trades") {
        Kind::Trades
    } else {
        return Err(TardisError::Header {
            path: path.display().to_string(),
            detail: format!(
                "the header {header:?} is neither an incremental_book_L2 header ({}) nor a trades header ({})",
                Kind::Book.required().join(","),
                Kind::Trades.required().join(",")
            ),
        });
    };
    let missing: Vec<&str> = kind
        .required()
        .iter()
        .copied()
        .filter(|n| !has(n))
        .collect();
    if !missing.is_empty() {
        return Err(TardisError::Header {
            path: path.display().to_string(),
            detail: format!(
                "the {} header lacks the column{} {} (it has {header:?}); every one of {} is needed",
                kind.dataset(),
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                kind.required().join(",")
            ),
        });
    }
    // `has` held for each, so every position is found; the first of a repeated name is used.
    let at = |n: &str| names.iter().position(|c| *c == n).unwrap_or(0);
    Ok(Columns {
        kind,
        count: names.len(),
        exchange: at("exchange"),
        symbol: at("symbol"),
        timestamp: at("timestamp"),
        local_timestamp: at("local_timestamp"),
        extra: at(match kind {
            Kind::Book => "is_snapshot",
            Kind::Trades => "id",
        }),
        side: at("side"),
        price: at("price"),
        amount: at("amount"),
    })
}

/// One line as read: its text, or why it cannot be a row.
pub(super) enum Line<'a> {
    Text(&'a str),
    Bad(String),
}

/// The lines of a file, numbered from 1 (the header).
pub(super) struct Lines {
    path: String,
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    pub line: u64,
}

impl Lines {
    pub(super) fn open(path: &Path) -> Result<Lines, ImportError> {
        Self::open_counted(path, None)
    }

    /// `open`, adding what is read to an import's progress.
    pub(super) fn open_counted(
        path: &Path,
        progress: Option<std::sync::Arc<crate::progress::ImportProgress>>,
    ) -> Result<Lines, ImportError> {
        let shown = path.display().to_string();
        let open_err = |e: std::io::Error| ImportError::Open {
            path: shown.clone(),
            detail: e.to_string(),
        };
        let mut file = crate::progress::Counted::new(File::open(path).map_err(open_err)?, progress);
        // Sniff the first two bytes (a short read is retried), then put them back in front.
        let mut head = Vec::with_capacity(2);
        Read::by_ref(&mut file)
            .take(2)
            .read_to_end(&mut head)
            .map_err(open_err)?;
        let gz = head == GZIP_MAGIC;
        let raw = Cursor::new(head).chain(file);
        let reader: Box<dyn BufRead> = if gz {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, raw)),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, raw))
        };
        Ok(Lines {
            path: shown,
            reader,
            buf: Vec::with_capacity(256),
            line: 0,
        })
    }

    /// The next non-empty line with its number, without its line end (and, on line 1,
    /// without a BOM).
    pub(super) fn next_line(&mut self) -> Result<Option<(u64, Line<'_>)>, ImportError> {
        let (start, end) = loop {
            self.buf.clear();
            let path = &self.path;
            let read_err = |line: u64, e: std::io::Error| ImportError::Read {
                path: path.clone(),
                line,
                detail: e.to_string(),
            };
            let n = Read::by_ref(&mut self.reader)
                .take(MAX_ROW_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| read_err(self.line, e))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.len() > MAX_ROW_BYTES && self.buf.last() != Some(&b'\n') {
                self.reader
                    .skip_until(b'\n')
                    .map_err(|e| read_err(self.line - 1, e))?;
                return Ok(Some((
                    self.line,
                    Line::Bad(format!(
                        "the line is longer than {MAX_ROW_BYTES} bytes; no Tardis row is that long"
                    )),
                )));
            }
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Ok(Some((self.line, Line::Bad("not UTF-8".into()))));
            };
            let trimmed = text.trim_end_matches(['\n', '\r']);
            let start = if self.line == 1 && trimmed.starts_with(BOM) {
                BOM.len()
            } else {
                0
            };
            if !trimmed[start..].trim().is_empty() {
                break (start, trimmed.len());
            }
        };
        // Checked as UTF-8 above, and cut at character boundaries.
        Ok(Some((
            self.line,
            match std::str::from_utf8(&self.buf[start..end]) {
                Ok(t) => Line::Text(t),
                Err(_) => Line::Bad("not UTF-8".into()),
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(header: &str) -> Result<Columns, TardisError> {
        columns(Path::new("x.csv"), header)
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_with_extras() {
        let c = cols("local_timestamp,exchange,symbol,timestamp,is_snapshot,side,price,amount,x")
            .expect("book header");
        assert_eq!(c.kind, Kind::Book);
        assert_eq!(
            (c.local_timestamp, c.exchange, c.extra, c.count),
            (0, 1, 4, 9)
        );
        let t = cols("exchange,symbol,timestamp,local_timestamp,id,side,price,amount")
            .expect("trades header");
        assert_eq!((t.kind, t.extra), (Kind::Trades, 4));
    }

    #[test]
    fn a_missing_column_is_named() {
        let e = cols("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,amount")
            .expect_err("no price");
        let msg = e.to_string();
        assert!(msg.contains("price") && msg.contains("x.csv"), "{msg}");
        // Without is_snapshot or id, the file's name tells the dataset.
        let e = columns(
            Path::new("binance_incremental_book_L2_2024-08-08_BTCUSDT.csv.gz"),
            "exchange,symbol,timestamp,local_timestamp,side,price,amount",
        )
        .expect_err("no is_snapshot");
        assert!(e.to_string().contains("is_snapshot"), "{e}");
        assert!(cols("a,b,c").is_err());
    }
}
