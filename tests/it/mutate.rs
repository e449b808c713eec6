//! A seeded mutation test of the importers (issue 11): the Binance importer over the start of
//! the shipped recording, the Hyperliquid one over its shipped recording (`mutate/hyperliquid`,
//! a few dozen cases), the Tardis CSV one over a hand-written day (`mutate/tardis`), and the
//! JSONL importer over a signed export of a small journal, each
//! fed a few hundred damaged copies (truncated, flipped bytes, lines dropped, repeated or
//! swapped, garbage JSON, extreme numbers, NaN strings, invalid UTF-8, lines of megabytes, edited
//! timestamps, headers and trailers, damaged gzip streams).
//!
//! Every case ends in one of two ways: a clean error that names the line (or, for what cannot
//! be pinned to one line, names the range or the line the read stopped after), or a success
//! whose journal verifies and whose backtest finishes. Never a panic (each case runs under
//! `catch_unwind`), never a hang (each runs under a watchdog), never a journal that fails
//! `verify`. A refused JSONL file leaves the journal as it was; a signed JSONL file that is
//! accepted must restore the exported journal byte for byte, whatever was done to its text.
//!
//! `FLASHMM_MUTATE_CASES=n` runs n cases of each importer; `FLASHMM_MUTATE_SEED=s` runs only
//! case s (a failure prints its seed and the mutation).

use flashmm::mode::backtest::{self, BacktestArgs, BacktestError, Data, PredictorChoice};
use flashmm_core::config::Config;
use flashmm_core::event::Mode;
use flashmm_journal::binance::{self, ImportError, ImportOptions};
use flashmm_journal::jsonl::{self, JsonlError};
use flashmm_journal::{Journal, Verified};
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

mod hyperliquid;
mod tardis;

/// A case that has not finished in this long has hung.
const WATCHDOG: Duration = Duration::from_secs(60);
const BINANCE_CASES: u64 = 200;
const JSONL_CASES: u64 = 150;
/// Lines of the recording the Binance cases start from (its one snapshot is line 8).
const BINANCE_LINES: usize = 2_000;
/// Lines of the recording in the journal whose export the JSONL cases start from.
const JSONL_MARKET_LINES: usize = 300;

// ---------------------------------------------------------------------------------------------
// The driver: seeds, the watchdog, catch_unwind.

/// xorshift64*, seeded through splitmix64 so nearby seeds give unrelated streams.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in lo..hi (lo < hi).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// The seeds to run: `FLASHMM_MUTATE_SEED` alone, or 0..`FLASHMM_MUTATE_CASES` (default `n`).
fn seeds(n: u64) -> Vec<u64> {
    match env_u64("FLASHMM_MUTATE_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("FLASHMM_MUTATE_CASES").unwrap_or(n)).collect(),
    }
}

/// What one case did, for the tally printed at the end.
struct Outcome {
    family: &'static str,
    accepted: bool,
}

