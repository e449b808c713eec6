//! Imports the hftbacktest collector's Binance recordings: `<local_ns> <json>` per line, gzip.
//!
//! The book is rebuilt by Binance's rule, and the import fails rather than store a book that
//! would be wrong: diffs before the snapshot are buffered and replayed against it, stale diffs
//! are dropped, and a missing snapshot or an update-id gap stops the import with line numbers.
//! Validation runs over the whole file first (hashing it as it goes, for the "already imported"
//! check), so a failed import writes nothing.
//!
//! Longer than 600 lines on purpose: Binance's local-book rule (snapshot, buffered diffs, stale
//! drops, gaps) and the validation pass that enforces it are one algorithm.

use super::{Journal, JournalError, Writer};
use crate::import_session::ImportSession;
use flashmm_core::event::{
    bounds, Bbo, BookDelta, BookSnapshot, FeedState, FeedStatus, FundingRate, Input, Level, Mode,
    SessionStart, SessionStatus, Side, Source, Symbol, Trade,
};
use flashmm_core::instrument::{Instrument, Seen};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

mod continues;
mod fast;

const SHOWN_MALFORMED: usize = 20;
/// Depth diffs held while waiting for a snapshot; beyond this the snapshot is surely missing.
const MAX_BUFFERED: usize = 1_000_000;
/// Depth diffs held after a gap while waiting for the resync snapshot, the newest kept: only the
/// last few before the snapshot can straddle it, and at 100 ms a diff this is 17 minutes.
const MAX_RESYNC_BUFFER: usize = 10_000;
/// No record comes near this (a 5,000-level snapshot is about 300 KB); a longer line is skipped
/// as malformed without being held in memory, so a file without newlines (not a recording, or
/// a damaged gzip stream) cannot exhaust it.
pub const MAX_LINE_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {detail}")]
    Open { path: String, detail: String },
    #[error(
        "{path}: reading failed after line {line}: {detail} (is the file truncated or not gzip?)"
    )]
    Read {
        path: String,
        line: u64,
        detail: String,
    },
    #[error(
        "line {line}: malformed record: {detail} (--strict stops at the first malformed line)"
    )]
    Malformed { line: u64, detail: String },
    #[error("no depth snapshot (a `lastUpdateId` line) before the end of the file: {diffs} depth diffs, lines {first_line}..{last_line}, cannot be applied to any book")]
    MissingSnapshot {
        diffs: u64,
        first_line: u64,
        last_line: u64,
    },
    #[error("the file has no snapshot before its first depth diff (line {line}: U={first_u}, u={last_u_file}{pu}), and that diff does not continue the journal's latest import of its symbol, session {session} ({path}), whose book ended at u={last_u}: import the file that comes before it first, or one that starts with a snapshot")]
    NotContinuing {
        line: u64,
        first_u: u64,
        last_u_file: u64,
        pu: String,
        session: u64,
        path: String,
        last_u: u64,
    },
    #[error("update-id gap at line {line}: {detail}. The book would be wrong from here; pass --allow-gaps to mark the gap and resync at the next snapshot")]
    Gap { line: u64, detail: String },
    #[error("line {line}: the local time jumps {dir} by {jump_s} s (from {from} to {to} ns), more than the {max_s} s allowed; if the recording really has such a gap, pass --max-time-jump-s with a larger value")]
    TimeJump {
        line: u64,
        dir: &'static str,
        jump_s: u64,
        from: i64,
        to: i64,
        max_s: u64,
    },
    #[error("the snapshot at line {line} has lastUpdateId {update_id}, but none of the {stale} depth diffs after it reaches that id (the last ends at u={last_u}): the snapshot does not belong to this stream")]
    UnfollowedSnapshot {
        line: u64,
        update_id: u64,
        stale: u64,
        last_u: u64,
    },
    #[error("line {line}: coin {coin}, but {known}: a file holds one market; split the recording by coin and import each file on its own")]
    CoinChanged {
        line: u64,
        coin: String,
        /// What named the other coin: the file's earlier lines, or --symbol.
        known: String,
    },
    #[error("cannot tell the symbol: no line names one; pass --symbol")]
    NoSymbol,
    #[error("{path} is already imported as session {session}; pass --force to import it again")]
    AlreadyImported { path: String, session: u64 },
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A Tardis CSV import's own refusals (`tardis`), each naming the file and line; boxed,
    /// since they carry a path and would double the size of every importer's `Result`.
    #[error(transparent)]
    Tardis(Box<crate::tardis::TardisError>),
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub strict: bool,
    pub allow_gaps: bool,
    pub symbol: Option<Symbol>,
    pub force: bool,
    /// The largest step of the local time between two lines, either way.
    pub max_time_jump_s: u64,
    /// Where the importer counts the bytes it reads, for the caller's progress display.
    pub progress: Option<std::sync::Arc<crate::progress::ImportProgress>>,
}

