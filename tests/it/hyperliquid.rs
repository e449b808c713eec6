//! The Hyperliquid importer (docs/hyperliquid.md): the shipped recording imported and backtested,
//! `--data` telling the format from the content, and hand-written hostile files, each refused
//! naming its line (or, without --strict, counted) with nothing written.

use crate::common::*;
use flashmm_core::book::Book;
use flashmm_core::event::{Body, Input, Side};
use flashmm_journal::binance::{ImportError, ImportOptions, ImportStats};
use flashmm_journal::detect::{detect_format, DataFormat};
use flashmm_journal::{hyperliquid, Journal, Verified};
use rust_decimal::Decimal;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

pub fn hl_fixture() -> PathBuf {
    fixtures_dir().join("hyperliquid-btc-20250126.gz")
}

fn fixture_lines() -> Vec<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(hl_fixture()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_string).collect()
}

fn json_of(line: &str) -> Value {
    serde_json::from_str(line.split_once(' ').unwrap().1).unwrap()
}

fn flashmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(args)
        .output()
        .expect("run flashmm")
}

fn ok_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "flashmm failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The JSON object `backtest --json` prints first on stdout.
fn backtest_json(journal: &Path, data: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--journal",
        journal.to_str().unwrap(),
        "backtest",
        "--data",
        data.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = ok_stdout(&flashmm(&args));
    let mut de = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    de.next().expect("a JSON object").expect("valid JSON")
}

fn intact(j: &Journal) -> u64 {
    match j.verify().unwrap() {
        Verified::Intact { entries, .. } => entries,
        broken => panic!("journal fails verify: {broken:?}"),
    }
}

