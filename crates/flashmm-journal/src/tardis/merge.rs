//! The book file and the trades file as one stream in receive-time order, turned into journal
//! records: update ids minted, times clamped, unknown trade sides inferred from the book.

use super::stream::{malformed, Body, Event, Events, Source};
use super::TardisError;
use crate::binance::{book_dp, ImportError, ImportOptions, ImportStats, Record};
use flashmm_core::book::Book;
use flashmm_core::event::{BookDelta, BookSnapshot, Input, Side, Symbol, Trade};
use std::path::Path;

/// The files of one import: the book file, and maybe a trades file.
pub(super) struct Files<'p> {
    pub book: &'p Path,
    pub trades: Option<&'p Path>,
}

/// What the scan learned besides the records.
pub(super) struct Scanned {
    pub stats: ImportStats,
    pub exchange: String,
    pub symbol: Symbol,
}

struct Head {
    events: Events,
    next: Option<Event>,
}

impl Head {
    fn advance(
        &mut self,
        opts: &ImportOptions,
        stats: &mut ImportStats,
    ) -> Result<(), ImportError> {
        self.next = self.events.next(opts, stats)?;
        Ok(())
    }
}

/// The taker of a trade Tardis could not tell (`unknown`): a price above the book's mid lifted
/// the ask, below it hit the bid; at the mid, or with no book yet, it cannot be told.
pub(super) fn infer_side(book: &Book, price: rust_decimal::Decimal) -> Option<Side> {
    let mid = book.mid()?;
    match price.cmp(&mid) {
        std::cmp::Ordering::Greater => Some(Side::Buy),
        std::cmp::Ordering::Less => Some(Side::Sell),
        std::cmp::Ordering::Equal => None,
    }
}

