//! A file's rows in order, checked (one exchange and symbol, no time jump, malformed rows
//! counted or refused), and the book file's rows grouped into what the journal stores: a run
//! of `is_snapshot=true` rows is one snapshot, and consecutive other rows sharing a
//! `local_timestamp` are one update message.

use super::csv::{columns, Columns, Kind, Line, Lines};
use super::rows::{self, What};
use super::TardisError;
use crate::binance::{ImportError, ImportOptions, ImportStats};
use flashmm_core::event::{Level, Side, Symbol};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;

/// Malformed rows listed in the summary; the rest are only counted.
const SHOWN_MALFORMED: usize = 20;

/// A row with what the journal needs, no longer borrowing the line.
#[derive(Debug)]
struct Row {
    line: u64,
    local_ns: i64,
    venue_ns: Option<i64>,
    price: Decimal,
    amount: Decimal,
    kind: RowKind,
}

#[derive(Debug)]
enum RowKind {
    Level { snapshot: bool, side: Side },
    Trade { side: Option<Side>, id: u64 },
}

/// One thing for the journal, from one file.
#[derive(Debug)]
pub(super) struct Event {
    /// The file's (first) line of it.
    pub line: u64,
    pub local_ns: i64,
    pub venue_ns: Option<i64>,
    pub body: Body,
}

#[derive(Debug)]
pub(super) enum Body {
    /// Bids best first, asks best first.
    Snapshot {
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Delta {
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Trade {
        id: u64,
        price: Decimal,
        amount: Decimal,
        side: Option<Side>,
    },
}

/// The checked rows of one file.
pub(super) struct Source {
    pub path: String,
    pub kind: Kind,
    lines: Lines,
    cols: Columns,
    /// The market the first good row names; every later row must name the same.
    pub exchange: Option<String>,
    pub symbol: Option<Symbol>,
    last_local: Option<i64>,
    trades: u64,
}

pub(super) fn malformed(
    stats: &mut ImportStats,
    opts: &ImportOptions,
    path: &str,
    line: u64,
    detail: String,
) -> Result<(), ImportError> {
    if opts.strict {
        return Err(TardisError::Row {
            path: path.to_string(),
            line,
            detail,
        }
        .into());
    }
    stats.malformed += 1;
    if stats.malformed_lines.len() < SHOWN_MALFORMED {
        stats
            .malformed_lines
            .push((line, format!("{path}: {detail}")));
    }
    Ok(())
}

impl Source {
    pub(super) fn open(path: &Path) -> Result<Source, ImportError> {
        Self::open_counted(path, None)
    }

    /// `open`, adding what is read to an import's progress.
    pub(super) fn open_counted(
        path: &Path,
        progress: Option<std::sync::Arc<crate::progress::ImportProgress>>,
    ) -> Result<Source, ImportError> {
        let mut lines = Lines::open_counted(path, progress)?;
        let shown = path.display().to_string();
        let header_err = |detail: &str| TardisError::Header {
            path: shown.clone(),
            detail: detail.to_string(),
        };
        let cols = match lines.next_line()? {
            None => {
                return Err(
                    header_err("the file is empty; a Tardis CSV starts with its header").into(),
                )
            }
            Some((_, Line::Bad(why))) => {
                return Err(header_err(&format!("the header cannot be read: {why}")).into())
            }
            Some((n, Line::Text(h))) if n != 1 => {
                return Err(header_err(&format!(
                    "line 1 is empty; the header {h:?} must be the first line"
                ))
                .into())
            }
            Some((_, Line::Text(h))) => columns(path, h)?,
        };
        Ok(Source {
            path: shown,
            kind: cols.kind,
            lines,
            cols,
            exchange: None,
            symbol: None,
            last_local: None,
            trades: 0,
        })
    }

    fn next_row(
        &mut self,
        opts: &ImportOptions,
        stats: &mut ImportStats,
    ) -> Result<Option<Row>, ImportError> {
        loop {
            let (n, line) = match self.lines.next_line()? {
                None => return Ok(None),
                Some(l) => l,
            };
            stats.lines += 1;
            let parsed = match line {
                Line::Bad(why) => Err(why),
                Line::Text(text) => rows::parse(&self.cols, text),
            };
            let r = match parsed {
                Ok(r) => r,
                Err(why) => {
                    malformed(stats, opts, &self.path, n, why)?;
                    continue;
                }
            };
            let changed = |what: &'static str, from: String, to: String| TardisError::Changed {
                path: self.path.clone(),
                line: n,
                what,
                from,
                to,
            };
            match &self.exchange {
                None => self.exchange = Some(r.exchange.to_string()),
                Some(e) if e != r.exchange => {
                    return Err(changed("exchange", e.clone(), r.exchange.to_string()).into())
                }
                _ => {}
            }
            match self.symbol {
                None => self.symbol = Some(r.symbol),
                Some(s) if s != r.symbol => {
                    return Err(changed("symbol", s.to_string(), r.symbol.to_string()).into())
                }
                _ => {}
            }
            if let Some(prev) = self.last_local {
                let jump = r.local_ns.abs_diff(prev);
                if jump > opts.max_time_jump_s.saturating_mul(1_000_000_000) {
                    return Err(TardisError::TimeJump {
                        path: self.path.clone(),
                        line: n,
                        dir: if r.local_ns > prev { "forward" } else { "back" },
                        jump_s: jump / 1_000_000_000,
                        from: prev,
                        to: r.local_ns,
                        max_s: opts.max_time_jump_s,
                    }
                    .into());
                }
            }
            self.last_local = Some(r.local_ns);
            let kind = match r.what {
                What::Level { snapshot, side } => RowKind::Level { snapshot, side },
                What::Trade { side, id } => {
                    self.trades += 1;
                    RowKind::Trade {
                        side,
                        id: rows::trade_id(id, self.trades),
                    }
                }
            };
            return Ok(Some(Row {
                line: n,
                local_ns: r.local_ns,
                venue_ns: r.venue_ns,
                price: r.price,
                amount: r.amount,
                kind,
            }));
        }
    }
}

/// A file's events: trades one a row; book rows grouped.
pub(super) struct Events {
    pub src: Source,
    /// The row that ended the previous group, which starts the next.
    pending: Option<Row>,
    started: bool,
}

enum Group {
    Snapshot {
        first_line: u64,
        last_line: u64,
        local_ns: i64,
        venue_ns: Option<i64>,
        bids: BTreeMap<Decimal, Level>,
        asks: BTreeMap<Decimal, Level>,
    },
    Delta {
        line: u64,
        local_ns: i64,
        venue_ns: Option<i64>,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
}

impl Events {
    pub(super) fn new(src: Source) -> Events {
        Events {
            src,
            pending: None,
            started: false,
        }
    }

