//! The market around a fill, rebuilt from the session stream: the book just before and just
//! after it, the trades within two seconds, and the mid path for its chart.

use crate::ReportError;
use flashmm_core::book::Book;
use flashmm_core::event::{Body, Entry, Input, Level, Side};
use flashmm_journal::stream::session_stream;
use flashmm_journal::Journal;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

/// Levels shown a side.
pub const DEPTH: usize = 5;
/// Trades this close to a fill, before or after, are listed with it.
pub const TRADES_NS: i64 = 2_000_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct BookView {
    /// The market entry after which the book looked like this (`None`: no market entry yet).
    pub seq: Option<u64>,
    pub ts_ns: i64,
    pub kind: &'static str,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub mid: Option<Decimal>,
}

fn view(book: &Book, last: Option<(u64, i64, &'static str)>) -> BookView {
    BookView {
        seq: last.map(|l| l.0),
        ts_ns: last.map_or(0, |l| l.1),
        kind: last.map_or("none", |l| l.2),
        bids: book.levels(Side::Buy).take(DEPTH).collect(),
        asks: book.levels(Side::Sell).take(DEPTH).collect(),
        mid: mid(book),
    }
}

fn mid(book: &Book) -> Option<Decimal> {
    match (book.best_bid(), book.best_ask()) {
        (Some((b, _)), Some((a, _))) => Some((b + a) / Decimal::TWO),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TradeNear {
    pub seq: u64,
    pub ts_ns: i64,
    /// ts minus the fill's ts.
    pub dt_ns: i64,
    pub price: Decimal,
    pub qty: Decimal,
    pub aggressor: Side,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// The book as it stood when the fill arrived.
    pub before: Option<BookView>,
    /// The book after the first book update (snapshot, delta or bbo) that followed the fill.
    pub after: Option<BookView>,
    /// Trades within +-2 s of the fill.
    pub trades: Vec<TradeNear>,
    /// Mid changes over the chart window, the first one at or before its start.
    pub path: Vec<(i64, Decimal)>,
    /// Trades over the chart window.
    pub path_trades: Vec<TradeNear>,
    pub window: (i64, i64),
}

struct Open {
    idx: usize,
    ts: i64,
    end: i64,
}

/// Reads the session once and fills in the context of each fill in `fills` (seq -> index), with
/// chart windows of `pre_ns` before and `post_ns` after each fill.
pub fn gather(
    journal: &Journal,
    session: u64,
    fills: &BTreeMap<u64, usize>,
    pre_ns: i64,
    post_ns: i64,
    market: (&[flashmm_core::event::Symbol], usize),
) -> Result<Vec<Context>, ReportError> {
    let mut out = vec![Context::default(); fills.len()];
    if fills.is_empty() {
        return Ok(out);
    }
    let keep = pre_ns.max(TRADES_NS);
    let mut book = Book::new();
    let mut last: Option<(u64, i64, &'static str)> = None;
    let mut mids: VecDeque<(i64, Decimal)> = VecDeque::new();
    let mut trades: VecDeque<TradeNear> = VecDeque::new();
    let mut open: Vec<Open> = Vec::new();
    for e in crate::split::of_market(
        session_stream(journal, session)?,
        market.0.to_vec(),
        market.1,
    ) {
        let e: Entry = e?;
        if e.body.is_market() {
            book.apply_entry(&e);
            last = Some((e.seq, e.ts_ns, e.body.kind()));
            let m = mid(&book);
            if let Some(m) = m {
                if mids.back().is_none_or(|(_, prev)| *prev != m) {
                    mids.push_back((e.ts_ns, m));
                }
            }
            let cutoff = e.ts_ns - keep;
            while mids.len() >= 2 && mids[1].0 <= cutoff {
                mids.pop_front();
            }
            let trade = match &e.body {
                Body::Input(Input::Trade(t)) => Some(TradeNear {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    dt_ns: 0,
                    price: t.price,
                    qty: t.qty,
                    aggressor: t.aggressor,
                }),
                _ => None,
            };
            let book_changed = !matches!(
                e.body,
                Body::Input(Input::Trade(_)) | Body::Input(Input::FeedStatus(_))
            );
            open.retain(|o| {
                let c = &mut out[o.idx];
                if c.after.is_none() && book_changed {
                    c.after = Some(view(&book, last));
                }
                if let Some(t) = &trade {
                    let t = TradeNear {
                        dt_ns: t.ts_ns - o.ts,
                        ..t.clone()
                    };
                    if t.ts_ns <= o.end {
                        c.path_trades.push(t.clone());
                    }
                    if t.dt_ns <= TRADES_NS {
                        c.trades.push(t);
                    }
                }
                if e.ts_ns <= o.end {
                    if let Some(m) = m {
                        if c.path.last().is_none_or(|(_, p)| *p != m) {
                            c.path.push((e.ts_ns, m));
                        }
                    }
                }
                !(e.ts_ns > o.end && c.after.is_some())
            });
            while trades.front().is_some_and(|t| t.ts_ns < cutoff) {
                trades.pop_front();
            }
            if let Some(t) = trade {
                trades.push_back(t);
            }
        } else if let Some(&idx) = fills.get(&e.seq) {
            let c = &mut out[idx];
            let start = e.ts_ns - pre_ns;
            let end = e.ts_ns.saturating_add(post_ns);
            c.window = (start, end);
            c.before = Some(view(&book, last));
            for t in &trades {
                let t = TradeNear {
                    dt_ns: t.ts_ns - e.ts_ns,
                    ..t.clone()
                };
                if t.ts_ns >= start {
                    c.path_trades.push(t.clone());
                }
                if t.dt_ns >= -TRADES_NS {
                    c.trades.push(t);
                }
            }
            let first = mids.iter().rposition(|(t, _)| *t <= start).unwrap_or(0);
            c.path = mids.iter().skip(first).copied().collect();
            open.push(Open {
                idx,
                ts: e.ts_ns,
                end,
            });
        }
    }
    Ok(out)
}