/// Six hours: a collector that lost its network for longer than that has made two recordings.
pub const DEFAULT_MAX_TIME_JUMP_S: u64 = 6 * 3600;

/// Stale diffs after a snapshot, none applied, beyond which the snapshot is not this stream's.
const MAX_STALE_AFTER_SNAPSHOT: u64 = 100;

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            strict: false,
            allow_gaps: false,
            symbol: None,
            force: false,
            max_time_jump_s: DEFAULT_MAX_TIME_JUMP_S,
            progress: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportStats {
    pub lines: u64,
    pub snapshots: u64,
    pub depth_diffs: u64,
    pub applied_diffs: u64,
    /// Diffs older than the book (u <= lastUpdateId), dropped by the rule.
    pub stale_diffs: u64,
    /// Diffs that arrived before the first snapshot and were replayed after it.
    pub buffered_diffs: u64,
    pub trades: u64,
    pub bbo: u64,
    /// `markPrice` lines: funding rates and when they are due.
    pub funding_rates: u64,
    pub unknown_streams: u64,
    /// Hyperliquid: trades older than the file's first book, or before any book (the catch-up
    /// a trades subscription starts with), skipped: the book already shows them.
    pub early_trades: u64,
    /// Each book is a whole snapshot and there are no diffs (Hyperliquid); `summary` says so.
    pub snapshot_only: bool,
    pub malformed: u64,
    pub malformed_lines: Vec<(u64, String)>,
    /// Lines whose local timestamp went backwards; stored at the previous timestamp.
    pub clamped_ts: u64,
    pub gaps: Vec<(u64, String)>,
    /// Diffs dropped while waiting for a snapshot after a gap (--allow-gaps).
    pub dropped_unsynced: u64,
    pub entries: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// The import session whose book this file continues (it has no snapshot of its own first).
    pub continued_from: Option<u64>,
    /// The most decimal places of any price and any size in the first book (the snapshot, or
    /// the book continued): what the instrument's tick and lot are inferred from.
    pub book_dp: Option<(u32, u32)>,
    /// Whether the diffs carry `pu` (a futures stream).
    pub futures: bool,
    /// The instrument recorded in the import session (`journal::instrument`).
    pub instrument: Option<flashmm_core::instrument::Instrument>,
    /// Tardis trades of `unknown` side whose taker was told from the book's mid.
    pub inferred_sides: u64,
}

/// The most decimal places of any price and any size in `levels`, trailing zeros dropped.
pub fn book_dp<'a>(levels: impl Iterator<Item = &'a Level>) -> (u32, u32) {
    levels.fold((0, 0), |(p, q), l| {
        (
            p.max(l.price.normalize().scale()),
            q.max(l.qty.normalize().scale()),
        )
    })
}

/// The Binance market a recording is of: COIN-M futures are named `BASEUSD_PERP` or
/// `BASEUSD_YYMMDD`; other futures streams (they carry `pu`) are USD-M.
pub fn venue_of(symbol: &Symbol, futures: bool) -> &'static str {
    use flashmm_core::instrument::venue;
    match (futures, symbol.as_str().contains("USD_")) {
        (false, _) => venue::BINANCE_SPOT,
        (true, true) => venue::BINANCE_COINM,
        (true, false) => venue::BINANCE_USDM,
    }
}

impl ImportStats {
    pub fn summary(&self) -> String {
        let mut s = if self.snapshot_only {
            format!(
                "{} lines: {} book snapshots, {} trades ({} from before the first book skipped); {} entries",
                self.lines, self.snapshots, self.trades, self.early_trades, self.entries
            )
        } else {
            format!(
                "{} lines: {} snapshots, {} depth diffs ({} applied, {} buffered before the snapshot, {} stale dropped), {} trades, {} bbo; {} entries",
                self.lines, self.snapshots, self.depth_diffs, self.applied_diffs, self.buffered_diffs,
                self.stale_diffs, self.trades, self.bbo, self.entries
            )
        };
        if self.funding_rates > 0 {
            let _ = write!(s, "; {} funding rates (markPrice)", self.funding_rates);
        }
        if self.unknown_streams > 0 {
            let _ = write!(
                s,
                "; {} lines of other streams skipped",
                self.unknown_streams
            );
        }
        if self.clamped_ts > 0 {
            let _ = write!(
                s,
                "; {} timestamps went backwards and were clamped",
                self.clamped_ts
            );
        }
        if self.malformed > 0 {
            let lines: Vec<String> = self
                .malformed_lines
                .iter()
                .map(|(l, _)| l.to_string())
                .collect();
            let _ = write!(
                s,
                "; {} malformed lines skipped (lines {}{})",
                self.malformed,
                lines.join(", "),
                if self.malformed as usize > lines.len() {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        for (line, g) in &self.gaps {
            let _ = write!(s, "; gap at line {line}: {g}");
        }
        if let Some(id) = self.continued_from {
            let _ = write!(s, "; continues the book of session {id}");
        }
        if self.dropped_unsynced > 0 {
            let _ = write!(
                s,
                "; {} diffs dropped while waiting for a snapshot",
                self.dropped_unsynced
            );
        }
        s
    }
}

#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Option<u64>,
    #[serde(borrow, default)]
    bids: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow, default)]
    asks: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

#[derive(Deserialize)]
struct WireDepth<'a> {
    #[serde(rename = "E")]
    event_ms: Option<i64>,
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    #[serde(rename = "pu")]
    prev: Option<u64>,
    #[serde(rename = "b", borrow)]
    bids: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(rename = "a", borrow)]
    asks: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

