//! A day's file that continues the last one. Collectors write one file a day, and the next day's
//! file has no snapshot: its first diff continues the previous file's last `u`. If the journal's
//! latest import of that symbol ends where the file begins, the new session starts with that
//! book, rebuilt from the earlier session's snapshot and diffs, as a snapshot at the earlier
//! session's last update id; the importer's continuity rules then apply to its first diff as to
//! the first diff after any snapshot.

use super::{parse_line, ImportError, Parsed, MAX_LINE_BYTES};
use crate::{Journal, SessionInfo};
use flashmm_core::book::Book;
use flashmm_core::event::{Body, BookDelta, BookSnapshot, Input, Mode, Side, Source};
use std::io::{BufRead, Read};
use std::path::Path;

/// Lines read looking for the first depth record before giving up on finding one.
const MAX_LINES_BEFORE_DEPTH: u64 = 1_000_000;

/// The journal's latest import of the symbol, and where its book ended.
pub struct Earlier {
    pub session: u64,
    pub last_u: u64,
    pub path: String,
}

pub enum Lookup {
    /// The file continues this session's book.
    Continues(Earlier, BookSnapshot),
    /// The journal's latest import of the symbol does not end where the file begins.
    Breaks(Earlier),
    /// The file starts with a snapshot, has no depth, or no earlier import has its symbol.
    Nothing,
}

/// The file's first depth diff, with its line and local time, unless a snapshot comes first.
pub fn first_diff(path: &Path) -> Result<Option<(u64, i64, BookDelta)>, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut buf = Vec::new();
    for line in 1..=MAX_LINES_BEFORE_DEPTH {
        buf.clear();
        // A read error here is the importer's to report, with its line; this only looks.
        let n = Read::by_ref(&mut reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut buf)
            .unwrap_or(0);
        if n == 0 {
            return Ok(None);
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            continue;
        };
        match parse_line(text.trim_end()) {
            Ok((_, Parsed::Snapshot { .. })) => return Ok(None),
            Ok((ts, Parsed::Depth { delta, .. })) => return Ok(Some((line, ts, delta))),
            _ => {}
        }
    }
    Ok(None)
}

fn binance_import(info: &SessionInfo) -> Option<String> {
    match (&info.mode, &info.source) {
        (Mode::Import, Some(Source::File { format, path, .. })) if format == "binance" => {
            Some(path.clone())
        }
        _ => None,
    }
}

/// Where the latest finished Binance import of `first`'s symbol ended, and whether `first`
/// (at local time `ts`) continues it: the spot rule (`U <= last u + 1 <= u`) or the futures one
/// (`pu == last u`), and a time after it.
pub fn find(journal: &Journal, first: &BookDelta, ts: i64) -> Result<Lookup, ImportError> {
    let mut sessions = journal.sessions()?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.id));
    for info in sessions.iter().filter(|s| s.finished()) {
        let Some(path) = binance_import(info) else {
            continue;
        };
        let Some(last_u) = last_update_id(journal, info, first)? else {
            continue;
        };
        let earlier = Earlier {
            session: info.id,
            last_u,
            path,
        };
        let straddles =
            first.first_update_id <= last_u.saturating_add(1) && first.last_update_id > last_u;
        let continues = (first.prev_update_id == Some(last_u) || straddles) && ts >= info.last_ts;
        if !continues {
            return Ok(Lookup::Breaks(earlier));
        }
        let book = rebuild(journal, info)?;
        let (bids, asks): (Vec<_>, Vec<_>) = (
            book.levels(Side::Buy).collect(),
            book.levels(Side::Sell).collect(),
        );
        if bids.is_empty() || asks.is_empty() {
            // Not a book a snapshot may hold (`bounds::snapshot_parts`): let the file be refused.
            return Ok(Lookup::Breaks(earlier));
        }
        let snapshot = BookSnapshot {
            symbol: first.symbol,
            update_id: last_u,
            bids,
            asks,
        };
        return Ok(Lookup::Continues(earlier, snapshot));
    }
    Ok(Lookup::Nothing)
}

/// The update id the session's book ended at, for `first`'s symbol: its last diff's `u`, or its
/// last snapshot's id. `None` if it holds no book of that symbol.
fn last_update_id(
    journal: &Journal,
    info: &SessionInfo,
    first: &BookDelta,
) -> Result<Option<u64>, ImportError> {
    for e in journal.read_back(info.last_seq) {
        let e = e?;
        if e.seq < info.first_seq {
            break;
        }
        if e.session != info.id {
            continue;
        }
        match &e.body {
            Body::Input(Input::BookDelta(d)) if d.symbol == first.symbol => {
                return Ok(Some(d.last_update_id))
            }
            Body::Input(Input::BookSnapshot(s)) if s.symbol == first.symbol => {
                return Ok(Some(s.update_id))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The session's L2 book at its end, from its snapshots and diffs only (a bookTicker is not
/// depth).
fn rebuild(journal: &Journal, info: &SessionInfo) -> Result<Book, ImportError> {
    let mut book = Book::new();
    for e in journal.read(info.first_seq)? {
        let e = e?;
        if e.seq > info.last_seq {
            break;
        }
        if e.session != info.id {
            continue;
        }
        if let Body::Input(i @ (Input::BookSnapshot(_) | Input::BookDelta(_))) = &e.body {
            book.apply_market(i);
        }
    }
    Ok(book)
}
