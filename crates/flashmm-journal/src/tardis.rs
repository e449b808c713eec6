//! Imports Tardis.dev CSV datasets (docs/tardis.md): an `incremental_book_L2` file, alone or
//! with the `trades` file of the same market, as one import session.
//!
//! As for Binance, the files are read twice: once to check every row (a failed import writes
//! nothing), once to write. The book is rebuilt by Tardis's rule: a run of `is_snapshot=true`
//! rows is the whole book (after updates, it replaces the book), and the other rows sharing a
//! `local_timestamp` are one update message. Tardis rows carry no update ids, so the importer
//! mints them in order, which makes every update continue the one before it.
//!
//! `csv` reads a file (gzip sniffed, BOM, CRLF, columns by name), `rows` parses one row,
//! `stream` checks a file's rows and groups the book's, `merge` interleaves the two files by
//! receive time and turns them into records.

use super::Writer;
use crate::binance::{find_import, hex, ImportError, ImportOptions, ImportStats, Record};
use crate::import_session::ImportSession;
use flashmm_core::event::{Mode, SessionStart, Source};
use flashmm_core::instrument::{venue, Instrument, Seen};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod csv;
mod merge;
mod peek;
mod rows;
mod stream;

pub use peek::{peek, Dataset, Peek};

use csv::Kind;

#[derive(Debug, thiserror::Error)]
pub enum TardisError {
    #[error("{path} line 1: {detail}")]
    Header { path: String, detail: String },
    #[error("{path} line {line}: malformed row: {detail} (--strict stops at the first malformed row; without it such rows are counted, listed and skipped)")]
    Row {
        path: String,
        line: u64,
        detail: String,
    },
    #[error("{path} line {line}: the {what} changes from {from} to {to}; an import is of one market, so split the file by {what} and import each part")]
    Changed {
        path: String,
        line: u64,
        what: &'static str,
        from: String,
        to: String,
    },
    #[error("{path} line {line}: the local time jumps {dir} by {jump_s} s (from {from} to {to} ns), more than the {max_s} s allowed; if the data really has such a gap, pass --max-time-jump-s with a larger value")]
    TimeJump {
        path: String,
        line: u64,
        dir: &'static str,
        jump_s: u64,
        from: i64,
        to: i64,
        max_s: u64,
    },
    #[error("{path} line {line}: the first book row is not a snapshot (is_snapshot=false). Tardis's incremental_book_L2 files start with a snapshot of the book, and updates before one cannot be applied to any book; import the file from its beginning")]
    NoSnapshotFirst { path: String, line: u64 },
    #[error("{path} lines {first_line}..{last_line}: the snapshot has {bids} bids and {asks} asks; a book needs both sides")]
    OneSided {
        path: String,
        first_line: u64,
        last_line: u64,
        bids: usize,
        asks: usize,
    },
    #[error("{path}: no row after the header could be imported")]
    NoRows { path: String },
    #[error("{trades} is of {what} {trades_value} but the book file {book} is of {book_value}; import the trades file of the same market as the book")]
    Mismatch {
        book: String,
        trades: String,
        what: &'static str,
        book_value: String,
        trades_value: String,
    },
    #[error("{0}")]
    Files(String),
}

impl From<TardisError> for ImportError {
    fn from(e: TardisError) -> ImportError {
        ImportError::Tardis(Box::new(e))
    }
}

/// The venue names of the Tardis exchange ids whose instruments the table may know.
fn known_venue(exchange: &str) -> Option<&'static str> {
    Some(match exchange {
        "binance" => venue::BINANCE_SPOT,
        "binance-futures" => venue::BINANCE_USDM,
        "binance-delivery" => venue::BINANCE_COINM,
        "hyperliquid" => venue::HYPERLIQUID,
        _ => return None,
    })
}

/// The venue an instrument is recorded on, from Tardis's `exchange` id: another exchange keeps
/// Tardis's name for it.
pub fn venue_of(exchange: &str) -> &str {
    known_venue(exchange).unwrap_or(exchange)
}

/// The instrument of a market seen in Tardis data: the table's entry for the venues it knows,
/// else the rules the first snapshot shows, on a venue named as Tardis names the exchange.
pub fn instrument(
    exchange: &str,
    symbol: flashmm_core::event::Symbol,
    dp: (u32, u32),
) -> Instrument {
    let known = known_venue(exchange);
    let mut i = Instrument::from_seen(&Seen {
        // Another exchange is not in the table, so `from_seen` infers it as spot; its name is
        // put back after.
        venue: known.unwrap_or(""),
        symbol,
        price_dp: dp.0,
        size_dp: dp.1,
    });
    if known.is_none() {
        i.market.venue = exchange.to_string();
    }
    i
}

/// Which file is the book and which the trades, by their headers.
fn classify(paths: &[PathBuf]) -> Result<(PathBuf, Option<PathBuf>), ImportError> {
    let (mut books, mut trades) = (Vec::new(), Vec::new());
    for p in paths {
        match stream::Source::open(p)?.kind {
            Kind::Book => books.push(p.clone()),
            Kind::Trades => trades.push(p.clone()),
        }
    }
    let list = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if books.len() > 1 || trades.len() > 1 {
        return Err(TardisError::Files(format!(
            "an import takes one incremental_book_L2 file and at most one trades file of the same market and day, but got {} book files ({}) and {} trades files ({}); import each day with its own command",
            books.len(),
            list(&books),
            trades.len(),
            list(&trades)
        ))
        .into());
    }
    match books.pop() {
        Some(b) => Ok((b, trades.pop())),
        None => Err(TardisError::Files(format!(
            "no incremental_book_L2 file among {}: trades alone have no book to quote against; pass the book file of the same market too",
            list(&trades)
        ))
        .into()),
    }
}