/// Runs `case(seed)` for every seed on a thread of its own under a watchdog, catching panics;
/// fails naming every seed that panicked, hung or broke a rule.
fn drive(what: &str, n: u64, case: fn(u64) -> Result<Outcome, String>) {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut tally: std::collections::BTreeMap<&'static str, (u64, u64)> = Default::default();
    for seed in seeds(n) {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("mutate-{what}-{seed}"))
            .spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| case(seed)));
                let _ = tx.send(r);
            })
            .expect("spawn a case");
        let replay = format!("FLASHMM_MUTATE_SEED={seed} cargo test --test it mutate::{what}");
        match rx.recv_timeout(WATCHDOG) {
            Ok(Ok(Ok(o))) => {
                let t = tally.entry(o.family).or_default();
                if o.accepted {
                    t.0 += 1;
                } else {
                    t.1 += 1;
                }
            }
            Ok(Ok(Err(why))) => failures.push(format!("seed {seed}: {why}\n  replay: {replay}")),
            Ok(Err(p)) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("seed {seed}: PANIC: {msg}\n  replay: {replay}"));
            }
            Err(_) => {
                // The case's thread is left running; the test fails anyway.
                failures.push(format!(
                    "seed {seed}: HANG: not done after {WATCHDOG:?}\n  replay: {replay}"
                ));
                break;
            }
        }
    }
    let summary: Vec<String> = tally
        .iter()
        .map(|(f, (ok, err))| format!("{f}: {ok} accepted, {err} refused"))
        .collect();
    eprintln!(
        "mutate::{what}: {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        summary.join("; ")
    );
    assert!(
        failures.is_empty(),
        "{} of the {what} mutation cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Mutations shared by both importers, on a file as lines (without their `\n`).

/// Numbers a field could hold that no sane recording does, as they would be spelled in JSON.
const EXTREMES: &[&str] = &[
    "1e30",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "-1",
    "-61686.00000000",
    "0",
    "-0",
    "0.00000000",
    "NaN",
    "inf",
    "-inf",
    "1e-30",
    "0.0000000000000000000000000001",
    "61686.000000000000000000000000000001",
    "3.14159265358979323846264338327950288",
    "1.5",
    "",
    " 1",
    "0x10",
];

/// Lines that are not any record.
const GARBAGE: &[&str] = &[
    "{",
    "}",
    "[]",
    "null",
    "\"\"",
    "{\"a\":",
    "{\"stream\":1}",
    "{}{}",
    "[1,2,",
    "garbage",
    "\u{0}\u{0}\u{0}",
    "{\"seq\":\"x\"}",
    "{\"data\":{\"e\":\"trade\"}}",
];

/// Invalid UTF-8: a lone continuation byte, a truncated sequence, an encoded surrogate, an
/// overlong encoding, bytes that never appear.
const BAD_UTF8: &[&[u8]] = &[
    &[0x80],
    &[0xc3],
    &[0xc3, 0x28],
    &[0xed, 0xa0, 0x80],
    &[0xc0, 0xaf],
    &[0xff],
    &[0xfe, 0xfe],
    &[0xf8, 0x88, 0x80, 0x80, 0x80],
];

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

/// The byte ranges of the numbers in `line`: digits with an optional sign, point and exponent,
/// quoted or not.
fn numbers(line: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c.is_ascii_digit() || (c == b'-' && line.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < line.len()
                && (line[i].is_ascii_digit() || matches!(line[i], b'.' | b'e' | b'E' | b'+'))
            {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// A line with one of its numbers replaced by an extreme; `None` if it has none.
fn replace_number(rng: &mut Rng, line: &[u8]) -> Option<(Vec<u8>, String)> {
    let nums = numbers(line);
    if nums.is_empty() {
        return None;
    }
    let (a, b) = *rng.pick(&nums);
    let with = *rng.pick(EXTREMES);
    let mut out = line[..a].to_vec();
    out.extend_from_slice(with.as_bytes());
    out.extend_from_slice(&line[b..]);
    Some((
        out,
        format!("{:?} -> {with:?}", String::from_utf8_lossy(&line[a..b])),
    ))
}

/// One line-level mutation of `family`, its places picked by `rng`. Returns what it did, naming
/// lines 1-based (`line N ...` first when it changed line N in place).
fn mutate_lines(
    rng: &mut Rng,
    lines: &mut Vec<Vec<u8>>,
    family: &str,
    long_line: &dyn Fn(&mut Rng, &[u8]) -> LongLine,
) -> String {
    let n = lines.len();
    if n == 0 {
        return "nothing to mutate".into();
    }
    match family {
        "truncate-lines" => {
            let keep = rng.below(n);
            lines.truncate(keep);
            format!("kept the first {keep} of {n} lines")
        }
        "drop" => {
            let at = rng.below(n);
            let len = if rng.percent(70) {
                1
            } else {
                rng.range(2, 20).min(n - at)
            };
            lines.drain(at..at + len);
            format!("dropped lines {}..={}", at + 1, at + len)
        }
        "duplicate" => {
            let at = rng.below(n);
            let to = if rng.percent(60) {
                at + 1
            } else {
                rng.below(n + 1)
            };
            let l = lines[at].clone();
            lines.insert(to, l);
            format!("line {} repeated as line {}", at + 1, to + 1)
        }
        "swap" => {
            let a = rng.below(n);
            let b = if rng.percent(60) {
                (a + 1).min(n - 1)
            } else {
                rng.below(n)
            };
            lines.swap(a, b);
            format!("swapped lines {} and {}", a + 1, b + 1)
        }
        "garbage" => {
            let at = rng.below(n);
            let g = *rng.pick(GARBAGE);
            lines[at] = g.as_bytes().to_vec();
            format!("line {} replaced by {g:?}", at + 1)
        }
        "number" => {
            for _ in 0..20 {
                let at = rng.below(n);
                if let Some((l, what)) = replace_number(rng, &lines[at]) {
                    lines[at] = l;
                    return format!("line {}: {what}", at + 1);
                }
            }
            "no number found".into()
        }
        "utf8" => {
            let at = rng.below(n);
            let bad = *rng.pick(BAD_UTF8);
            let pos = rng.below(lines[at].len() + 1);
            lines[at].splice(pos..pos, bad.iter().copied());
            format!("line {}: bytes {bad:02x?} at byte {pos}", at + 1)
        }
        "long-line" => {
            let at = rng.below(n);
            let long = long_line(rng, &lines[at]);
            let len = long.line.len();
            if long.replace {
                lines[at] = long.line;
            } else {
                lines.insert(at, long.line);
            }
            format!("line {}: {len} bytes: {}", at + 1, long.what)
        }
        other => panic!("no line family {other}"),
    }
}

/// A very long line, made from the line at its place.
struct LongLine {
    line: Vec<u8>,
    what: String,
    /// It takes the place of that line (else it goes before it).
    replace: bool,
}

/// Byte-level damage to a whole file: a cut, or flipped bytes.
fn truncate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let at = rng.below(bytes.len());
    bytes.truncate(at);
    format!("cut at byte {at}")
}

fn flip_bytes(rng: &mut Rng, bytes: &mut [u8]) -> String {
    let k = rng.range(1, 9);
    let mut at = Vec::new();
    for _ in 0..k {
        let i = rng.below(bytes.len());
        let x = (rng.below(255) + 1) as u8;
        bytes[i] ^= x;
        at.push(format!("{i}^{x:02x}"));
    }
    format!("flipped bytes {}", at.join(","))
}

/// Writes `bytes` as `path` (plain) or gzip-compressed, maybe damaging the compressed stream;
/// whether it damaged it, and how.
fn write_file(rng: &mut Rng, path: &Path, bytes: &[u8], gzip: bool) -> Option<String> {
    if !gzip {
        std::fs::write(path, bytes).unwrap();
        return None;
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    let mut z = e.finish().unwrap();
    let damage = if rng.percent(30) {
        Some(match rng.below(3) {
            0 => {
                let at = rng.below(z.len());
                z.truncate(at);
                format!("gzip stream cut at byte {at}")
            }
            1 => format!("gzip stream: {}", flip_bytes(rng, &mut z)),
            _ => {
                z.extend_from_slice(b"trailing junk after the gzip member\n");
                "junk after the gzip member".into()
            }
        })
    } else {
        None
    };
    std::fs::write(path, &z).unwrap();
    damage
}

// ---------------------------------------------------------------------------------------------
// The Binance importer.

/// The first `BINANCE_LINES` lines of the shipped recording.
fn recording(lines: usize) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(crate::common::fixture()).unwrap();
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(f)
        .read_to_end(&mut text)
        .unwrap();
    text.split(|b| *b == b'\n')
        .take(lines)
        .map(<[u8]>::to_vec)
        .collect()
}

fn binance_base() -> &'static [Vec<u8>] {
    static BASE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BASE.get_or_init(|| recording(BINANCE_LINES))
}

const BINANCE_FAMILIES: &[&str] = &[
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
    "empty-snapshot-side",
    "several",
];

/// Local timestamps no collector writes.
const BAD_TS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "946684799999999999",
    "946684800000000000",
    "7258118400000000000",
    "7258118400000000001",
    "1.7e18",
    "",
    "abc",
    "+1723161254206652067",
];

fn binance_long_line(rng: &mut Rng, line: &[u8]) -> LongLine {
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
                r#"{ts} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723161255208,"s":"BTCUSDT","t":1,"p":"{}","q":"1","T":1723161255208,"m":true,"M":true}}}}"#,
                "9".repeat(mb << 20)
            ),
            format!("a trade priced with {mb} MB of nines"),
            false,
        ),
        1 => long(
            format!(
                r#"{ts} {{"stream":"btcusdt@trade","data":"{}"#,
                "x".repeat(mb << 20)
            ),
            format!("{mb} MB of an unterminated string"),
            false,
        ),
        2 => long(
            format!(
                r#"{ts} {{"stream":"btcusdt@depth","data":{}"#,
                "[".repeat(mb << 20)
            ),
            format!("{mb} MB of unclosed nesting"),
            false,
        ),
        3 if text.contains("\"b\":[") => {
            // The same depth diff with tens of thousands more bid levels, far below the book:
            // well formed, and the book and the backtest take them.
            let levels: Vec<String> = (0..(mb << 20) / 32)
                .map(|i| format!(r#"["{}.{:02}000000","0.00100000"]"#, 1 + i / 100, i % 100))
                .collect();
            long(
                text.replacen("\"b\":[", &format!("\"b\":[{},", levels.join(",")), 1),
                format!("the depth diff with {} more bid levels", levels.len()),
                true,
            )
        }
        _ => long(
            // A stream of another kind, megabytes long and well formed: skipped.
            format!(
                r#"{ts} {{"stream":"btcusdt@aggTrade","data":{{"pad":"{}"}}}}"#,
                "a".repeat(mb << 20)
            ),
            format!("a well-formed {mb} MB line of another stream"),
            false,
        ),
    }
}