    pub(super) fn next(
        &mut self,
        opts: &ImportOptions,
        stats: &mut ImportStats,
    ) -> Result<Option<Event>, ImportError> {
        let mut group: Option<Group> = None;
        loop {
            let row = match self.pending.take() {
                Some(r) => Some(r),
                None => self.src.next_row(opts, stats)?,
            };
            let Some(row) = row else {
                return group.map(|g| self.close(g)).transpose();
            };
            let (snapshot, side) = match row.kind {
                RowKind::Trade { side, id } => {
                    return Ok(Some(Event {
                        line: row.line,
                        local_ns: row.local_ns,
                        venue_ns: row.venue_ns,
                        body: Body::Trade {
                            id,
                            price: row.price,
                            amount: row.amount,
                            side,
                        },
                    }))
                }
                RowKind::Level { snapshot, side } => (snapshot, side),
            };
            let level = Level {
                price: row.price,
                qty: row.amount,
            };
            if !self.started && !snapshot {
                return Err(TardisError::NoSnapshotFirst {
                    path: self.src.path.clone(),
                    line: row.line,
                }
                .into());
            }
            self.started = true;
            match &mut group {
                None if snapshot => {
                    let mut g = Group::Snapshot {
                        first_line: row.line,
                        last_line: row.line,
                        local_ns: row.local_ns,
                        venue_ns: row.venue_ns,
                        bids: BTreeMap::new(),
                        asks: BTreeMap::new(),
                    };
                    if let Group::Snapshot { bids, asks, .. } = &mut g {
                        snapshot_level(bids, asks, side, level);
                    }
                    group = Some(g);
                }
                None => {
                    let (mut bids, mut asks) = (Vec::new(), Vec::new());
                    match side {
                        Side::Buy => bids.push(level),
                        Side::Sell => asks.push(level),
                    }
                    group = Some(Group::Delta {
                        line: row.line,
                        local_ns: row.local_ns,
                        venue_ns: row.venue_ns,
                        bids,
                        asks,
                    });
                }
                // The run of snapshot rows goes on; the book is complete at its last row, so
                // that row's times are the snapshot's.
                Some(Group::Snapshot {
                    last_line,
                    local_ns,
                    venue_ns,
                    bids,
                    asks,
                    ..
                }) if snapshot => {
                    *last_line = row.line;
                    *local_ns = row.local_ns;
                    *venue_ns = row.venue_ns;
                    snapshot_level(bids, asks, side, level);
                }
                Some(Group::Delta {
                    local_ns,
                    venue_ns,
                    bids,
                    asks,
                    ..
                }) if !snapshot && row.local_ns == *local_ns => {
                    *venue_ns = row.venue_ns.or(*venue_ns);
                    match side {
                        Side::Buy => bids.push(level),
                        Side::Sell => asks.push(level),
                    }
                }
                // A snapshot after updates (the book is rebuilt from it), updates after a
                // snapshot, or another message: this row starts the next group.
                Some(_) => {
                    self.pending = Some(row);
                    if let Some(g) = group.take() {
                        return self.close(g).map(Some);
                    }
                }
            }
        }
    }

