//! The Tardis CSV importer under the same mutations as the others, over a hand-written day
//! (`tardis::generated`: a snapshot of 20 levels, 30 messages, 15 trades), plus what only CSV
//! has: a header damaged, a BOM and CRLF line ends (harmless), `is_snapshot` flipped, a row of
//! another market. The book file is damaged, or the trades file given with it. The same rules:
//! a clean error naming the file and the line, or a success whose journal verifies and whose
//! backtest finishes.

use super::*;
use flashmm_journal::tardis::{self, TardisError};
use std::path::PathBuf;

const TARDIS_CASES: u64 = 60;
/// Half-second messages in the base day: short, so that a case (two import passes, a
/// backtest and two verifies) takes milliseconds.
const MESSAGES: u64 = 30;

fn split(text: &str) -> Vec<Vec<u8>> {
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

/// The book file's lines and the trades file's, each with its header.
type Files = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn tardis_base() -> &'static Files {
    static BASE: OnceLock<Files> = OnceLock::new();
    BASE.get_or_init(|| {
        let (book, trades) = crate::tardis::generated(MESSAGES);
        (split(&book), split(&trades))
    })
}

const TARDIS_FAMILIES: &[&str] = &[
    "truncate-bytes",
    "truncate-lines",
    "flip",
    "drop",
    "duplicate",
    "swap",
    "garbage",
    "number",
    "utf8",
    "long-line",
    "header",
    "bom-crlf",
    "snapshot-flag",
    "market",
    "several",
];

fn tardis_long_line(rng: &mut Rng, line: &[u8]) -> LongLine {
    let text = String::from_utf8_lossy(line).into_owned();
    let f: Vec<&str> = text.split(',').collect();
    let mb = rng.range(1, 4);
    let long = |line: String, what: String, replace: bool| LongLine {
        line: line.into_bytes(),
        what,
        replace,
    };
    match rng.below(3) {
        0 if f.len() == 8 => long(
            format!("{},{}", f[..6].join(","), "9".repeat(mb << 20)) + ",1",
            format!("a row priced with {mb} MB of nines"),
            true,
        ),
        1 => long(",".repeat(mb << 20), format!("{mb} MB of commas"), false),
        _ => long(
            format!("{text},{}", "a".repeat(mb << 20)),
            format!("the row with a {mb} MB column more"),
            true,
        ),
    }
}

/// What one case did to the files.
struct TardisCase {
    family: &'static str,
    what: Vec<String>,
    /// Which file was damaged: the book (else the trades, which is then always given).
    book_damaged: bool,
    with_trades: bool,
    book: Vec<u8>,
    trades: Vec<u8>,
    /// With exactly one data row made garbage or not UTF-8: that line of the damaged file,
    /// which `--strict` must name and a lenient import must list.
    bad_line: Option<u64>,
}

/// One of the CSV-only mutations, on a file's lines (the header first).
fn csv_step(rng: &mut Rng, lines: &mut [Vec<u8>], step: &str) -> String {
    let n = lines.len();
    match step {
        "header" => {
            let h = String::from_utf8_lossy(&lines[0]).into_owned();
            let cols: Vec<&str> = h.split(',').collect();
            let i = rng.below(cols.len());
            let new = match rng.below(3) {
                0 => cols
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != i)
                    .map(|(_, c)| *c)
                    .collect::<Vec<_>>()
                    .join(","),
                1 => h.replacen(cols[i], &cols[i].to_uppercase(), 1),
                // Two columns swapped by name: rows are read by the header's names, so the
                // values are now under each other's names.
                _ => {
                    let j = (i + 1) % cols.len();
                    let mut c = cols.clone();
                    c.swap(i, j);
                    c.join(",")
                }
            };
            lines[0] = new.clone().into_bytes();
            format!("header {h:?} -> {new:?}")
        }
        "snapshot-flag" => {
            let at = rng.range(1, n.max(2)).min(n - 1);
            let t = String::from_utf8_lossy(&lines[at]).into_owned();
            let new = if t.contains(",true,") {
                t.replacen(",true,", ",false,", 1)
            } else {
                t.replacen(",false,", ",true,", 1)
            };
            lines[at] = new.into_bytes();
            format!("line {}: is_snapshot flipped", at + 1)
        }
        "market" => {
            let at = rng.range(1, n.max(2)).min(n - 1);
            let t = String::from_utf8_lossy(&lines[at]).into_owned();
            let new = if rng.percent(50) {
                t.replacen("BTCUSDT", "ETHUSDT", 1)
            } else {
                t.replacen("binance", "deribit", 1)
            };
            lines[at] = new.into_bytes();
            format!("line {}: another market", at + 1)
        }
        other => panic!("no CSV family {other}"),
    }
}

