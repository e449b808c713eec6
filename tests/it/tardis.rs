//! The Tardis.dev CSV importer on hand-written files made from Tardis's column documentation:
//! the is_snapshot rule (a second snapshot replaces the book), trades merged by receive time,
//! gzip/plain/CRLF/BOM alike, an imported day that backtests, and hostile rows refused naming
//! the file and line with nothing written.

use crate::common::*;
use flashmm_core::book::{Applied, Book};
use flashmm_core::event::{Body, Input, Side};
use flashmm_journal::binance::{ImportError, ImportOptions, ImportStats};
use flashmm_journal::tardis;
use flashmm_journal::Journal;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BOOK_H: &str = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";
const TRADES_H: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";
/// 2024-08-09T00:34:13Z in microseconds: the importer refuses times outside 2000..2200.
const T0_US: u64 = 1_723_161_253_000_000;

/// A book row `t` microseconds after T0; the exchange stamped it 100 us before receipt.
fn brow(t: u64, snapshot: bool, side: &str, price: &str, amount: &str) -> String {
    let local = T0_US + t;
    format!(
        "binance,BTCUSDT,{},{local},{snapshot},{side},{price},{amount}",
        local - 100
    )
}

fn trow(t: u64, id: u64, side: &str, price: &str, amount: &str) -> String {
    let local = T0_US + t;
    format!(
        "binance,BTCUSDT,{},{local},{id},{side},{price},{amount}",
        local - 100
    )
}