/// One line's local time replaced by one no collector writes, or moved by up to a day and a bit.
fn edit_timestamp(rng: &mut Rng, lines: &mut [Vec<u8>]) -> String {
    let at = rng.below(lines.len());
    let l = &lines[at];
    let sp = l.iter().position(|b| *b == b' ').unwrap_or(0);
    let old = String::from_utf8_lossy(&l[..sp]).into_owned();
    let new = match rng.below(3) {
        0 => rng.pick(BAD_TS).to_string(),
        // Backwards or forwards by up to a day and a bit.
        _ => {
            let t: i64 = old.parse().unwrap_or(0);
            let d = [1, 1_000, 3_600_000_000_000, 30_000_000_000_000][rng.below(4)];
            (if rng.percent(50) { t - d } else { t + d }).to_string()
        }
    };
    let mut n = new.clone().into_bytes();
    n.extend_from_slice(&l[sp..]);
    lines[at] = n;
    format!("line {}: local time {old} -> {new:?}", at + 1)
}

/// What one Binance case did to the recording.
struct BinanceCase {
    family: &'static str,
    what: Vec<String>,
    bytes: Vec<u8>,
    /// With exactly one line made garbage (or not UTF-8): that line, which `--strict` must name.
    garbage_line: Option<u64>,
}