#[derive(Deserialize)]
struct WireTrade<'a> {
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "t")]
    id: u64,
    #[serde(rename = "p", borrow)]
    price: Cow<'a, str>,
    #[serde(rename = "q", borrow)]
    qty: Cow<'a, str>,
    #[serde(rename = "T")]
    trade_ms: i64,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
}

/// `<symbol>@markPrice` (futures): the mark price and the funding rate due at `T`.
#[derive(Deserialize)]
struct WireMarkPrice<'a> {
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "E")]
    event_ms: Option<i64>,
    #[serde(rename = "p", borrow)]
    mark: Cow<'a, str>,
    #[serde(rename = "r", borrow)]
    rate: Cow<'a, str>,
    #[serde(rename = "T")]
    next_funding_ms: i64,
}

#[derive(Deserialize)]
struct WireTicker<'a> {
    #[serde(rename = "u")]
    update_id: Option<u64>,
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "E")]
    event_ms: Option<i64>,
    #[serde(rename = "b", borrow)]
    bid: Cow<'a, str>,
    #[serde(rename = "B", borrow)]
    bid_qty: Cow<'a, str>,
    #[serde(rename = "a", borrow)]
    ask: Cow<'a, str>,
    #[serde(rename = "A", borrow)]
    ask_qty: Cow<'a, str>,
}

pub(crate) fn dec(s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s).map_err(|e| format!("bad decimal {s:?}: {e}"))
}

fn levels(raw: &[(Cow<str>, Cow<str>)]) -> Result<Vec<Level>, String> {
    raw.iter()
        .map(|(p, q)| {
            let l = Level {
                price: dec(p)?,
                qty: dec(q)?,
            };
            bounds::level(&l).map_err(|e| format!("level [{p}, {q}]: {e}"))?;
            Ok(l)
        })
        .collect()
}

pub(crate) fn venue_ms(what: &str, m: i64) -> Result<i64, String> {
    let ns = m.saturating_mul(1_000_000);
    bounds::ts(what, ns)?;
    Ok(ns)
}

fn symbol(s: &str) -> Result<Symbol, String> {
    Symbol::new(&s.to_ascii_uppercase()).map_err(|e| e.to_string())
}

