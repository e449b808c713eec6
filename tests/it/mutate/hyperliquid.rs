//! The Hyperliquid importer under the same mutations as the Binance one, over the shipped
//! recording (55 lines), plus what only this format has: a side of `levels` emptied, a book
//! crossed, a line of another coin. The same rules: a clean error naming the line, or a success
//! whose journal verifies and whose backtest finishes.

use super::*;
use flashmm_journal::hyperliquid as hl;

const HL_CASES: u64 = 48;

fn hl_base() -> &'static [Vec<u8>] {
    static BASE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BASE.get_or_init(|| {
        let path = crate::common::fixtures_dir().join("hyperliquid-btc-20250126.gz");
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    })
}

const HL_FAMILIES: &[&str] = &[
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
    "timestamp",
    "empty-side",
    "crossed",
    "coin",
    "several",
];

fn hl_long_line(rng: &mut Rng, line: &[u8]) -> LongLine {
    let text = String::from_utf8_lossy(line).into_owned();
    let ts = text.split(' ').next().unwrap_or_default().to_string();
    let mb = rng.range(1, 4);
    let long = |line: String, what: String, replace: bool| LongLine {
        line: line.into_bytes(),
        what,
        replace,
    };
    match rng.below(5) {
        0 => long(
            format!(
                r#"{ts} {{"channel":"trades","data":[{{"coin":"BTC","side":"B","px":"{}","sz":"1","time":1737918860049,"tid":1}}]}}"#,
                "9".repeat(mb << 20)
            ),
            format!("a trade priced with {mb} MB of nines"),
            false,
        ),
        1 => long(
            format!(
                r#"{ts} {{"channel":"l2Book","data":"{}"#,
                "x".repeat(mb << 20)
            ),
            format!("{mb} MB of an unterminated string"),
            false,
        ),
        2 => long(
            format!(
                r#"{ts} {{"channel":"trades","data":{}"#,
                "[".repeat(mb << 20)
            ),
            format!("{mb} MB of unclosed nesting"),
            false,
        ),
        3 if text.contains("\"levels\":[[") => {
            // The same book with tens of thousands more bids, far below it: well formed.
            let levels: Vec<String> = (0..(mb << 20) / 32)
                .map(|i| {
                    format!(
                        r#"{{"px":"{}.{:02}","sz":"0.001","n":1}}"#,
                        1 + i / 100,
                        i % 100
                    )
                })
                .collect();
            long(
                text.replacen(
                    "\"levels\":[[",
                    &format!("\"levels\":[[{},", levels.join(",")),
                    1,
                ),
                format!("the book with {} more bid levels", levels.len()),
                true,
            )
        }
        _ => long(
            format!(
                r#"{ts} {{"channel":"activeAssetCtx","data":{{"pad":"{}"}}}}"#,
                "a".repeat(mb << 20)
            ),
            format!("a well-formed {mb} MB line of another channel"),
            false,
        ),
    }
}

/// The byte range of the `side`-th array (0 bids, 1 asks) inside `"levels":[`.
fn side_range(text: &str, side: usize) -> Option<(usize, usize)> {
    let mut i = text.find("\"levels\":[")? + "\"levels\":[".len();
    for k in 0..=side {
        let open = i + text[i..].find('[')? + 1;
        let close = open + text[open..].find(']')?;
        if k == side {
            return Some((open, close));
        }
        i = close + 1;
    }
    None
}

fn book_lines(lines: &[Vec<u8>]) -> Vec<usize> {
    (0..lines.len())
        .filter(|i| lines[*i].windows(8).any(|w| w == b"\"l2Book\""))
        .collect()
}

struct HlCase {
    family: &'static str,
    what: Vec<String>,
    bytes: Vec<u8>,
    /// With exactly one line made garbage, not UTF-8, emptied or crossed: that line, which
    /// `--strict` must name.
    bad_line: Option<u64>,
}