fn binance_case(rng: &mut Rng) -> BinanceCase {
    let mut lines = binance_base().to_vec();
    let family = *rng.pick(BINANCE_FAMILIES);
    let mut what = Vec::new();
    let mut garbage_line = None;
    let mut bytes = None;
    let steps: Vec<&str> = if family == "several" {
        (0..rng.range(2, 5))
            .map(|_| *rng.pick(&BINANCE_FAMILIES[..BINANCE_FAMILIES.len() - 1]))
            .collect()
    } else {
        vec![family]
    };
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match *step {
            // Byte-level damage works on the whole text, so it comes last.
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
            "empty-snapshot-side" => {
                let Some(at) = lines
                    .iter()
                    .position(|l| l.windows(14).any(|w| w == b"\"lastUpdateId\""))
                else {
                    what.push("no snapshot left".into());
                    continue;
                };
                let text = String::from_utf8_lossy(&lines[at]).into_owned();
                let (side, new) = match rng.below(3) {
                    0 => ("bids", empty_side(&text, "bids")),
                    1 => ("asks", empty_side(&text, "asks")),
                    _ => ("both", empty_side(&empty_side(&text, "bids"), "asks")),
                };
                lines[at] = new.into_bytes();
                what.push(format!("snapshot on line {}: {side} emptied", at + 1));
            }
            f => {
                let before = lines.len();
                let w = mutate_lines(rng, &mut lines, f, &binance_long_line);
                if steps.len() == 1 && matches!(f, "garbage" | "utf8") && lines.len() == before {
                    garbage_line = w
                        .strip_prefix("line ")
                        .and_then(|r| r.split(&[' ', ':'][..]).next())
                        .and_then(|n| n.parse().ok());
                }
                what.push(w);
            }
        }
    }
    BinanceCase {
        family,
        what,
        bytes: bytes.unwrap_or_else(|| join(&lines)),
        garbage_line,
    }
}

/// `text` with the array after `"side":` emptied.
fn empty_side(text: &str, side: &str) -> String {
    let key = format!("\"{side}\":[");
    let Some(start) = text.find(&key) else {
        return text.to_string();
    };
    let open = start + key.len();
    let mut depth = 1;
    let mut end = open;
    for (i, c) in text[open..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            end = open + i;
            break;
        }
    }
    format!("{}{}", &text[..open], &text[end..])
}