/// One parsed line.
enum Parsed {
    Snapshot {
        update_id: u64,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Depth {
        venue_ts: Option<i64>,
        delta: BookDelta,
    },
    Trade {
        venue_ts: i64,
        trade: Trade,
    },
    Bbo {
        venue_ts: Option<i64>,
        bbo: Bbo,
    },
    Funding {
        venue_ts: Option<i64>,
        rate: FundingRate,
    },
    OtherStream,
}

fn parse_line(line: &str) -> Result<(i64, Parsed), String> {
    let (ts, json) = line
        .split_once(' ')
        .ok_or("expected `<local_receive_time_ns> <json>`")?;
    let ts: i64 = ts.parse().map_err(|_| format!("bad timestamp {ts:?}"))?;
    bounds::ts("local timestamp", ts)?;
    let w: WireLine = serde_json::from_str(json).map_err(|e| format!("bad JSON: {e}"))?;
    if let Some(update_id) = w.last_update_id {
        let (bids, asks) = (levels(&w.bids)?, levels(&w.asks)?);
        bounds::snapshot_parts(update_id, &bids, &asks)?;
        return Ok((
            ts,
            Parsed::Snapshot {
                update_id,
                bids,
                asks,
            },
        ));
    }
    let (Some(stream), Some(data)) = (w.stream, w.data) else {
        return Err("neither a stream record nor a depth snapshot".into());
    };
    let kind = stream.split_once('@').map(|(_, k)| k).unwrap_or("");
    let parsed = if kind.starts_with("depth") {
        let d: WireDepth =
            serde_json::from_str(data.get()).map_err(|e| format!("bad depth update: {e}"))?;
        if d.first > d.last {
            return Err(format!("depth update has U {} > u {}", d.first, d.last));
        }
        bounds::update_id("depth update u", d.last)?;
        Parsed::Depth {
            venue_ts: d
                .event_ms
                .map(|m| venue_ms("event time E", m))
                .transpose()?,
            delta: BookDelta {
                symbol: symbol(&d.symbol)?,
                first_update_id: d.first,
                last_update_id: d.last,
                prev_update_id: d.prev,
                bids: levels(&d.bids)?,
                asks: levels(&d.asks)?,
            },
        }
    } else if kind == "trade" {
        let t: WireTrade =
            serde_json::from_str(data.get()).map_err(|e| format!("bad trade: {e}"))?;
        let trade = Trade {
            symbol: symbol(&t.symbol)?,
            trade_id: t.id,
            price: dec(&t.price)?,
            qty: dec(&t.qty)?,
            // The maker was the buyer, so the seller crossed the spread.
            aggressor: if t.buyer_is_maker {
                Side::Sell
            } else {
                Side::Buy
            },
        };
        bounds::trade(&trade)?;
        Parsed::Trade {
            venue_ts: venue_ms("trade time T", t.trade_ms)?,
            trade,
        }
    } else if kind == "bookTicker" {
        let b: WireTicker =
            serde_json::from_str(data.get()).map_err(|e| format!("bad bookTicker: {e}"))?;
        let bbo = Bbo {
            symbol: symbol(&b.symbol)?,
            update_id: b.update_id,
            bid: dec(&b.bid)?,
            bid_qty: dec(&b.bid_qty)?,
            ask: dec(&b.ask)?,
            ask_qty: dec(&b.ask_qty)?,
        };
        bounds::bbo(&bbo)?;
        Parsed::Bbo {
            venue_ts: b
                .event_ms
                .map(|m| venue_ms("event time E", m))
                .transpose()?,
            bbo,
        }
    } else if kind.starts_with("markPrice") {
        let m: WireMarkPrice =
            serde_json::from_str(data.get()).map_err(|e| format!("bad markPrice: {e}"))?;
        let rate = FundingRate {
            symbol: symbol(&m.symbol)?,
            rate: dec(&m.rate)?,
            due_ns: venue_ms("next funding time T", m.next_funding_ms)?,
            mark: dec(&m.mark)?,
        };
        bounds::market_input(&Input::FundingRate(rate.clone()))?;
        Parsed::Funding {
            venue_ts: m
                .event_ms
                .map(|t| venue_ms("event time E", t))
                .transpose()?,
            rate,
        }
    } else {
        Parsed::OtherStream
    };
    Ok((ts, parsed))
}

/// The book an earlier import session ended with, which a file without a snapshot continues.
pub(crate) struct Seed {
    session: u64,
    book: BookSnapshot,
}

/// A record ready for the journal.
pub struct Record {
    pub ts_ns: i64,
    pub venue_ts_ns: Option<i64>,
    pub input: Input,
}

enum Sync {
    /// Diffs held until a snapshot: at the start of the file, and after a gap (--allow-gaps).
    Waiting(std::collections::VecDeque<(u64, Option<i64>, BookDelta)>),
    Synced {
        last: u64,
        first_after_snapshot: bool,
    },
}

struct Rebuild<'s> {
    opts: &'s ImportOptions,
    symbol: Option<Symbol>,
    sync: Sync,
    ever_synced: bool,
    last_ts: Option<i64>,
    stats: ImportStats,
    /// The last snapshot (line, lastUpdateId) and the stale diffs since it while none applied.
    snapshot_at: (u64, u64),
    stale_run: u64,
    /// Applying diffs held before a snapshot: their staleness says nothing about the snapshot.
    replaying: bool,
}

