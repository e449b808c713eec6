//! The Binance importer against Binance's local-book rule, on the real fixture and on
//! hand-made files with a gap, a missing snapshot and damaged bytes.

use crate::common::*;
use flashmm_core::book::Book;
use flashmm_core::event::{Body, Input};
use flashmm_journal::binance::{self, ImportError, ImportOptions};
use flashmm_journal::Journal;
use rust_decimal_macros::dec;

fn import_text(text: &str, opts: &ImportOptions) -> Result<(Journal, u64), ImportError> {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("rec.gz");
    gz(&path, text);
    let j = Journal::open(&dir.join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let (id, _) = binance::import(&mut w, &path, opts)?;
    w.close().unwrap();
    Ok((j, id))
}

#[test]
fn fixture_rebuilds_to_the_last_book_ticker_without_using_it() {
    let (_d, j, _w) = imported();
    let mut book = Book::new();
    let mut crossed = 0;
    let mut diffs = 0;
    for e in j.read(0).unwrap() {
        let e = e.unwrap();
        match &e.body {
            Body::Input(Input::BookSnapshot(s)) => book.apply_snapshot(s),
            Body::Input(Input::BookDelta(d)) => {
                diffs += 1;
                assert_eq!(
                    book.apply_delta(d),
                    flashmm_core::book::Applied::Applied,
                    "seq {}",
                    e.seq
                );
                if book.best_bid().unwrap().0 >= book.best_ask().unwrap().0 {
                    crossed += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(diffs, 3449);
    assert_eq!(crossed, 0);
    assert_eq!(book.best_bid().unwrap().0, dec!(61685.99));
    assert_eq!(book.best_ask().unwrap().0, dec!(61686.00));
}

#[test]
fn dropping_the_buffered_diffs_would_have_built_a_wrong_book() {
    // The control for the test above: skip the diff that straddles the snapshot, as an importer
    // that drops pre-snapshot diffs would, and apply the rest blindly.
    use std::collections::BTreeMap;
    let (_d, j, _w) = imported();
    let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
    let mut skipped = false;
    let set = |m: &mut BTreeMap<_, _>, l: &flashmm_core::event::Level| {
        if l.qty.is_zero() {
            m.remove(&l.price);
        } else {
            m.insert(l.price, l.qty);
        }
    };
    let mut crossed_at_end = false;
    for e in j.read(0).unwrap() {
        match &e.unwrap().body {
            Body::Input(Input::BookSnapshot(s)) => {
                s.bids.iter().for_each(|l| set(&mut bids, l));
                s.asks.iter().for_each(|l| set(&mut asks, l));
            }
            Body::Input(Input::BookDelta(d)) => {
                if !skipped {
                    assert_eq!(
                        (d.first_update_id, d.last_update_id),
                        (50093239208, 50093239224)
                    );
                    skipped = true;
                    continue;
                }
                d.bids.iter().for_each(|l| set(&mut bids, l));
                d.asks.iter().for_each(|l| set(&mut asks, l));
                crossed_at_end =
                    bids.last_key_value().unwrap().0 >= asks.first_key_value().unwrap().0;
            }
            _ => {}
        }
    }
    assert!(
        crossed_at_end,
        "without the buffered diff the book ends crossed"
    );
}

#[test]
fn stats_of_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let (id, s) = binance::import(&mut w, &fixture(), &ImportOptions::default()).unwrap();
    assert_eq!(id, 1);
    assert_eq!(
        (s.lines, s.snapshots, s.depth_diffs, s.trades, s.bbo),
        (41249, 1, 3451, 9757, 28040)
    );
    assert_eq!(
        (s.buffered_diffs, s.stale_diffs, s.applied_diffs),
        (3, 2, 3449)
    );
    assert_eq!(s.malformed, 0);
    // A second import of the same bytes is refused, naming the session.
    let err = binance::import(&mut w, &fixture(), &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(err, ImportError::AlreadyImported { session: 1, .. }),
        "{err}"
    );
}

fn lines(v: &[String]) -> String {
    v.join("\n") + "\n"
}

#[test]
fn a_gap_fails_with_its_line_number() {
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 101, 105, r#"["10.0","2"]"#, ""),
        depth(3, 106, 110, "", ""),
        depth(4, 115, 120, "", ""),
    ]);
    let err = import_text(&text, &ImportOptions::default()).unwrap_err();
    match &err {
        ImportError::Gap { line, detail } => {
            assert_eq!(*line, 4);
            assert!(
                detail.contains("U=115") && detail.contains("u=110"),
                "{detail}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("--allow-gaps"));
}

#[test]
fn a_gap_with_allow_gaps_is_marked_and_resynced() {
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 101, 105, "", ""),
        depth(3, 115, 120, "", ""),
        depth(4, 121, 125, "", ""),
        snapshot(5, 130, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(6, 128, 131, "", ""),
    ]);
    let opts = ImportOptions {
        allow_gaps: true,
        ..Default::default()
    };
    let (j, id) = import_text(&text, &opts).unwrap();
    let kinds: Vec<&str> = j
        .read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == id)
        .map(|e| e.body.kind())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "book_snapshot",
            "book_delta",
            "feed_status",
            "book_snapshot",
            "feed_status",
            "book_delta",
            "session_end"
        ]
    );
}