/// Whether `e` is an error the rules allow: one naming a line of the file (1..=`lines`), a
/// missing snapshot naming its range, a gzip read naming where it stopped, or the file having
/// nothing to import.
fn binance_error_ok(e: &ImportError, lines: u64, gz_damaged: bool) -> Result<(), String> {
    let msg = e.to_string();
    // A damaged gzip stream can inflate to other lines than were written.
    let lines = if gz_damaged { u64::MAX } else { lines };
    let named = |line: u64| -> Result<(), String> {
        if !(1..=lines).contains(&line) {
            return Err(format!(
                "names line {line} of a file of {lines} lines: {msg}"
            ));
        }
        if !msg.contains(&format!("line {line}")) {
            return Err(format!("does not say `line {line}`: {msg}"));
        }
        Ok(())
    };
    match e {
        ImportError::Malformed { line, .. }
        | ImportError::Gap { line, .. }
        | ImportError::TimeJump { line, .. }
        | ImportError::UnfollowedSnapshot { line, .. }
        | ImportError::NotContinuing { line, .. }
        | ImportError::CoinChanged { line, .. } => named(*line),
        ImportError::MissingSnapshot {
            first_line,
            last_line,
            ..
        } => {
            if !(1..=*last_line).contains(first_line) || *last_line > lines {
                return Err(format!("a missing snapshot's range is off: {msg}"));
            }
            if !msg.contains(&format!("lines {first_line}..{last_line}")) {
                return Err(format!("does not name the lines: {msg}"));
            }
            Ok(())
        }
        ImportError::Read { line, detail, .. } => {
            if *line > lines {
                return Err(format!("read stopped after line {line} of {lines}: {msg}"));
            }
            if !msg.contains(&format!("after line {line}")) {
                return Err(format!("does not say where the read stopped: {msg}"));
            }
            if detail != "no market records in the file" && !gz_damaged {
                return Err(format!("a read error of an undamaged file: {msg}"));
            }
            Ok(())
        }
        // A file none of whose lines names a symbol cannot be pinned to a line.
        ImportError::NoSymbol => Ok(()),
        ImportError::Open { .. }
        | ImportError::AlreadyImported { .. }
        | ImportError::Tardis(_)
        | ImportError::Journal(_) => Err(format!(
            "an error a fresh journal and an existing file cannot give: {msg}"
        )),
    }
}

fn lines_in(bytes: &[u8]) -> u64 {
    let n = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    n + u64::from(bytes.last().is_some_and(|b| *b != b'\n'))
}

fn rules_backtest(w: &mut flashmm_journal::Writer, session: u64) -> Result<(), BacktestError> {
    rules_backtest_keys(w, session, None)
}

/// `market_keys`: the `market.*` keys taken as set (`None`: all of the default config's).
fn rules_backtest_keys(
    w: &mut flashmm_journal::Writer,
    session: u64,
    market_keys: Option<Vec<String>>,
) -> Result<(), BacktestError> {
    let args = BacktestArgs {
        data: Data::Journal(Some(session)),
        from: None,
        from_until: None,
        to: None,
        predictor: PredictorChoice::Rules,
        cfg: Config::default(),
        market_keys,
        progress: false,
        what_if: None,
    };
    backtest::run(w, args).map(|_| ())
}

fn intact(j: &Journal) -> Result<u64, String> {
    match j.verify() {
        Ok(Verified::Intact { entries, .. }) => Ok(entries),
        Ok(broken) => Err(format!("the journal fails verify: {broken:?}")),
        Err(e) => Err(format!("verify failed: {e}")),
    }
}

fn binance(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let case = binance_case(&mut rng);
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
    match binance::import(&mut w, &path, &opts) {
        Err(e) => {
            binance_error_ok(&e, lines, gz_damage.is_some()).map_err(fail)?;
            if let (Some(line), true, None) = (case.garbage_line, strict, &gz_damage) {
                if !matches!(e, ImportError::Malformed { line: l, .. } if l == line) {
                    return Err(fail(format!("strict must refuse line {line} first: {e}")));
                }
            }
            // Nothing was written.
            let n = intact(&j).map_err(fail)?;
            if n != 0 {
                return Err(fail(format!("a refused import left {n} entries")));
            }
            Ok(outcome(false))
        }
        Ok((id, stats)) => {
            if strict && stats.malformed > 0 {
                return Err(fail(format!("strict skipped {} lines", stats.malformed)));
            }
            if let (Some(line), None) = (case.garbage_line, &gz_damage) {
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
            rules_backtest(&mut w, id)
                .map_err(|e| fail(format!("the backtest of accepted data failed: {e}")))?;
            intact(&j).map_err(fail)?;
            w.close().map_err(|e| fail(format!("close: {e}")))?;
            Ok(outcome(true))
        }
    }
}

#[test]
fn binance_import_of_damaged_recordings_refuses_by_line_or_backtests() {
    // The undamaged start of the recording imports and backtests, in both modes.
    for strict in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.txt");
        std::fs::write(&path, join(binance_base())).unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut w = j.writer().unwrap();
        let opts = ImportOptions {
            strict,
            ..ImportOptions::default()
        };
        let (id, stats) = binance::import(&mut w, &path, &opts).unwrap();
        assert_eq!(stats.malformed, 0);
        rules_backtest(&mut w, id).unwrap();
    }
    drive("binance", BINANCE_CASES, binance);
}