/// The sha256 of the files' bytes, the book's first, and their total size: for one file, the
/// same as every importer's digest of it.
pub fn digest(files: &[&Path]) -> Result<(String, u64), ImportError> {
    let mut h = Sha256::new();
    let mut bytes = 0;
    for p in files {
        let open_err = |e: std::io::Error| ImportError::Open {
            path: p.display().to_string(),
            detail: e.to_string(),
        };
        let mut f = std::fs::File::open(p).map_err(open_err)?;
        bytes += std::io::copy(&mut f, &mut h).map_err(open_err)?;
    }
    Ok((hex(&h.finalize()), bytes))
}

/// What the import did, for the session end and the command's output.
pub fn summary(s: &ImportStats) -> String {
    let mut out = format!(
        "{} rows: {} snapshots, {} book updates, {} trades; {} entries",
        s.lines, s.snapshots, s.depth_diffs, s.trades, s.entries
    );
    if s.inferred_sides > 0 {
        let _ = write!(
            out,
            "; {} trades of unknown side given the side of the book they traded against",
            s.inferred_sides
        );
    }
    if s.clamped_ts > 0 {
        let _ = write!(
            out,
            "; {} timestamps went backwards and were clamped",
            s.clamped_ts
        );
    }
    if s.malformed > 0 {
        let shown: Vec<String> = s.malformed_lines.iter().map(|(_, w)| w.clone()).collect();
        let _ = write!(
            out,
            "; {} malformed rows skipped ({}{})",
            s.malformed,
            shown.join("; "),
            if s.malformed as usize > shown.len() {
                "; ..."
            } else {
                ""
            }
        );
    }
    out
}

/// Checks the files, then appends them as one new import session. Returns the session id.
pub fn import(
    writer: &mut Writer,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<(u64, ImportStats), ImportError> {
    let (book, trades) = classify(paths)?;
    let files = merge::Files {
        book: &book,
        trades: trades.as_deref(),
    };
    let ordered: Vec<&Path> = std::iter::once(book.as_path())
        .chain(trades.as_deref())
        .collect();
    let shown = ordered
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(p) = &opts.progress {
        // Two passes: one that validates, one that writes.
        p.expect_files(ordered.iter().copied(), 2);
    }
    let (sha256, bytes) = digest(&ordered)?;
    if !opts.force {
        if let Some(session) = find_import(writer.journal(), &sha256)? {
            return Err(ImportError::AlreadyImported {
                path: shown,
                session,
            });
        }
    }
    // Pass 1: check everything; nothing is written.
    let seen = merge::scan(&files, opts, &mut |_| Ok(()))?;
    if let Some(s) = opts.symbol {
        if s != seen.symbol {
            return Err(TardisError::Files(format!(
                "--symbol {s} was given but {} is of {}; the rows name their symbol, so leave --symbol out",
                book.display(),
                seen.symbol
            ))
            .into());
        }
    }
    let instrument = instrument(
        &seen.exchange,
        seen.symbol,
        seen.stats.book_dp.unwrap_or((2, 5)),
    );
    let names = ordered
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let start = SessionStart {
        mode: Mode::Import,
        version: flashmm_core::VERSION.to_string(),
        config: instrument.to_toml(),
        label: format!("tardis import of {names} ({})", seen.exchange),
        parent: None,
        source: Some(Source::File {
            path: shown,
            format: "tardis".into(),
            sha256,
            bytes,
        }),
    };
    // Pass 2: the same scan, writing.
    let mut out = ImportSession::new(writer, start);
    let written = merge::scan(&files, opts, &mut |r: Record| out.write(r))?;
    let mut stats = written.stats;
    let Some(id) = out.finish(stats.last_ts.unwrap_or(0), summary(&stats))? else {
        return Err(TardisError::NoRows {
            path: book.display().to_string(),
        }
        .into());
    };
    stats.instrument = Some(instrument);
    Ok((id, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::config::InstrumentKind;
    use flashmm_core::event::Symbol;

    #[test]
    fn exchanges_map_to_venues() {
        assert_eq!(venue_of("binance"), "binance-spot");
        assert_eq!(venue_of("binance-futures"), "binance-usdm");
        assert_eq!(venue_of("binance-delivery"), "binance-coinm");
        assert_eq!(venue_of("hyperliquid"), "hyperliquid");
        assert_eq!(venue_of("deribit"), "deribit");
    }

    #[test]
    fn the_instrument_comes_from_the_table_or_the_first_book() {
        let sym = |s| Symbol::new(s).expect("symbol");
        let i = instrument("binance-futures", sym("BTCUSDT"), (1, 3));
        assert_eq!(i.market.venue, "binance-usdm");
        assert_eq!(i.market.kind, InstrumentKind::LinearPerp);
        let i = instrument("binance-delivery", sym("BTCUSD_PERP"), (1, 0));
        assert_eq!(i.market.kind, InstrumentKind::InversePerp);
        let i = instrument("deribit", sym("BTC-PERPETUAL"), (1, 1));
        assert_eq!(i.market.venue, "deribit");
        assert_eq!(i.market.tick_size, rust_decimal_macros::dec!(0.1));
        assert_eq!(i.origin, flashmm_core::instrument::Origin::Data);
    }
}
