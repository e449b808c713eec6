//! Imports the hftbacktest collector's Hyperliquid recordings: `<local_ns> <json>` per line,
//! gzip or plain (the gzip magic decides, not the name), channels `l2Book` and `trades`
//! (docs/hyperliquid.md).
//!
//! Hyperliquid sends no diffs and no sequence numbers: every `l2Book` message is the whole top
//! 20 of each side, replacing the book. So there is no local-book rule to enforce, only the
//! shape of each message, one coin per file, and sane local times. As for Binance, the whole
//! file is validated (and hashed, for the "already imported" check) before anything is
//! written, so a failed import writes nothing.

use super::binance::{
    book_dp, dec, file_digest, hex, malformed, refuse_reimport, venue_ms, HashingReader,
    ImportError, ImportOptions, ImportStats, Record, MAX_LINE_BYTES,
};
use super::Writer;
use crate::import_session::ImportSession;
use flashmm_core::event::{
    bounds, BookSnapshot, Input, Level, Mode, SessionStart, Side, Source, Symbol, Trade,
};
use flashmm_core::instrument::{venue, Instrument, Seen};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireBook<'a> {
    #[serde(borrow)]
    coin: Cow<'a, str>,
    /// `[bids, asks]`, best first; a tuple, so anything but two sides is refused.
    #[serde(borrow)]
    levels: (Vec<WireLevel<'a>>, Vec<WireLevel<'a>>),
    time: i64,
}

/// `n`, the number of orders at the level, is not kept: the book is L2.
#[derive(Deserialize)]
struct WireLevel<'a> {
    #[serde(borrow)]
    px: Cow<'a, str>,
    #[serde(borrow)]
    sz: Cow<'a, str>,
}

#[derive(Deserialize)]
struct WireTrade<'a> {
    #[serde(borrow)]
    coin: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
    #[serde(borrow)]
    px: Cow<'a, str>,
    #[serde(borrow)]
    sz: Cow<'a, str>,
    time: i64,
    tid: u64,
}

/// One parsed line.
enum Parsed {
    Book {
        coin: Symbol,
        time_ms: i64,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Trades(Vec<(Symbol, i64, i64, Trade)>),
    /// `subscriptionResponse`, `pong` and any channel we do not import.
    Other,
}

fn coin(s: &str) -> Result<Symbol, String> {
    // Hyperliquid's names are case-sensitive (`kPEPE` is not `KPEPE`), so they are kept as sent.
    Symbol::new(s).map_err(|e| format!("coin: {e}"))
}

/// A side's levels; a level of size 0 holds nothing and is left out (the book would drop it
/// anyway), so a side of only zeros counts as empty.
fn side(what: &str, raw: &[WireLevel]) -> Result<Vec<Level>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for w in raw {
        let l = Level {
            price: dec(&w.px)?,
            qty: dec(&w.sz)?,
        };
        bounds::level(&l).map_err(|e| format!("{what} level {{px {}, sz {}}}: {e}", w.px, w.sz))?;
        if !l.qty.is_zero() {
            out.push(l);
        }
    }
    Ok(out)
}

fn parse_book(json: &str) -> Result<Parsed, String> {
    let b: WireBook = serde_json::from_str(json).map_err(|e| format!("bad l2Book: {e}"))?;
    let (bids, asks) = (side("bid", &b.levels.0)?, side("ask", &b.levels.1)?);
    let time_ms = b.time;
    venue_ms("l2Book time", time_ms)?;
    bounds::snapshot_parts(time_ms as u64, &bids, &asks)?;
    // A snapshot is the whole book at one moment, so a crossed one is damaged, not a race.
    let best_bid = bids.iter().map(|l| l.price).max();
    let best_ask = asks.iter().map(|l| l.price).min();
    if let (Some(b), Some(a)) = (best_bid, best_ask) {
        if b >= a {
            return Err(format!(
                "crossed book: best bid {b} is not below best ask {a}"
            ));
        }
    }
    Ok(Parsed::Book {
        coin: coin(&b.coin)?,
        time_ms,
        bids,
        asks,
    })
}

fn parse_trades(json: &str) -> Result<Parsed, String> {
    let ts: Vec<WireTrade> = serde_json::from_str(json).map_err(|e| format!("bad trades: {e}"))?;
    let mut out = Vec::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        let aggressor = match t.side.as_ref() {
            // "B": the bid side was the taker, so the buyer crossed the spread.
            "B" => Side::Buy,
            "A" => Side::Sell,
            other => {
                return Err(format!(
                    "trade {i}: side {other:?} is neither \"B\" nor \"A\""
                ))
            }
        };
        let trade = Trade {
            symbol: coin(&t.coin)?,
            trade_id: t.tid,
            price: dec(&t.px)?,
            qty: dec(&t.sz)?,
            aggressor,
        };
        bounds::trade(&trade).map_err(|e| format!("trade {i} (tid {}): {e}", t.tid))?;
        let venue_ts = venue_ms("trade time", t.time).map_err(|e| format!("trade {i}: {e}"))?;
        out.push((trade.symbol, t.time, venue_ts, trade));
    }
    Ok(Parsed::Trades(out))
}