fn csv(header: &str, rows: &[String]) -> String {
    let mut s = String::from(header);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

/// A snapshot, two messages, a second snapshot (after a reconnect) without the 99.50 and
/// 99.99 bids and the 100.05 ask, and a message after it.
fn book_rows() -> Vec<String> {
    vec![
        brow(0, true, "bid", "100.00", "2"),
        brow(0, true, "bid", "99.99", "3"),
        brow(0, true, "bid", "99.50", "1"),
        brow(0, true, "ask", "100.02", "1"),
        brow(0, true, "ask", "100.05", "4"),
        // One message: two rows with the same local_timestamp.
        brow(1000, false, "bid", "100.01", "1"),
        brow(1000, false, "ask", "100.02", "0"),
        brow(2000, false, "ask", "100.03", "2"),
        brow(3000, true, "bid", "100.00", "1"),
        brow(3000, true, "bid", "99.98", "2"),
        brow(3000, true, "ask", "100.04", "1"),
        brow(3000, true, "ask", "100.06", "1"),
        brow(4000, false, "bid", "100.01", "0.5"),
    ]
}

fn trade_rows() -> Vec<String> {
    vec![
        trow(500, 11, "buy", "100.02", "0.1"),
        // At the same receive time as a book message: after it.
        trow(1000, 12, "sell", "100.00", "0.2"),
        trow(3500, 13, "sell", "100.00", "0.3"),
    ]
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if name.ends_with(".gz") {
        gz(&p, text);
    } else {
        std::fs::write(&p, text).unwrap();
    }
    p
}

fn fresh(dir: &Path) -> Journal {
    Journal::open(&dir.join("journal")).unwrap()
}

fn import_into(
    j: &Journal,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<(u64, ImportStats), ImportError> {
    let mut w = j.writer().unwrap();
    let r = tardis::import(&mut w, paths, opts);
    w.close().unwrap();
    r
}

/// The market inputs of a session with their times.
fn inputs(j: &Journal, session: u64) -> Vec<(i64, Option<i64>, Input)> {
    stream(j, session)
        .into_iter()
        .filter_map(|e| match e.body {
            Body::Input(i) => Some((e.ts_ns, e.venue_ts_ns, i)),
            _ => None,
        })
        .collect()
}

fn ns(t: u64) -> i64 {
    ((T0_US + t) * 1000) as i64
}

#[test]
fn a_second_snapshot_replaces_the_book_and_trades_merge_by_receive_time() {
    let dir = tempfile::tempdir().unwrap();
    let book = write(dir.path(), "book.csv.gz", &csv(BOOK_H, &book_rows()));
    let trades = write(dir.path(), "trades.csv.gz", &csv(TRADES_H, &trade_rows()));
    let j = fresh(dir.path());
    // The trades file first on purpose: the headers say which is which.
    let (id, stats) = import_into(&j, &[trades, book], &ImportOptions::default()).unwrap();
    assert_eq!(
        (
            stats.snapshots,
            stats.depth_diffs,
            stats.trades,
            stats.malformed
        ),
        (2, 3, 3, 0)
    );
    let got = inputs(&j, id);
    let kinds: Vec<(&str, i64)> = got
        .iter()
        .map(|(ts, _, i)| {
            (
                match i {
                    Input::BookSnapshot(_) => "snapshot",
                    Input::BookDelta(_) => "delta",
                    Input::Trade(_) => "trade",
                    _ => "other",
                },
                *ts,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("snapshot", ns(0)),
            ("trade", ns(500)),
            ("delta", ns(1000)),
            ("trade", ns(1000)),
            ("delta", ns(2000)),
            ("snapshot", ns(3000)),
            ("trade", ns(3500)),
            ("delta", ns(4000)),
        ]
    );
    // venue_ts_ns is the exchange's `timestamp`.
    assert!(got.iter().all(|(ts, v, _)| *v == Some(ts - 100_000)));
    let mut b = Book::new();
    for (ts, _, i) in &got {
        match i {
            Input::BookDelta(d) => {
                assert_eq!(b.apply_delta(d), Applied::Applied, "delta at {ts}");
                assert!(d.prev_update_id.is_none());
            }
            Input::BookSnapshot(s) => {
                b.apply_snapshot(s);
                if *ts == ns(3000) {
                    // Cleared: the first snapshot's other levels are gone.
                    assert_eq!(b.qty_at(Side::Buy, dec!(99.50)), Decimal::ZERO);
                    assert_eq!(b.qty_at(Side::Buy, dec!(99.99)), Decimal::ZERO);
                    assert_eq!(b.qty_at(Side::Buy, dec!(100.01)), Decimal::ZERO);
                    assert_eq!(b.qty_at(Side::Sell, dec!(100.03)), Decimal::ZERO);
                    assert_eq!(b.qty_at(Side::Sell, dec!(100.05)), Decimal::ZERO);
                    assert_eq!(b.depth(Side::Buy) + b.depth(Side::Sell), 4);
                }
            }
            Input::Trade(t) => assert!(t.trade_id >= 11),
            _ => {}
        }
    }
    // By hand: the second snapshot's bids 100.00, 99.98 and the 100.01 bid of the last
    // message; asks 100.04 and 100.06.
    assert_eq!(b.best_bid(), Some((dec!(100.01), dec!(0.5))));
    assert_eq!(b.best_ask(), Some((dec!(100.04), dec!(1))));
    let sides: Vec<Side> = got
        .iter()
        .filter_map(|(_, _, i)| match i {
            Input::Trade(t) => Some(t.aggressor),
            _ => None,
        })
        .collect();
    assert_eq!(sides, [Side::Buy, Side::Sell, Side::Sell]);
    // The instrument: Tardis's `binance` is Binance spot, whose BTCUSDT rules the table has.
    let i = flashmm_journal::instrument::of_session(&j, id)
        .unwrap()
        .expect("an instrument is recorded");
    assert_eq!(i.market.symbol.as_str(), "BTCUSDT");
    assert_eq!(i.market.venue, "binance-spot");
    assert_eq!(i.market.tick_size, dec!(0.01));
    assert!(matches!(
        j.verify().unwrap(),
        flashmm_journal::Verified::Intact { .. }
    ));
}

#[test]
fn the_book_file_alone_imports_and_another_exchange_is_inferred_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = book_rows()
        .iter()
        .map(|r| r.replacen("binance,BTCUSDT", "deribit,BTC-PERPETUAL", 1))
        .collect();
    let book = write(dir.path(), "book.csv", &csv(BOOK_H, &rows));
    let j = fresh(dir.path());
    let (id, stats) = import_into(&j, &[book], &ImportOptions::default()).unwrap();
    assert_eq!((stats.snapshots, stats.trades), (2, 0));
    let i = flashmm_journal::instrument::of_session(&j, id)
        .unwrap()
        .unwrap();
    assert_eq!(i.market.venue, "deribit");
    assert_eq!(i.market.symbol.as_str(), "BTC-PERPETUAL");
    // Inferred from the first snapshot: prices to 0.01, sizes whole.
    assert_eq!(
        (i.market.tick_size, i.market.lot_size),
        (dec!(0.01), dec!(1))
    );
}

#[test]
fn gzip_plain_crlf_and_a_bom_give_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let book = csv(BOOK_H, &book_rows());
    let trades = csv(TRADES_H, &trade_rows());
    let crlf = |s: &str| format!("\u{feff}{}", s.replace('\n', "\r\n"));
    // Another column order and an extra column: found by name.
    let reordered = {
        let mut out = String::from(
            "local_timestamp,note,exchange,symbol,timestamp,is_snapshot,side,price,amount\n",
        );
        for r in book_rows() {
            let f: Vec<&str> = r.split(',').collect();
            out.push_str(&format!(
                "{},x,{},{},{},{},{},{},{}\n",
                f[3], f[0], f[1], f[2], f[4], f[5], f[6], f[7]
            ));
        }
        out
    };
    let variants = [
        ("plain", book.clone(), "b.csv", trades.clone(), "t.csv"),
        ("gzip", book.clone(), "b.csv.gz", trades.clone(), "t.csv.gz"),
        // gzip without the name saying so: sniffed.
        (
            "gzip unnamed",
            book.clone(),
            "b.data.gz",
            trades.clone(),
            "t.data",
        ),
        ("crlf+bom", crlf(&book), "b.csv", crlf(&trades), "t.csv"),
        ("reordered", reordered, "b.csv", trades.clone(), "t.csv"),
    ];
    let mut first = None;
    for (name, b, bn, t, tn) in variants {
        let d = dir.path().join(name.replace(['+', ' '], "_"));
        std::fs::create_dir_all(&d).unwrap();
        let bp = write(&d, bn, &b);
        let tp = d.join(tn);
        if name == "gzip unnamed" {
            // The trades file is gzip though its name ends in .data.
            gz(&tp, &t);
        } else {
            write(&d, tn, &t);
        }
        let j = fresh(&d);
        let (id, stats) = import_into(&j, &[bp, tp], &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stats.malformed, 0, "{name}: {:?}", stats.malformed_lines);
        let got = inputs(&j, id);
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "{name}"),
        }
    }
}