fn hl_case(rng: &mut Rng) -> HlCase {
    let mut lines = hl_base().to_vec();
    let family = *rng.pick(HL_FAMILIES);
    let mut what = Vec::new();
    let mut bad_line = None;
    let mut bytes = None;
    let steps: Vec<&str> = if family == "several" {
        (0..rng.range(2, 5))
            .map(|_| *rng.pick(&HL_FAMILIES[..HL_FAMILIES.len() - 1]))
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
            "truncate-bytes" | "flip" if !last => continue,
            "truncate-bytes" => {
                let mut b = join(&lines);
                what.push(truncate_bytes(rng, &mut b));
                bytes = Some(b);
            }
            "flip" => {
                let mut b = join(&lines);
                what.push(flip_bytes(rng, &mut b));
                bytes = Some(b);
            }
            "timestamp" => what.push(edit_timestamp(rng, &mut lines)),
            "empty-side" | "crossed" => {
                let books = book_lines(&lines);
                if books.is_empty() {
                    what.push("no book left".into());
                    continue;
                }
                let at = *rng.pick(&books);
                let text = String::from_utf8_lossy(&lines[at]).into_owned();
                let new = if *step == "empty-side" {
                    let side = rng.below(2);
                    let Some((a, b)) = side_range(&text, side) else {
                        continue;
                    };
                    what.push(format!("line {}: side {side} emptied", at + 1));
                    format!("{}{}", &text[..a], &text[b..])
                } else {
                    // The best ask as the best bid's price: locked, so malformed.
                    let Some((a, _)) = side_range(&text, 1) else {
                        continue;
                    };
                    let Some(bid) = text
                        .split("\"px\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                    else {
                        continue;
                    };
                    let level = format!(r#"{{"n":1,"px":"{bid}","sz":"1"}},"#);
                    what.push(format!("line {}: an ask at the best bid {bid}", at + 1));
                    format!("{}{level}{}", &text[..a], &text[a..])
                };
                lines[at] = new.into_bytes();
                if single {
                    bad_line = Some(at as u64 + 1);
                }
            }
            "coin" => {
                let at = rng.below(lines.len());
                let text = String::from_utf8_lossy(&lines[at]).into_owned();
                lines[at] = text
                    .replace("\"coin\":\"BTC\"", "\"coin\":\"ETH\"")
                    .into_bytes();
                what.push(format!("line {}: coin ETH", at + 1));
            }
            f => {
                let before = lines.len();
                let w = mutate_lines(rng, &mut lines, f, &hl_long_line);
                if single && matches!(f, "garbage" | "utf8") && lines.len() == before {
                    bad_line = w
                        .strip_prefix("line ")
                        .and_then(|r| r.split(&[' ', ':'][..]).next())
                        .and_then(|n| n.parse().ok());
                }
                what.push(w);
            }
        }
    }
    HlCase {
        family,
        what,
        bytes: bytes.unwrap_or_else(|| join(&lines)),
        bad_line,
    }
}

/// A backtest takes the market from the data (no `market.*` key set).
fn data_backtest(w: &mut flashmm_journal::Writer, id: u64) -> Result<(), BacktestError> {
    rules_backtest_keys(w, id, Some(Vec::new()))
}

fn hyperliquid(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let case = hl_case(&mut rng);
    let strict = rng.percent(50);
    let gzip = rng.percent(50);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if gzip { "rec.gz" } else { "rec.txt" });
    let gz_damage = write_file(&mut rng, &path, &case.bytes, gzip);
    let mut what = case.what.clone();
    what.extend(gz_damage.clone());
    let ctx = format!(
        "{} ({}), strict {strict}, {}",
        case.family,
        what.join("; "),
        if gzip { "gzip" } else { "plain" }
    );
    let fail = |why: String| format!("{ctx}: {why}");
    let lines = lines_in(&case.bytes);
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
    match hl::import(&mut w, &path, &opts) {
        Err(e) => {
            binance_error_ok(&e, lines, gz_damage.is_some()).map_err(fail)?;
            if let (Some(line), true, None) = (case.bad_line, strict, &gz_damage) {
                if !matches!(e, ImportError::Malformed { line: l, .. } if l == line) {
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
                return Err(fail(format!("strict skipped {} lines", stats.malformed)));
            }
            if let (Some(line), None) = (case.bad_line, &gz_damage) {
                if strict || !stats.malformed_lines.iter().any(|(l, _)| *l == line) {
                    return Err(fail(format!(
                        "accepted without reporting line {line}: {}",
                        stats.summary()
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
            data_backtest(&mut w, id)
                .map_err(|e| fail(format!("the backtest of accepted data failed: {e}")))?;
            intact(&j).map_err(fail)?;
            w.close().map_err(|e| fail(format!("close: {e}")))?;
            Ok(outcome(true))
        }
    }
}

#[test]
fn hyperliquid_import_of_damaged_recordings_refuses_by_line_or_backtests() {
    for strict in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.txt");
        std::fs::write(&path, join(hl_base())).unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut w = j.writer().unwrap();
        let opts = ImportOptions {
            strict,
            ..ImportOptions::default()
        };
        let (id, stats) = hl::import(&mut w, &path, &opts).unwrap();
        assert_eq!((stats.malformed, stats.snapshots), (0, 46));
        data_backtest(&mut w, id).unwrap();
    }
    drive("hyperliquid", HL_CASES, hyperliquid);
}