fn parse_line(line: &str) -> Result<(i64, Parsed), String> {
    let (ts, json) = line
        .split_once(' ')
        .ok_or("expected `<local_receive_time_ns> <json>`")?;
    let ts: i64 = ts.parse().map_err(|_| format!("bad timestamp {ts:?}"))?;
    bounds::ts("local timestamp", ts)?;
    let w: WireLine = serde_json::from_str(json).map_err(|e| format!("bad JSON: {e}"))?;
    let Some(channel) = w.channel else {
        return Err("not a Hyperliquid message: it has no `channel`".into());
    };
    let data = || w.data.ok_or(format!("a {channel} message without `data`"));
    let parsed = match channel.as_ref() {
        "l2Book" => parse_book(data()?.get())?,
        "trades" => parse_trades(data()?.get())?,
        _ => Parsed::Other,
    };
    Ok((ts, parsed))
}

/// The state of one pass over the file.
struct Scan<'o> {
    opts: &'o ImportOptions,
    /// The coin and what named it first (for the error when another appears).
    coin: Option<(Symbol, String)>,
    last_ts: Option<i64>,
    /// The venue time of the first book: trades before it are the subscription's catch-up.
    first_book_ms: Option<i64>,
    stats: ImportStats,
}

impl Scan<'_> {
    fn check_coin(&mut self, line: u64, c: Symbol) -> Result<(), ImportError> {
        match &self.coin {
            None => {
                self.coin = Some((c, format!("the file's earlier lines are of {c}")));
                Ok(())
            }
            Some((known, _)) if *known == c => Ok(()),
            Some((_, why)) => Err(ImportError::CoinChanged {
                line,
                coin: c.to_string(),
                known: why.clone(),
            }),
        }
    }

    /// The local time to store: the line's, or the previous one if it went backwards.
    fn stamp(&mut self, line: u64, ts: i64) -> Result<i64, ImportError> {
        if let Some(prev) = self.last_ts {
            let jump = ts.abs_diff(prev);
            if jump > self.opts.max_time_jump_s.saturating_mul(1_000_000_000) {
                return Err(ImportError::TimeJump {
                    line,
                    dir: if ts > prev { "forward" } else { "back" },
                    jump_s: jump / 1_000_000_000,
                    from: prev,
                    to: ts,
                    max_s: self.opts.max_time_jump_s,
                });
            }
            if ts < prev {
                self.stats.clamped_ts += 1;
                return Ok(prev);
            }
        }
        self.last_ts = Some(ts);
        self.stats.first_ts.get_or_insert(ts);
        self.stats.last_ts = Some(ts);
        Ok(ts)
    }

    fn emit(
        &mut self,
        sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
        r: Record,
    ) -> Result<(), ImportError> {
        self.stats.entries += 1;
        sink(r)
    }

    fn line(
        &mut self,
        line: u64,
        text: &str,
        sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let (ts, parsed) = match parse_line(text) {
            Ok(p) => p,
            Err(detail) => return malformed(&mut self.stats, self.opts, line, detail),
        };
        match &parsed {
            Parsed::Book { coin, .. } => self.check_coin(line, *coin)?,
            Parsed::Trades(ts) => {
                for (c, ..) in ts {
                    self.check_coin(line, *c)?;
                }
            }
            Parsed::Other => {}
        }
        let ts = self.stamp(line, ts)?;
        match parsed {
            Parsed::Book {
                coin,
                time_ms,
                bids,
                asks,
            } => {
                self.stats.snapshots += 1;
                self.first_book_ms.get_or_insert(time_ms);
                self.stats
                    .book_dp
                    .get_or_insert_with(|| book_dp(bids.iter().chain(asks.iter())));
                // `BookSnapshot`, as the Citrex depth stream's periodic top-N books: the market
                // stream itself speaking, whose every message replaces the book (and holds off
                // the stale-feed guard). `BookPolled` would say a REST read stood in for it.
                // The id is the venue's time in ms: the only order Hyperliquid gives.
                let book = BookSnapshot {
                    symbol: coin,
                    update_id: time_ms as u64,
                    bids,
                    asks,
                };
                self.emit(
                    sink,
                    Record {
                        ts_ns: ts,
                        venue_ts_ns: Some(time_ms.saturating_mul(1_000_000)),
                        input: Input::BookSnapshot(book),
                    },
                )
            }
            Parsed::Trades(trades) => {
                for (_, time_ms, venue_ts, trade) in trades {
                    if self.first_book_ms.is_none_or(|b| time_ms < b) {
                        self.stats.early_trades += 1;
                        continue;
                    }
                    self.stats.trades += 1;
                    self.emit(
                        sink,
                        Record {
                            ts_ns: ts,
                            venue_ts_ns: Some(venue_ts),
                            input: Input::Trade(trade),
                        },
                    )?;
                }
                Ok(())
            }
            Parsed::Other => {
                self.stats.unknown_streams += 1;
                Ok(())
            }
        }
    }
}