fn flashmm(journal: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .arg("--journal")
        .arg(journal)
        .args(args)
        .output()
        .expect("run flashmm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Five minutes of a BTCUSDT book around 60,000: a message every 500 ms moving the top within
/// a dollar, deep levels that never cross it, and a trade every second on alternate sides.
fn generated_day() -> (String, String) {
    generated(600)
}

/// The first `messages` half-seconds of `generated_day`: the book file and the trades file.
pub(crate) fn generated(messages: u64) -> (String, String) {
    let mut book = Vec::new();
    for i in 0..10u64 {
        book.push(brow(0, true, "bid", &format!("{}", 59_990 - i), "1.5"));
        book.push(brow(0, true, "ask", &format!("{}", 60_010 + i), "1.5"));
    }
    let cents = |k: u64| 6_000_000 + ((k * 37) % 200) as i64 - 100;
    let price = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    let mut trades = Vec::new();
    let mut prev: Option<(i64, i64)> = None;
    for k in 1..=messages {
        let t = k * 500_000;
        let m = cents(k);
        let (bid, ask) = (m - 5, m + 5);
        if let Some((pb, pa)) = prev {
            book.push(brow(t, false, "bid", &price(pb), "0"));
            book.push(brow(t, false, "ask", &price(pa), "0"));
        }
        book.push(brow(t, false, "bid", &price(bid), "0.8"));
        book.push(brow(t, false, "ask", &price(ask), "0.9"));
        prev = Some((bid, ask));
        if k % 2 == 0 {
            let (side, p) = if k % 4 == 0 {
                ("buy", ask)
            } else {
                ("sell", bid)
            };
            trades.push(trow(t + 100_000, k, side, &price(p), "0.01"));
        }
    }
    (csv(BOOK_H, &book), csv(TRADES_H, &trades))
}

#[test]
fn an_imported_day_verifies_and_backtests_with_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let (book, trades) = generated_day();
    let b = write(
        dir.path(),
        "binance_incremental_book_L2_BTCUSDT.csv.gz",
        &book,
    );
    let t = write(dir.path(), "binance_trades_BTCUSDT.csv.gz", &trades);
    let j = dir.path().join("j");
    let o = flashmm(
        &j,
        &[
            "journal",
            "import",
            "--format",
            "tardis",
            b.to_str().unwrap(),
            t.to_str().unwrap(),
        ],
    );
    let said = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        said.contains("session 1")
            && said.contains("1 snapshots, 600 book updates, 300 trades")
            && said.contains("BTCUSDT on binance-spot"),
        "{said}"
    );
    let v = flashmm(&j, &["journal", "verify"]);
    assert!(
        v.status.success() && text(&v.stdout).contains("intact"),
        "{}",
        text(&v.stdout)
    );
    let o = flashmm(&j, &["backtest", "--session", "1", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json");
    assert_eq!(v["symbol"], "BTCUSDT");
    assert!(v["quotes"].as_u64().unwrap_or(0) > 0, "{v}");
    // Importing the same files again is refused, in either order.
    let again = flashmm(
        &j,
        &[
            "journal",
            "import",
            "--format",
            "tardis",
            t.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    let e = text(&again.stderr);
    assert!(
        !again.status.success()
            && e.contains("already imported as session 1")
            && e.contains("--force"),
        "{e}"
    );
}

#[test]
fn reimporting_the_same_files_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let book = write(dir.path(), "book.csv", &csv(BOOK_H, &book_rows()));
    let trades = write(dir.path(), "trades.csv", &csv(TRADES_H, &trade_rows()));
    let j = fresh(dir.path());
    let files = [book.clone(), trades.clone()];
    let (id, _) = import_into(&j, &files, &ImportOptions::default()).unwrap();
    match import_into(&j, &files, &ImportOptions::default()) {
        Err(ImportError::AlreadyImported { session, .. }) => assert_eq!(session, id),
        other => panic!("{other:?}"),
    }
    // The book alone is other data.
    import_into(&j, &[book], &ImportOptions::default()).unwrap();
    let forced = ImportOptions {
        force: true,
        ..ImportOptions::default()
    };
    import_into(&j, &files, &forced).unwrap();
    assert_eq!(j.sessions().unwrap().len(), 3);
}

/// The book file with row `i` (0-based, so line i + 2) replaced by `bad`.
fn book_with(i: usize, bad: &[u8]) -> Vec<u8> {
    let mut out = format!("{BOOK_H}\n").into_bytes();
    for (k, r) in book_rows().iter().enumerate() {
        if k == i {
            out.extend_from_slice(bad);
        } else {
            out.extend_from_slice(r.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

fn trades_with(i: usize, bad: &str) -> Vec<u8> {
    let mut rows = trade_rows();
    rows[i] = bad.to_string();
    csv(TRADES_H, &rows).into_bytes()
}

/// Imports the bytes as book.csv (and trades.csv) into a fresh journal.
fn try_import(
    book: &[u8],
    trades: Option<&[u8]>,
    strict: bool,
) -> (
    Journal,
    Result<(u64, ImportStats), ImportError>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![dir.path().join("book.csv")];
    std::fs::write(&files[0], book).unwrap();
    if let Some(t) = trades {
        files.push(dir.path().join("trades.csv"));
        std::fs::write(&files[1], t).unwrap();
    }
    let j = fresh(dir.path());
    let opts = ImportOptions {
        strict,
        ..ImportOptions::default()
    };
    let r = import_into(&j, &files, &opts);
    (j, r, dir)
}

/// What is wrong, the book bytes, the trades bytes, the file and line named, a word of why.
type RowCase = (
    &'static str,
    Vec<u8>,
    Vec<u8>,
    &'static str,
    u64,
    &'static str,
);
/// What is wrong, the book bytes, the trades bytes if any, words the message must hold.
type FileCase = (&'static str, Vec<u8>, Option<Vec<u8>>, Vec<String>);

#[test]
fn hostile_rows_are_errors_naming_file_and_line_under_strict_and_counted_otherwise() {
    let good_trades = csv(TRADES_H, &trade_rows()).into_bytes();
    // (what, book bytes, trades bytes, file named, line named, a word of the reason)
    let cases: Vec<RowCase> = vec![
        (
            "negative price",
            book_with(7, brow(2000, false, "ask", "-100.03", "2").as_bytes()),
            good_trades.clone(),
            "book.csv",
            9,
            "price",
        ),
        (
            "NaN price",
            book_with(7, brow(2000, false, "ask", "NaN", "2").as_bytes()),
            good_trades.clone(),
            "book.csv",
            9,
            "price",
        ),
        (
            "infinite amount",
            book_with(7, brow(2000, false, "ask", "100.03", "inf").as_bytes()),
            good_trades.clone(),
            "book.csv",
            9,
            "amount",
        ),
        (
            "huge amount",
            book_with(
                7,
                brow(2000, false, "ask", "100.03", "5000000000000").as_bytes(),
            ),
            good_trades.clone(),
            "book.csv",
            9,
            "amount",
        ),
        (
            "bad book side",
            book_with(7, brow(2000, false, "middle", "100.03", "2").as_bytes()),
            good_trades.clone(),
            "book.csv",
            9,
            "side",
        ),
        (
            "bad is_snapshot",
            book_with(
                7,
                brow(2000, false, "ask", "100.03", "2")
                    .replace("false", "maybe")
                    .as_bytes(),
            ),
            good_trades.clone(),
            "book.csv",
            9,
            "is_snapshot",
        ),
        (
            "too few columns",
            book_with(
                7,
                b"binance,BTCUSDT,1723161253001900,1723161253002000,false,ask,100.03",
            ),
            good_trades.clone(),
            "book.csv",
            9,
            "columns",
        ),
        (
            "too many columns",
            book_with(
                7,
                format!("{},9", brow(2000, false, "ask", "100.03", "2")).as_bytes(),
            ),
            good_trades.clone(),
            "book.csv",
            9,
            "columns",
        ),
        (
            "invalid UTF-8",
            book_with(7, b"binance,BTC\xff\xfeUSDT,1,2,false,ask,1,1"),
            good_trades.clone(),
            "book.csv",
            9,
            "UTF-8",
        ),
        (
            "bad trade side",
            csv(BOOK_H, &book_rows()).into_bytes(),
            trades_with(1, &trow(1000, 12, "up", "100.00", "0.2")),
            "trades.csv",
            3,
            "side",
        ),
        (
            "trade of nothing",
            csv(BOOK_H, &book_rows()).into_bytes(),
            trades_with(1, &trow(1000, 12, "sell", "100.00", "0")),
            "trades.csv",
            3,
            "amount is 0",
        ),
        (
            "unknown side at the mid",
            csv(BOOK_H, &book_rows()).into_bytes(),
            // The book at 1000 us, after that time's message, is 100.01 / 100.05: mid 100.03.
            trades_with(1, &trow(1000, 12, "unknown", "100.03", "0.2")),
            "trades.csv",
            3,
            "mid",
        ),
    ];
    for (what, book, trades, file, line, word) in cases {
        let (j, r, _d) = try_import(&book, Some(&trades), true);
        let e = match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{what}: imported under --strict"),
        };
        assert!(
            e.contains(file) && e.contains(&format!("line {line}:")) && e.contains(word),
            "{what}: {e}"
        );
        assert!(e.contains("--strict"), "{what}: {e}");
        assert!(j.sessions().unwrap().is_empty(), "{what}: wrote a session");
        let (_j, r, _d) = try_import(&book, Some(&trades), false);
        let (_, stats) = r.unwrap_or_else(|e| panic!("{what}, not strict: {e}"));
        assert_eq!(stats.malformed, 1, "{what}");
        assert_eq!(stats.malformed_lines[0].0, line, "{what}");
        assert!(stats.malformed_lines[0].1.contains(file), "{what}");
        assert!(
            tardis::summary(&stats).contains("1 malformed rows skipped"),
            "{what}"
        );
    }
}

#[test]
fn broken_files_are_errors_naming_file_and_line_whatever_strict_says() {
    let good_trades = csv(TRADES_H, &trade_rows()).into_bytes();
    let hours = 3_600_000_000u64;
    let no_amount = csv(
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price",
        &book_rows()
            .iter()
            .map(|r| r.rsplit_once(',').map(|(a, _)| a.to_string()).unwrap())
            .collect::<Vec<_>>(),
    );
    let other_symbol_trades: Vec<String> = trade_rows()
        .iter()
        .map(|r| r.replace("BTCUSDT", "ETHUSDT"))
        .collect();
    let one_sided: Vec<String> = book_rows()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !(3..=4).contains(i))
        .map(|(_, r)| r)
        .collect();
    // (what, book, trades, words the message must hold)
    let cases: Vec<FileCase> = vec![
        (
            "time jump",
            book_with(7, brow(7 * hours, false, "ask", "100.03", "2").as_bytes()),
            None,
            vec!["book.csv line 9:".into(), "--max-time-jump-s".into()],
        ),
        (
            "time jump between the files",
            csv(BOOK_H, &book_rows()).into_bytes(),
            Some(trades_with(
                2,
                &trow(8 * hours, 13, "sell", "100.00", "0.3"),
            )),
            vec!["trades.csv line 4:".into(), "jumps forward".into()],
        ),
        (
            "symbol change",
            book_with(
                7,
                brow(2000, false, "ask", "100.03", "2")
                    .replace("BTCUSDT", "ETHUSDT")
                    .as_bytes(),
            ),
            Some(good_trades.clone()),
            vec![
                "book.csv line 9:".into(),
                "symbol changes from BTCUSDT to ETHUSDT".into(),
            ],
        ),
        (
            "exchange change",
            book_with(
                7,
                brow(2000, false, "ask", "100.03", "2")
                    .replace("binance", "okex")
                    .as_bytes(),
            ),
            None,
            vec!["book.csv line 9:".into(), "exchange changes".into()],
        ),
        (
            "missing column",
            no_amount.into_bytes(),
            None,
            vec!["book.csv line 1:".into(), "amount".into()],
        ),
        (
            "first row not a snapshot",
            csv(BOOK_H, &book_rows()[5..]).into_bytes(),
            None,
            vec!["book.csv line 2:".into(), "not a snapshot".into()],
        ),
        (
            "one-sided snapshot",
            csv(BOOK_H, &one_sided).into_bytes(),
            None,
            vec!["book.csv lines 2..4".into(), "0 asks".into()],
        ),
        (
            "trades of another symbol",
            csv(BOOK_H, &book_rows()).into_bytes(),
            Some(csv(TRADES_H, &other_symbol_trades).into_bytes()),
            vec!["trades.csv".into(), "ETHUSDT".into(), "book.csv".into()],
        ),
        (
            "empty file",
            Vec::new(),
            None,
            vec!["book.csv line 1:".into(), "empty".into()],
        ),
        (
            "header only",
            format!("{BOOK_H}\n").into_bytes(),
            None,
            vec!["book.csv".into(), "no row".into()],
        ),
        (
            "not a Tardis file",
            b"hello,world\n1,2\n".to_vec(),
            None,
            vec!["book.csv line 1:".into(), "neither".into()],
        ),
        (
            "a truncated gzip",
            {
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("x.gz");
                gz(&p, &csv(BOOK_H, &book_rows()));
                let b = std::fs::read(&p).unwrap();
                b[..b.len() / 2].to_vec()
            },
            None,
            vec!["book.csv".into(), "reading failed".into()],
        ),
    ];
    for (what, book, trades, words) in cases {
        for strict in [true, false] {
            let (j, r, _d) = try_import(&book, trades.as_deref(), strict);
            let e = match r {
                Err(e) => e.to_string(),
                Ok((_, s)) => panic!(
                    "{what} (strict {strict}): imported: {}",
                    tardis::summary(&s)
                ),
            };
            for w in &words {
                assert!(e.contains(w.as_str()), "{what}: no {w:?} in: {e}");
            }
            assert!(j.sessions().unwrap().is_empty(), "{what}: wrote a session");
        }
    }
    // Trades alone have no book.
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "trades.csv", &csv(TRADES_H, &trade_rows()));
    let j = fresh(dir.path());
    let e = import_into(&j, &[t], &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no incremental_book_L2 file"), "{e}");
}

#[test]
fn backwards_times_are_clamped_and_counted_and_unknown_sides_inferred() {
    let mut rows = trade_rows();
    // 300 us before the trade before it, and the book's message at 1000: clamped to 1000.
    rows[1] = trow(700, 12, "unknown", "100.00", "0.2");
    rows.swap(0, 1);
    let (j, r, _d) = try_import(
        csv(BOOK_H, &book_rows()).as_bytes(),
        Some(csv(TRADES_H, &rows).as_bytes()),
        true,
    );
    let (id, stats) = r.unwrap();
    // The trade at 700 comes before the one at 500 in its file: the merge takes it after
    // the book's snapshot, then the one at 500 goes back in time and is clamped.
    assert_eq!(stats.clamped_ts, 1, "{}", tardis::summary(&stats));
    assert_eq!(stats.inferred_sides, 1);
    let got = inputs(&j, id);
    let ts: Vec<i64> = got.iter().map(|(t, _, _)| *t).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    let t = got
        .iter()
        .find_map(|(_, _, i)| match i {
            Input::Trade(t) if t.trade_id == 12 => Some(t.aggressor),
            _ => None,
        })
        .unwrap();
    // Below the first book's mid (100.01): the seller crossed.
    assert_eq!(t, Side::Sell);
}

#[test]
fn backtest_data_detects_tardis_files_and_pairs_the_trades_with_their_book() {
    let dir = tempfile::tempdir().unwrap();
    let (book, trades) = generated_day();
    // Named like nothing in particular, one gzip and one plain with a BOM: the headers decide.
    let b = write(dir.path(), "day1.gz", &book);
    let t = write(dir.path(), "day1-prints.csv", &format!("\u{feff}{trades}"));
    let j = dir.path().join("j");
    let (bs, ts) = (b.to_str().unwrap(), t.to_str().unwrap());
    // The trades file may come first; it is imported with its book as one session.
    let o = flashmm(&j, &["backtest", "--data", ts, "--data", bs, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json");
    assert_eq!(v["symbol"], "BTCUSDT");
    assert!(v["quotes"].as_u64().unwrap_or(0) > 0, "{v}");
    // 1 snapshot, 600 messages and 300 trades: both files are in the session.
    assert_eq!(v["events"], 901, "{v}");
    let jj = Journal::open(&j).unwrap();
    let market = inputs(&jj, 1);
    let trades_in = market
        .iter()
        .filter(|(_, _, i)| matches!(i, Input::Trade(_)))
        .count();
    assert_eq!(trades_in, 300);
    drop(jj);
    // The same pair again is found by its digest, not imported twice.
    let o = flashmm(&j, &["backtest", "--data", bs, "--data", ts, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ls = text(&flashmm(&j, &["journal", "ls"]).stdout);
    assert_eq!(ls.matches("tardis import").count(), 1, "{ls}");
    let v = flashmm(&j, &["journal", "verify"]);
    assert!(v.status.success(), "{}", text(&v.stdout));
    // The book file alone is a recording too; trades alone are refused, naming the file.
    let j2 = dir.path().join("j2");
    let o = flashmm(&j2, &["backtest", "--data", bs, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = flashmm(&j2, &["backtest", "--data", ts]);
    let e = text(&o.stderr);
    assert!(!o.status.success() && e.contains(ts), "{e}");
}

/// Issue 12: every importer shows progress on long files. The importer counts what it reads
/// against what it will read, and ends at the whole of it: two passes over both files here.
#[test]
fn a_tardis_import_counts_its_progress_to_the_end_of_both_passes() {
    let d = tempfile::tempdir().unwrap();
    let book = write(d.path(), "book.csv.gz", &csv(BOOK_H, &book_rows()));
    let trades = write(d.path(), "trades.csv", &csv(TRADES_H, &trade_rows()));
    let p = std::sync::Arc::new(flashmm_journal::progress::ImportProgress::default());
    let opts = ImportOptions {
        progress: Some(p.clone()),
        ..ImportOptions::default()
    };
    import_into(&fresh(d.path()), &[book.clone(), trades.clone()], &opts).unwrap();
    let size = |f: &PathBuf| std::fs::metadata(f).unwrap().len();
    let (done, total) = p.read();
    assert_eq!(total, 2 * (size(&book) + size(&trades)));
    assert_eq!(done, total);
}