impl Rebuild<'_> {
    fn stamp(&mut self, ts: i64) -> i64 {
        let ts = match self.last_ts {
            Some(prev) if ts < prev => {
                self.stats.clamped_ts += 1;
                prev
            }
            _ => ts,
        };
        self.last_ts = Some(ts);
        self.stats.first_ts.get_or_insert(ts);
        self.stats.last_ts = Some(ts);
        ts
    }

    fn emit(
        &mut self,
        sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
        r: Record,
    ) -> Result<(), ImportError> {
        self.stats.entries += 1;
        sink(r)
    }

    fn depth(
        &mut self,
        line: u64,
        ts: i64,
        venue_ts: Option<i64>,
        d: BookDelta,
        sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        self.stats.futures |= d.prev_update_id.is_some();
        match &mut self.sync {
            Sync::Waiting(buf) => {
                // After a gap, diffs are held exactly as at the start, since the one that
                // straddles the resync snapshot arrives before it; only the newest are kept.
                if self.ever_synced {
                    if buf.len() >= MAX_RESYNC_BUFFER {
                        buf.pop_front();
                        self.stats.dropped_unsynced += 1;
                    }
                    buf.push_back((line, venue_ts, d));
                    return Ok(());
                }
                if buf.len() >= MAX_BUFFERED {
                    let first_line = buf.front().map_or(line, |b| b.0);
                    return Err(ImportError::MissingSnapshot {
                        diffs: buf.len() as u64,
                        first_line,
                        last_line: line,
                    });
                }
                buf.push_back((line, venue_ts, d));
                Ok(())
            }
            Sync::Synced {
                last,
                first_after_snapshot,
            } => {
                if d.last_update_id <= *last {
                    self.stats.stale_diffs += 1;
                    if *first_after_snapshot && !self.replaying {
                        self.stale_run += 1;
                        if self.stale_run >= MAX_STALE_AFTER_SNAPSHOT {
                            return Err(ImportError::UnfollowedSnapshot {
                                line: self.snapshot_at.0,
                                update_id: self.snapshot_at.1,
                                stale: self.stale_run,
                                last_u: d.last_update_id,
                            });
                        }
                    }
                    return Ok(());
                }
                // Spot ids are contiguous (`U == prev u + 1`); futures ids are not, and each diff
                // names the previous one's `u` as `pu`, the snapshot's `lastUpdateId` included.
                let ok = match (*first_after_snapshot, d.prev_update_id) {
                    (true, Some(pu)) => pu == *last || d.first_update_id <= *last,
                    (true, None) => d.first_update_id <= *last + 1,
                    (false, Some(pu)) => pu == *last,
                    (false, None) => d.first_update_id == *last + 1,
                };
                if !ok {
                    let detail = if *first_after_snapshot {
                        format!(
                            "the first diff after the snapshot (lastUpdateId {last}) has U={} u={}, so updates {}..{} are missing",
                            d.first_update_id, d.last_update_id, *last + 1, d.first_update_id - 1
                        )
                    } else {
                        match d.prev_update_id {
                            Some(pu) => format!("diff has pu={pu} but the previous diff ended at u={last}"),
                            None => format!(
                                "diff has U={} but the previous diff ended at u={last} (updates {}..{} are missing)",
                                d.first_update_id, *last + 1, d.first_update_id.saturating_sub(1)
                            ),
                        }
                    };
                    if !self.opts.allow_gaps {
                        return Err(ImportError::Gap { line, detail });
                    }
                    self.stats.gaps.push((line, detail.clone()));
                    let symbol = d.symbol;
                    // It may straddle the resync snapshot itself.
                    self.sync = Sync::Waiting([(line, venue_ts, d)].into());
                    return self.emit(
                        sink,
                        Record {
                            ts_ns: ts,
                            venue_ts_ns: venue_ts,
                            input: Input::FeedStatus(FeedStatus {
                                symbol,
                                state: FeedState::Gap,
                                detail: format!("line {line}: {detail}"),
                            }),
                        },
                    );
                }
                *last = d.last_update_id;
                *first_after_snapshot = false;
                self.stats.applied_diffs += 1;
                self.emit(
                    sink,
                    Record {
                        ts_ns: ts,
                        venue_ts_ns: venue_ts,
                        input: Input::BookDelta(d),
                    },
                )
            }
        }
    }

    fn snapshot(
        &mut self,
        line: u64,
        ts: i64,
        update_id: u64,
        bids: Vec<Level>,
        asks: Vec<Level>,
        sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        // Validation may meet the snapshot before any line names the symbol; the writing
        // pass always knows it.
        let symbol = match self.symbol {
            Some(s) => s,
            None => Symbol::new("UNKNOWN").map_err(|_| ImportError::NoSymbol)?,
        };
        self.stats.snapshots += 1;
        if self.stats.book_dp.is_none() {
            self.stats.book_dp = Some(book_dp(bids.iter().chain(asks.iter())));
        }
        self.snapshot_at = (line, update_id);
        self.stale_run = 0;
        let buffered = match std::mem::replace(
            &mut self.sync,
            Sync::Synced {
                last: update_id,
                first_after_snapshot: true,
            },
        ) {
            Sync::Waiting(buf) => buf,
            Sync::Synced { .. } => Default::default(),
        };
        let resync = self.ever_synced;
        self.ever_synced = true;
        self.emit(
            sink,
            Record {
                ts_ns: ts,
                venue_ts_ns: None,
                input: Input::BookSnapshot(BookSnapshot {
                    symbol,
                    update_id,
                    bids,
                    asks,
                }),
            },
        )?;
        if resync && !self.stats.gaps.is_empty() {
            self.emit(
                sink,
                Record {
                    ts_ns: ts,
                    venue_ts_ns: None,
                    input: Input::FeedStatus(FeedStatus {
                        symbol,
                        state: FeedState::Resynced,
                        detail: format!("line {line}: snapshot lastUpdateId {update_id}"),
                    }),
                },
            )?;
        }
        // Diffs that arrived before the snapshot take effect now, at the snapshot's time.
        self.replaying = true;
        let mut replayed = Ok(());
        for (l, venue_ts, d) in buffered {
            self.stats.buffered_diffs += 1;
            replayed = self.depth(l, ts, venue_ts, d, sink);
            if replayed.is_err() {
                break;
            }
        }
        self.replaying = false;
        replayed
    }
}