#[test]
fn the_fixture_imports_every_book_and_trade_and_rebuilds_the_last_book() {
    // What the file holds, counted here from the JSON itself.
    let lines = fixture_lines();
    let (mut books, mut trade_lines, mut trades, mut last_book) = (0, 0, 0, None);
    for l in &lines {
        let v = json_of(l);
        match v["channel"].as_str().unwrap() {
            "l2Book" => {
                books += 1;
                last_book = Some(v["data"].clone());
            }
            "trades" => {
                trade_lines += 1;
                trades += v["data"].as_array().unwrap().len() as u64;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((lines.len(), books, trade_lines), (55, 46, 9));
    let last_book = last_book.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let (id, stats) =
        hyperliquid::import(&mut w, &hl_fixture(), &ImportOptions::default()).unwrap();
    w.close().unwrap();
    assert_eq!(stats.lines, 55);
    assert_eq!(stats.snapshots, books);
    // The first trades message is the subscription's catch-up, all older than the first book.
    assert_eq!(
        stats.trades + stats.early_trades,
        trades,
        "{}",
        stats.summary()
    );
    assert_eq!(stats.early_trades, 30);
    assert_eq!(
        (stats.malformed, stats.unknown_streams, stats.clamped_ts),
        (0, 0, 0)
    );
    assert_eq!(stats.entries, books + stats.trades);
    assert_eq!(intact(&j), stats.entries + 2);

    // The journal's book after its last entry is the last l2Book, every level of it.
    let mut book = Book::new();
    let (mut snaps, mut buys, mut sells) = (0, 0, 0);
    for e in stream(&j, id) {
        book.apply_entry(&e);
        match &e.body {
            Body::Input(Input::BookSnapshot(s)) => {
                snaps += 1;
                assert_eq!(Some(s.update_id as i64 * 1_000_000), e.venue_ts_ns);
            }
            Body::Input(Input::Trade(t)) => match t.aggressor {
                Side::Buy => buys += 1,
                Side::Sell => sells += 1,
            },
            Body::Input(other) => panic!("unexpected input {}", other.kind()),
            _ => {}
        }
    }
    assert_eq!(snaps, books);
    let px = |side: usize, i: usize| {
        Decimal::from_str(last_book["levels"][side][i]["px"].as_str().unwrap()).unwrap()
    };
    assert_eq!(book.best_bid().unwrap().0, px(0, 0));
    assert_eq!(book.best_ask().unwrap().0, px(1, 0));
    assert_eq!((book.depth(Side::Buy), book.depth(Side::Sell)), (20, 20));
    // The kept trades' sides as the file says: "B" a buying taker, "A" a selling one.
    let kept: Vec<Value> = lines
        .iter()
        .map(|l| json_of(l))
        .filter(|v| v["channel"] == "trades")
        .flat_map(|v| v["data"].as_array().unwrap().clone())
        .filter(|t| t["time"].as_i64().unwrap() >= 1_737_918_843_542)
        .collect();
    let b = kept.iter().filter(|t| t["side"] == "B").count();
    assert_eq!((buys, sells), (b, kept.len() - b));

    let i = flashmm_journal::instrument::of_session(&j, id)
        .unwrap()
        .unwrap();
    assert_eq!(i.market.symbol.as_str(), "BTC");
    assert_eq!(i.market.venue, "hyperliquid");
    assert_eq!(i.market.tick_size, Decimal::ONE);
    assert_eq!(i.market.lot_size, Decimal::from_str("0.00001").unwrap());
    drop(j);

    let d = dir.path().to_str().unwrap();
    let ls: Value = serde_json::from_str(&ok_stdout(&flashmm(&[
        "--journal",
        d,
        "journal",
        "ls",
        "--json",
    ])))
    .unwrap();
    assert_eq!(ls[0]["symbol"], "BTC");
    assert_eq!(ls[0]["venue"], "hyperliquid");
    assert_eq!(ls[0]["source"]["file"]["format"], "hyperliquid");
    assert!(ok_stdout(&flashmm(&["--journal", d, "journal", "verify"])).contains("intact"));
}

#[test]
fn journal_import_takes_format_hyperliquid_and_refuses_the_same_file_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let f = hl_fixture();
    let f = f.to_str().unwrap();
    let out = ok_stdout(&flashmm(&[
        "--journal",
        d,
        "journal",
        "import",
        "--format",
        "hyperliquid",
        f,
    ]));
    assert!(out.contains("46 book snapshots"), "{out}");
    assert!(out.contains("BTC on hyperliquid"), "{out}");
    let again = flashmm(&[
        "--journal",
        d,
        "journal",
        "import",
        "--format",
        "hyperliquid",
        f,
    ]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already imported as session 1") && err.contains("--force"),
        "{err}"
    );
    // --allow-gaps has no meaning for whole books.
    let gaps = flashmm(&[
        "--journal",
        d,
        "journal",
        "import",
        "--format",
        "hyperliquid",
        "--allow-gaps",
        f,
    ]);
    assert!(!gaps.status.success());

    // And through the library: refused, then taken again with force.
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    match hyperliquid::import(&mut w, &hl_fixture(), &ImportOptions::default()) {
        Err(ImportError::AlreadyImported { session: 1, .. }) => {}
        other => panic!("{:?}", other.map(|(id, _)| id)),
    }
    let force = ImportOptions {
        force: true,
        ..ImportOptions::default()
    };
    let (id, _) = hyperliquid::import(&mut w, &hl_fixture(), &force).unwrap();
    assert_eq!(id, 2);
}

#[test]
fn the_format_is_told_from_the_content_whatever_the_name() {
    assert_eq!(
        detect_format(&hl_fixture()).unwrap(),
        DataFormat::Hyperliquid
    );
    assert_eq!(detect_format(&fixture()).unwrap(), DataFormat::Binance);
    let dir = tempfile::tempdir().unwrap();
    // Plain text named .gz, gzip named .txt, blank lines first: the content decides.
    let plain = dir.path().join("hl.gz");
    std::fs::write(&plain, format!("\n\n{}\n", fixture_lines().join("\n"))).unwrap();
    assert_eq!(detect_format(&plain).unwrap(), DataFormat::Hyperliquid);
    let zipped = dir.path().join("hl.txt");
    std::fs::copy(hl_fixture(), &zipped).unwrap();
    assert_eq!(detect_format(&zipped).unwrap(), DataFormat::Hyperliquid);
    let j = Journal::open(&dir.path().join("j")).unwrap();
    let mut w = j.writer().unwrap();
    let (_, stats) = hyperliquid::import(&mut w, &plain, &ImportOptions::default()).unwrap();
    assert_eq!(stats.snapshots, 46);
}

#[test]
fn a_backtest_on_the_fixture_quotes_at_the_recorded_spread() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal");
    let s = backtest_json(&j, &hl_fixture(), &[]);
    assert_eq!(s["symbol"], "BTC");
    assert_eq!(s["venue"], "hyperliquid");
    assert!(s["quotes"].as_u64().unwrap() > 0, "{s}");
    let spread = s["avg_market_spread_bps"].as_f64().unwrap();
    // One dollar on 105,055: about 0.1 bps.
    assert!(spread > 0.0 && spread < 10.0, "{s}");
    // The second run finds the import by the file's digest.
    let again = flashmm(&[
        "--journal",
        j.to_str().unwrap(),
        "backtest",
        "--data",
        hl_fixture().to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && !err.contains("imported now"),
        "{err}"
    );
    let ls = ok_stdout(&flashmm(&[
        "--journal",
        j.to_str().unwrap(),
        "journal",
        "ls",
        "--json",
    ]));
    let ls: Value = serde_json::from_str(&ls).unwrap();
    let imports = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["mode"] == "import")
        .count();
    assert_eq!(imports, 1);
}

/// The fixture `copies` times, each 26 s after the one before, every other copy 30 dollars
/// higher: a market that steps through a quote at each copy's start.
fn stepping_recording(copies: i64) -> String {
    let mut out = String::new();
    for k in 0..copies {
        let shift = Decimal::from(30 * (k % 2));
        for l in fixture_lines() {
            let (ts, _) = l.split_once(' ').unwrap();
            let ts: i64 = ts.parse().unwrap();
            let mut v = json_of(&l);
            let bump = |x: &mut Value| {
                let p = Decimal::from_str(x.as_str().unwrap()).unwrap() + shift;
                *x = Value::String(p.to_string());
            };
            let later = |x: &mut Value| *x = Value::from(x.as_i64().unwrap() + k * 26_000);
            if v["channel"] == "l2Book" {
                later(&mut v["data"]["time"]);
                for side in v["data"]["levels"].as_array_mut().unwrap() {
                    for lv in side.as_array_mut().unwrap() {
                        bump(&mut lv["px"]);
                    }
                }
            } else {
                for t in v["data"].as_array_mut().unwrap() {
                    later(&mut t["time"]);
                    bump(&mut t["px"]);
                    t["tid"] = Value::from(t["tid"].as_u64().unwrap() + k as u64);
                }
            }
            out.push_str(&format!("{} {v}\n", ts + k * 26_000_000_000));
        }
    }
    out
}

#[test]
fn a_longer_recording_fills_our_quotes() {
    // 25 s of a quiet book do not reach a quote two basis points out; a market that steps 30
    // dollars every 26 s crosses one side, then the other.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hl-long.gz");
    gz(&path, &stepping_recording(10));
    let s = backtest_json(&dir.path().join("journal"), &path, &[]);
    assert!(s["quotes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["maker_fills"].as_u64().unwrap() > 0, "{s}");
    assert!(s["stopped_early"].is_null(), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Hostile files.

const T0: i64 = 1_737_918_843_893_903_000;
const MS0: i64 = 1_737_918_843_542;

fn levels(raw: &[(&str, &str)]) -> String {
    let l: Vec<String> = raw
        .iter()
        .map(|(p, s)| format!(r#"{{"px":"{p}","sz":"{s}","n":1}}"#))
        .collect();
    format!("[{}]", l.join(","))
}

/// An `l2Book` line at `i` half-seconds after the start.
fn book(i: i64, coin: &str, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> String {
    format!(
        r#"{} {{"channel":"l2Book","data":{{"coin":"{coin}","time":{},"levels":[{},{}]}}}}"#,
        T0 + i * 500_000_000,
        MS0 + i * 500,
        levels(bids),
        levels(asks)
    )
}

fn good_book(i: i64) -> String {
    book(
        i,
        "BTC",
        &[("105055.0", "3.03622"), ("105054.0", "0.1428")],
        &[("105056.0", "1.5"), ("105057.0", "0.2")],
    )
}

fn trades(i: i64, coin: &str, side: &str, px: &str, sz: &str) -> String {
    format!(
        r#"{} {{"channel":"trades","data":[{{"coin":"{coin}","side":"{side}","px":"{px}","sz":"{sz}","time":{},"tid":{},"hash":"0x00","users":["0xa","0xb"]}}]}}"#,
        T0 + i * 500_000_000,
        MS0 + i * 500,
        1000 + i
    )
}

/// Line 3 of a small valid file replaced by `bad`.
fn with_line_3(bad: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in [good_book(0), trades(1, "BTC", "B", "105056.0", "0.01")] {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(bad);
    out.push(b'\n');
    for l in [
        good_book(3),
        trades(4, "BTC", "A", "105055.0", "0.02"),
        good_book(5),
    ] {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

fn import_bytes(
    bytes: &[u8],
    gzip: bool,
    opts: &ImportOptions,
) -> (Result<ImportStats, ImportError>, Journal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec");
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        std::fs::write(&path, e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(&path, bytes).unwrap();
    }
    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let r = hyperliquid::import(&mut w, &path, opts).map(|(_, s)| s);
    w.close().unwrap();
    (r, j, dir)
}

fn strict() -> ImportOptions {
    ImportOptions {
        strict: true,
        ..ImportOptions::default()
    }
}

/// A journal a refused import left: no session, no entry.
fn untouched(j: &Journal) {
    assert!(j.sessions().unwrap().is_empty());
    assert_eq!(intact(j), 0);
}

#[test]
fn malformed_lines_are_refused_by_line_with_strict_and_counted_without() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "negative price",
            book(2, "BTC", &[("-105055.0", "1")], &[("105056.0", "1")]).into_bytes(),
            "prices must be positive",
        ),
        (
            "zero trade price",
            trades(2, "BTC", "B", "0", "1").into_bytes(),
            "prices must be positive",
        ),
        (
            "NaN size",
            book(2, "BTC", &[("105055.0", "NaN")], &[("105056.0", "1")]).into_bytes(),
            "bad decimal",
        ),
        (
            "huge size",
            book(2, "BTC", &[("105055.0", "1e30")], &[("105056.0", "1")]).into_bytes(),
            "bad decimal",
        ),
        (
            "size past the bounds",
            book(2, "BTC", &[("105055.0", "1000000000001")], &[("105056.0", "1")]).into_bytes(),
            "sizes must be non-negative and at most",
        ),
        (
            "negative trade size",
            trades(2, "BTC", "A", "105055.0", "-0.5").into_bytes(),
            "sizes must be non-negative",
        ),
        (
            "a number, not a string",
            format!(
                r#"{} {{"channel":"l2Book","data":{{"coin":"BTC","time":{MS0},"levels":[[{{"px":105055.0,"sz":"1","n":1}}],[{{"px":"105056.0","sz":"1","n":1}}]]}}}}"#,
                T0 + 1_000_000_000
            )
            .into_bytes(),
            "bad l2Book",
        ),
        (
            "crossed book",
            book(2, "BTC", &[("105057.0", "1")], &[("105056.0", "1")]).into_bytes(),
            "crossed book",
        ),
        (
            "locked book",
            book(2, "BTC", &[("105056.0", "1")], &[("105056.0", "1")]).into_bytes(),
            "crossed book",
        ),
        (
            "empty bid side",
            book(2, "BTC", &[], &[("105056.0", "1")]).into_bytes(),
            "a book needs both sides",
        ),
        (
            "asks of only zero sizes",
            book(2, "BTC", &[("105055.0", "1")], &[("105056.0", "0")]).into_bytes(),
            "a book needs both sides",
        ),
        (
            "three sides",
            format!(
                r#"{} {{"channel":"l2Book","data":{{"coin":"BTC","time":{MS0},"levels":[[],[],[]]}}}}"#,
                T0 + 1_000_000_000
            )
            .into_bytes(),
            "bad l2Book",
        ),
        (
            "unknown trade side",
            trades(2, "BTC", "X", "105056.0", "1").into_bytes(),
            "neither \"B\" nor \"A\"",
        ),
        (
            "invalid JSON",
            format!(r#"{} {{"channel":"l2Book","data":{{"coin""#, T0 + 1_000_000_000).into_bytes(),
            "bad JSON",
        ),
        (
            "no channel",
            format!(r#"{} {{"data":{{}}}}"#, T0 + 1_000_000_000).into_bytes(),
            "no `channel`",
        ),
        (
            "invalid UTF-8",
            {
                let mut l = good_book(2).into_bytes();
                l.splice(30..30, [0xc3, 0x28, 0xff]);
                l
            },
            "not UTF-8",
        ),
        ("no timestamp", b"garbage".to_vec(), "expected `<local_receive_time_ns> <json>`"),
        (
            "venue time in 1970",
            format!(
                r#"{} {{"channel":"l2Book","data":{{"coin":"BTC","time":5,"levels":[{},{}]}}}}"#,
                T0 + 1_000_000_000,
                levels(&[("1", "1")]),
                levels(&[("2", "1")])
            )
            .into_bytes(),
            "not between 2000-01-01 and 2200-01-01",
        ),
        (
            "a coin with a space",
            book(2, "B TC", &[("1", "1")], &[("2", "1")]).into_bytes(),
            "coin",
        ),
    ];
    for (what, bad, why) in cases {
        let text = with_line_3(&bad);
        for gzip in [false, true] {
            let (r, j, _d) = import_bytes(&text, gzip, &strict());
            match r {
                Err(e @ ImportError::Malformed { line: 3, .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("line 3: ") && msg.contains(why),
                        "{what}: {msg}"
                    );
                }
                other => panic!("{what}: strict: {:?}", other.map(|s| s.summary())),
            }
            untouched(&j);
            let (r, j, _d) = import_bytes(&text, gzip, &ImportOptions::default());
            let stats = r.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(stats.malformed, 1, "{what}: {}", stats.summary());
            assert_eq!(stats.malformed_lines[0].0, 3, "{what}");
            assert!(
                stats.summary().contains("lines 3"),
                "{what}: {}",
                stats.summary()
            );
            assert_eq!(intact(&j), stats.entries + 2, "{what}");
        }
    }
}

#[test]
fn a_time_jump_or_another_coin_is_an_error_naming_the_line_even_without_strict() {
    let jump = {
        let mut l = good_book(2);
        let far = (T0 + 7 * 3600 * 1_000_000_000).to_string();
        l.replace_range(..far.len(), &far);
        l
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a jump of seven hours",
            jump,
            "line 3: the local time jumps forward by 25199 s",
        ),
        (
            "ETH in a recording of BTC",
            book(2, "ETH", &[("3000", "1")], &[("3001", "1")]),
            "line 3: coin ETH, but the file's earlier lines are of BTC",
        ),
        (
            "an ETH trade",
            trades(2, "ETH", "B", "3000", "1"),
            "line 3: coin ETH",
        ),
    ];
    for (what, bad, why) in cases {
        for opts in [strict(), ImportOptions::default()] {
            let (r, j, _d) = import_bytes(&with_line_3(bad.as_bytes()), true, &opts);
            let e = match r {
                Err(
                    e @ (ImportError::TimeJump { line: 3, .. }
                    | ImportError::CoinChanged { line: 3, .. }),
                ) => e,
                other => panic!("{what}: {:?}", other.map(|s| s.summary())),
            };
            assert!(e.to_string().contains(why), "{what}: {e}");
            untouched(&j);
        }
    }
    // --symbol names the coin the file must be of.
    let opts = ImportOptions {
        symbol: Some(flashmm_core::event::Symbol::new("ETH").unwrap()),
        ..ImportOptions::default()
    };
    let (r, j, _d) = import_bytes(&with_line_3(good_book(2).as_bytes()), false, &opts);
    match r {
        Err(e @ ImportError::CoinChanged { line: 1, .. }) => {
            assert!(e.to_string().contains("--symbol says ETH"), "{e}")
        }
        other => panic!("{:?}", other.map(|s| s.summary())),
    }
    untouched(&j);
    // A larger --max-time-jump-s takes the jump.
    let far = {
        let mut l = good_book(2);
        let t = (T0 + 7 * 3600 * 1_000_000_000).to_string();
        l.replace_range(..t.len(), &t);
        l
    };
    let opts = ImportOptions {
        max_time_jump_s: 8 * 3600,
        ..ImportOptions::default()
    };
    let (r, _j, _d) = import_bytes(&with_line_3(far.as_bytes()), false, &opts);
    let stats = r.unwrap();
    // The lines after it went back in time by seven hours and are clamped.
    assert_eq!(stats.clamped_ts, 3, "{}", stats.summary());
}

#[test]
fn times_that_step_back_are_clamped_and_counted() {
    let back = {
        let mut l = good_book(2);
        let t = (T0 - 1_000).to_string();
        l.replace_range(..t.len(), &t);
        l
    };
    let (r, j, _d) = import_bytes(&with_line_3(back.as_bytes()), false, &strict());
    let stats = r.unwrap();
    assert_eq!(stats.clamped_ts, 1);
    assert!(
        stats.summary().contains("1 timestamps went backwards"),
        "{}",
        stats.summary()
    );
    let ts: Vec<i64> = j.read(0).unwrap().map(|e| e.unwrap().ts_ns).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
}

#[test]
fn other_channels_are_skipped_and_counted() {
    let mut text = Vec::new();
    for l in [
        format!(
            r#"{T0} {{"channel":"subscriptionResponse","data":{{"method":"subscribe","subscription":{{"type":"l2Book","coin":"BTC"}}}}}}"#
        ),
        format!(r#"{T0} {{"channel":"pong"}}"#),
        good_book(1),
        String::new(),
        trades(2, "BTC", "B", "105056.0", "0.01"),
    ] {
        text.extend_from_slice(l.as_bytes());
        text.push(b'\n');
    }
    let (r, _j, _d) = import_bytes(&text, false, &strict());
    let stats = r.unwrap();
    assert_eq!(
        (stats.unknown_streams, stats.snapshots, stats.trades),
        (2, 1, 1)
    );
    assert_eq!(stats.lines, 4, "the blank line is not counted");
}

#[test]
fn a_truncated_or_empty_file_is_refused_and_writes_nothing() {
    let text = with_line_3(good_book(2).as_bytes());
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &text).unwrap();
    let z = e.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("cut.gz", z[..z.len() / 2].to_vec()),
        ("header-only.gz", z[..12].to_vec()),
        ("empty", Vec::new()),
        (
            "pongs",
            format!("{T0} {{\"channel\":\"pong\"}}\n").into_bytes(),
        ),
        // Trades, but never a book: nothing to trade against.
        ("trades only", trades(0, "BTC", "B", "1", "1").into_bytes()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let j = Journal::open(&dir.path().join(format!("j-{name}"))).unwrap();
        let mut w = j.writer().unwrap();
        match hyperliquid::import(&mut w, &path, &ImportOptions::default()) {
            Err(e @ ImportError::Read { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("after line"), "{name}: {msg}");
            }
            other => panic!("{name}: {:?}", other.map(|(_, s)| s.summary())),
        }
        w.close().unwrap();
        untouched(&j);
    }
}