/// The kinds of a session's entries, in order.
fn kinds(j: &Journal, id: u64) -> Vec<&'static str> {
    j.read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == id)
        .map(|e| e.body.kind())
        .collect()
}

/// The applied diffs' (U, u), in order.
fn applied(j: &Journal, id: u64) -> Vec<(u64, u64)> {
    j.read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == id)
        .filter_map(|e| match e.body {
            Body::Input(Input::BookDelta(d)) => Some((d.first_update_id, d.last_update_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_futures_first_diff_continues_the_snapshot_by_pu_though_its_ids_jump() {
    // USD-M ids are not contiguous: the first diff after lastUpdateId 100 may start at 105, and
    // its pu names the snapshot; the spot rule (U <= 101) would call that a gap.
    let text = lines(&[
        futures_depth(1, 90, 98, 85, "", ""),
        snapshot(2, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        futures_depth(3, 105, 110, 100, r#"["10.0","2"]"#, ""),
        futures_depth(4, 117, 120, 110, "", ""),
        futures_depth(5, 131, 140, 120, "", ""),
    ]);
    let (j, id) = import_text(&text, &ImportOptions::default()).unwrap();
    assert_eq!(applied(&j, id), [(105, 110), (117, 120), (131, 140)]);
    // A diff that straddles the snapshot without naming it is the first one too.
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        futures_depth(2, 99, 104, 97, "", ""),
        futures_depth(3, 108, 110, 104, "", ""),
    ]);
    let (j, id) = import_text(&text, &ImportOptions::default()).unwrap();
    assert_eq!(applied(&j, id), [(99, 104), (108, 110)]);
}

#[test]
fn a_futures_diff_that_does_not_name_the_previous_u_is_a_gap() {
    for (pu_first, pu_second, line) in [(99, 110, 2), (100, 111, 3)] {
        let text = lines(&[
            snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
            futures_depth(2, 105, 110, pu_first, "", ""),
            futures_depth(3, 117, 120, pu_second, "", ""),
        ]);
        match import_text(&text, &ImportOptions::default()).unwrap_err() {
            ImportError::Gap { line: l, detail } => assert_eq!(l, line, "{detail}"),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn after_a_gap_the_diff_that_straddles_the_resync_snapshot_is_held_and_applied() {
    // The reconnect pattern: after the gap the collector subscribes again, diffs flow, and the
    // snapshot it fetched arrives after the diff that straddles it, exactly as at the start.
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 101, 105, "", ""),
        depth(3, 115, 120, "", ""),
        depth(4, 121, 125, "", ""),
        depth(5, 126, 135, r#"["10.0","3"]"#, ""),
        snapshot(6, 130, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(7, 136, 140, "", ""),
        depth(8, 141, 150, "", ""),
    ]);
    let opts = ImportOptions {
        allow_gaps: true,
        ..Default::default()
    };
    let (j, id) = import_text(&text, &opts).unwrap();
    assert_eq!(
        applied(&j, id),
        [(101, 105), (126, 135), (136, 140), (141, 150)]
    );
    assert_eq!(
        kinds(&j, id),
        [
            "session_start",
            "book_snapshot",
            "book_delta",
            "feed_status",
            "book_snapshot",
            "feed_status",
            "book_delta",
            "book_delta",
            "book_delta",
            "session_end"
        ]
    );
    // The book after the resync holds the straddling diff's level.
    let mut book = Book::new();
    for e in j.read(0).unwrap().map(|e| e.unwrap()) {
        if let Body::Input(i) = &e.body {
            book.apply_market(i);
        }
    }
    assert_eq!(book.best_bid().map(|(_, q)| q), Some(dec!(3)));
    // With no snapshot after the gap, what was held is counted as dropped.
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 115, 120, "", ""),
        depth(3, 121, 125, "", ""),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.gz");
    gz(&path, &text);
    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let (_, stats) = binance::import(&mut w, &path, &opts).unwrap();
    assert_eq!((stats.gaps.len(), stats.dropped_unsynced), (1, 2));
}

#[test]
fn a_first_diff_that_does_not_reach_the_snapshot_is_a_gap() {
    let text = lines(&[
        depth(1, 90, 99, "", ""),
        snapshot(2, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(3, 103, 110, "", ""),
    ]);
    match import_text(&text, &ImportOptions::default()).unwrap_err() {
        ImportError::Gap { line, .. } => assert_eq!(line, 3),
        other => panic!("{other}"),
    }
}

#[test]
fn a_missing_snapshot_fails_and_names_the_lines() {
    let text = lines(&[
        depth(1, 1, 5, "", ""),
        trade(2, 7, "10.5", "1", true),
        depth(3, 6, 9, "", ""),
    ]);
    match import_text(&text, &ImportOptions::default()).unwrap_err() {
        ImportError::MissingSnapshot {
            diffs,
            first_line,
            last_line,
        } => {
            assert_eq!((diffs, first_line, last_line), (2, 1, 3))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn malformed_lines_are_counted_with_line_numbers_and_strict_stops() {
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        "2 {not json".to_string(),
        depth(3, 101, 105, "", ""),
        "garbage".to_string(),
        trade(5, 7, "10.x", "1", true),
        trade(6, 8, "10.5", "1", false),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.gz");
    gz(&path, &text);
    let (stats, _) = binance::scan(
        &path,
        &ImportOptions::default(),
        None,
        None,
        &mut |_| Ok(()),
    )
    .unwrap();
    let bad: Vec<u64> = stats.malformed_lines.iter().map(|(l, _)| *l).collect();
    assert_eq!(bad, [2, 4, 5]);
    assert!(
        stats
            .summary()
            .contains("3 malformed lines skipped (lines 2, 4, 5)"),
        "{}",
        stats.summary()
    );
    let strict = ImportOptions {
        strict: true,
        ..Default::default()
    };
    match binance::scan(&path, &strict, None, None, &mut |_| Ok(())).unwrap_err() {
        ImportError::Malformed { line, .. } => assert_eq!(line, 2),
        other => panic!("{other}"),
    }
}

#[test]
fn a_corrupt_gzip_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gz");
    let mut bytes = std::fs::read(fixture()).unwrap();
    for b in &mut bytes[5000..5200] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = binance::scan(
        &path,
        &ImportOptions::default(),
        None,
        None,
        &mut |_| Ok(()),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("reading failed after line"),
        "{err}"
    );
}

#[test]
fn a_truncated_file_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gz");
    let bytes = std::fs::read(fixture()).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let j = Journal::open(&dir.path().join("j")).unwrap();
    let mut w = j.writer().unwrap();
    let err = binance::import(&mut w, &path, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
    w.close().unwrap();
    assert!(j.sessions().unwrap().is_empty());
    assert!(j.last().unwrap().is_none());
}

fn bbo(ts: u64, bid: &str, bid_qty: &str, ask: &str, ask_qty: &str) -> String {
    let ts = LINE_T0 + ts;
    format!(
        r#"{ts} {{"stream":"btcusdt@bookTicker","data":{{"u":1,"s":"BTCUSDT","b":"{bid}","B":"{bid_qty}","a":"{ask}","A":"{ask_qty}"}}}}"#
    )
}

fn strict() -> ImportOptions {
    ImportOptions {
        strict: true,
        ..Default::default()
    }
}

/// Each hostile line is refused by --strict naming its line, and skipped (counted) without it.
#[test]
fn hostile_values_are_refused_naming_the_line() {
    let book = snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "negative bookTicker",
            bbo(2, "-61000", "-5", "11.0", "1"),
            "best bid -61000",
        ),
        (
            "huge bookTicker size",
            bbo(2, "10.0", "1", "11.0", "-7.9e28"),
            "best ask size",
        ),
        (
            "crossed bookTicker",
            bbo(2, "11.0", "1", "10.0", "1"),
            "not below",
        ),
        (
            "huge depth size",
            depth(
                2,
                101,
                101,
                r#"["10.0","79228162514264337593543950335"]"#,
                "",
            ),
            "level size",
        ),
        (
            "zero price level",
            depth(2, 101, 101, r#"["0","1"]"#, ""),
            "level price 0",
        ),
        (
            "13 decimal places",
            depth(2, 101, 101, r#"["10.0000000000001","1"]"#, ""),
            "decimal places",
        ),
        (
            "huge trade price",
            trade(2, 7, "1e30", "1", true),
            "bad decimal",
        ),
        (
            "big trade price",
            trade(2, 7, "1000000000.5", "1", true),
            "trade price",
        ),
        (
            "negative trade size",
            trade(2, 7, "10.5", "-1", true),
            "trade size",
        ),
        (
            "snapshot lastUpdateId u64::MAX",
            snapshot(2, u64::MAX, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
            "lastUpdateId 18446744073709551615",
        ),
        (
            "snapshot without bids",
            snapshot(2, 200, "", r#"["11.0","1"]"#),
            "0 bids",
        ),
        (
            "snapshot without asks",
            snapshot(2, 200, r#"["10.0","1"]"#, ""),
            "0 asks",
        ),
        (
            "time i64::MAX",
            format!("9223372036854775807 {}", book.split_once(' ').unwrap().1),
            "not between 2000-01-01 and 2200-01-01",
        ),
        (
            "a negative time",
            format!("-5 {}", book.split_once(' ').unwrap().1),
            "not between",
        ),
        (
            "depth u beyond 2^63",
            depth(2, 101, u64::MAX, "", ""),
            "depth update u 18446744073709551615",
        ),
    ];
    for (name, bad, says) in cases {
        let text = lines(&[book.clone(), bad, depth(3, 101, 102, r#"["10.0","2"]"#, "")]);
        match import_text(&text, &strict()) {
            Err(ImportError::Malformed { line, detail }) => {
                assert_eq!(line, 2, "{name}");
                assert!(detail.contains(says), "{name}: {detail}");
            }
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name}: --strict accepted it"),
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.gz");
        gz(&path, &text);
        let (stats, _) =
            binance::scan(
                &path,
                &ImportOptions::default(),
                None,
                None,
                &mut |_| Ok(()),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stats.malformed, 1, "{name}");
        assert_eq!(stats.malformed_lines[0].0, 2, "{name}");
    }
}

#[test]
fn a_time_jump_beyond_the_limit_names_the_line_and_the_flag() {
    let hour = 3_600_000_000_000u64;
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 101, 101, "", ""),
        depth(7 * hour, 102, 102, "", ""),
    ]);
    let err = import_text(&text, &ImportOptions::default()).unwrap_err();
    match &err {
        ImportError::TimeJump {
            line, dir, max_s, ..
        } => {
            assert_eq!((*line, *dir, *max_s), (3, "forward", 6 * 3600));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("--max-time-jump-s"), "{err}");
    // Backwards beyond the limit too, while a small step back is still clamped.
    let text = lines(&[
        snapshot(7 * hour, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(7 * hour - 5, 101, 101, "", ""),
        depth(1, 102, 102, "", ""),
    ]);
    match import_text(&text, &ImportOptions::default()).unwrap_err() {
        ImportError::TimeJump { line, dir, .. } => assert_eq!((line, dir), (3, "back")),
        other => panic!("{other}"),
    }
    // The limit is the user's to raise.
    let opts = ImportOptions {
        max_time_jump_s: 8 * 3600,
        ..Default::default()
    };
    let text = lines(&[
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(7 * hour, 101, 101, "", ""),
    ]);
    import_text(&text, &opts).unwrap();
}

#[test]
fn a_snapshot_no_diff_can_follow_is_refused() {
    let mut v = vec![snapshot(1, 1_000_000, r#"["10.0","1"]"#, r#"["11.0","1"]"#)];
    for k in 0..150u64 {
        v.push(depth(2 + k, 100 + k, 100 + k, "", ""));
    }
    match import_text(&lines(&v), &ImportOptions::default()).unwrap_err() {
        ImportError::UnfollowedSnapshot {
            line, update_id, ..
        } => assert_eq!((line, update_id), (1, 1_000_000)),
        other => panic!("{other}"),
    }
    // A few stale diffs after a snapshot are Binance's rule at work, not an error.
    let mut v = vec![snapshot(1, 105, r#"["10.0","1"]"#, r#"["11.0","1"]"#)];
    for k in 0..10u64 {
        v.push(depth(2 + k, 100 + k, 100 + k, "", ""));
    }
    import_text(&lines(&v), &ImportOptions::default()).unwrap();
}

/// Issue 12, defect 4: a collector's next-day file has no snapshot; its first diff continues the
/// previous file's last `u`.
fn day_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = dir.join("day1.gz");
    let b = dir.join("day2.gz");
    gz(
        &a,
        &lines(&[
            snapshot(1, 100, r#"["10.0","1"],["9.0","2"]"#, r#"["11.0","1"]"#),
            depth(2, 101, 105, r#"["10.0","4"]"#, r#"["12.0","3"]"#),
            trade(3, 1, "10.5", "0.1", false),
            depth(4, 106, 110, r#"["9.0","0"]"#, ""),
        ]),
    );
    gz(
        &b,
        &lines(&[
            trade(10, 2, "10.5", "0.1", true),
            depth(11, 111, 115, r#"["10.5","1"]"#, ""),
            depth(12, 116, 120, "", r#"["11.0","0"]"#),
        ]),
    );
    (a, b)
}

type Sides = (
    Vec<(rust_decimal::Decimal, rust_decimal::Decimal)>,
    Vec<(rust_decimal::Decimal, rust_decimal::Decimal)>,
);

fn book_at_end(j: &Journal, id: u64) -> Sides {
    let mut book = Book::new();
    for e in j
        .read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == id)
    {
        if let Body::Input(i @ (Input::BookSnapshot(_) | Input::BookDelta(_))) = &e.body {
            book.apply_market(i);
        }
    }
    let side = |s| book.levels(s).map(|l| (l.price, l.qty)).collect::<Vec<_>>();
    (
        side(flashmm_core::event::Side::Buy),
        side(flashmm_core::event::Side::Sell),
    )
}

#[test]
fn the_next_days_file_continues_the_book_of_the_day_before() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = day_files(dir.path());
    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let (day1, s1) = binance::import(&mut w, &a, &ImportOptions::default()).unwrap();
    let (day2, s2) = binance::import(&mut w, &b, &ImportOptions::default()).unwrap();
    w.close().unwrap();
    assert_eq!((s1.continued_from, s2.continued_from), (None, Some(day1)));
    assert!(j
        .session(day2)
        .unwrap()
        .label
        .contains(&format!("session {day1} at u=110")));
    // Day 2 starts with day 1's book as a snapshot at its last u, then its own diffs apply.
    let first_book = j
        .read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == day2)
        .find_map(|e| match e.body {
            Body::Input(Input::BookSnapshot(s)) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_book.update_id, 110);
    assert_eq!(book_at_end(&j, day1), {
        let (b, a) = (first_book.bids.clone(), first_book.asks.clone());
        (
            b.into_iter().map(|l| (l.price, l.qty)).collect(),
            a.into_iter().map(|l| (l.price, l.qty)).collect(),
        )
    });
    assert_eq!(applied(&j, day2), [(111, 115), (116, 120)]);
    // The same book as one continuous file would give.
    let whole = dir.path().join("both.gz");
    let text = |p: &std::path::Path| {
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap()),
            &mut s,
        )
        .unwrap();
        s
    };
    gz(&whole, &(text(&a) + &text(&b)));
    let (jw, idw) = import_text(&(text(&a) + &text(&b)), &ImportOptions::default()).unwrap();
    assert_eq!(book_at_end(&j, day2), book_at_end(&jw, idw));
    assert_eq!(
        book_at_end(&j, day2).0,
        [(dec!(10.5), dec!(1)), (dec!(10.0), dec!(4))]
    );
}

#[test]
fn a_file_without_a_snapshot_that_does_not_continue_is_refused_naming_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = day_files(dir.path());
    let late = dir.path().join("late.gz");
    gz(
        &late,
        &lines(&[depth(11, 121, 125, "", ""), depth(12, 126, 130, "", "")]),
    );
    let early = dir.path().join("early.gz");
    // Continues by ids, but is stamped before day 1 ended.
    gz(&early, &lines(&[depth(3, 111, 115, "", "")]));
    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let (day1, _) = binance::import(&mut w, &a, &ImportOptions::default()).unwrap();
    for f in [&late, &early] {
        match binance::import(&mut w, f, &ImportOptions::default()).unwrap_err() {
            e @ ImportError::NotContinuing { .. } => {
                let m = e.to_string();
                assert!(
                    m.contains(&format!("session {day1}"))
                        && m.contains("u=110")
                        && m.contains("line 1"),
                    "{m}"
                );
            }
            other => panic!("{}: {other}", f.display()),
        }
    }
    w.close().unwrap();
    assert_eq!(j.sessions().unwrap().len(), 1, "nothing written");
}

#[test]
fn a_futures_next_day_continues_by_pu_and_one_command_imports_both_days() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("f1.gz");
    let b = dir.path().join("f2.gz");
    gz(
        &a,
        &lines(&[
            snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
            futures_depth(2, 104, 110, 100, r#"["10.0","2"]"#, ""),
        ]),
    );
    gz(
        &b,
        &lines(&[futures_depth(5, 118, 125, 110, "", r#"["11.0","5"]"#)]),
    );
    let journal = dir.path().join("journal");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            journal.to_str().unwrap(),
            "journal",
            "import",
            "--format",
            "binance",
        ])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("continues the book of session 1"), "{text}");
    let j = Journal::open(&journal).unwrap();
    assert_eq!(applied(&j, 2), [(118, 125)]);
    assert_eq!(
        book_at_end(&j, 2),
        (vec![(dec!(10.0), dec!(2))], vec![(dec!(11.0), dec!(5))])
    );
}

/// A digest of every entry an import wrote, in the journal's own chain: each entry's stored
/// bytes (bincode) chained with blake3, the session start's source path replaced by a constant
/// so that the digest does not depend on where the checkout is.
fn import_digest(j: &Journal) -> (u64, String) {
    let mut h = [0u8; flashmm_journal::codec::HASH_LEN];
    let mut n = 0;
    for e in j.read(0).unwrap() {
        let mut e = e.unwrap();
        if let Body::SessionStart(s) = &mut e.body {
            if let Some(flashmm_core::event::Source::File { path, .. }) = &mut s.source {
                *path = "PATH".into();
            }
        }
        let mut bytes = Vec::new();
        flashmm_journal::codec::encode_entry(&e, &mut bytes).unwrap();
        h = flashmm_journal::codec::chain(&h, &bytes);
        n += 1;
    }
    (n, binance::hex(&h))
}

/// Issue 11, defect 9: a faster importer must write what the two-pass importer wrote, entry for
/// entry. The digests were made by the importer before the one-pass change (3122da9).
#[test]
fn an_import_writes_the_entries_the_two_pass_importer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let x2 = dir.path().join("x2.gz");
    flashmm_testkit::scale::repeated_recording(2, &x2).unwrap();
    let coinm = fixtures_dir().join("binance-coinm-btcusd_perp-20240808.gz");
    let (day1, day2) = day_files(dir.path());
    let gaps = dir.path().join("gaps.gz");
    gz(
        &gaps,
        &lines(&[
            snapshot(1, 100, r#"["10.0","1"],["9.0","2"]"#, r#"["11.0","1"]"#),
            depth(2, 101, 105, r#"["10.0","4"]"#, r#"["12.0","3"]"#),
            depth(3, 110, 112, r#"["9.0","0"]"#, ""),
            trade(4, 1, "10.5", "0.1", false),
            depth(5, 113, 120, r#"["9.5","1"]"#, ""),
            snapshot(6, 118, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
            depth(7, 119, 121, r#"["9.0","3"]"#, ""),
        ]),
    );
    let gap_opts = ImportOptions {
        allow_gaps: true,
        ..ImportOptions::default()
    };
    let cases: Vec<(&str, Vec<std::path::PathBuf>, ImportOptions)> = vec![
        ("shipped", vec![fixture()], ImportOptions::default()),
        ("x2", vec![x2], ImportOptions::default()),
        ("coinm", vec![coinm], ImportOptions::default()),
        ("two days", vec![day1, day2], ImportOptions::default()),
        ("gaps", vec![gaps], gap_opts),
    ];
    let mut got = Vec::new();
    for (name, files, opts) in &cases {
        let jdir = tempfile::tempdir().unwrap();
        let j = Journal::open(jdir.path()).unwrap();
        let mut w = j.writer().unwrap();
        for f in files {
            binance::import(&mut w, f, opts).unwrap();
        }
        w.close().unwrap();
        let (n, d) = import_digest(&j);
        got.push(format!("{name}: {n} {d}"));
    }
    let want = [
        "shipped: 41249 14ac892fc3927063a8f69e4953d2abfeae934242cd8c9a4fbe3cd947b8e1b547",
        "x2: 82496 d5e20b98a36df3a61a76e08e5031823b51b54173561af50fa4075595415b0085",
        "coinm: 48249 7d8eb219a815f0b5f35891c336b616d4473759f43b35b1b2ccd70c461b45683a",
        "two days: 12 e1a9291653c498486d49b7a9cb302840bf1477b13410db4b80cf99403bb84f7f",
        "gaps: 10 5577f3c33207993cb868800a0ef5b4ffc5fc8dd06deab008dafdc109170d2d26",
    ];
    assert_eq!(got, want);
}

/// Every file under `dir` with its bytes, for "exactly as it was".
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// The one-pass import writes as it validates: a file that fails at its last line, after
/// blocks of it were written, leaves the journal as it was (the segment files byte for byte),
/// `verify` intact, and the correct file imports afterwards.
#[test]
fn an_import_that_fails_at_its_end_leaves_the_journal_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let x2 = dir.path().join("x2.gz");
    flashmm_testkit::scale::repeated_recording(2, &x2).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&x2).unwrap()),
        &mut text,
    )
    .unwrap();
    let last_ts: u64 = text
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let bad = dir.path().join("bad.gz");
    let gap = depth(0, 900_000_000_000, 900_000_000_001, r#"["1.0","1"]"#, "");
    let gap = gap.replacen(&LINE_T0.to_string(), &(last_ts + 1).to_string(), 1);
    gz(&bad, &format!("{text}{gap}\n"));
    let jdir = dir.path().join("journal");
    let j = Journal::open(&jdir).unwrap();
    let mut w = j.writer().unwrap();
    let (first, _) = binance::import(&mut w, &fixture(), &ImportOptions::default()).unwrap();
    w.flush(true).unwrap();
    let before_files = files_under(&jdir.join("blocks"));
    let before = (j.sessions().unwrap(), j.last().unwrap());
    let err = binance::import(&mut w, &bad, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Gap { .. }), "{err}");
    w.flush(true).unwrap();
    assert_eq!((j.sessions().unwrap(), j.last().unwrap()), before);
    assert!(
        files_under(&jdir.join("blocks")) == before_files,
        "the segments changed"
    );
    assert!(matches!(
        j.verify().unwrap(),
        flashmm_journal::Verified::Intact { .. }
    ));
    let (second, stats) = binance::import(&mut w, &x2, &ImportOptions::default()).unwrap();
    w.close().unwrap();
    assert_eq!(second, first + 1);
    assert!(matches!(
        j.verify().unwrap(),
        flashmm_journal::Verified::Intact { entries, .. } if entries == 41_249 + stats.entries + 2
    ));
}

/// Issue 12: every importer shows progress on long files. Binance reads its file once (its
/// probe of the first lines is not counted), Hyperliquid twice; both end at the whole.
#[test]
fn binance_and_hyperliquid_imports_count_their_progress_to_the_end() {
    use flashmm_journal::progress::ImportProgress;
    use std::sync::Arc;
    for (path, passes, hl) in [
        (fixture(), 1, false),
        (fixtures_dir().join("hyperliquid-btc-20250126.gz"), 2, true),
    ] {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(d.path()).unwrap();
        let mut w = j.writer().unwrap();
        let p = Arc::new(ImportProgress::default());
        let opts = ImportOptions {
            progress: Some(p.clone()),
            ..ImportOptions::default()
        };
        if hl {
            flashmm_journal::hyperliquid::import(&mut w, &path, &opts).unwrap();
        } else {
            binance::import(&mut w, &path, &opts).unwrap();
        }
        w.close().unwrap();
        let (done, total) = p.read();
        assert_eq!(
            total,
            passes * std::fs::metadata(&path).unwrap().len(),
            "{path:?}"
        );
        assert_eq!(done, total, "{path:?}");
    }
}