/// Reads the whole file once, calling `sink` with each record in journal order.
pub fn scan(
    path: &Path,
    opts: &ImportOptions,
    symbol: Option<Symbol>,
    hasher: Option<&mut Sha256>,
    sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
) -> Result<(ImportStats, Option<Symbol>), ImportError> {
    scan_counted(path, opts, symbol, hasher, None, false, sink)
        .map(|(stats, symbol, _)| (stats, symbol))
}

/// `scan`, also returning the file's size; with a hasher, every byte of the file is hashed,
/// including any the decoder did not need. A `probe` stops as soon as the symbol, the first
/// book and the first depth diff are known: what the session's instrument is made of.
fn scan_counted(
    path: &Path,
    opts: &ImportOptions,
    symbol: Option<Symbol>,
    hasher: Option<&mut Sha256>,
    seed: Option<&Seed>,
    probe: bool,
    sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
) -> Result<(ImportStats, Option<Symbol>, u64), ImportError> {
    let open_err = |e: std::io::Error| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let shown = opts.progress.clone().filter(|_| !probe);
    let mut hashing = HashingReader {
        inner: crate::progress::Counted::new(file, shown),
        hasher,
        bytes: 0,
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(&mut hashing),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, &mut hashing))
    };
    let (stats, symbol) = run(reader, path, opts, symbol, seed, probe, sink)?;
    if hashing.hasher.is_some() {
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(open_err)?;
    }
    Ok((stats, symbol, hashing.bytes))
}