fn tardis_case(rng: &mut Rng) -> TardisCase {
    let (book, trades) = tardis_base();
    let (mut book, mut trades) = (book.clone(), trades.clone());
    let family = *rng.pick(TARDIS_FAMILIES);
    let book_damaged = rng.percent(70);
    let with_trades = !book_damaged || rng.percent(50);
    let lines = if book_damaged { &mut book } else { &mut trades };
    let mut what = Vec::new();
    let mut bad_line = None;
    let mut bytes = None;
    let steps: Vec<&str> = if family == "several" {
        (0..rng.range(2, 5))
            .map(|_| *rng.pick(&TARDIS_FAMILIES[..TARDIS_FAMILIES.len() - 1]))
            .collect()
    } else {
        vec![family]
    };
    let single = steps.len() == 1;
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        if lines.is_empty() {
            break;
        }
        match *step {
            "truncate-bytes" | "flip" | "bom-crlf" if !last => continue,
            "truncate-bytes" => {
                let mut b = join(lines);
                what.push(truncate_bytes(rng, &mut b));
                bytes = Some(b);
            }
            "flip" => {
                let mut b = join(lines);
                what.push(flip_bytes(rng, &mut b));
                bytes = Some(b);
            }
            "bom-crlf" => {
                let mut b = "\u{feff}".as_bytes().to_vec();
                for l in lines.iter() {
                    b.extend_from_slice(l);
                    b.extend_from_slice(b"\r\n");
                }
                what.push("a BOM and CRLF line ends".into());
                bytes = Some(b);
            }
            "header" | "snapshot-flag" | "market" => what.push(csv_step(rng, lines, step)),
            f => {
                let before = lines.len();
                let w = mutate_lines(rng, lines, f, &tardis_long_line);
                if single && matches!(f, "garbage" | "utf8") && lines.len() == before {
                    bad_line = w
                        .strip_prefix("line ")
                        .and_then(|r| r.split(&[' ', ':'][..]).next())
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 1);
                }
                what.push(w);
            }
        }
    }
    let damaged = bytes.unwrap_or_else(|| join(lines));
    let (book, trades) = if book_damaged {
        (damaged, join(&trades))
    } else {
        (join(&book), damaged)
    };
    TardisCase {
        family,
        what,
        book_damaged,
        with_trades,
        book,
        trades,
        bad_line,
    }
}

/// Whether `e` is an error the rules allow: one naming a file given and a line of it (or a
/// range, or for a file with nothing to import, the file), or a gzip read naming where it
/// stopped.
fn tardis_error_ok(
    e: &ImportError,
    files: &[(String, u64)],
    gz_damaged: bool,
) -> Result<(), String> {
    let msg = e.to_string();
    let lines_of = |path: &str| -> Result<u64, String> {
        let n = files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("names a file not given: {msg}"))?;
        // A damaged gzip stream can inflate to other lines than were written.
        Ok(if gz_damaged { u64::MAX } else { n })
    };
    let named = |path: &str, line: u64| -> Result<(), String> {
        let n = lines_of(path)?;
        if !(1..=n).contains(&line) {
            return Err(format!("names line {line} of a file of {n} lines: {msg}"));
        }
        if !msg.contains(&format!("{path} line {line}")) {
            return Err(format!("does not say `{path} line {line}`: {msg}"));
        }
        Ok(())
    };
    let ImportError::Tardis(t) = e else {
        return match e {
            ImportError::Read { path, line, .. } if gz_damaged => {
                let n = lines_of(path)?;
                if *line > n || !msg.contains(&format!("after line {line}")) {
                    return Err(format!("does not say where the read stopped: {msg}"));
                }
                Ok(())
            }
            _ => Err(format!(
                "not an error the Tardis importer gives here: {msg}"
            )),
        };
    };
    match &**t {
        // An empty file's header is still line 1.
        TardisError::Header { path, .. } if msg.contains("the file is empty") => {
            lines_of(path).map(|_| ())
        }
        TardisError::Header { path, .. } => named(path, 1),
        TardisError::Row { path, line, .. }
        | TardisError::Changed { path, line, .. }
        | TardisError::TimeJump { path, line, .. }
        | TardisError::NoSnapshotFirst { path, line } => named(path, *line),
        TardisError::OneSided {
            path,
            first_line,
            last_line,
            ..
        } => {
            let n = lines_of(path)?;
            if !(2..=*last_line).contains(first_line) || *last_line > n {
                return Err(format!("a one-sided snapshot's range is off: {msg}"));
            }
            if !msg.contains(&format!("{path} lines {first_line}..{last_line}")) {
                return Err(format!("does not name the lines: {msg}"));
            }
            Ok(())
        }
        TardisError::NoRows { path } => lines_of(path).map(|_| ()),
        // A damaged header can make the book file read as trades, or the trades of another
        // market: the message names the files.
        TardisError::Mismatch { book, trades, .. } => {
            lines_of(book).and(lines_of(trades)).map(|_| ())
        }
        TardisError::Files(m) => {
            if files.iter().any(|(p, _)| m.contains(p.as_str())) {
                Ok(())
            } else {
                Err(format!("names none of the files: {msg}"))
            }
        }
    }
}