// ---------------------------------------------------------------------------------------------
// The JSONL importer.

/// A signed whole-journal export of a small journal: the start of the recording imported, and
/// a rules backtest over it.
fn jsonl_base() -> &'static (Vec<u8>, u64) {
    static BASE: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec.txt");
        std::fs::write(&rec, join(&recording(JSONL_MARKET_LINES))).unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut w = j.writer().unwrap();
        let (id, _) = binance::import(&mut w, &rec, &ImportOptions::default()).unwrap();
        rules_backtest(&mut w, id).unwrap();
        w.close().unwrap();
        let entries = intact(&j).unwrap();
        let mut out = Vec::new();
        jsonl::export(&j, None, &mut out).unwrap();
        (out, entries)
    })
}

const JSONL_FAMILIES: &[&str] = &[
    "truncate-bytes",
    "truncate-lines",
    "flip",
    "drop",
    "duplicate",
    "swap",
    "garbage",
    "number",
    "number",
    "utf8",
    "long-line",
    "header",
    "trailer",
    "harmless",
    "several",
];

fn jsonl_long_line(rng: &mut Rng, line: &[u8]) -> LongLine {
    let mb = rng.range(1, 4);
    match rng.below(4) {
        0 => {
            // The line, then megabytes of blanks: the same entry.
            let mut l = line.to_vec();
            l.extend(std::iter::repeat_n(b' ', mb << 20));
            LongLine {
                line: l,
                what: format!("the line with {mb} MB of spaces after it"),
                replace: true,
            }
        }
        1 => {
            // The entry with a label megabytes long (only a session start has one).
            let text = String::from_utf8_lossy(line);
            let label = "\"label\":\"";
            LongLine {
                line: text
                    .replacen(label, &format!("{label}{}", "x".repeat(mb << 20)), 1)
                    .into_bytes(),
                what: format!("the line with {mb} MB more label, if it has one"),
                replace: true,
            }
        }
        2 => {
            let mut l = b"{\"seq\":0,\"body\":\"".to_vec();
            l.extend(std::iter::repeat_n(b'x', mb << 20));
            l.extend_from_slice(b"\"}");
            LongLine {
                line: l,
                what: format!("{mb} MB of a string"),
                replace: false,
            }
        }
        _ => {
            let mut l = b"[".to_vec();
            for _ in 0..(mb << 18) {
                l.extend_from_slice(b"[1,");
            }
            LongLine {
                line: l,
                what: format!("{mb} MB of unclosed nesting"),
                replace: false,
            }
        }
    }
}

/// An edit of the header (line 1) or the trailer (the last line).
fn edit_end(rng: &mut Rng, lines: &mut Vec<Vec<u8>>, header: bool) -> String {
    let at = if header { 0 } else { lines.len() - 1 };
    let text = String::from_utf8_lossy(&lines[at]).into_owned();
    let zeros = "0".repeat(64);
    let edits: &[(&str, &str)] = if header {
        &[
            ("\"flashmm_export\":1", "\"flashmm_export\":2"),
            ("\"flashmm_export\":1", "\"flashmm_export\":0"),
            ("\"format\":", "\"format\":1"),
            ("\"first_seq\":0", "\"first_seq\":1"),
            ("\"first_seq\":0", "\"first_seq\":-1"),
            ("\"first_seq\":0", "\"first_seq\":18446744073709551615"),
            (
                &zeros,
                "1000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                &zeros,
                "000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                &zeros,
                "0000000000000000000000000000000000000000000000000000000000000000ff",
            ),
            (
                &zeros,
                "zz00000000000000000000000000000000000000000000000000000000000000",
            ),
            ("{", "{\"extra\":1,"),
            ("}", ",\"prev_hash\":\"x\"}"),
        ]
    } else {
        &[
            ("\"entries\":", "\"entries\":1"),
            ("\"entries\":", "\"entries\":-"),
            ("\"last_seq\":", "\"last_seq\":null,\"x\":"),
            ("\"last_seq\":", "\"last_seq\":1"),
            ("\"head\":\"", "\"head\":\"0"),
            ("\"head\":\"", "\"head\":\"f"),
            ("}}", ",\"more\":1}}"),
            ("flashmm_export_end", "flashmm_export_start"),
        ]
    };
    match rng.below(4) {
        0 => {
            lines.remove(at);
            format!("{} removed", if header { "header" } else { "trailer" })
        }
        1 => {
            let copy = lines[at].clone();
            let to = rng.below(lines.len() + 1);
            lines.insert(to, copy);
            format!(
                "{} repeated as line {}",
                if header { "header" } else { "trailer" },
                to + 1
            )
        }
        _ => {
            let (from, to) = *rng.pick(edits);
            lines[at] = text.replacen(from, to, 1).into_bytes();
            format!("line {}: {from:?} -> {to:?}", at + 1)
        }
    }
}