/// The file's text, gunzipped if it starts with the gzip magic.
pub(crate) fn text_reader<'r, R: Read + 'r>(inner: R) -> std::io::Result<Box<dyn BufRead + 'r>> {
    let mut peek = BufReader::with_capacity(1 << 16, inner);
    let gz = peek.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(peek),
        ))
    } else {
        Box::new(peek)
    })
}

/// Reads the whole file once, calling `sink` with each record in journal order; returns the
/// stats, the coin and the file's size. With a hasher, every byte of the file is hashed,
/// including any the decoder did not need.
fn scan(
    path: &Path,
    opts: &ImportOptions,
    hasher: Option<&mut Sha256>,
    sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
) -> Result<(ImportStats, Option<Symbol>, u64), ImportError> {
    let open_err = |e: std::io::Error| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let read_err = |line: u64, e: std::io::Error| ImportError::Read {
        path: path.display().to_string(),
        line,
        detail: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let mut hashing = HashingReader {
        inner: crate::progress::Counted::new(file, opts.progress.clone()),
        hasher,
        bytes: 0,
    };
    let mut s = Scan {
        opts,
        coin: opts.symbol.map(|c| (c, format!("--symbol says {c}"))),
        last_ts: None,
        first_book_ms: None,
        stats: ImportStats {
            snapshot_only: true,
            ..ImportStats::default()
        },
    };
    {
        let mut reader = text_reader(&mut hashing).map_err(|e| read_err(0, e))?;
        let mut buf = Vec::with_capacity(8192);
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = Read::by_ref(&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| read_err(line, e))?;
            if n == 0 {
                break;
            }
            line += 1;
            if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
                s.stats.lines += 1;
                reader
                    .skip_until(b'\n')
                    .map_err(|e| read_err(line - 1, e))?;
                let detail = format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes; no message is that large"
                );
                malformed(&mut s.stats, opts, line, detail)?;
                continue;
            }
            let Ok(text) = std::str::from_utf8(&buf) else {
                s.stats.lines += 1;
                malformed(&mut s.stats, opts, line, "not UTF-8".into())?;
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            s.stats.lines += 1;
            s.line(line, text, sink)?;
        }
    }
    if hashing.hasher.is_some() {
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(open_err)?;
    }
    Ok((s.stats, s.coin.map(|(c, _)| c), hashing.bytes))
}

/// Validates `path`, then appends it as a new import session. Returns the session id.
pub fn import(
    writer: &mut Writer,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(u64, ImportStats), ImportError> {
    if let Some(p) = &opts.progress {
        p.expect_files([path], 2);
    }
    // Pass 1: validate everything, learn the coin and hash the file; nothing is written.
    let mut hasher = Sha256::new();
    let (seen, coin, sha256, bytes) = match scan(path, opts, Some(&mut hasher), &mut |_| Ok(())) {
        Ok((seen, coin, bytes)) => (seen, coin, hex(&hasher.finalize()), bytes),
        Err(e) => {
            // A file already imported is reported as such, whatever this import says of it.
            if let Ok((sha256, _)) = file_digest(path) {
                refuse_reimport(writer, path, opts, &sha256)?;
            }
            return Err(e);
        }
    };
    refuse_reimport(writer, path, opts, &sha256)?;
    if seen.entries == 0 {
        return Err(ImportError::Read {
            path: path.display().to_string(),
            line: seen.lines,
            detail: "no market records in the file".into(),
        });
    }
    let symbol = coin.ok_or(ImportError::NoSymbol)?;
    // Hyperliquid's sizes carry the coin's szDecimals; the table knows the usual coins.
    let (price_dp, size_dp) = seen.book_dp.unwrap_or((0, 5));
    let instrument = Instrument::from_seen(&Seen {
        venue: venue::HYPERLIQUID,
        symbol,
        price_dp,
        size_dp,
    });
    // Pass 2: write.
    let start = SessionStart {
        mode: Mode::Import,
        version: flashmm_core::VERSION.to_string(),
        config: instrument.to_toml(),
        label: format!(
            "hyperliquid import of {}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
        parent: None,
        source: Some(Source::File {
            path: path.display().to_string(),
            format: "hyperliquid".into(),
            sha256,
            bytes,
        }),
    };
    let mut out = ImportSession::new(writer, start);
    let (stats, _, _) = scan(path, opts, None, &mut |r: Record| out.write(r))?;
    let Some(id) = out.finish(stats.last_ts.unwrap_or(0), stats.summary())? else {
        return Err(ImportError::Read {
            path: path.display().to_string(),
            line: stats.lines,
            detail: "no market records in the file".into(),
        });
    };
    let mut stats = stats;
    stats.instrument = Some(instrument);
    Ok((id, stats))
}