/// Reads both files once, calling `sink` with each record in journal order.
pub(super) fn scan(
    files: &Files,
    opts: &ImportOptions,
    sink: &mut dyn FnMut(Record) -> Result<(), ImportError>,
) -> Result<Scanned, ImportError> {
    let mut stats = ImportStats::default();
    let mut book_head = Head {
        events: Events::new(Source::open_counted(files.book, opts.progress.clone())?),
        next: None,
    };
    let mut trade_head = match files.trades {
        Some(p) => Some(Head {
            events: Events::new(Source::open_counted(p, opts.progress.clone())?),
            next: None,
        }),
        None => None,
    };
    book_head.advance(opts, &mut stats)?;
    if let Some(h) = &mut trade_head {
        h.advance(opts, &mut stats)?;
    }
    // A trades file of another market is refused before anything of it is read further.
    if let Some(t) = &trade_head {
        check_same_market(&book_head.events.src, &t.events.src)?;
    }
    let mut book = Book::new();
    // One counter for snapshots and messages, so each delta continues the book's last id
    // (`Book::apply_delta`: the first after a snapshot has U <= id + 1, the rest U == u + 1).
    let mut next_id = 1u64;
    let mut last_ts: Option<i64> = None;
    let max_jump = opts.max_time_jump_s.saturating_mul(1_000_000_000);
    loop {
        // At equal receive times the book goes first: the trade then meets the book as it was
        // when the trade's message arrived alongside it.
        let take_book = match (
            &book_head.next,
            trade_head.as_ref().and_then(|h| h.next.as_ref()),
        ) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(b), Some(t)) => b.local_ns <= t.local_ns,
        };
        let head = match (take_book, trade_head.as_mut()) {
            (false, Some(h)) => h,
            _ => &mut book_head,
        };
        let Some(ev) = head.next.take() else { break };
        let path = head.events.src.path.clone();
        let symbol = head.events.src.symbol;
        head.advance(opts, &mut stats)?;
        let symbol = symbol.ok_or(ImportError::NoSymbol)?;
        if let Some(prev) = last_ts {
            let jump = ev.local_ns.abs_diff(prev);
            if jump > max_jump {
                return Err(TardisError::TimeJump {
                    path,
                    line: ev.line,
                    dir: if ev.local_ns > prev {
                        "forward"
                    } else {
                        "back"
                    },
                    jump_s: jump / 1_000_000_000,
                    from: prev,
                    to: ev.local_ns,
                    max_s: opts.max_time_jump_s,
                }
                .into());
            }
        }
        // A receive time before the last one is stored at the last one, so the journal's
        // times never go back.
        let ts = match last_ts {
            Some(prev) if ev.local_ns < prev => {
                stats.clamped_ts += 1;
                prev
            }
            _ => ev.local_ns,
        };
        let input = match ev.body {
            Body::Snapshot { bids, asks, .. } => {
                stats.snapshots += 1;
                if stats.book_dp.is_none() {
                    stats.book_dp = Some(book_dp(bids.iter().chain(asks.iter())));
                }
                let s = BookSnapshot {
                    symbol,
                    update_id: next_id,
                    bids,
                    asks,
                };
                next_id += 1;
                book.apply_snapshot(&s);
                Input::BookSnapshot(s)
            }
            Body::Delta { bids, asks } => {
                stats.depth_diffs += 1;
                stats.applied_diffs += 1;
                let d = BookDelta {
                    symbol,
                    first_update_id: next_id,
                    last_update_id: next_id,
                    prev_update_id: None,
                    bids,
                    asks,
                };
                next_id += 1;
                book.apply_delta(&d);
                Input::BookDelta(d)
            }
            Body::Trade {
                id,
                price,
                amount,
                side,
            } => {
                let aggressor = match side {
                    Some(s) => s,
                    None => match infer_side(&book, price) {
                        Some(s) => {
                            stats.inferred_sides += 1;
                            s
                        }
                        None => {
                            let why = match book.mid() {
                                Some(mid) => format!("trade side is unknown and its price {price} is the book's mid {mid}, so the taker cannot be told"),
                                None => "trade side is unknown and there is no book yet to tell the taker by".to_string(),
                            };
                            malformed(&mut stats, opts, &path, ev.line, why)?;
                            continue;
                        }
                    },
                };
                stats.trades += 1;
                Input::Trade(Trade {
                    symbol,
                    trade_id: id,
                    price,
                    qty: amount,
                    aggressor,
                })
            }
        };
        last_ts = Some(ts);
        stats.first_ts.get_or_insert(ts);
        stats.last_ts = Some(ts);
        stats.entries += 1;
        sink(Record {
            ts_ns: ts,
            venue_ts_ns: ev.venue_ns,
            input,
        })?;
    }
    let (exchange, symbol) = match (&book_head.events.src.exchange, book_head.events.src.symbol) {
        (Some(e), Some(s)) => (e.clone(), s),
        _ => {
            return Err(TardisError::NoRows {
                path: book_head.events.src.path.clone(),
            }
            .into())
        }
    };
    Ok(Scanned {
        stats,
        exchange,
        symbol,
    })
}

fn check_same_market(book: &Source, trades: &Source) -> Result<(), ImportError> {
    for (what, a, b) in [
        ("exchange", book.exchange.clone(), trades.exchange.clone()),
        (
            "symbol",
            book.symbol.map(|s| s.to_string()),
            trades.symbol.map(|s| s.to_string()),
        ),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                return Err(TardisError::Mismatch {
                    book: book.path.clone(),
                    trades: trades.path.clone(),
                    what,
                    book_value: a,
                    trades_value: b,
                }
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::event::Level;
    use rust_decimal_macros::dec;

    #[test]
    fn an_unknown_side_is_the_side_of_the_mid_it_traded_through() {
        let mut b = Book::new();
        assert_eq!(infer_side(&b, dec!(100)), None, "no book");
        let sym = Symbol::new("BTCUSDT").expect("symbol");
        let lv = |p, q| Level { price: p, qty: q };
        b.apply_snapshot(&BookSnapshot {
            symbol: sym,
            update_id: 1,
            bids: vec![lv(dec!(99), dec!(1))],
            asks: vec![lv(dec!(101), dec!(1))],
        });
        assert_eq!(infer_side(&b, dec!(101)), Some(Side::Buy));
        assert_eq!(infer_side(&b, dec!(99)), Some(Side::Sell));
        assert_eq!(infer_side(&b, dec!(100)), None, "at the mid");
    }
}