    fn close(&self, g: Group) -> Result<Event, ImportError> {
        Ok(match g {
            Group::Snapshot {
                first_line,
                last_line,
                local_ns,
                venue_ns,
                bids,
                asks,
            } => {
                if bids.is_empty() || asks.is_empty() {
                    return Err(TardisError::OneSided {
                        path: self.src.path.clone(),
                        first_line,
                        last_line,
                        bids: bids.len(),
                        asks: asks.len(),
                    }
                    .into());
                }
                Event {
                    line: first_line,
                    local_ns,
                    venue_ns,
                    body: Body::Snapshot {
                        bids: bids.into_values().rev().collect(),
                        asks: asks.into_values().collect(),
                    },
                }
            }
            Group::Delta {
                line,
                local_ns,
                venue_ns,
                bids,
                asks,
            } => Event {
                line,
                local_ns,
                venue_ns,
                body: Body::Delta { bids, asks },
            },
        })
    }
}

/// A snapshot row: a later row at the same price replaces an earlier one, and an amount of 0
/// means the level is absent (a snapshot lists the book, so it removes nothing).
fn snapshot_level(
    bids: &mut BTreeMap<Decimal, Level>,
    asks: &mut BTreeMap<Decimal, Level>,
    side: Side,
    level: Level,
) {
    let m = match side {
        Side::Buy => bids,
        Side::Sell => asks,
    };
    if level.qty.is_zero() {
        m.remove(&level.price);
    } else {
        m.insert(level.price, level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const H: &str = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";

    fn events(rows: &[&str]) -> Result<Vec<Event>, ImportError> {
        let dir = tempfile::tempdir().map_err(|e| ImportError::Open {
            path: "tempdir".into(),
            detail: e.to_string(),
        })?;
        let p = dir.path().join("b.csv");
        let text = format!("{H}\n{}\n", rows.join("\n"));
        std::fs::write(&p, text).map_err(|e| ImportError::Open {
            path: "b.csv".into(),
            detail: e.to_string(),
        })?;
        let mut ev = Events::new(Source::open(&p)?);
        let (opts, mut stats) = (ImportOptions::default(), ImportStats::default());
        let mut out = Vec::new();
        while let Some(e) = ev.next(&opts, &mut stats)? {
            out.push(e);
        }
        Ok(out)
    }

    fn row(t: u64, snap: bool, side: &str, price: &str, amount: &str) -> String {
        let t = 1_723_161_253_000_000 + t;
        format!("binance,BTCUSDT,{t},{t},{snap},{side},{price},{amount}")
    }

    #[test]
    fn snapshot_runs_and_messages_are_grouped() {
        let rows = [
            row(0, true, "bid", "10", "1"),
            row(0, true, "bid", "9", "1"),
            // The same price again replaces it; 0 in a snapshot means absent.
            row(0, true, "bid", "9", "2"),
            row(0, true, "bid", "8", "0"),
            row(0, true, "ask", "11", "1"),
            row(5, false, "bid", "10", "0"),
            row(5, false, "ask", "12", "3"),
            row(6, false, "ask", "12", "0"),
            // A snapshot after updates: a new book.
            row(7, true, "bid", "7", "1"),
            row(7, true, "ask", "13", "1"),
        ];
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let ev = events(&refs).expect("events");
        let kinds: Vec<(u64, usize, usize, bool)> = ev
            .iter()
            .map(|e| match &e.body {
                Body::Snapshot { bids, asks } => (e.line, bids.len(), asks.len(), true),
                Body::Delta { bids, asks } => (e.line, bids.len(), asks.len(), false),
                Body::Trade { .. } => (e.line, 0, 0, false),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (2, 2, 1, true),
                (7, 1, 1, false),
                (9, 0, 1, false),
                (10, 1, 1, true)
            ]
        );
        let Body::Snapshot { bids, .. } = &ev[0].body else {
            panic!("not a snapshot")
        };
        assert_eq!(
            bids.iter().map(|l| (l.price, l.qty)).collect::<Vec<_>>(),
            [(dec!(10), dec!(1)), (dec!(9), dec!(2))],
            "best first"
        );
    }

    #[test]
    fn a_book_that_starts_with_updates_is_refused() {
        let rows = [
            row(0, false, "bid", "10", "1"),
            row(1, true, "bid", "9", "1"),
        ];
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let e = events(&refs).expect_err("no snapshot first");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