fn run(
    mut reader: Box<dyn BufRead + '_>,
    path: &Path,
    opts: &ImportOptions,
    symbol: Option<Symbol>,
    seed: Option<&Seed>,
    probe: bool,
    sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
) -> Result<(ImportStats, Option<Symbol>), ImportError> {
    let mut rb = Rebuild {
        opts,
        symbol: opts.symbol.or(symbol),
        sync: Sync::Waiting(Default::default()),
        ever_synced: false,
        last_ts: None,
        stats: ImportStats::default(),
        snapshot_at: (0, 0),
        stale_run: 0,
        replaying: false,
    };
    // A continued book stands in for the snapshot, taking effect at the file's first line.
    let mut pending = None;
    if let Some(seed) = seed {
        rb.sync = Sync::Synced {
            last: seed.book.update_id,
            first_after_snapshot: true,
        };
        rb.ever_synced = true;
        rb.snapshot_at = (0, seed.book.update_id);
        rb.stats.continued_from = Some(seed.session);
        rb.stats.book_dp = Some(book_dp(seed.book.bids.iter().chain(seed.book.asks.iter())));
        pending = Some(seed.book.clone());
    }
    let mut fast = fast::Fast::default();
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let read_err = |line: u64, e: std::io::Error| ImportError::Read {
        path: path.display().to_string(),
        line,
        detail: e.to_string(),
    };
    loop {
        if probe && rb.symbol.is_some() && rb.stats.book_dp.is_some() && rb.stats.depth_diffs > 0 {
            return Ok((rb.stats, rb.symbol));
        }
        buf.clear();
        let n = Read::by_ref(&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| read_err(line_no, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        rb.stats.lines += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            reader
                .skip_until(b'\n')
                .map_err(|e| read_err(line_no - 1, e))?;
            malformed(
                &mut rb.stats,
                opts,
                line_no,
                format!("the line is longer than {MAX_LINE_BYTES} bytes; no record is that large"),
            )?;
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim_end(),
            Err(_) => {
                malformed(&mut rb.stats, opts, line_no, "not UTF-8".into())?;
                continue;
            }
        };
        if text.is_empty() {
            rb.stats.lines -= 1;
            continue;
        }
        let (ts, parsed) = match fast.parse(text).map_or_else(|| parse_line(text), Ok) {
            Ok(p) => p,
            Err(detail) => {
                malformed(&mut rb.stats, opts, line_no, detail)?;
                continue;
            }
        };
        if let Some(s) = match &parsed {
            Parsed::Depth { delta, .. } => Some(delta.symbol),
            Parsed::Trade { trade, .. } => Some(trade.symbol),
            Parsed::Bbo { bbo, .. } => Some(bbo.symbol),
            Parsed::Funding { rate, .. } => Some(rate.symbol),
            _ => None,
        } {
            match rb.symbol {
                None => rb.symbol = Some(s),
                Some(known) if known != s => {
                    malformed(
                        &mut rb.stats,
                        opts,
                        line_no,
                        format!("symbol {s} in a recording of {known}"),
                    )?;
                    continue;
                }
                _ => {}
            }
        }
        if let Some(prev) = rb.last_ts {
            let jump = ts.abs_diff(prev);
            if jump > opts.max_time_jump_s.saturating_mul(1_000_000_000) {
                return Err(ImportError::TimeJump {
                    line: line_no,
                    dir: if ts > prev { "forward" } else { "back" },
                    jump_s: jump / 1_000_000_000,
                    from: prev,
                    to: ts,
                    max_s: opts.max_time_jump_s,
                });
            }
        }
        let ts = rb.stamp(ts);
        if let Some(book) = pending.take() {
            rb.emit(
                sink,
                Record {
                    ts_ns: ts,
                    venue_ts_ns: None,
                    input: Input::BookSnapshot(book),
                },
            )?;
        }
        match parsed {
            Parsed::Snapshot {
                update_id,
                bids,
                asks,
            } => rb.snapshot(line_no, ts, update_id, bids, asks, sink)?,
            Parsed::Depth { venue_ts, delta } => {
                rb.stats.depth_diffs += 1;
                rb.depth(line_no, ts, venue_ts, delta, sink)?
            }
            Parsed::Trade { venue_ts, trade } => {
                rb.stats.trades += 1;
                rb.emit(
                    sink,
                    Record {
                        ts_ns: ts,
                        venue_ts_ns: Some(venue_ts),
                        input: Input::Trade(trade),
                    },
                )?
            }
            Parsed::Bbo { venue_ts, bbo } => {
                rb.stats.bbo += 1;
                rb.emit(
                    sink,
                    Record {
                        ts_ns: ts,
                        venue_ts_ns: venue_ts,
                        input: Input::Bbo(bbo),
                    },
                )?
            }
            Parsed::Funding { venue_ts, rate } => {
                rb.stats.funding_rates += 1;
                rb.emit(
                    sink,
                    Record {
                        ts_ns: ts,
                        venue_ts_ns: venue_ts,
                        input: Input::FundingRate(rate),
                    },
                )?
            }
            Parsed::OtherStream => rb.stats.unknown_streams += 1,
        }
    }
    if let Sync::Waiting(buf) = &rb.sync {
        if !rb.ever_synced && !buf.is_empty() {
            return Err(ImportError::MissingSnapshot {
                diffs: buf.len() as u64,
                first_line: buf.front().map_or(0, |b| b.0),
                last_line: buf.back().map_or(0, |b| b.0),
            });
        }
        // The file ended after a gap with no snapshot to resync on.
        rb.stats.dropped_unsynced += buf.len() as u64;
    }
    Ok((rb.stats, rb.symbol))
}

pub(crate) fn malformed(
    stats: &mut ImportStats,
    opts: &ImportOptions,
    line: u64,
    detail: String,
) -> Result<(), ImportError> {
    if opts.strict {
        return Err(ImportError::Malformed { line, detail });
    }
    stats.malformed += 1;
    if stats.malformed_lines.len() < SHOWN_MALFORMED {
        stats.malformed_lines.push((line, detail));
    }
    Ok(())
}

pub(crate) struct HashingReader<'h, R> {
    pub(crate) inner: R,
    pub(crate) hasher: Option<&'h mut Sha256>,
    pub(crate) bytes: u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The completed import session of a file with this digest, if any.
pub fn find_import(journal: &Journal, sha256: &str) -> Result<Option<u64>, JournalError> {
    Ok(journal
        .sessions()?
        .into_iter()
        .find_map(|s| match (&s.source, &s.status) {
            (Some(Source::File { sha256: h, .. }), Some(SessionStatus::Completed))
                if h == sha256 =>
            {
                Some(s.id)
            }
            _ => None,
        }))
}

pub fn file_digest(path: &Path) -> Result<(String, u64), ImportError> {
    let mut f = std::fs::File::open(path).map_err(|e| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut h = Sha256::new();
    let bytes = std::io::copy(&mut f, &mut h).map_err(|e| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok((hex(&h.finalize()), bytes))
}

pub fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

pub(crate) fn refuse_reimport(
    writer: &Writer,
    path: &Path,
    opts: &ImportOptions,
    sha256: &str,
) -> Result<(), ImportError> {
    if opts.force {
        return Ok(());
    }
    match find_import(writer.journal(), sha256)? {
        Some(session) => Err(ImportError::AlreadyImported {
            path: path.display().to_string(),
            session,
        }),
        None => Ok(()),
    }
}

/// Appends `path` as a new import session, validating it as it writes: the session is staged
/// (`ImportSession::staged`), so a file that fails part way leaves the journal as it was.
/// Returns the session id.
///
/// One pass over the file, after a probe of its first lines: the session's start names the
/// instrument, which comes from the symbol, the first book and whether the diffs carry `pu`;
/// the probe reads those, and the pass checks them at the end (a file whose later diffs
/// disagree is rolled back and written again with what the whole file says), so the entries are
/// exactly those of a validating pass followed by a writing pass.
pub fn import(
    writer: &mut Writer,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(u64, ImportStats), ImportError> {
    if let Some(p) = &opts.progress {
        p.expect_files([path], 1);
    }
    // A file without a snapshot first may continue the journal's last import of its symbol.
    let first = continues::first_diff(path)?;
    let lookup = match &first {
        Some((_, ts, d)) => continues::find(writer.journal(), d, *ts)?,
        None => continues::Lookup::Nothing,
    };
    let seed = match &lookup {
        continues::Lookup::Continues(earlier, book) => Some(Seed {
            session: earlier.session,
            book: book.clone(),
        }),
        _ => None,
    };
    let explain = |e: ImportError| match (e, &lookup, &first) {
        (
            ImportError::MissingSnapshot { .. },
            continues::Lookup::Breaks(earlier),
            Some((line, _, d)),
        ) => ImportError::NotContinuing {
            line: *line,
            first_u: d.first_update_id,
            last_u_file: d.last_update_id,
            pu: d
                .prev_update_id
                .map_or(String::new(), |pu| format!(", pu={pu}")),
            session: earlier.session,
            path: earlier.path.clone(),
            last_u: earlier.last_u,
        },
        (e, _, _) => e,
    };
    // A file already imported is reported as such, whatever this import would say of it.
    let (sha256, bytes) = file_digest(path)?;
    refuse_reimport(writer, path, opts, &sha256)?;
    // The probe is the start of the full pass, so an error it meets the full pass meets; one
    // that learns no symbol has read the whole file.
    let (mut seen, symbol) =
        match scan_counted(path, opts, None, None, seed.as_ref(), true, &mut |_| Ok(())) {
            Ok((seen, Some(symbol), _)) => (seen, symbol),
            Ok((_, None, _)) => return Err(ImportError::NoSymbol),
            Err(e) => return Err(explain(e)),
        };
    // A continuing file is the same instrument as the book it continues.
    let earlier = match &seed {
        Some(s) => crate::instrument::of_session(writer.journal(), s.session)?,
        None => None,
    };
    let label = format!(
        "binance import of {}{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        match &seed {
            Some(s) => format!(
                ", continuing the book of session {} at u={}",
                s.session, s.book.update_id
            ),
            None => String::new(),
        }
    );
    loop {
        let instrument = earlier.clone().unwrap_or_else(|| {
            let (price_dp, size_dp) = seen.book_dp.unwrap_or((2, 5));
            Instrument::from_seen(&Seen {
                venue: venue_of(&symbol, seen.futures),
                symbol,
                price_dp,
                size_dp,
            })
        });
        let start = SessionStart {
            mode: Mode::Import,
            version: flashmm_core::VERSION.to_string(),
            config: instrument.to_toml(),
            label: label.clone(),
            parent: None,
            source: Some(Source::File {
                path: path.display().to_string(),
                format: "binance".into(),
                sha256: sha256.clone(),
                bytes,
            }),
        };
        let mut out = ImportSession::staged(writer, start)?;
        let scanned = scan_counted(
            path,
            opts,
            Some(symbol),
            None,
            seed.as_ref(),
            false,
            &mut |r: Record| out.write(r),
        );
        let stats = match scanned {
            Ok((stats, _, _)) => stats,
            Err(e) => {
                out.rollback()?;
                return Err(explain(e));
            }
        };
        if (stats.book_dp, stats.futures) != (seen.book_dp, seen.futures) {
            // The first lines did not tell the instrument the whole file does: write it again.
            out.rollback()?;
            seen = stats;
            continue;
        }
        let Some(id) = out.finish(stats.last_ts.unwrap_or(0), stats.summary())? else {
            return Err(ImportError::Read {
                path: path.display().to_string(),
                line: stats.lines,
                detail: "no market records in the file".into(),
            });
        };
        let mut stats = stats;
        stats.instrument = Some(instrument);
        return Ok((id, stats));
    }
}