/// Changes that leave every entry as it was: blank lines, `\r\n`, surrounding blanks.
fn harmless(rng: &mut Rng, lines: &mut Vec<Vec<u8>>) -> String {
    match rng.below(4) {
        0 => {
            let at = rng.below(lines.len() + 1);
            lines.insert(at, b"   \t".to_vec());
            format!("a blank line at line {}", at + 1)
        }
        1 => {
            for l in lines.iter_mut() {
                l.push(b'\r');
            }
            "\\r\\n line endings".into()
        }
        2 => {
            let at = rng.below(lines.len());
            lines[at].splice(0..0, *b"  ");
            lines[at].extend_from_slice(b" \t ");
            format!("blanks around line {}", at + 1)
        }
        _ => {
            lines.push(Vec::new());
            lines.push(Vec::new());
            "blank lines at the end".into()
        }
    }
}

struct JsonlCase {
    family: &'static str,
    what: Vec<String>,
    bytes: Vec<u8>,
}

fn jsonl_case(rng: &mut Rng) -> JsonlCase {
    let (base, _) = jsonl_base();
    let mut lines: Vec<Vec<u8>> = base
        .strip_suffix(b"\n")
        .unwrap_or(base)
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let family = *rng.pick(JSONL_FAMILIES);
    let steps: Vec<&str> = if family == "several" {
        (0..rng.range(2, 5))
            .map(|_| *rng.pick(&JSONL_FAMILIES[..JSONL_FAMILIES.len() - 1]))
            .collect()
    } else {
        vec![family]
    };
    let mut what = Vec::new();
    let mut bytes = None;
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
            "header" => what.push(edit_end(rng, &mut lines, true)),
            "trailer" => what.push(edit_end(rng, &mut lines, false)),
            "harmless" => what.push(harmless(rng, &mut lines)),
            f => what.push(mutate_lines(rng, &mut lines, f, &jsonl_long_line)),
        }
    }
    JsonlCase {
        family,
        what,
        bytes: bytes.unwrap_or_else(|| join(&lines)),
    }
}

fn jsonl(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let case = jsonl_case(&mut rng);
    let unsigned = rng.percent(30);
    let gzip = rng.percent(30);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if gzip {
        "export.jsonl.gz"
    } else {
        "export.jsonl"
    });
    let gz_damaged = write_file(&mut rng, &path, &case.bytes, gzip);
    let mut what = case.what.clone();
    what.extend(gz_damaged.clone());
    let ctx = format!(
        "{} ({}), {}, {}",
        case.family,
        what.join("; "),
        if unsigned { "unsigned" } else { "signed" },
        if gzip { "gzip" } else { "plain" }
    );
    let fail = |why: String| format!("{ctx}: {why}");
    let lines = lines_in(&case.bytes);
    let (base, base_entries) = jsonl_base();

    let j = Journal::open(&dir.path().join("journal")).unwrap();
    let mut w = j.writer().unwrap();
    let opts = jsonl::ImportOptions {
        unsigned,
        ..Default::default()
    };
    let outcome = |accepted| Outcome {
        family: case.family,
        accepted,
    };
    match jsonl::import_file(&mut w, &path, &opts) {
        Err(JsonlError::Line { line, detail }) => {
            // A line of the file, or the one after the last (a read that failed at the end);
            // a damaged gzip stream can inflate to other lines than were written.
            let most = if gz_damaged.is_some() {
                u64::MAX
            } else {
                lines + 1
            };
            if !(1..=most).contains(&line) {
                return Err(fail(format!(
                    "names line {line} of a file of {lines} lines: {detail}"
                )));
            }
            let msg = JsonlError::Line { line, detail }.to_string();
            if !msg.starts_with(&format!("line {line}: ")) {
                return Err(fail(format!("does not name the line: {msg}")));
            }
            // The journal is as it was: empty.
            let n = intact(&j).map_err(fail)?;
            let sessions = j.sessions().map_err(|e| fail(e.to_string()))?;
            if n != 0 || !sessions.is_empty() || w.next_seq() != 0 {
                return Err(fail(format!(
                    "a refused import left {n} entries and {} sessions ({msg})",
                    sessions.len()
                )));
            }
            if case.family == "harmless" && gz_damaged.is_none() {
                return Err(fail(format!(
                    "refused a file whose entries are unchanged: {msg}"
                )));
            }
            Ok(outcome(false))
        }
        Err(other) => Err(fail(format!("not an error naming a line: {other}"))),
        Ok(imported) => {
            let n = intact(&j).map_err(fail)?;
            if n != imported.entries {
                return Err(fail(format!(
                    "the import says {} entries, the journal holds {n}",
                    imported.entries
                )));
            }
            if !unsigned {
                // Accepted signed: whatever was done to the text, the journal is the exported
                // one, byte for byte.
                w.close().map_err(|e| fail(format!("close: {e}")))?;
                let mut again = Vec::new();
                jsonl::export(&j, None, &mut again).map_err(|e| fail(e.to_string()))?;
                if n != *base_entries || again != *base {
                    return Err(fail(format!(
                        "a signed import accepted a changed file: {n} entries (the export had {base_entries}), the journal's export differs"
                    )));
                }
                return Ok(outcome(true));
            }
            // Unsigned: taken as it is, but whatever it holds is read back without a panic.
            // A backtest may refuse what it reads, but a runaway is a bug whatever the input.
            for s in j.sessions().map_err(|e| fail(e.to_string()))? {
                match s.mode {
                    Mode::Import => {
                        if let Err(e @ BacktestError::Runaway { .. }) = rules_backtest(&mut w, s.id)
                        {
                            return Err(fail(format!("backtest of session {}: {e}", s.id)));
                        }
                    }
                    _ => {
                        let _ = flashmm::mode::replay::verify(&j, &s, None, None, &mut |_, _| {});
                    }
                }
            }
            intact(&j).map_err(fail)?;
            Ok(outcome(true))
        }
    }
}