fn tardis_one(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let case = tardis_case(&mut rng);
    let strict = rng.percent(50);
    let gzip = rng.percent(50);
    let dir = tempfile::tempdir().unwrap();
    let ext = if gzip { "csv.gz" } else { "csv" };
    let book: PathBuf = dir.path().join(format!("book.{ext}"));
    let trades: PathBuf = dir.path().join(format!("trades.{ext}"));
    let (damaged, other) = if case.book_damaged {
        ((&book, &case.book), (&trades, &case.trades))
    } else {
        ((&trades, &case.trades), (&book, &case.book))
    };
    let gz_damage = write_file(&mut rng, damaged.0, damaged.1, gzip);
    write_file(&mut Rng::new(0), other.0, other.1, false);
    let mut what = case.what.clone();
    what.extend(gz_damage.clone());
    let ctx = format!(
        "{} of the {} file ({}), trades given {}, strict {strict}, {}",
        case.family,
        if case.book_damaged { "book" } else { "trades" },
        what.join("; "),
        case.with_trades,
        if gzip { "gzip" } else { "plain" }
    );
    let fail = |why: String| format!("{ctx}: {why}");
    let mut paths = vec![book.clone()];
    let mut files = vec![(book.display().to_string(), lines_in(&case.book))];
    if case.with_trades {
        paths.push(trades.clone());
        files.push((trades.display().to_string(), lines_in(&case.trades)));
    }
    let shown_damaged = damaged.0.display().to_string();
    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let opts = ImportOptions {
        strict,
        ..ImportOptions::default()
    };
    let outcome = |accepted| Outcome {
        family: case.family,
        accepted,
    };
    match tardis::import(&mut w, &paths, &opts) {
        Err(e) => {
            if case.family == "bom-crlf" && gz_damage.is_none() {
                return Err(fail(format!("a BOM and CRLF are Tardis's own: {e}")));
            }
            tardis_error_ok(&e, &files, gz_damage.is_some()).map_err(fail)?;
            if let (Some(line), true, None) = (case.bad_line, strict, &gz_damage) {
                let first = matches!(&e, ImportError::Tardis(t) if matches!(&**t,
                    TardisError::Row { path, line: l, .. } if *l == line && *path == shown_damaged));
                if !first {
                    return Err(fail(format!("strict must refuse line {line} first: {e}")));
                }
            }
            let n = intact(&j).map_err(fail)?;
            let sessions = j.sessions().map_err(|e| fail(e.to_string()))?;
            if n != 0 || !sessions.is_empty() {
                return Err(fail(format!("a refused import left {n} entries")));
            }
            Ok(outcome(false))
        }
        Ok((id, stats)) => {
            if strict && stats.malformed > 0 {
                return Err(fail(format!("strict skipped {} rows", stats.malformed)));
            }
            if let (Some(line), None) = (case.bad_line, &gz_damage) {
                let listed = stats
                    .malformed_lines
                    .iter()
                    .any(|(l, w)| *l == line && w.starts_with(&shown_damaged));
                // The trades file's rows are only read when it is given.
                if (case.book_damaged || case.with_trades) && (strict || !listed) {
                    return Err(fail(format!(
                        "accepted without reporting line {line}: {}",
                        tardis::summary(&stats)
                    )));
                }
            }
            let n = intact(&j).map_err(fail)?;
            if n != stats.entries + 2 {
                return Err(fail(format!(
                    "the journal holds {n} entries, the import made {} and its start and end",
                    stats.entries
                )));
            }
            let market = stats
                .instrument
                .as_ref()
                .map(|i| (i.market.venue.clone(), i.market.symbol.to_string()));
            let ours = Some(("binance-spot".to_string(), "BTCUSDT".to_string()));
            match rules_backtest_keys(&mut w, id, Some(Vec::new())) {
                Ok(()) => {}
                // Columns swapped by a damaged header make another market of the data, whose
                // rules the default sizes may not fit: a refusal naming the key, not a failure.
                Err(BacktestError::Market(m)) if market != ours && m.contains("config key") => {}
                Err(e) => return Err(fail(format!("the backtest of accepted data failed: {e}"))),
            }
            intact(&j).map_err(fail)?;
            w.close().map_err(|e| fail(format!("close: {e}")))?;
            Ok(outcome(true))
        }
    }
}

#[test]
fn tardis_import_of_damaged_files_refuses_by_file_and_line_or_backtests() {
    // The undamaged day imports cleanly, strict or not, and backtests.
    let (book, trades) = tardis_base();
    for strict in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("book.csv");
        let t = dir.path().join("trades.csv");
        std::fs::write(&b, join(book)).unwrap();
        std::fs::write(&t, join(trades)).unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut w = j.writer().unwrap();
        let opts = ImportOptions {
            strict,
            ..ImportOptions::default()
        };
        let (id, stats) = tardis::import(&mut w, &[b, t], &opts).unwrap();
        assert_eq!(
            (stats.malformed, stats.snapshots, stats.trades),
            (0, 1, MESSAGES / 2)
        );
        rules_backtest_keys(&mut w, id, Some(Vec::new())).unwrap();
    }
    drive("tardis", TARDIS_CASES, tardis_one);
}