#[test]
fn jsonl_import_of_damaged_exports_refuses_by_line_and_leaves_the_journal() {
    // The undamaged export restores its journal, signed and unsigned.
    let (base, entries) = jsonl_base();
    for unsigned in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        std::fs::write(&path, base).unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut w = j.writer().unwrap();
        let opts = jsonl::ImportOptions {
            unsigned,
            ..Default::default()
        };
        let imported = jsonl::import_file(&mut w, &path, &opts).unwrap();
        assert_eq!(imported.entries, *entries);
        assert_eq!(intact(&j).unwrap(), *entries);
    }
    drive("jsonl", JSONL_CASES, jsonl);
}

// ---------------------------------------------------------------------------------------------
// Findings, each pinned by a test of its own.

#[test]
fn a_binance_line_longer_than_the_limit_is_malformed_and_not_held_in_memory() {
    // Before the limit the importer read a line whole, however long: a file without newlines
    // (a damaged gzip stream, or not a recording at all) was read into memory entire. A line of
    // another stream, well formed but over the limit, was skipped as a stream it did not know.
    let base = binance_base();
    let pad = "a".repeat(binance::MAX_LINE_BYTES);
    let long =
        format!(r#"1723161254206652067 {{"stream":"btcusdt@aggTrade","data":{{"pad":"{pad}"}}}}"#);
    let mut lines = base[..100].to_vec();
    lines.insert(20, long.into_bytes());
    // And one exactly at the limit, which is read.
    let mut at_limit =
        r#"1723161254206652067 {"stream":"btcusdt@aggTrade","data":{"pad":""}}"#.to_string();
    let fill = binance::MAX_LINE_BYTES - at_limit.len();
    at_limit.insert_str(at_limit.len() - 3, &"b".repeat(fill));
    assert_eq!(at_limit.len(), binance::MAX_LINE_BYTES);
    lines.insert(30, at_limit.into_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.txt");
    std::fs::write(&path, join(&lines)).unwrap();
    for strict in [true, false] {
        let j = Journal::open(&dir.path().join(format!("journal-{strict}"))).unwrap();
        let mut w = j.writer().unwrap();
        let opts = ImportOptions {
            strict,
            ..ImportOptions::default()
        };
        match binance::import(&mut w, &path, &opts) {
            Err(ImportError::Malformed { line: 21, detail }) if strict => {
                assert!(detail.contains("longer than"), "{detail}")
            }
            Ok((_, stats)) if !strict => {
                assert_eq!(stats.malformed, 1, "{}", stats.summary());
                assert_eq!(stats.malformed_lines[0].0, 21);
                assert_eq!(stats.lines, 102);
                assert_eq!(stats.unknown_streams, 1);
            }
            other => panic!("strict {strict}: {:?}", other.map(|(_, s)| s.summary())),
        }
    }
}
